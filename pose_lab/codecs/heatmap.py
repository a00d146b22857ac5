"""Gaussian heatmap codec: keypoints in input pixels <-> K heatmaps at input/stride resolution.

The report (§3.2.1) supervises the heatmap branch with unnormalised 2D Gaussians (peak 1) at half the
input resolution; decoding is argmax with the classic quarter-pixel shift toward the higher neighbour
(Newell et al., Stacked Hourglass; MMPose's MSRA heatmap codec). Heatmap pixel j is centred on input
coordinate (j + 0.5) * stride - 0.5, so encode and decode stay aligned for any stride.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


class GaussianHeatmap:
    """Encode (K,2) keypoints to (K,h,w) Gaussian maps and decode (B,K,h,w) maps back to keypoints."""

    def __init__(self, input_size: int, sigma: float = 2.0, stride: int = 2) -> None:
        if input_size % stride:
            raise ValueError(f"input_size {input_size} is not divisible by the heatmap stride {stride}")
        if sigma <= 0:
            raise ValueError(f"heatmap sigma must be positive, got {sigma}")
        self.input_size = input_size
        self.stride = stride
        self.sigma = sigma
        self.heatmap_size = input_size // stride
        self._grid = np.arange(self.heatmap_size, dtype=np.float32)

    def to_heatmap_coords(self, points: np.ndarray | Tensor) -> np.ndarray | Tensor:
        return (points + 0.5) / self.stride - 0.5

    def to_input_coords(self, points: np.ndarray | Tensor) -> np.ndarray | Tensor:
        return (points + 0.5) * self.stride - 0.5

    def encode(self, keypoints: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """keypoints (K,2) in input pixels, weights (K,) -> heatmaps (K,h,w) float32; weight 0 gives an empty map."""
        centres = self.to_heatmap_coords(np.asarray(keypoints, dtype=np.float32))
        gx = np.exp(-((self._grid[None, :] - centres[:, 0:1]) ** 2) / (2 * self.sigma**2))
        gy = np.exp(-((self._grid[None, :] - centres[:, 1:2]) ** 2) / (2 * self.sigma**2))
        maps = gy[:, :, None] * gx[:, None, :]
        return (maps * (np.asarray(weights, dtype=np.float32) > 0)[:, None, None]).astype(np.float32)

    def decode(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """heatmaps (B,K,h,w) -> (keypoints (B,K,2) in input pixels, scores (B,K) = peak value)."""
        b, k, h, w = heatmaps.shape
        flat = heatmaps.reshape(b, k, h * w)
        scores, index = flat.max(dim=-1)
        x, y = index % w, index // w
        # Quarter-pixel shift toward the higher neighbour: halves the argmax quantisation error. A neighbour
        # outside the map repeats the edge pixel, as padding by replication would (a peak on the edge shifts
        # outwards); gathering the four neighbours costs a fraction of padding the maps, which matters at batch 1.

        def at(dy: int, dx: int) -> Tensor:
            return flat.gather(-1, ((y + dy).clamp(0, h - 1) * w + (x + dx).clamp(0, w - 1)).unsqueeze(-1)).squeeze(-1)

        dx = torch.sign(at(0, 1) - at(0, -1)) * 0.25
        dy = torch.sign(at(1, 0) - at(-1, 0)) * 0.25
        points = torch.stack([x.to(heatmaps.dtype) + dx, y.to(heatmaps.dtype) + dy], dim=-1)
        return self.to_input_coords(points), scores
