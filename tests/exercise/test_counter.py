"""The rep counter on synthetic primary-angle signals with known counts."""

from __future__ import annotations

import numpy as np
import pytest

from pose_lab.errors import PoseLabError
from pose_lab.exercise.counter import PHASES, RepCounter

FPS = 30.0


def rep(top: float, bottom: float, seconds: float, hold: float = 0.0) -> np.ndarray:
    """One cycle top -> bottom -> top as a raised cosine, with an optional hold at the bottom."""
    half = int(seconds * FPS / 2)
    down = bottom + (top - bottom) * (1 + np.cos(np.linspace(0, np.pi, half))) / 2
    return np.concatenate([down, np.full(int(hold * FPS), bottom), down[::-1]])


def rest(value: float, seconds: float) -> np.ndarray:
    return np.full(int(seconds * FPS), value)


def run(counter: RepCounter, angles: np.ndarray, gate: np.ndarray | None = None) -> list[str]:
    gate = np.ones(len(angles), bool) if gate is None else gate
    phases = [counter.update(i, i / FPS, float(a), bool(g)).phase for i, (a, g) in enumerate(zip(angles, gate))]
    counter.finish()
    return phases


def squats(n: int, top: float = 175, bottom: float = 70, seconds: float = 2.0, pause: float = 0.5) -> list:
    return [rest(top, 1.0)] + [part for _ in range(n) for part in (rep(top, bottom, seconds), rest(top, pause))]


def test_clean_reps_with_frames_range_and_timing() -> None:
    counter = RepCounter()
    signal = np.concatenate(squats(5))
    phases = run(counter, signal)
    assert counter.count == 5
    assert set(phases) <= set(PHASES) and {"top", "down", "up"} <= set(phases)
    for r in counter.reps:
        assert r.start < r.bottom < r.end
        assert r.range_of_motion == pytest.approx(105, abs=1)
        assert r.bottom_angle == pytest.approx(70, abs=1) and r.top_angle == pytest.approx(175, abs=1)
        assert 1.2 < r.duration < 2.1
    assert [r.number for r in counter.reps] == [1, 2, 3, 4, 5]


def test_update_reports_each_rep_at_the_frame_it_completes() -> None:
    counter = RepCounter()
    counts, completed = [], []
    for i, a in enumerate(np.concatenate(squats(2))):
        step = counter.update(i, i / FPS, float(a))
        counts.append(step.count)
        completed.append(step.completed)
    done = [i for i, c in enumerate(completed) if c is not None]
    assert len(done) == 2
    assert counts[done[0] - 1] == 0 and counts[done[0]] == 1
    assert completed[done[1]].end == done[1]


def test_noise() -> None:
    rng = np.random.default_rng(0)
    signal = np.concatenate(squats(6)) + rng.normal(0, 3, size=len(np.concatenate(squats(6))))
    counter = RepCounter()
    run(counter, signal)
    assert counter.count == 6


def test_pauses_and_long_holds_at_the_bottom() -> None:
    signal = np.concatenate([rest(175, 1), rep(175, 70, 2), rest(175, 4), rep(175, 70, 2, hold=10), rest(175, 1),
                             rep(175, 70, 2, hold=3), rest(175, 1)])
    counter = RepCounter(max_duration=8.0)
    run(counter, signal)
    assert counter.count == 3
    assert counter.reps[1].duration > 10


def test_partial_reps_at_start_and_end_are_not_counted() -> None:
    full = rep(175, 70, 2)
    starts_at_bottom = np.concatenate([full[len(full) // 2 :], rest(175, 0.5), full, rest(175, 0.5)])
    starts_mid_descent = np.concatenate([full[len(full) // 5 :], rest(175, 0.5), full, rest(175, 0.5)])
    ends_at_bottom = np.concatenate([rest(175, 1), full, rest(175, 0.5), full[: len(full) // 2], rest(70, 1)])
    ends_mid_ascent = np.concatenate([rest(175, 1), full, rest(175, 0.5), full[: int(len(full) * 0.7)]])
    for signal in (starts_at_bottom, starts_mid_descent, ends_at_bottom, ends_mid_ascent):
        counter = RepCounter()
        run(counter, signal)
        assert counter.count == 1


def test_different_speeds_and_amplitudes() -> None:
    signal = np.concatenate([rest(170, 1), rep(170, 70, 1.0), rep(170, 70, 4.0), rest(170, 0.5),
                             rep(170, 110, 1.5), rep(170, 100, 2.5), rep(165, 60, 0.8), rest(165, 1)])
    counter = RepCounter()
    run(counter, signal)
    assert counter.count == 5


def test_shallow_looking_view() -> None:
    rng = np.random.default_rng(3)
    signal = np.concatenate(squats(4, top=160, bottom=120))
    counter = RepCounter()
    run(counter, signal + rng.normal(0, 1.5, len(signal)))
    assert counter.count == 4
    assert counter.reps[0].range_of_motion == pytest.approx(40, abs=10)  # extremes of unsmoothed noise


def test_foot_replant_dip_and_small_wiggles_are_not_reps() -> None:
    replant = rep(175, 145, 0.35)  # one knee bends ~30 deg for a third of a second
    wiggle = rep(175, 140, 1.5)  # after deep reps, a 35 deg bend is under 40% of the person's range
    signal = np.concatenate([rest(175, 2), replant, rest(175, 2), *squats(3), wiggle, rest(175, 1)])
    counter = RepCounter()
    run(counter, signal)
    assert counter.count == 3
    assert any("too short" in why for _, why in counter.rejected)
    assert counter.threshold() == pytest.approx(0.4 * 105, abs=1)


def test_gestures_failing_the_posture_gate_are_not_reps() -> None:
    gestures = np.concatenate([rest(160, 1), *[rep(160, 60, 1.2) for _ in range(4)]])
    pushups = np.concatenate(squats(3, top=170, bottom=80))
    signal = np.concatenate([gestures, pushups])
    gate = np.concatenate([np.zeros(len(gestures), bool), np.ones(len(pushups), bool)])
    counter = RepCounter()
    phases = run(counter, signal, gate)
    assert counter.count == 3 and all(r.start >= len(gestures) for r in counter.reps)
    assert set(phases[: len(gestures)]) == {"unknown"}  # outside the posture there is no rest position


def test_a_garbled_stretch_outside_the_posture_sets_no_rest_level() -> None:
    """A blurred intro gives wild angles, higher than the real rest: were they the rest level, no rep would
    come back far enough to complete."""
    garbled = np.concatenate([np.random.default_rng(0).uniform(60, 178, int(1.5 * FPS)), rest(178, 0.5)])
    pushups = np.concatenate(squats(4, top=150, bottom=90))
    gate = np.concatenate([np.zeros(len(garbled), bool), np.ones(len(pushups), bool)])
    counter = RepCounter()
    run(counter, np.concatenate([garbled, pushups]), gate)
    assert counter.count == 4


def test_an_outlier_where_the_rep_leaves_rest_sets_neither_its_top_nor_its_return_target() -> None:
    """A one-frame spike (a keypoint glitch) right where the descent starts: the rep's top is the level the
    angle held at rest, so the spike inflates neither the range of motion nor the return the rep must make."""
    settling = np.linspace(168, 174, int(FPS))
    down, up = np.linspace(174, 90, int(FPS)), np.linspace(90, 170, int(FPS))
    signal = np.concatenate([settling, [200.0], down[1:], up, rest(170, 1.0)])
    counter = RepCounter()
    run(counter, signal)
    assert counter.count == 1
    assert counter.reps[0].top_angle == pytest.approx(174, abs=1)
    assert counter.reps[0].range_of_motion == pytest.approx(84, abs=2)


def test_both_directions() -> None:
    jacks = np.concatenate([rest(15, 1)] + [-rep(-15, -165, 0.7) for _ in range(6)] + [rest(15, 1)])
    extend_first = RepCounter(direction="extend_first", min_duration=0.25)
    run(extend_first, jacks)
    assert extend_first.count == 6
    assert extend_first.reps[0].top_angle == pytest.approx(15, abs=1)
    assert extend_first.reps[0].bottom_angle == pytest.approx(165, abs=1)
    # The same signal read as flex-first starts "mid-rep" at the low rest: one cycle fewer, never more.
    flex_first = RepCounter(direction="flex_first", min_duration=0.25)
    run(flex_first, jacks)
    assert flex_first.count <= 5


def test_reset_and_long_gaps_drop_the_rep_in_progress() -> None:
    full = rep(175, 70, 2)
    counter = RepCounter()
    signal = np.concatenate([rest(175, 1), full, rest(175, 1), full, rest(175, 1)])
    cut_at = int(FPS * 5.0)  # in the middle of the second rep (frames 120-180)
    for i, a in enumerate(signal):
        if i == cut_at:
            counter.reset()
        counter.update(i, i / FPS, float(a))
    assert counter.finish() and counter.count == 1

    gap = signal.copy()
    gap[cut_at : cut_at + 30] = np.nan  # pose lost for a second
    counter = RepCounter(max_gap=0.5)
    run(counter, gap)
    assert counter.count == 1


def test_slow_drift_is_not_a_rep() -> None:
    drift = np.concatenate([rest(175, 1), np.linspace(175, 120, int(12 * FPS)), np.linspace(120, 175, int(12 * FPS))])
    counter = RepCounter(max_duration=8.0)
    run(counter, drift)
    assert counter.count == 0


@pytest.mark.parametrize("kwargs", [{"direction": "sideways"}, {"min_duration": 5, "max_duration": 2},
                                    {"return_fraction": 1.5}, {"min_range": 0}])
def test_bad_settings_are_user_errors(kwargs: dict) -> None:
    with pytest.raises(PoseLabError):
        RepCounter(**kwargs)
