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


def ancestor_schedule(parents: list[int]) -> list[torch.Tensor]:
    """Ancestor indices for composing a kinematic chain by pointer jumping.

    Round r composes each joint's transform with that of its ancestor 2^r levels up, so the whole
    chain is posed in ceil(log2(depth + 1)) rounds (4 for SMPL) instead of one step per level, with
    a few large tensor operations per round. Index J stands for "no ancestor" (the identity).
    """
    n = len(parents)
    anc = [p if p >= 0 else n for p in parents] + [n]
    rounds = []
    while any(a != n for a in anc[:n]):
        rounds.append(torch.tensor(anc, dtype=torch.long))
        anc = [anc[a] for a in anc]
    return rounds


def rigid_transforms(
    rot_mats: torch.Tensor, joints: torch.Tensor, parents: list[int], schedule: list[torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose the kinematic chain.

    rot_mats (B, J, 3, 3) local rotations, joints (B, J, 3) rest joint positions, parents with
    parents[j] < j, schedule from `ancestor_schedule(parents)` (computed when not given). Returns
    posed joints (B, J, 3) and the transforms (B, J, 4, 4) that take rest-pose points to posed points
    for each joint (what skinning blends).
    """
    batch, n = joints.shape[:2]
    schedule = schedule if schedule is not None else ancestor_schedule(parents)
    rel = torch.cat([joints[:, :1], joints[:, 1:] - joints[:, parents[1:]]], 1)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=rot_mats.dtype, device=rot_mats.device).expand(batch, n + 1, 1, 4)
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device).expand(batch, 1, 3, 3)
    # Local transforms with one identity appended, which joints without an ancestor compose with.
    local = torch.cat([torch.cat([rot_mats, eye], 1), torch.cat([rel, rel.new_zeros(batch, 1, 3)], 1)[..., None]], -1)
    world = torch.cat([local, bottom], -2)
    for anc in schedule:
        world = world[:, anc.to(world.device)] @ world
    rot, posed = world[:, :n, :3, :3], world[:, :n, :3, 3]
    # Skinning transform: x -> R (x - j_rest) + j_posed.
    trans = posed - (rot @ joints[..., None])[..., 0]
    return posed, torch.cat([torch.cat([rot, trans[..., None]], -1), bottom[:, :n]], -2)


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
