"""Full-image pinhole cameras (OpenCV convention: x right, y down, z forward)."""

from __future__ import annotations

import math

import torch


def default_focal(width: int, height: int) -> float:
    """Focal length in pixels when the user gives none: the image diagonal (about 53 degrees of
    diagonal field of view, typical of phone and consumer cameras)."""
    return math.hypot(width, height)


def project(points: torch.Tensor, focal: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Perspective projection. points (B, N, 3) camera frame, focal (B, 2), center (B, 2) -> (B, N, 2) px."""
    z = points[..., 2:3].clamp(min=1e-3)
    return points[..., :2] / z * focal[:, None] + center[:, None]
