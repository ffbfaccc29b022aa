"""What flows into and out of every fitting backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TypeVar

import torch

from bodyfit_cli.body.model import BodyModel, BodyOutput, PointSet
from bodyfit_cli.geometry.rotations import axis_angle_to_matrix

T = TypeVar("T")


def _map(obj: T, fn: Callable[[torch.Tensor], torch.Tensor]) -> T:
    """A copy of a dataclass of tensors with `fn` applied to every tensor (device moves, batching...);
    optional fields that are None stay None."""
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    return type(obj)(**{k: None if v is None else fn(v) for k, v in values.items()})


@dataclass
class BodyParams:
    """SMPL-style parameters of B people. Axis-angle rotations; transl in the camera frame (meters).

    global_orient (B, 3), body_pose (B, 23, 3), betas (B, S), transl (B, 3).
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> BodyParams:
        return _map(self, fn)

    def detach(self) -> BodyParams:
        return self.map(lambda t: t.detach().clone())

    def select(self, index: torch.Tensor) -> BodyParams:
        return self.map(lambda t: t[index])

    def flatten(self) -> torch.Tensor:
        """One (B, 3 + 69 + S + 3) tensor: what optimisers and learned update rules work on."""
        return torch.cat([self.global_orient, self.body_pose.flatten(1), self.betas, self.transl], 1)

    @staticmethod
    def unflatten(flat: torch.Tensor) -> BodyParams:
        """Views into a tensor made by `flatten`, so gradients flow back to it."""
        return BodyParams(flat[:, :3], flat[:, 3:72].view(-1, 23, 3), flat[:, 72:-3], flat[:, -3:])

    def pose(self, model: BodyModel, vertices: bool = False, points: PointSet | None = None) -> BodyOutput:
        """Run the body model on these parameters (one rotation conversion for all joints)."""
        rots = axis_angle_to_matrix(torch.cat([self.global_orient[:, None], self.body_pose], 1))
        return model.pose_rotations(rots, self.betas, self.transl, vertices=vertices, points=points)


@dataclass
class Observations:
    """2D evidence for B people in full-image pixels.

    keypoints (B, K, 3): u, v, confidence in vocabulary order; focal (B, 2), center (B, 2) camera
    intrinsics; scale (B,): the person's size in pixels (box diagonal), which makes losses
    independent of image resolution; masks (B, M, M) optional: each person's segmentation over the square
    window of `detection.masks` (side `scale`, centred on the keypoints' box), for backends that use it;
    points3d (B, K, 3) optional: the detector's own 3D keypoints (MediaPipe's world landmarks) in metres,
    centred between the hips, in the camera frame's axes, with the 2D keypoints' confidence.
    """

    keypoints: torch.Tensor
    focal: torch.Tensor
    center: torch.Tensor
    scale: torch.Tensor
    masks: torch.Tensor | None = None
    points3d: torch.Tensor | None = None

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Observations:
        return _map(self, fn)

    @property
    def batch_size(self) -> int:
        return self.keypoints.shape[0]
