"""The keypoint regressor: detected 2D keypoints -> a whole state (pose, shape, camera) in one pass."""

from __future__ import annotations

import torch
from torch import nn

from bodyfit_cli.networks.mlp import ResidualMLP
from bodyfit_cli.networks.state import NUM_FEATURES, NUM_WORLD_FEATURES, state_size


class KeypointRegressor(nn.Module):
    """features (B, NUM_FEATURES) from `state.keypoint_features(..., world=self.world)` -> state (B, state_size).
    With `world`, the features also hold the detector's 3D keypoints (`state.world_features`)."""

    def __init__(self, num_betas: int, hidden: int = 512, blocks: int = 2, world: bool = False) -> None:
        super().__init__()
        self.architecture = {"num_betas": num_betas, "hidden": hidden, "blocks": blocks, "world": world}
        self.world = world
        size = state_size(num_betas)
        # The training data's mean state: predictions are offsets from it.
        self.register_buffer("mean_state", torch.zeros(size))
        self.mlp = ResidualMLP(NUM_FEATURES + (NUM_WORLD_FEATURES if world else 0), size, hidden, blocks)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mean_state + self.mlp(features)
