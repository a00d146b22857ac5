"""BlazePose's regression readout (Bazarevsky et al. 2020, Figure 4: Conv_15..Conv_17): two stride-2 blocks down
to a 2×2 grid at 256 px, flattened into linear coordinate and visibility heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pose_lab.models.blocks.blaze import BlazeBlock


def _ceil_half(n: int) -> int:
    """Output size of a stride-2 BlazeBlock (padded conv and ceil-mode pool) on n pixels."""
    return -(-n // 2)


class DenseReadout(nn.Module):
    """The last regression stage (B, C, g, g) → coords (B, K, 2), visibility (B, K, 1)."""

    stages_read = 1

    def __init__(self, num_joints: int, channels: int, grid_size: int, tail_units: int) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.conv15 = nn.Sequential(BlazeBlock(channels, channels, tail_units),
                                    BlazeBlock(channels, channels, tail_units))
        features = channels * _ceil_half(_ceil_half(grid_size)) ** 2
        # The stages' features are large and all positive (post-ReLU residual stacks, mean ~9, fan-in ~1000):
        # Adam moves every head weight by ~lr in the same direction, so one step shifts the outputs by
        # ~fan_in * lr * mean ~ 10 on [0, 1] targets. Normalising them first keeps steps proportionate.
        self.norm = nn.LayerNorm(features)
        self.coords = nn.Linear(features, num_joints * 2)
        self.visibility = nn.Linear(features, num_joints)
        # Every image starts at the frame centre with visibility 0.5 instead of at outputs of std ~5 and saturated
        # visibility logits; the heads grow from there.
        nn.init.zeros_(self.coords.weight)
        nn.init.constant_(self.coords.bias, 0.5)
        nn.init.zeros_(self.visibility.weight)
        nn.init.zeros_(self.visibility.bias)

    def forward(self, stages: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """The regression stages' outputs, the last one read."""
        x = self.norm(self.conv15(stages[-1]).flatten(1))
        coords = self.coords(x).view(-1, self.num_joints, 2)
        return coords, torch.sigmoid(self.visibility(x)).unsqueeze(-1)
