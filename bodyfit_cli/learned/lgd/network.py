"""The update network of Learned Gradient Descent (Song, Chen, Hilliges, ECCV 2020).

At each step it reads the current state, the gradient of the 2D reprojection loss with respect to that
state, and the keypoints, and predicts the change of state. The gradient's direction and size are given
separately for the rotations, the betas and the camera, since their scales differ by orders of magnitude
and change as the fit converges. With `gradient_step`, each step also moves against the raw gradient by a
learned step size per state entry: the network predicts only a correction to a preconditioned gradient
step, whose size shrinks by itself as the body meets the keypoints, which an MLP reading the gradient's
direction and log norm can only approximate.
"""

from __future__ import annotations

import torch
from torch import nn

from bodyfit_cli.networks.mlp import ResidualMLP
from bodyfit_cli.networks.state import NUM_FEATURES, NUM_WORLD_FEATURES, state_size
from bodyfit_cli.vocabulary import NUM_SMPL_JOINTS


class UpdateNetwork(nn.Module):
    """(state, gradient, features, step) -> state change, one network shared by all `steps`; features from
    `state.keypoint_features(..., world=self.world)`."""

    def __init__(
        self,
        num_betas: int,
        steps: int = 3,
        hidden: int = 512,
        blocks: int = 2,
        gradient_step: bool = False,
        world: bool = False,
    ) -> None:
        super().__init__()
        self.architecture = {
            "num_betas": num_betas,
            "steps": steps,
            "hidden": hidden,
            "blocks": blocks,
            "gradient_step": gradient_step,
            "world": world,
        }
        self.steps = steps
        self.world = world  # the features hold the detector's 3D keypoints (`state.world_features`)
        size = state_size(num_betas)
        rot = NUM_SMPL_JOINTS * 6
        self.groups = [(0, rot), (rot, size - 3), (size - 3, size)]  # rotations, betas, camera
        features = NUM_FEATURES + (NUM_WORLD_FEATURES if world else 0)
        self.mlp = ResidualMLP(2 * size + len(self.groups) + features + steps, size, hidden, blocks)
        # Start at step sizes near the best single gradient steps measured on synthetic views of the pose
        # data (about 1-3 for the rotations, 0.05 for the camera); the betas' gradient says little: start at 0.
        init = torch.zeros(steps, size)
        init[:, :rot], init[:, size - 3 :] = 1.0, 0.05
        self.step_sizes = nn.Parameter(init) if gradient_step else None

    def normalised_gradient(self, grad: torch.Tensor) -> torch.Tensor:
        """Per group: the unit direction, then log10 of the norm."""
        parts, norms = [], []
        for a, b in self.groups:
            norm = grad[:, a:b].norm(dim=-1, keepdim=True)
            parts.append(grad[:, a:b] / (norm + 1e-12))
            norms.append((norm + 1e-12).log10())
        return torch.cat(parts + norms, -1)

    def forward(self, state: torch.Tensor, grad: torch.Tensor, features: torch.Tensor, step: int) -> torch.Tensor:
        step = min(step, self.steps - 1)
        one_hot = torch.zeros(state.shape[0], self.steps, device=state.device, dtype=state.dtype)
        one_hot[:, step] = 1.0
        delta = self.mlp(torch.cat([state, self.normalised_gradient(grad), features, one_hot], -1))
        if self.step_sizes is not None:
            delta = delta - self.step_sizes[step] * grad
        return delta
