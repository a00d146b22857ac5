"""One Euro filter: speed-adaptive low-pass smoothing of keypoints (Casiez, Roussel & Vogel, CHI 2012).

A first-order low-pass whose cutoff rises with the signal's speed: ``cutoff = min_cutoff + beta * |dx/dt|``.
Slow motion is smoothed hard (jitter disappears), fast motion passes with little lag. ``d_cutoff`` is the
cutoff of the low-pass applied to the speed estimate itself. The smoothing factor of each step is computed
from the actual time step, so a variable frame rate is handled.

The filter works element-wise on arrays of any fixed shape, e.g. (K, 2) keypoints. A NaN element (a joint
or a whole person not found) gives NaN out and leaves that element's state untouched; when it comes back,
the long time step makes the smoothing factor close to 1, so the estimate re-locks onto the new value
instead of being dragged from where the joint was seconds ago.
"""

from __future__ import annotations

import math

import numpy as np


def _smoothing_factor(cutoff: np.ndarray | float, dt: np.ndarray) -> np.ndarray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=float))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Smooths a stream of same-shaped arrays; call with each sample and its time stamp in seconds."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"One Euro filter needs min_cutoff > 0, d_cutoff > 0, beta >= 0; got "
                             f"min_cutoff={min_cutoff}, d_cutoff={d_cutoff}, beta={beta}")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the past (after a scene cut): the next sample passes through unchanged."""
        self._value: np.ndarray | None = None  # last estimate per element (NaN: never seen)
        self._speed: np.ndarray | None = None  # smoothed derivative per element
        self._time: np.ndarray | None = None  # time stamp of each element's last real sample
        self._last_time: float | None = None

    def __call__(self, sample: np.ndarray, time: float) -> np.ndarray:
        """The smoothed sample (same shape); NaN where ``sample`` is NaN."""
        sample = np.asarray(sample, dtype=float)
        if self._last_time is not None and time < self._last_time:
            raise ValueError(f"time stamps must not decrease: {time} s after {self._last_time} s")
        if self._value is None or self._value.shape != sample.shape:
            self._value = np.full(sample.shape, np.nan)
            self._speed = np.zeros(sample.shape)
            self._time = np.full(sample.shape, np.nan)
        self._last_time = time

        present = np.isfinite(sample)
        first = present & ~np.isfinite(self._value)
        going = present & ~first
        # An equal time stamp (a duplicated frame) gets a tiny step, which keeps the previous estimate.
        dt = np.maximum(time - np.where(going, self._time, time), 1e-6)

        speed = np.where(going, (sample - self._value) / dt, 0.0)
        speed = self._speed + _smoothing_factor(self.d_cutoff, dt) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(speed)
        smoothed = self._value + _smoothing_factor(cutoff, dt) * (sample - self._value)

        self._value = np.where(first, sample, np.where(going, smoothed, self._value))
        self._speed = np.where(going, speed, np.where(first, 0.0, self._speed))
        self._time = np.where(present, time, self._time)
        return np.where(present, self._value, np.nan)
