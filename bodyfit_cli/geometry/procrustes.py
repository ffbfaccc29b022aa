"""Similarity Procrustes alignment, for PA-MPJPE."""

from __future__ import annotations

import torch


def similarity_align(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scale, rotate and translate `source` (B, N, 3) onto `target` (B, N, 3) in the least-squares sense."""
    mu_s, mu_t = source.mean(1, keepdim=True), target.mean(1, keepdim=True)
    s, t = source - mu_s, target - mu_t
    cov = t.transpose(1, 2) @ s
    u, sing, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(u @ vh))
    fix = torch.ones_like(sing)
    fix[:, -1] = d
    rot = u @ torch.diag_embed(fix) @ vh
    scale = (sing * fix).sum(-1) / s.pow(2).sum((1, 2)).clamp(min=1e-12)
    return scale[:, None, None] * s @ rot.transpose(1, 2) + mu_t


def mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error per sample, (B,)."""
    return (pred - gt).norm(dim=-1).mean(-1)
