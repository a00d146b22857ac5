"""Test-time flip averaging: run a network on an image and on its mirror image, and average the two answers.

The mirror image's answer is mapped back before averaging: heatmaps are flipped left-right and their channels
swapped with the left/right partner joints (:data:`pose_lab.skeleton.FLIP_PARTNERS`), coordinates are
mirrored (input pixel x becomes S - 1 - x, pixel centres at integers) and re-ordered the same way, and
visibility is re-ordered. Mirror-joint heatmaps (the `neg_heatmap` variant's K extra channels, one per joint)
follow their joints. Both images go through the network as one batch, so the wrapper is a single graph that
exports to ONNX like the network itself; it costs twice the network's compute.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pose_lab.models.network import BlazePoseNet, PoseOutput
from pose_lab.skeleton import FLIP_PARTNERS


class FlipAveraged(nn.Module):
    """`net` with every inference path averaged over the input and its mirror image."""

    def __init__(self, net: BlazePoseNet) -> None:
        super().__init__()
        self.net = net
        self.input_size = net.input_size
        partners = torch.tensor(FLIP_PARTNERS)
        self.register_buffer("partners", partners, persistent=False)

    def _heatmap_order(self, channels: int) -> Tensor:
        joints = len(self.partners)
        if channels == joints:
            return self.partners
        if channels == 2 * joints:  # one mirror-joint map per joint, in joint order
            return torch.cat([self.partners, self.partners + joints])
        raise ValueError(f"flip averaging knows {joints} or {2 * joints} heatmaps, the network gives {channels}")

    def _unmirror_coords(self, coords: Tensor) -> Tensor:
        # Normalised x = pixel / S, so the mirrored pixel S - 1 - x is (S - 1) / S - x.
        x, y = coords[..., 0], coords[..., 1]
        mirrored = torch.stack([(self.input_size - 1) / self.input_size - x, y], dim=-1)
        return mirrored[:, self.partners]

    def _average_heatmaps(self, heatmaps: Tensor) -> Tensor:
        """(2B, C, h, w) answers to the input and its mirror image → (B, C, h, w)."""
        own, mirrored = _halves(heatmaps)
        return (own + mirrored.flip(-1)[:, self._heatmap_order(own.shape[1])]) / 2

    def forward(self, x: Tensor) -> PoseOutput:
        heatmaps, coords, visibility = self.net(torch.cat([x, x.flip(-1)]))
        coords, visibility = _halves(coords), _halves(visibility)
        return PoseOutput(
            self._average_heatmaps(heatmaps),
            (coords[0] + self._unmirror_coords(coords[1])) / 2,
            (visibility[0] + visibility[1][:, self.partners]) / 2,
        )

    def forward_regression(self, x: Tensor) -> tuple[Tensor, Tensor]:
        coords, visibility = (_halves(output) for output in self.net.forward_regression(torch.cat([x, x.flip(-1)])))
        return ((coords[0] + self._unmirror_coords(coords[1])) / 2,
                (visibility[0] + visibility[1][:, self.partners]) / 2)

    def forward_heatmaps(self, x: Tensor) -> Tensor:
        return self._average_heatmaps(self.net.forward_heatmaps(torch.cat([x, x.flip(-1)])))


def _halves(output: Tensor) -> Tensor:
    """(2B, ...) -> (2, B, ...): the input's and the mirror image's answers, without reading B (so an ONNX
    export keeps the batch dynamic)."""
    return output.unflatten(0, (2, -1))
