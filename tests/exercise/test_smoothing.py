"""The One Euro filter on a step, on noise, with gaps, variable frame rate and reset."""

from __future__ import annotations

import numpy as np
import pytest

from pose_lab.exercise.smoothing import OneEuroFilter


def _run(filt: OneEuroFilter, samples: np.ndarray, times: np.ndarray) -> np.ndarray:
    return np.array([filt(sample, time) for sample, time in zip(samples, times)])


def test_step_is_followed_without_overshoot_and_beta_cuts_the_lag() -> None:
    times = np.arange(60) / 30.0
    step = np.where(np.arange(60) < 10, 0.0, 100.0)
    slow = _run(OneEuroFilter(min_cutoff=1.0, beta=0.0), step, times)
    fast = _run(OneEuroFilter(min_cutoff=1.0, beta=0.1), step, times)
    assert np.all(np.diff(slow) >= 0) and slow.max() <= 100.0
    assert 0 < slow[11] < 50  # smoothed, not passed through
    assert slow[-1] > 95  # but it gets there
    assert fast[12] > slow[12] + 20  # speed raises the cutoff: less lag on fast moves


def test_noise_on_a_still_joint_is_reduced() -> None:
    rng = np.random.default_rng(1)
    samples = 200.0 + rng.normal(0, 3.0, size=(300, 14, 2))
    out = _run(OneEuroFilter(min_cutoff=1.0, beta=0.01), samples, np.arange(300) / 30.0)
    assert out.shape == samples.shape
    assert out[30:].std() < 0.4 * samples[30:].std()
    assert abs(out[30:].mean() - 200.0) < 0.5


def test_nan_elements_stay_nan_without_poisoning_the_rest() -> None:
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    filt(np.array([10.0, 20.0]), 0.0)
    out = filt(np.array([np.nan, 20.0]), 1 / 30)
    assert np.isnan(out[0]) and out[1] == pytest.approx(20.0)
    back = filt(np.array([10.0, 20.0]), 2 / 30)
    assert back[0] == pytest.approx(10.0)  # state held through the gap


def test_a_long_gap_relocks_onto_the_new_value() -> None:
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    filt(np.array([0.0]), 0.0)
    assert filt(np.array([100.0]), 1 / 30)[0] < 30
    filt.reset()
    filt(np.array([0.0]), 0.0)
    assert filt(np.array([100.0]), 10.0)[0] > 95  # seconds later: the old position is irrelevant


def test_variable_frame_rate_and_reset() -> None:
    ramp_times = np.sort(np.random.default_rng(2).uniform(0, 2, 80))
    out = _run(OneEuroFilter(min_cutoff=2.0, beta=0.0), 50 * ramp_times, ramp_times)
    assert np.all(np.diff(out) >= -1e-9)  # irregular steps, still a monotone estimate of a ramp
    filt = OneEuroFilter()
    filt(np.array([5.0]), 0.0)
    filt.reset()
    assert filt(np.array([-7.0]), 0.1)[0] == -7.0
    with pytest.raises(ValueError, match="must not decrease"):
        filt(np.array([1.0]), 0.05)
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0.0)
