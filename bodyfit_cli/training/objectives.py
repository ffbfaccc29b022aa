"""The losses the learned backends train on, per person: parameters, 3D points and 2D keypoints."""

from __future__ import annotations

import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.networks import state
from bodyfit_cli.training.views import Batch

# Weights chosen so that each term is of the same order for a fair fit (10 degrees per joint, 5 cm, 2% of
# the box); see each term's comment for its unit.
WEIGHTS = {"rotations": 1.0, "points3d": 10.0, "keypoints2d": 10.0, "betas": 0.1, "camera": 1.0}


def state_loss(model: BodyModel, x: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(B,) weighted total and the batch mean of each term, for a predicted state `x` (B, state_size)."""
    d = state.decode(x, batch.box)
    body = state.pose(model, d)
    # Rotation matrices: squared Frobenius distance, mean over joints.
    rotations = (d.rotations - batch.rotations).square().sum((-1, -2)).mean(1)
    # Pelvis-relative 3D keypoints and joints: mean distance in metres.
    pred = torch.cat([body.keypoints, body.joints], 1) - body.joints[:, :1]
    true = torch.cat([batch.keypoints, batch.joints], 1) - batch.joints[:, :1]
    points3d = (pred - true).norm(dim=-1).mean(1)
    # Projected keypoints against the true (noise-free) projections, in box sizes.
    focal = batch.box.focal[:, None].expand(-1, 2)
    uv = project(body.keypoints, focal, batch.box.principal)
    uv_true = project(batch.keypoints, focal, batch.box.principal)
    keypoints2d = ((uv - uv_true) / batch.box.size[:, None, None]).norm(dim=-1).mean(1)
    betas = (d.betas - batch.betas).square().mean(1)
    # Box-relative pelvis position and log depth.
    camera = (x[:, -3:] - batch.state[:, -3:]).abs().sum(1)
    terms = {"rotations": rotations, "points3d": points3d, "keypoints2d": keypoints2d, "betas": betas, "camera": camera}
    total = sum(WEIGHTS[k] * v for k, v in terms.items())
    return total, {k: v.detach().mean() for k, v in terms.items()}
