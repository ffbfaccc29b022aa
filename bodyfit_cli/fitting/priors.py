"""Pose priors: anything with `__call__(body_pose (B, 23, 3) axis-angle) -> (B,)` plugs into SMPLify."""

from __future__ import annotations

from typing import Protocol

import torch

from bodyfit_cli.vocabulary import SMPL_JOINT_NAMES


class PosePrior(Protocol):
    def __call__(self, body_pose: torch.Tensor) -> torch.Tensor: ...


# Joints that move a lot in everyday poses get a looser prior than the spine, neck and feet.
LOOSE_JOINTS = {"left_hip", "right_hip", "left_knee", "right_knee", "left_shoulder", "right_shoulder",
                "left_elbow", "right_elbow", "left_collar", "right_collar"}  # fmt: skip


class SimplePosePrior(torch.nn.Module):
    """A zero-mean Gaussian on axis-angle joint rotations, looser on the limbs.

    The default until a prior learned from motion capture is shipped.
    """

    def __init__(self, loose: float = 0.15, stiff: float = 1.0) -> None:
        super().__init__()
        w = [loose if n in LOOSE_JOINTS else stiff for n in SMPL_JOINT_NAMES[1:]]
        self.register_buffer("weights", torch.tensor(w))

    def forward(self, body_pose: torch.Tensor) -> torch.Tensor:
        return (self.weights.to(body_pose) * body_pose.pow(2).sum(-1)).sum(-1)
