"""One body shape per track, settling as the clip goes on.

A person's shape does not change during a clip, but one frame's 2D keypoints say little about it (shape
and depth trade off, and detector noise moves both), so frame-by-frame fits give a shape (`betas`) that
wanders. Each track therefore keeps the mean of its fits' shapes, weighted by how well each frame saw the
person (their detection score, the mean keypoint confidence: a person cut by the image border counts
less). That mean is the track's shape: the next frame starts from it, and each frame is reported with it,
the fit's body re-posed with it (same pose, the pelvis where the fit put it), so the `betas`, joints,
keypoints and meshes of a frame stay consistent with each other.

So a track's `betas` settle in its first frames and then hardly move: after n frames one more moves them
by about 1/n of that frame's own deviation. Nothing is frozen: a poorly seen start is outweighed later.
A streaming run cannot do better for the first frames without waiting for the last ones.
"""

from __future__ import annotations

import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams

# Frames whose person was hardly seen still count a little, so a track always has a shape.
_MIN_WEIGHT = 1e-3


class ShapeAverage:
    """The weighted mean of one track's fitted shapes."""

    def __init__(self) -> None:
        self._sum: torch.Tensor | None = None
        self._weight = 0.0

    @property
    def betas(self) -> torch.Tensor | None:
        """(S,) the track's shape so far; None before its first fit."""
        return None if self._sum is None else self._sum / self._weight

    def add(self, betas: torch.Tensor, weight: float) -> torch.Tensor:
        """Count a fit's shape (S,) with `weight` (its detection score); returns the updated mean."""
        weight = max(float(weight), _MIN_WEIGHT)
        betas = betas.detach().to(torch.float64)
        self._sum = betas * weight if self._sum is None else self._sum + betas * weight
        self._weight += weight
        return self._sum / self._weight


def with_betas(model: BodyModel, params: BodyParams, betas: torch.Tensor) -> BodyParams:
    """`params` with the shape `betas`: the same pose, the pelvis where it was. The global orientation turns
    the body about its pelvis, which sits at root_position(betas) + transl, so transl takes up the difference."""
    shift = model.root_position(params.betas) - model.root_position(betas)
    return BodyParams(params.global_orient, params.body_pose, betas, params.transl + shift)
