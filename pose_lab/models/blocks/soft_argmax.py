"""Soft-argmax regression readout (integral regression, Sun et al. 2018; DSNT, Nibali et al. 2018): per joint one
logit map and one x, y offset map on a grid of cells; the coordinates are the softmax-weighted mean of cell centre
plus offset. The readout keeps where in the grid the evidence is, which a flattened linear head has to learn for
every position anew, and the offsets reach joints beyond the outer cells' centres."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def cell_coordinates(x: Tensor) -> Tensor:
    """(B, C, h, w) → (B, 2, h, w): each cell centre's x and y as fractions of the frame, like the coordinates."""
    batch, _, height, width = x.shape
    xs = (torch.arange(width, device=x.device, dtype=x.dtype) + 0.5) / width
    ys = (torch.arange(height, device=x.device, dtype=x.dtype) + 0.5) / height
    return torch.stack([xs.expand(height, width), ys.unsqueeze(1).expand(height, width)]).expand(batch, 2, -1, -1)


def on_finest_grid(maps: Sequence[Tensor]) -> Tensor:
    """Feature maps, finest first → one (B, ΣC, h, w) map at the first's size, the others repeated to it."""
    size = maps[0].shape[-2:]
    return torch.cat([maps[0], *(nn.functional.interpolate(x, size=size, mode="nearest") for x in maps[1:])], dim=1)


class SoftArgmaxReadout(nn.Module):
    """The last len(`channels`) regression stages (finest first, each half the previous one's size) → coords
    (B, K, 2), visibility (B, K, 1), on the grid of the finest stage read; the coarser stages add their wider view.
    Offsets are in cells: ±0.5 reaches a cell's edges at any grid size."""

    def __init__(self, num_joints: int, channels: Sequence[int]) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.stages_read = len(channels)
        features = sum(channels)
        # Over channels and cells, unlike a per-cell norm: keeps the contrast between cells. Why normalise at all:
        # dense_readout.DenseReadout.
        self.norm = nn.GroupNorm(1, features)
        self.maps = nn.Conv2d(features, num_joints * 3, 1)  # per joint: logits, x offset, y offset
        self.visibility = nn.Linear(features, num_joints)  # on the features pooled over the cells
        # A flat softmax starts every image at the frame centre, and visibility at 0.5.
        for layer in (self.maps, self.visibility):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, stages: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """The regression stages' outputs, the last `stages_read` read."""
        x = self.norm(on_finest_grid(stages[-self.stages_read:]))
        batch, _, height, width = x.shape
        maps = self.maps(x).reshape(batch, self.num_joints, 3, height * width)
        weights = torch.softmax(maps[:, :, 0], dim=-1).unsqueeze(2)  # (B, K, 1, hw)
        cell = torch.tensor([1.0 / width, 1.0 / height], dtype=x.dtype, device=x.device).view(1, 1, 2, 1)
        positions = cell_coordinates(x).flatten(2).unsqueeze(1) + maps[:, :, 1:] * cell  # (B, K, 2, hw)
        coords = (weights * positions).sum(-1)
        visibility = torch.sigmoid(self.visibility(x.mean(dim=(2, 3)))).unsqueeze(-1)
        return coords, visibility
