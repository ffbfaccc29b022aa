"""Rotation conversions, batch-first: axis-angle (..., 3), matrices (..., 3, 3), 6D (..., 6)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, (..., 3) -> (..., 3, 3); smooth at zero so gradients stay finite."""
    angle_sq = (aa * aa).sum(-1, keepdim=True)
    angle = torch.sqrt(angle_sq + 1e-16)
    small = angle_sq < 1e-8
    # sin(t)/t and (1 - cos t)/t^2 with Taylor expansions near zero.
    a = torch.where(small, 1.0 - angle_sq / 6.0, torch.sin(angle) / angle)
    b = torch.where(small, 0.5 - angle_sq / 24.0, (1.0 - torch.cos(angle)) / (angle_sq + 1e-16))
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def matrix_to_axis_angle(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3), via the quaternion for numerical robustness near 180 degrees."""
    return quaternion_to_axis_angle(matrix_to_quaternion(m))


def nearest_rotation(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotation nearest to each (..., 3, 3) matrix (least squares, never a mirror), and the singular values
    signed as it uses them: their sum is the trace of rotation^T @ m (what Procrustes' scale needs)."""
    u, sing, vh = torch.linalg.svd(m)
    fix = torch.ones_like(sing)
    fix[..., -1] = torch.sign(torch.linalg.det(u @ vh))
    return u @ torch.diag_embed(fix) @ vh, sing * fix


def matrix_to_quaternion(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 4) as (w, x, y, z) with w >= 0."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack(
                [
                    1 + m00 + m11 + m22,
                    m[..., 2, 1] - m[..., 1, 2],
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 1, 0] - m[..., 0, 1],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 2, 1] - m[..., 1, 2],
                    1 + m00 - m11 - m22,
                    m[..., 0, 1] + m[..., 1, 0],
                    m[..., 0, 2] + m[..., 2, 0],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 0, 1] + m[..., 1, 0],
                    1 - m00 + m11 - m22,
                    m[..., 1, 2] + m[..., 2, 1],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 1, 0] - m[..., 0, 1],
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 1, 2] + m[..., 2, 1],
                    1 - m00 - m11 + m22,
                ],
                -1,
            ),
        ],
        -2,
    )  # each row is 4 * q_i * q, choose the best-conditioned one
    diag = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = diag.argmax(-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) (w, x, y, z) -> (..., 3)."""
    xyz = q[..., 1:]
    s = xyz.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(s, q[..., :1])
    scale = torch.where(s < 1e-8, 2.0 / q[..., :1].clamp(min=1e-8), angle / s.clamp(min=1e-12))
    return xyz * scale


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """Continuous 6D representation (first two columns, Zhou et al. 2019) -> (..., 3, 3)."""
    a1, a2 = x.split(3, -1)
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], -1)


def rot6d_gradient(x: torch.Tensor, turn_grad: torch.Tensor) -> torch.Tensor:
    """Chain rule through `rot6d_to_matrix`: x (..., 6), and the gradient with respect to a small turn e of
    the matrix, R -> exp([e]x) R (..., 3) -> the gradient with respect to x (..., 6).

    Changing a1 turns b1 by b1 x da1 / |a1|; the turn about b1 is what b2 gains towards b3, which comes
    from da2 and, through the part of a2 along b1, from da1."""
    a1, a2 = x.split(3, -1)
    n1 = a1.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    b1 = a1 / n1
    along = (b1 * a2).sum(-1, keepdim=True)
    u = a2 - along * b1
    nu = u.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    b3 = torch.cross(b1, u / nu, dim=-1)
    about_b1 = (turn_grad * b1).sum(-1, keepdim=True) / nu
    g1 = torch.cross(turn_grad, b1, dim=-1) / n1 - about_b1 * along / n1 * b3
    return torch.cat([g1, about_b1 * b3], -1)


def matrix_to_rot6d(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], -1)
