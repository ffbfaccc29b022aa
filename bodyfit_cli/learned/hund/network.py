"""The recurrent updater of neural descent (after HUND, Zanfir et al., CVPR 2021).

A context code is embedded once per person from the keypoints and, when there is one, the person's mask.
Then at each of `stages` stages an LSTM cell, shared by all stages, reads the current state, how well it
aligns (per-keypoint reprojection residuals, where the body's keypoints project, how much each segment between
keypoints must turn and stretch in the image, a coarse map of the silhouette difference, and the loss
values) and the context, updates its memory and emits the change of state. Nothing at test time needs a
gradient: alignment is measured with forward passes of the body model only. With `body3d`, a stage also
reads the body's keypoints and joints in 3D (pelvis-relative, camera frame): how a joint must turn to move
a keypoint in the image depends on which way the limb points in depth, which LGD reads from its gradient
and a network reading only 2D misalignments must otherwise infer from the rotations. With `turns`, it
reads that directly: per segment between keypoints, the turn of its joint that would align it.
"""

from __future__ import annotations

import torch
from torch import nn

from bodyfit_cli.detection.masks import MASK_SIZE
from bodyfit_cli.networks.state import NUM_FEATURES, NUM_WORLD_FEATURES, state_size
from bodyfit_cli.vocabulary import NUM_KEYPOINTS, NUM_SMPL_JOINTS, SEGMENTS

POOL = 4  # the silhouette difference map is read at MASK_SIZE / POOL pixels a side
# residuals, projected keypoints, segment turns and stretches, silhouette map, two losses
NUM_ALIGNMENT = NUM_KEYPOINTS * 4 + len(SEGMENTS) * 3 + (MASK_SIZE // POOL) ** 2 + 2
NUM_BODY3D = (NUM_KEYPOINTS + NUM_SMPL_JOINTS) * 3  # the body's keypoints and joints in 3D
NUM_TURNS = len(SEGMENTS) * 3  # the turn of each segment's joint that aligns it (`fit.limb_turns`)


class MaskEncoder(nn.Module):
    """(B, M, M) mask -> (B, out): two strided convolutions, then a linear layer."""

    def __init__(self, out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.GELU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.GELU()
        )
        self.fc = nn.Linear(16 * (MASK_SIZE // 4) ** 2, out)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(masks[:, None]).flatten(1))


class NeuralDescent(nn.Module):
    """(state, alignment, context, memory) -> (state change, memory), shared by all `stages`."""

    def __init__(
        self,
        num_betas: int,
        stages: int = 5,
        hidden: int = 256,
        context: int = 128,
        body3d: bool = False,
        turns: bool = False,
        world: bool = False,
    ) -> None:
        super().__init__()
        self.architecture = {
            "num_betas": num_betas,
            "stages": stages,
            "hidden": hidden,
            "context": context,
            "body3d": body3d,
            "turns": turns,
            "world": world,
        }
        self.stages = stages
        self.body3d = body3d
        self.turns = turns
        self.world = world  # the context reads the detector's 3D keypoints too (`state.world_features`)
        size = state_size(num_betas)
        self.mask_encoder = MaskEncoder(context)
        self.context = nn.Sequential(
            nn.Linear(NUM_FEATURES + (NUM_WORLD_FEATURES if world else 0) + context + 1, hidden),
            nn.GELU(),
            nn.Linear(hidden, context),
        )
        inputs = size + NUM_ALIGNMENT + (NUM_BODY3D if body3d else 0) + (NUM_TURNS if turns else 0) + context
        self.encoder = nn.Sequential(
            nn.Linear(inputs, hidden), nn.GELU(), nn.LayerNorm(hidden), nn.Linear(hidden, hidden)
        )
        self.cell = nn.LSTMCell(hidden, hidden)
        self.head = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, size))
        nn.init.zeros_(self.head[-1].weight)  # untrained: "stay where you are"
        nn.init.zeros_(self.head[-1].bias)

    def context_code(self, features: torch.Tensor, masks: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
        """(B, context) from the keypoint features, the masks (B, M, M) and whether each person has one."""
        flag = has_mask.to(features.dtype)[:, None]
        if has_mask.any():
            mask_code = self.mask_encoder(masks) * flag
        else:  # the same zeros, without running the convolutions
            mask_code = features.new_zeros(features.shape[0], self.mask_encoder.fc.out_features)
        return self.context(torch.cat([features, mask_code, flag], -1))

    def forward(
        self,
        state: torch.Tensor,
        alignment: torch.Tensor,
        context: torch.Tensor,
        memory: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h, c = self.cell(self.encoder(torch.cat([state, alignment, context], -1)), memory)
        return self.head(h), (h, c)
