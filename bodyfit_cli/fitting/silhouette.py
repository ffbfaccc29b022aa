"""A soft, differentiable silhouette of the body over a person's mask window (`detection.masks`).

Rasterising triangles is not differentiable and costs the full mesh. Instead a few hundred points spread
evenly over the surface are splatted as isotropic Gaussians about as wide as their spacing, and the
coverage of a mask pixel is `1 - exp(-gain * density)`. A Gaussian is separable in x and y, so the density of
all points over the whole grid is one batched product of (points x columns) and (points x rows) tables:
cheap enough for every stage of neural descent and for training, with gradients everywhere.
"""

from __future__ import annotations

import math

import torch

from bodyfit_cli.body.model import BodyModel, PointSet
from bodyfit_cli.core.box import PersonBox
from bodyfit_cli.core.types import Observations
from bodyfit_cli.detection.masks import MASK_SIZE
from bodyfit_cli.geometry.camera import project

SURFACE_POINTS = 400  # splatted points for the silhouette the backend compares with the mask
TARGET_POINTS = 3000  # denser, for the synthetic training masks that stand in for a detector's
BODY_AREA = 1.8  # m^2, an adult's skin area: sets the splat width from the points' spacing
# Splat width 0.4 x spacing and coverage 1 - exp(-0.5 density) matched MediaPipe's masks best on the
# fitted samples (mean squared difference 0.0095 per mask pixel; 0.057 with 0.6 and 1.0).
COVERAGE_GAIN = 0.5


def surface_ids(model: BodyModel, count: int) -> torch.Tensor:
    """`count` vertex indices spread evenly over the rest-pose surface (farthest-point sampling from the
    vertex nearest the centroid): deterministic, and even where the mesh is dense (face, hands)."""
    v = model.v_template
    count = min(count, v.shape[0])
    ids = torch.empty(count, dtype=torch.long, device=v.device)
    ids[0] = (v - v.mean(0)).norm(dim=-1).argmin()
    dist = (v - v[ids[0]]).norm(dim=-1)
    for i in range(1, count):
        ids[i] = dist.argmax()
        dist = torch.minimum(dist, (v - v[ids[i]]).norm(dim=-1))
    return ids


class Silhouettes:
    """Soft silhouettes of posed `points` (a `PointSet` of `count` surface points) on `size`-pixel windows."""

    def __init__(self, model: BodyModel, count: int = SURFACE_POINTS, size: int = MASK_SIZE) -> None:
        self.points: PointSet = model.point_set(surface_ids(model, count))
        self.size = size
        self.sigma_m = 0.4 * math.sqrt(BODY_AREA / count)  # Gaussian width, metres

    def render(self, points: torch.Tensor, obs: Observations, box: PersonBox) -> torch.Tensor:
        """(B, size, size) coverage in [0, 1] of the camera-frame points (B, P, 3) on each person's window."""
        uv = project(points, obs.focal, obs.center)
        origin = box.center - box.size[:, None] / 2
        grid = (uv - origin[:, None]) / box.size[:, None, None] * self.size  # mask pixels
        sigma = self.sigma_m * obs.focal.mean(-1)[:, None] / points[..., 2].clamp(min=1e-3)
        sigma = (sigma / box.size[:, None] * self.size).clamp(min=0.25)  # at least a third of a mask pixel
        centres = torch.arange(self.size, device=points.device, dtype=points.dtype) + 0.5
        gx = _gaussian((centres - grid[..., :1]) / sigma[..., None])  # (B, P, size)
        gy = _gaussian((centres - grid[..., 1:]) / sigma[..., None])
        density = torch.einsum("bpy,bpx->byx", gy, gx)
        return 1 - torch.exp(-COVERAGE_GAIN * density)


def _gaussian(z: torch.Tensor) -> torch.Tensor:
    """exp(-z^2 / 2), its tails held at exp(-15) beyond 5.5 sigma: further out they would be denormal
    floats, which made the CPU ten times slower, and so would the products of two of them."""
    return torch.exp(-0.5 * z.square().clamp(max=30.0))


def has_mask(masks: torch.Tensor) -> torch.Tensor:
    """(B,) bool: an all-zero mask means none was detected (a detector that found the person but no
    pixels of them tells as little)."""
    return masks.flatten(1).amax(1) > 0


def silhouette_loss(rendered: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B,) mean squared difference per mask pixel; 0 for people without a mask."""
    return (rendered - masks).square().mean((1, 2)) * has_mask(masks)
