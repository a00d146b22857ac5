"""Causal running median of keypoints: removes the one- and two-frame jumps a per-frame network makes.

A network that reads each frame alone sometimes puts a joint on a wrong limb or object for a frame or two,
then back. The One Euro filter cannot remove such a jump: its cutoff rises with speed, so a sudden jump passes
almost whole (that is what lets it follow fast real motion). The median of the last `window` samples ignores
any jump shorter than half the window, at the price of about half a window of lag, and leaves steady motion
as it is. It runs element-wise, before the One Euro filter; NaN samples (joint not found) are left out.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class RunningMedian:
    """Element-wise median of the last `window` same-shaped samples; window 1 passes samples through."""

    def __init__(self, window: int = 5) -> None:
        if window < 1:
            raise ValueError(f"median window must be at least 1 frame, got {window}")
        self.window = window
        self._samples: deque[np.ndarray] = deque(maxlen=window)

    def reset(self) -> None:
        """Forget the past (after a cut or a lost pose)."""
        self._samples.clear()

    def __call__(self, sample: np.ndarray) -> np.ndarray:
        sample = np.asarray(sample, dtype=float)
        if self._samples and self._samples[0].shape != sample.shape:
            self.reset()
        self._samples.append(sample)
        if len(self._samples) == 1:
            return sample
        stacked = np.stack(self._samples)
        with np.errstate(all="ignore"):
            seen = np.isfinite(stacked).any(axis=0)
            median = np.nanmedian(np.where(seen, stacked, 0.0), axis=0)
        return np.where(np.isfinite(sample) & seen, median, np.nan)
