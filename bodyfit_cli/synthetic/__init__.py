"""Synthetic 2D evidence with known 3D truth, shared by training and `bodyfit bench`."""

from bodyfit_cli.synthetic.projection import (
    ProjectionConfig,
    SyntheticViews,
    box_diagonal,
    random_views,
    to_vocabulary,
    up_axis,
)

__all__ = ["ProjectionConfig", "SyntheticViews", "box_diagonal", "random_views", "to_vocabulary", "up_axis"]
