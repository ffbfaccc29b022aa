"""The fitting core in 3D-keypoint mode: pose (and shape) from 3D joint positions, e.g. motion capture.

Joint positions fix every rotation except twists about a bone whose far end has no target (a
forearm's roll when the hand is not tracked); a weak pose prior keeps those near the rest pose, and
the bending prior stops elbows and knees from reaching a target by bending backwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.core.types import BodyParams
from bodyfit_cli.fitting import losses
from bodyfit_cli.geometry.procrustes import mpjpe, rigid_transform
from bodyfit_cli.geometry.rotations import matrix_to_axis_angle
from bodyfit_cli.vocabulary import SMPL_JOINT_INDEX

# Joints that fix the body's orientation before any limb is posed.
TORSO_JOINTS = ("pelvis", "left_hip", "right_hip", "neck", "left_shoulder", "right_shoulder")


@dataclass
class Fit3DConfig:
    iters: int = 200
    lr: float = 0.05
    pose_weight: float = 1e-5  # per squared radian, against squared metres of joint error
    bending_weight: float = 1e-5
    shape_weight: float = 3e-4  # per pose, so the shape prior weighs the same for any batch size


def initial_params(model: BodyModel, targets: torch.Tensor, joints: list[int], betas: torch.Tensor) -> BodyParams:
    """Rest pose, rotated and moved onto the targets' torso joints (rigid Procrustes).

    targets (B, N, 3) are the positions of SMPL joints `joints` (N,); betas (1 or B, S).
    """
    b = targets.shape[0]
    zeros = targets.new_zeros(b, 3)
    pose = targets.new_zeros(b, 23, 3)
    rest = BodyParams(zeros, pose, betas.expand(b, -1), zeros)
    with torch.no_grad():
        rest_joints = rest.pose(model).joints
    torso = [i for i, j in enumerate(joints) if j in {SMPL_JOINT_INDEX[n] for n in TORSO_JOINTS}]
    rot, shift = rigid_transform(rest_joints[:, joints][:, torso], targets[:, torso])
    # The root rotates about the rest pelvis p: x -> R (x - p) + p + transl, so transl = shift + R p - p.
    pelvis = rest_joints[:, 0]
    transl = shift + (rot @ pelvis[..., None])[..., 0] - pelvis
    return BodyParams(matrix_to_axis_angle(rot), pose, betas.expand(b, -1).clone(), transl)


def fit_joints3d(
    model: BodyModel,
    targets: torch.Tensor,
    joints: list[int],
    betas: torch.Tensor | None = None,
    fit_betas: bool = False,
    config: Fit3DConfig | None = None,
) -> tuple[BodyParams, torch.Tensor]:
    """Fit B poses to 3D targets (B, N, 3) of SMPL joints `joints`, in the targets' own world frame.

    `betas` (1, S) is the body shape, shared by all B poses (one subject); with `fit_betas` it is
    refined jointly with the poses. Returns the parameters and each pose's mean joint error (B,) in metres.
    """
    cfg = config or Fit3DConfig()
    betas = betas if betas is not None else targets.new_zeros(1, model.num_betas)
    init = initial_params(model, targets, joints, betas)
    x = init.flatten()[:, :72].clone().requires_grad_(True)  # orientation and body pose
    transl = init.transl.clone().requires_grad_(True)
    shape = betas.clone().requires_grad_(fit_betas)
    opt = torch.optim.Adam([x, transl] + ([shape] if fit_betas else []), lr=cfg.lr)

    def current() -> BodyParams:
        return BodyParams(x[:, :3], x[:, 3:].view(-1, 23, 3), shape.expand(x.shape[0], -1), transl)

    for _ in range(cfg.iters):
        opt.zero_grad()
        p = current()
        err = (p.pose(model).joints[:, joints] - targets).pow(2).sum(-1).mean(-1)
        prior = (
            cfg.pose_weight * p.body_pose.pow(2).sum((1, 2))
            + cfg.bending_weight * losses.bending(p.body_pose)
            + cfg.shape_weight * losses.shape_prior(p.betas)
        )
        (err + prior).sum().backward()
        opt.step()
    p = current().detach()
    with torch.no_grad():
        return p, mpjpe(p.pose(model).joints[:, joints], targets)
