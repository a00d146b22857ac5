"""Posture metrics and rules on hand-built keypoint sequences."""

from __future__ import annotations

import numpy as np
import pytest

from pose_lab import skeleton
from pose_lab.errors import PoseLabError
from pose_lab.exercise.angles import ANGLE_NAMES, frame_angles
from pose_lab.exercise.feedback import (
    METRICS,
    FeedbackRule,
    RepWindow,
    feedback,
    rules_from_config,
)
from pose_lab.exercise.records import Rep


def frame(points: dict[str, tuple[float, float]]) -> np.ndarray:
    keypoints = np.full((skeleton.NUM_JOINTS, 2), np.nan)
    for name, xy in points.items():
        keypoints[skeleton.joint_index(name)] = xy
    return keypoints


def both(joint: str, xy: tuple[float, float], spread: float = 0.0) -> dict[str, tuple[float, float]]:
    """The left and right joint, ``spread`` pixels apart horizontally (0: a side view)."""
    return {f"left_{joint}": (xy[0] + spread / 2, xy[1]), f"right_{joint}": (xy[0] - spread / 2, xy[1])}


def window(frames: list[np.ndarray], bottom: int, primary: str = "knee") -> RepWindow:
    keypoints = np.stack(frames)
    visibility = np.where(np.isfinite(keypoints).all(-1), 0.9, 0.0)
    angles = [frame_angles(k, v, "left", 0.5) for k, v in zip(keypoints, visibility)]
    rep = Rep(number=1, start=0, bottom=bottom, end=len(frames) - 1, start_time=0.0, end_time=1.0,
              range_of_motion=90.0, top_angle=170.0, bottom_angle=80.0)
    return RepWindow(rep, np.arange(len(frames)), keypoints, visibility,
                     {name: np.array([a[name] for a in angles]) for name in ANGLE_NAMES}, primary, 0.5)


def plank(hip_offset: float) -> np.ndarray:
    """Side view of a plank, shoulders left, ankles right; the hips ``hip_offset`` px below the straight line."""
    return frame({**both("shoulder", (0, 100)), **both("hip", (100, 100 + hip_offset)), **both("knee", (150, 100)),
                  **both("ankle", (200, 100)), **both("elbow", (0, 150)), **both("wrist", (0, 200))})


def test_hip_sag_and_pike_from_the_body_line() -> None:
    sagging = window([plank(0), plank(30), plank(0)], bottom=1)
    assert METRICS["hip_sag"](sagging) == pytest.approx(2 * np.degrees(np.arctan(30 / 100)), abs=0.5)
    assert METRICS["hip_pike"](sagging) == pytest.approx(0.0, abs=1e-6)
    piking = window([plank(0), plank(-40), plank(0)], bottom=1)
    assert METRICS["hip_pike"](piking) > 40 and METRICS["hip_sag"](piking) == pytest.approx(0.0, abs=1e-6)


def squat_frame(knee_angle: float, lean: float = 10.0, knee_spread: float = 0.0, ankle_spread: float = 0.0,
                shoulder_spread: float = 0.0, left_knee_extra: float = 0.0) -> np.ndarray:
    """Hip, knee, ankle chain of fixed 100 px segments over an ankle at (300, 500)."""
    phi = np.radians((180 - knee_angle) / 2)
    ankle = np.array([300.0, 500.0])
    knee = ankle + 100 * np.array([np.sin(phi), -np.cos(phi)])
    hip = knee + 100 * np.array([-np.sin(phi), -np.cos(phi)])
    shoulder = hip + 120 * np.array([np.sin(np.radians(lean)), -np.cos(np.radians(lean))])
    points = {**both("ankle", tuple(ankle), ankle_spread), **both("knee", tuple(knee), knee_spread),
              **both("hip", tuple(hip), ankle_spread), **both("shoulder", tuple(shoulder), shoulder_spread),
              **both("elbow", tuple(shoulder + [60, 0])), **both("wrist", tuple(shoulder + [120, 0]))}
    keypoints = frame(points)
    keypoints[skeleton.joint_index("left_knee"), 0] += left_knee_extra
    return keypoints


def test_squat_depth_lean_and_hip_drop() -> None:
    rep = window([squat_frame(175, 5), squat_frame(120, 30), squat_frame(80, 45), squat_frame(175, 5)], bottom=2)
    assert METRICS["bottom_knee_angle"](rep) == pytest.approx(80, abs=0.5)
    assert METRICS["turning_angle"](rep) == pytest.approx(80, abs=0.5)
    assert METRICS["max_torso_lean"](rep) == pytest.approx(45, abs=0.5)
    standing_height = 200 * np.cos(np.radians(2.5))
    assert METRICS["hip_drop"](rep) == pytest.approx((standing_height - 200 * np.cos(np.radians(50))) / 200, abs=0.01)
    assert np.isnan(METRICS["knee_valgus"](rep))  # a side view says nothing about knees caving in


def test_hip_drop_shrugs_off_a_misplaced_hip_at_the_start() -> None:
    """Medians over the frames near rest and near the turning point: one frame's hip put on the thigh (as a
    weak network does) leaves the drop as it was, where the start frame alone would halve it."""
    knees = [175] * 5 + [150, 120, 100] + [80] * 5 + [100, 120, 150] + [175] * 3
    clean = window([squat_frame(angle) for angle in knees], bottom=knees.index(80))
    frames = [squat_frame(angle) for angle in knees]
    for joint in ("left_hip", "right_hip"):
        frames[0][skeleton.joint_index(joint), 1] += 60.0
    glitched = window(frames, bottom=knees.index(80))
    assert METRICS["hip_drop"](clean) > 0.3
    assert METRICS["hip_drop"](glitched) == pytest.approx(METRICS["hip_drop"](clean), abs=0.01)


def test_knee_valgus_from_the_front_only() -> None:
    front = {"shoulder_spread": 150, "ankle_spread": 80}
    caving = window([squat_frame(175, **front, knee_spread=80), squat_frame(90, **front, knee_spread=40)], bottom=1)
    tracking = window([squat_frame(175, **front, knee_spread=80), squat_frame(90, **front, knee_spread=100)], bottom=1)
    assert METRICS["knee_valgus"](caving) == pytest.approx(0.5)
    assert METRICS["knee_valgus"](tracking) == pytest.approx(1.25)
    rule = FeedbackRule("knee_valgus", "knees in: {value:.2f}", minimum=0.9)
    assert feedback([rule], caving) == ["knees in: 0.50"] and feedback([rule], tracking) == []


def test_knee_asymmetry_and_upper_arm_swing() -> None:
    uneven = window([squat_frame(175), squat_frame(90, left_knee_extra=40)], bottom=1)
    assert METRICS["knee_asymmetry"](uneven) > 15
    assert METRICS["knee_asymmetry"](window([squat_frame(175), squat_frame(90)], bottom=1)) == pytest.approx(0)

    def curl_frame(elbow_forward: float) -> np.ndarray:
        elbow = (100 + elbow_forward, 200)
        return frame({**both("shoulder", (100, 100)), **both("hip", (100, 300)), **both("elbow", elbow),
                      **both("wrist", (elbow[0] + 50, 150))})

    swinging = window([curl_frame(0), curl_frame(60), curl_frame(0)], bottom=1, primary="elbow")
    strict = window([curl_frame(0), curl_frame(5), curl_frame(0)], bottom=1, primary="elbow")
    assert METRICS["upper_arm_swing"](swinging) == pytest.approx(np.degrees(np.arctan(60 / 100)), abs=0.5)
    assert METRICS["upper_arm_swing"](strict) < 5


def test_rules_from_config_speak_outside_their_bounds() -> None:
    rules = rules_from_config([
        {"metric": "bottom_knee_angle", "max": 100, "message": "deeper: {value:.0f} > {max:.0f}"},
        {"metric": "max_torso_lean", "min": 0, "max": 60, "message": "lean {value:.0f}"},
    ])
    shallow = window([squat_frame(175), squat_frame(120), squat_frame(175)], bottom=1)
    deep = window([squat_frame(175), squat_frame(80, lean=70), squat_frame(175)], bottom=1)
    assert feedback(rules, shallow) == ["deeper: 120 > 100"]
    assert feedback(rules, deep) == ["lean 70"]


def test_unmeasurable_metrics_stay_silent() -> None:
    hidden = squat_frame(80)
    hidden[skeleton.joint_index("left_ankle")] = np.nan
    hidden[skeleton.joint_index("right_ankle")] = np.nan
    rule = FeedbackRule("bottom_knee_angle", "deeper", maximum=60)
    assert feedback([rule], window([squat_frame(175), hidden, squat_frame(175)], bottom=1)) == []


def test_config_errors_name_the_fix() -> None:
    with pytest.raises(PoseLabError, match="known metrics: .*hip_sag"):
        rules_from_config([{"metric": "knee_wobble", "max": 3, "message": "x"}])
    with pytest.raises(PoseLabError, match="min or a max"):
        rules_from_config([{"metric": "hip_sag", "message": "x"}])
    with pytest.raises(PoseLabError, match="unknown keys"):
        rules_from_config([{"metric": "hip_sag", "max": 3, "mesage": "x"}])
    with pytest.raises(PoseLabError, match="cannot be formatted"):
        rules_from_config([{"metric": "hip_sag", "max": 3, "message": "{angle}"}])
    with pytest.raises(PoseLabError, match="cannot be formatted"):
        rules_from_config([{"metric": "hip_sag", "max": 3, "message": "{min:.0f}"}])  # min is not set
