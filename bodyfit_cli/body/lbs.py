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
    n_points = points.shape[1]
    flat = transforms[:, :, :3, :].permute(0, 2, 3, 1).reshape(batch, 12, n_joints)
    pts = points.transpose(1, 2)[:, None]  # (B, 1, 3, P): points on the fast axis, long contiguous rows
    # The blended (3, 4) transforms of a whole batch of full meshes are too big for the CPU cache;
    # blending ~4 MB of them at a time and using them at once runs about 2x faster than all at once.
    step = max(1, (1 << 20) // (12 * n_points))
    chunks = []
    for s in range(0, batch, step):
        blended = (flat[s : s + step].reshape(-1, n_joints) @ weights.T).view(-1, 3, 4, n_points)
        p = pts[s : s + step]
        posed = torch.addcmul(blended[:, :, 3], blended[:, :, 0], p[:, :, 0])
        posed = torch.addcmul(posed, blended[:, :, 1], p[:, :, 1])
        chunks.append(torch.addcmul(posed, blended[:, :, 2], p[:, :, 2]))
    return torch.cat(chunks).transpose(1, 2).contiguous()
