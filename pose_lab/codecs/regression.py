"""Regression label codec: keypoints in input pixels <-> coordinates normalised to [0, 1] of the input frame.

The regression branch (report §3.1.3) predicts (x, y) per joint with a linear layer; normalising by the
input size keeps its targets O(1) whatever the resolution, so loss weights transfer across input sizes.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor


class RegressionLabel:
    def __init__(self, input_size: int) -> None:
        self.input_size = input_size

    def encode(self, keypoints: np.ndarray) -> np.ndarray:
        """(K,2) input pixels -> (K,2) float32 in [0, 1] for joints inside the frame."""
        return (np.asarray(keypoints, dtype=np.float32) / self.input_size).astype(np.float32)

    def decode(self, coords: Tensor) -> Tensor:
        """(B,K,2) normalised -> (B,K,2) input pixels."""
        return coords * self.input_size
