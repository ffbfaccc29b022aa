"""Linear blend skinning as pure functions (batch-first tensors in, tensors out)."""

from __future__ import annotations

import torch


def blend_shapes(betas: torch.Tensor, shapedirs: torch.Tensor) -> torch.Tensor:
    """Shape offsets. betas (B, S), shapedirs (P, 3, S) -> (B, P, 3)."""
    n_points, _, n_shapes = shapedirs.shape
    return (betas @ shapedirs.reshape(n_points * 3, n_shapes).T).view(-1, n_points, 3)


def pose_features(rot_mats: torch.Tensor) -> torch.Tensor:
    """SMPL's pose-corrective input: (R - I) of every non-root joint, flattened. (B, J, 3, 3) -> (B, (J-1)*9)."""
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    return (rot_mats[:, 1:] - eye).flatten(1)


def kinematic_levels(parents: list[int]) -> list[tuple[list[int], list[int]]]:
    """Group joints by depth in the tree: [(joints, their parents), ...] from the root's children down.

    Posing one level at a time takes as many steps as the tree is deep (9 for SMPL), not one per joint.
    """
    depth = [0] * len(parents)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    return [
        ([j for j in range(len(parents)) if depth[j] == d], [parents[j] for j in range(len(parents)) if depth[j] == d])
        for d in range(1, max(depth) + 1)
    ]


def rigid_transforms(
    rot_mats: torch.Tensor, joints: torch.Tensor, parents: list[int],
    levels: list[tuple[list[int], list[int]]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose the kinematic chain.

    rot_mats (B, J, 3, 3) local rotations, joints (B, J, 3) rest joint positions, parents with
    parents[j] < j, levels from `kinematic_levels(parents)` (computed when not given). Returns posed
    joints (B, J, 3) and the transforms (B, J, 4, 4) that take rest-pose points to posed points for each
    joint (what skinning blends).
    """
    batch, n = joints.shape[:2]
    levels = levels if levels is not None else kinematic_levels(parents)
    rel = torch.cat([joints[:, :1], joints[:, 1:] - joints[:, parents[1:]]], 1)
    rot, posed = rot_mats[:, :1], joints[:, :1]  # world rotations and positions, in `order`
    order = [0]
    for idx, par in levels:
        where = [order.index(p) for p in par]
        pr, pt = rot[:, where], posed[:, where]
        rot = torch.cat([rot, pr @ rot_mats[:, idx]], 1)
        posed = torch.cat([posed, pt + (pr @ rel[:, idx, :, None])[..., 0]], 1)
        order += idx
    inverse = [order.index(j) for j in range(n)]
    rot, posed = rot[:, inverse], posed[:, inverse]
    # Skinning transform: x -> R (x - j_rest) + j_posed.
    trans = posed - (rot @ joints[..., None])[..., 0]
    top = torch.cat([rot, trans[..., None]], -1)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=rot.dtype, device=rot.device).expand(batch, n, 1, 4)
    return posed, torch.cat([top, bottom], -2)


def skin(points: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Blend joint transforms per point. points (B, P, 3), weights (P, J), transforms (B, J, 4, 4) -> (B, P, 3)."""
    batch, n_joints = transforms.shape[:2]
    # One (P, J) x (J, B*12) product: a single large matrix multiply rather than B small ones.
    flat = transforms[:, :, :3, :].permute(1, 0, 2, 3).reshape(n_joints, batch * 12)
    blended = (weights @ flat).view(-1, batch, 3, 4)  # (P, B, 3, 4), kept in this layout: no big copies
    pts = points.transpose(0, 1)
    posed = (blended[..., :3] * pts[:, :, None, :]).sum(-1) + blended[..., 3]
    return posed.transpose(0, 1).contiguous()
