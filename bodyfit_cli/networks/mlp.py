"""The trunk both learned backends share: a residual MLP (no batch statistics, so batch 1 behaves like training)."""

from __future__ import annotations

import torch
from torch import nn


class ResidualMLP(nn.Module):
    """in -> hidden -> `blocks` x (hidden -> hidden -> hidden, plus skip) -> out.

    The output layer starts at zero, so an untrained network predicts no change: the regressor starts
    at the mean state and the update network at "stay where you are".
    """

    def __init__(self, inputs: int, outputs: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.inp = nn.Linear(inputs, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
            for _ in range(blocks)
        )
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, outputs))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)
