"""The losses the learned backends train on, per person: with truth (synthetic views of motion capture),
on parameters, 3D points and 2D keypoints; without (people detected in images), on 2D evidence and priors."""

from __future__ import annotations

import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.box import person_box
from bodyfit_cli.core.types import Observations
from bodyfit_cli.fitting import losses
from bodyfit_cli.fitting.priors import PosePrior
from bodyfit_cli.fitting.silhouette import Silhouettes, silhouette_loss
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.geometry.rotations import matrix_to_axis_angle
from bodyfit_cli.networks import state
from bodyfit_cli.training.config import WEIGHTS
from bodyfit_cli.training.views import Batch

# Weights chosen so that each term is of the same order for a fair fit (10 degrees per joint, 5 cm, 2% of
# the box); see each term's comment for its unit.


def state_loss(
    model: BodyModel,
    x: torch.Tensor,
    batch: Batch,
    weights: dict[str, float] = WEIGHTS,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
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
    total = sum(weights[k] * v for k, v in terms.items())
    return total, {k: v.detach().mean() for k, v in terms.items()}


# Without truth: SMPLify's balance of evidence and priors at its final prior weight (see SMPLifyConfig),
# scaled by 100 so that a fair fit costs about what it costs with truth; the silhouette is weighed lightly,
# since detected masks are coarse and a loose garment is not the body.
UNLABELLED_WEIGHTS = {"reprojection": 100.0, "silhouette": 10.0, "pose": 0.015, "bending": 0.03, "betas": 0.015}


def unlabelled_loss(
    model: BodyModel,
    silhouettes: Silhouettes,
    prior: PosePrior,
    x: torch.Tensor,
    obs: Observations,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(B,) weighted total and batch means of the terms, for a state `x` of detected people (no 3D truth):
    robust keypoint reprojection, silhouette against the mask (where there is one), pose and shape priors."""
    box = person_box(obs)
    d = state.decode(x, box)
    with_masks = obs.masks is not None
    body = state.pose(model, d, points=silhouettes.points if with_masks else None)
    body_pose = matrix_to_axis_angle(d.rotations[:, 1:])
    terms = {
        "reprojection": losses.reprojection(body.keypoints, obs),
        "silhouette": silhouette_loss(silhouettes.render(body.points, obs, box), obs.masks)
        if with_masks
        else torch.zeros_like(x[:, 0]),
        "pose": prior(body_pose),
        "bending": losses.bending(body_pose),
        "betas": losses.shape_prior(d.betas),
    }
    total = sum(UNLABELLED_WEIGHTS[k] * v for k, v in terms.items())
    return total, {k: v.detach().mean() for k, v in terms.items()}
