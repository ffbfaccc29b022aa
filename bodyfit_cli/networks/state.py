"""What the learned backends read and write: keypoint features and one flat state vector per person.

The state holds 24 rotations in the continuous 6D form (global orientation in the camera frame, then
SMPL's 23 body joints), the betas, and a camera part (tx, ty, log d) relative to the person's box: the
pelvis projects to `box.center + box.size * (tx, ty)` and lies at depth `d * focal / box.size`. Relative
to the box, a pose looks the same to a network wherever the person stands in the image and however large.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bodyfit_cli.body.model import BodyModel, BodyOutput, PointSet, Skeleton
from bodyfit_cli.core.box import SEEN, PersonBox
from bodyfit_cli.core.types import BodyParams, Observations
from bodyfit_cli.geometry.camera import project
from bodyfit_cli.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    rot6d_gradient,
    rot6d_to_matrix,
)
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, NUM_KEYPOINTS, NUM_SMPL_JOINTS

NUM_FEATURES = NUM_KEYPOINTS * 3 + 3
NUM_WORLD_FEATURES = NUM_KEYPOINTS * 3 + 1  # `keypoint_features(..., world=True)` adds these
HIPS = [KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["right_hip"]]


def state_size(num_betas: int) -> int:
    return NUM_SMPL_JOINTS * 6 + num_betas + 3


def keypoint_features(obs: Observations, box: PersonBox, world: bool = False) -> torch.Tensor:
    """(B, K*3 + 3): box-relative positions (0 where not detected), confidences, and where the box is in
    the camera's view (its centre's direction and its size over the focal length), which tells a network
    about perspective and depth. With `world`, also `world_features` (B, K*3 + 1)."""
    conf = obs.keypoints[..., 2]
    seen = (conf > SEEN).unsqueeze(-1)
    xy = (obs.keypoints[..., :2] - box.center[:, None]) / box.size[:, None, None] * seen
    view = torch.cat([(box.center - box.principal) / box.focal[:, None], (box.size / box.focal).log()[:, None]], -1)
    parts = [xy.flatten(1), conf, view] + ([world_features(obs)] if world else [])
    return torch.cat(parts, -1)


def world_features(obs: Observations) -> torch.Tensor:
    """(B, K*3 + 1): the detector's 3D keypoints (MediaPipe's world landmarks) centred between the hips, in
    metres along the camera's axes, 0 where missing, then 1 for people who have them (0 for keypoint files):
    what 2D alone cannot say, which limb is in front, in the detector's own, noisy, estimate."""
    b = obs.keypoints.shape[0]
    if obs.points3d is None:
        return obs.keypoints.new_zeros(b, NUM_WORLD_FEATURES)
    centred = obs.points3d - obs.points3d[:, HIPS].mean(1, keepdim=True)
    has = torch.isfinite(centred).all(-1).all(-1)  # a person has them all or none
    points = torch.where(has[:, None, None], centred, torch.zeros_like(centred))
    return torch.cat([points.flatten(1), has[:, None].to(points.dtype)], -1)


@dataclass
class Decoded:
    """rotations (B, 24, 3, 3) camera-frame root first; betas (B, S); pelvis (B, 3) camera frame, metres."""

    rotations: torch.Tensor
    betas: torch.Tensor
    pelvis: torch.Tensor


def decode(x: torch.Tensor, box: PersonBox) -> Decoded:
    # One split, not four slices: LGD differentiates through this at every step, and each slice's
    # backward pass allocates a full-size gradient.
    rot6d, betas, tx_ty, log_d = x.split([NUM_SMPL_JOINTS * 6, x.shape[1] - NUM_SMPL_JOINTS * 6 - 3, 2, 1], 1)
    rotations = rot6d_to_matrix(rot6d.reshape(-1, NUM_SMPL_JOINTS, 6))
    uv = box.center + box.size[:, None] * tx_ty
    depth = log_d.exp() * (box.focal / box.size)[:, None]
    xy = (uv - box.principal) * (depth / box.focal[:, None])
    return Decoded(rotations, betas, torch.cat([xy, depth], -1))


def gradient(
    x: torch.Tensor,
    box: PersonBox,
    d: Decoded,
    turn_grad: torch.Tensor,
    betas_grad: torch.Tensor,
    pelvis_grad: torch.Tensor,
) -> torch.Tensor:
    """Chain rule through `decode` (d = decode(x, box)): the gradients with respect to small turns of the
    rotations (B, 24, 3), the betas (B, S) and the pelvis (B, 3) -> the gradient with respect to x."""
    rot6d = x[:, : NUM_SMPL_JOINTS * 6].reshape(-1, NUM_SMPL_JOINTS, 6)
    tx_ty = pelvis_grad[:, :2] * (d.pelvis[:, 2] * box.size / box.focal)[:, None]
    log_d = (pelvis_grad * d.pelvis).sum(-1, keepdim=True)  # the whole pelvis scales with exp(log d)
    return torch.cat([rot6d_gradient(rot6d, turn_grad).flatten(1), betas_grad, tx_ty, log_d], -1)


def pose(
    model: BodyModel,
    d: Decoded,
    vertices: bool = False,
    points: PointSet | None = None,
    skeleton: Skeleton | None = None,
) -> BodyOutput:
    """The body of a decoded state in the camera frame: posed at the origin, then moved to its pelvis. A
    caller that reads the posed chain too passes it as `skeleton` (= model.skeleton(d.rotations, d.betas))."""
    sk = skeleton if skeleton is not None else model.skeleton(d.rotations, d.betas)
    out = model.pose_skeleton(sk, vertices=vertices, points=points)
    shift = (d.pelvis - out.joints[:, 0])[:, None]

    def moved(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t + shift

    return BodyOutput(out.joints + shift, out.keypoints + shift, moved(out.vertices), moved(out.points))


def to_params(model: BodyModel, d: Decoded) -> BodyParams:
    """SMPL-style axis-angle parameters whose translation puts the pelvis where the state says."""
    aa = matrix_to_axis_angle(d.rotations)
    return BodyParams(aa[:, 0], aa[:, 1:], d.betas, d.pelvis - model.root_position(d.betas))


def encode(model: BodyModel, params: BodyParams, box: PersonBox) -> torch.Tensor:
    """The state of given parameters: the inverse of `decode` followed by `to_params`."""
    rotations = axis_angle_to_matrix(torch.cat([params.global_orient[:, None], params.body_pose], 1))
    betas = params.betas[:, : model.num_betas]
    return encode_parts(rotations, betas, params.transl + model.root_position(betas), box)


def encode_parts(rotations: torch.Tensor, betas: torch.Tensor, pelvis: torch.Tensor, box: PersonBox) -> torch.Tensor:
    """State from rotations (B, 24, 3, 3), betas (B, S) and the camera-frame pelvis (B, 3)."""
    uv = project(pelvis[:, None], box.focal[:, None].expand(-1, 2), box.principal)[:, 0]
    tx_ty = (uv - box.center) / box.size[:, None]
    log_d = (pelvis[:, 2].clamp(min=1e-3) * box.size / box.focal).log()
    return torch.cat([matrix_to_rot6d(rotations).flatten(1), betas, tx_ty, log_d[:, None]], -1)
