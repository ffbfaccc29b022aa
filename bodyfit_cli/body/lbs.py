"""Linear blend skinning as pure functions (batch-first tensors in, tensors out)."""

from __future__ import annotations

import torch


def blend_shapes(betas: torch.Tensor, shapedirs: torch.Tensor) -> torch.Tensor:
    """Shape offsets. betas (B, S), shapedirs (P, 3, S) -> (B, P, 3)."""
    return torch.einsum("bs,pcs->bpc", betas, shapedirs)


def pose_features(rot_mats: torch.Tensor) -> torch.Tensor:
    """SMPL's pose-corrective input: (R - I) of every non-root joint, flattened. (B, J, 3, 3) -> (B, (J-1)*9)."""
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    return (rot_mats[:, 1:] - eye).flatten(1)


def rigid_transforms(
    rot_mats: torch.Tensor, joints: torch.Tensor, parents: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose the kinematic chain.

    rot_mats (B, J, 3, 3) local rotations, joints (B, J, 3) rest joint positions, parents with
    parents[j] < j. Returns posed joints (B, J, 3) and the transforms (B, J, 4, 4) that take rest-pose
    points to posed points for each joint (what skinning blends).
    """
    batch, n = joints.shape[:2]
    rel = joints.clone()
    rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    world_r = [rot_mats[:, 0]]
    world_t = [joints[:, 0]]
    for j in range(1, n):
        p = parents[j]
        world_r.append(world_r[p] @ rot_mats[:, j])
        world_t.append(world_t[p] + (world_r[p] @ rel[:, j, :, None])[..., 0])
    rot = torch.stack(world_r, 1)
    posed = torch.stack(world_t, 1)
    # Skinning transform: x -> R (x - j_rest) + j_posed.
    trans = posed - (rot @ joints[..., None])[..., 0]
    top = torch.cat([rot, trans[..., None]], -1)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=rot.dtype, device=rot.device).expand(batch, n, 1, 4)
    return posed, torch.cat([top, bottom], -2)


def skin(points: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Blend joint transforms per point. points (B, P, 3), weights (P, J), transforms (B, J, 4, 4) -> (B, P, 3)."""
    blended = torch.einsum("pj,bjmn->bpmn", weights, transforms[:, :, :3, :])
    return (blended[..., :3] @ points[..., None])[..., 0] + blended[..., 3]
