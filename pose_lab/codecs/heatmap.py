"""Gaussian heatmap codec: keypoints in input pixels <-> K heatmaps at input/stride resolution.

The report (§3.2.1) supervises the heatmap branch with unnormalised 2D Gaussians (peak 1) at half the
input resolution. Decoding is the argmax refined below one heatmap pixel, by `refine`:

- ``quarter``: the classic quarter-pixel shift toward the higher neighbour (Newell et al., Stacked Hourglass;
  MMPose's MSRA heatmap codec);
- ``dark``: the distribution-aware step of DARK (Zhang et al. 2020): the log of a Gaussian is a quadratic, so
  one Newton step on the log-heatmap at the argmax (finite-difference gradient and Hessian from the 3×3
  neighbourhood) lands on the Gaussian's centre. Where the neighbourhood is not a peak (Hessian not negative
  definite) the quarter shift stands in. The step is kept inside the argmax pixel, the only place the peak can
  be when the argmax is right.

Heatmap pixel j is centred on input coordinate (j + 0.5) * stride - 0.5, so encode and decode stay aligned for
any stride.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

REFINEMENTS: tuple[str, ...] = ("quarter", "dark")
# Heatmap values are floored here before the log: a sigmoid output is positive but may round to 0.
_LOG_FLOOR = 1e-6


class GaussianHeatmap:
    """Encode (K,2) keypoints to (K,h,w) Gaussian maps and decode (B,K,h,w) maps back to keypoints."""

    def __init__(self, input_size: int, sigma: float = 2.0, stride: int = 2, refine: str = "quarter") -> None:
        if refine not in REFINEMENTS:
            raise ValueError(f"unknown heatmap refine {refine!r}; use one of: {', '.join(REFINEMENTS)}")
        if input_size % stride:
            raise ValueError(f"input_size {input_size} is not divisible by the heatmap stride {stride}")
        if sigma <= 0:
            raise ValueError(f"heatmap sigma must be positive, got {sigma}")
        self.input_size = input_size
        self.stride = stride
        self.sigma = sigma
        self.refine = refine
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
        # A neighbour outside the map repeats the edge pixel, as padding by replication would (a peak on the edge
        # shifts outwards); gathering the neighbours costs a fraction of padding the maps, which matters at batch 1.

        def at(dy: int, dx: int) -> Tensor:
            return flat.gather(-1, ((y + dy).clamp(0, h - 1) * w + (x + dx).clamp(0, w - 1)).unsqueeze(-1)).squeeze(-1)

        quarter = torch.stack([torch.sign(at(0, 1) - at(0, -1)), torch.sign(at(1, 0) - at(-1, 0))], dim=-1) * 0.25
        offset = quarter if self.refine == "quarter" else _newton_step(at, fallback=quarter)
        points = torch.stack([x, y], dim=-1).to(heatmaps.dtype) + offset
        return self.to_input_coords(points), scores

    def with_refine(self, refine: str) -> GaussianHeatmap:
        """The same codec decoding with another refinement (encoding does not depend on it)."""
        return GaussianHeatmap(self.input_size, self.sigma, self.stride, refine)


def _newton_step(at: Callable[[int, int], Tensor], fallback: Tensor) -> Tensor:
    """(B,K,2) sub-pixel offset of the log-heatmap's maximum from the argmax; `at(dy, dx)` reads the (B,K) values
    beside it. Where the 3×3 neighbourhood is no peak, `fallback`."""
    log = {(dy, dx): at(dy, dx).clamp_min(_LOG_FLOOR).log() for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    gx, gy = (log[0, 1] - log[0, -1]) / 2, (log[1, 0] - log[-1, 0]) / 2
    hxx = log[0, 1] - 2 * log[0, 0] + log[0, -1]
    hyy = log[1, 0] - 2 * log[0, 0] + log[-1, 0]
    hxy = (log[1, 1] - log[1, -1] - log[-1, 1] + log[-1, -1]) / 4
    det = hxx * hyy - hxy**2
    peak = (hxx < 0) & (det > 0)
    safe = torch.where(peak, det, torch.ones_like(det))
    # offset = -H^-1 g for H = [[hxx, hxy], [hxy, hyy]]
    step = torch.stack([-(hyy * gx - hxy * gy) / safe, -(hxx * gy - hxy * gx) / safe], dim=-1).clamp(-0.5, 0.5)
    return torch.where(peak.unsqueeze(-1), step, fallback)
