"""What flows into and out of every fitting backend."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class BodyParams:
    """SMPL-style parameters of B people. Axis-angle rotations; transl in the camera frame (meters).

    global_orient (B, 3), body_pose (B, 23, 3), betas (B, S), transl (B, 3).
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor

    def detach(self) -> "BodyParams":
        return BodyParams(**{f.name: getattr(self, f.name).detach().clone() for f in fields(self)})

    def select(self, index: torch.Tensor) -> "BodyParams":
        return BodyParams(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass
class Observations:
    """2D evidence for B people in full-image pixels.

    keypoints (B, K, 3): u, v, confidence in vocabulary order; focal (B, 2), center (B, 2) camera
    intrinsics; scale (B,): the person's size in pixels (box diagonal), which makes losses
    independent of image resolution.
    """

    keypoints: torch.Tensor
    focal: torch.Tensor
    center: torch.Tensor
    scale: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.keypoints.shape[0]
