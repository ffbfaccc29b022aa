"""Procrustes alignment: rigid (for placing a body on 3D targets) and similarity (for PA-MPJPE)."""

from __future__ import annotations

import torch

from bodyfit_cli.geometry.rotations import nearest_rotation


def _kabsch(s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best rotation taking centred points s onto centred points t, (B, N, 3) each.

    Returns the rotation (B, 3, 3) and the sum of the signed singular values (for the scale).
    """
    rot, signed = nearest_rotation(t.transpose(1, 2) @ s)
    return rot, signed.sum(-1)


def rigid_transform(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation (B, 3, 3) and translation (B, 3) with target ~= source @ R^T + t, least squares."""
    mu_s, mu_t = source.mean(1, keepdim=True), target.mean(1, keepdim=True)
    rot, _ = _kabsch(source - mu_s, target - mu_t)
    return rot, (mu_t - mu_s @ rot.transpose(1, 2))[:, 0]


def similarity_align(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scale, rotate and translate `source` (B, N, 3) onto `target` (B, N, 3) in the least-squares sense."""
    mu_s, mu_t = source.mean(1, keepdim=True), target.mean(1, keepdim=True)
    s, t = source - mu_s, target - mu_t
    rot, trace = _kabsch(s, t)
    scale = trace / s.pow(2).sum((1, 2)).clamp(min=1e-12)
    return scale[:, None, None] * s @ rot.transpose(1, 2) + mu_t


def mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error per sample, (B,)."""
    return (pred - gt).norm(dim=-1).mean(-1)
