"""The running median before the One Euro filter: short jumps removed, steady motion kept."""

from __future__ import annotations

import numpy as np
import pytest

from pose_lab.exercise.median import RunningMedian


def _run(window: int, samples: np.ndarray) -> np.ndarray:
    median = RunningMedian(window)
    return np.stack([median(sample) for sample in samples])


def test_a_two_frame_jump_is_removed_and_a_real_step_kept_after_half_a_window() -> None:
    signal = np.zeros((40, 1))
    signal[10:12] = 100.0  # a joint put on the wrong limb for two frames
    signal[25:] = 50.0  # the joint really moves
    out = _run(5, signal)
    assert np.abs(out[:25]).max() == 0.0
    assert (out[25:27] == 0.0).all() and (out[27:] == 50.0).all()


def test_a_ramp_lags_by_half_a_window() -> None:
    ramp = np.arange(30, dtype=float)[:, None]
    out = _run(5, ramp)
    np.testing.assert_allclose(out[4:, 0], ramp[2:-2, 0])


def test_missing_samples_are_left_out_and_give_nan() -> None:
    samples = np.array([[1.0, 1.0], [2.0, np.nan], [3.0, 3.0], [np.nan, 4.0]])
    out = _run(3, samples)
    assert out[1, 0] == 1.5 and np.isnan(out[1, 1])
    assert out[2, 1] == 2.0 and np.isnan(out[3, 0])


def test_window_one_passes_through_and_reset_forgets() -> None:
    samples = np.random.default_rng(0).normal(size=(10, 3))
    np.testing.assert_array_equal(_run(1, samples), samples)
    median = RunningMedian(5)
    for sample in samples:
        median(sample)
    median.reset()
    np.testing.assert_array_equal(median(np.full(3, 7.0)), np.full(3, 7.0))
    with pytest.raises(ValueError, match="at least 1"):
        RunningMedian(0)
