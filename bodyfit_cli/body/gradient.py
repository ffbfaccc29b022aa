"""The gradient of the body's keypoints with respect to its rotations and shape, in closed form.

LGD reads the reprojection loss's gradient at every step, and it is most of a fit's time. Through
autograd it is a backward pass of about a hundred small operations, whose per-operation cost dominates
at small batches. Skinning's gradient has a short closed form with fewer operations (1.4x faster at batch
1 and 128, benchmarks/bench_lgd_gradient.py): turning joint j by a small angle e (world frame) moves every
point skinned to it or its descendants by e x (x - p_j), so the gradient for that turn is the sum of the
torques (x - p_j) x dL/dx over its subtree.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bodyfit_cli.body import lbs
from bodyfit_cli.body.model import BodyModel
from bodyfit_cli.vocabulary import NUM_SMPL_JOINTS

Pullback = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def axial(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3), linear, taking u v^T to u x v."""
    return torch.stack([m[..., 1, 2] - m[..., 2, 1], m[..., 2, 0] - m[..., 0, 2], m[..., 0, 1] - m[..., 1, 0]], -1)


def keypoints_with_gradient(
    model: BodyModel, rotations: torch.Tensor, betas: torch.Tensor
) -> tuple[torch.Tensor, Pullback]:
    """The keypoints (B, K, 3) relative to the pelvis (SMPL's root joint) for SMPL's 24 local rotations
    (B, 24, 3, 3) and the betas, and the pullback: their gradient (B, K, 3) -> the gradient with respect
    to a small turn e of each local rotation, R -> exp([e]x) R (B, 24, 3), and to the betas (B, S)."""
    sk = model.skeleton(rotations, betas)
    posedirs = model.subset_posedirs if model.has_posedirs else None
    rest = model.rest_points(sk, model.subset_template, model.subset_shapedirs, posedirs)
    root = int(model.smpl_joints[0])
    keypoints = model.landmarks(lbs.skin(rest, model.subset_weights, sk.transforms)) - sk.posed_joints[:, root, None]

    def pullback(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, joints = sk.posed_joints.shape[:2]
        weights = model.subset_weights  # (P, J)
        world, shift, posed = sk.transforms[..., :3, :3], sk.transforms[..., :3, 3], sk.posed_joints
        # On the skinned points (B, P, 3): each keypoint's gradient spread back by its vertices' weights.
        spread_kp = (grad[:, :, None] * model.landmark_weights[..., None]).flatten(1, 2)
        g = grad.new_zeros(batch, rest.shape[1], 3).index_add_(1, model.landmark_index.flatten(), spread_kp)
        # Moving the root joint moves every keypoint the other way: a pull on that joint itself.
        on_joint = torch.zeros_like(posed)
        on_joint[:, root] = -grad.sum(1)
        pull = weights.T @ g  # (B, J, 3): on each joint's rigid part
        spread = (weights.T @ (rest[..., None] * g[..., None, :]).flatten(2)).view(batch, joints, 3, 3)
        torque_own = axial(world @ spread) + torch.cross(shift, pull, -1) + torch.cross(posed, on_joint, -1)
        pull = pull + on_joint
        pull_subtree = model.subtree @ pull
        torque = model.subtree @ torque_own - torch.cross(posed, pull_subtree, -1)
        eye = torch.eye(3, dtype=world.dtype, device=world.device).expand(batch, 1, 3, 3)
        parent = torch.cat([world, eye], 1)[:, model.parent_index]  # (B, J, 3, 3), the identity for the root
        turns = (parent.transpose(-1, -2) @ torque[..., None])[..., 0]  # in each parent's frame
        # Through the shaped rest points: pose correctives and betas.
        blended = (weights @ world.flatten(2)).view(batch, -1, 3, 3)
        g_rest = (blended.transpose(-1, -2) @ g[..., None])[..., 0]
        if posedirs is not None:
            g_feats = (g_rest.flatten(1) @ posedirs.T).view(batch, joints - 1, 3, 3)
            turns[:, 1:] -= axial(g_feats @ sk.rotations[:, 1:].transpose(-1, -2))
        # Through the rest joints: where each joint is, and what its rigid part turns about.
        g_joints = parent.transpose(-1, -2) @ pull_subtree[..., None]
        g_joints = (g_joints - world.transpose(-1, -2) @ (pull_subtree - on_joint)[..., None])[..., 0]
        g_betas = g_rest.flatten(1) @ model.subset_shapedirs.flatten(0, 1)
        g_betas = g_betas + g_joints.flatten(1) @ model.joint_shapedirs.flatten(0, 1)
        if model.smpl_layout:
            return turns, g_betas
        smpl = turns.new_zeros(batch, NUM_SMPL_JOINTS, 3)
        smpl[:, 0] = turns[:, 0]
        keep = model.pose_joints >= 0
        smpl[:, 1:][:, keep] = turns[:, model.pose_joints[keep]]
        return smpl, g_betas

    return keypoints, pullback
