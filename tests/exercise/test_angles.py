"""Angle maths on known triangles, torso lean, facing side and the per-frame angle dict."""

from __future__ import annotations

import numpy as np
import pytest

from pose_lab import skeleton
from pose_lab.exercise.angles import (
    ANGLE_NAMES,
    facing_side,
    frame_angles,
    joint_angle,
    lean,
)


def test_joint_angle_on_known_triangles() -> None:
    assert joint_angle([1, 0], [0, 0], [0, 1]) == pytest.approx(90.0)
    assert joint_angle([-2, 0], [0, 0], [3, 0]) == pytest.approx(180.0)
    assert joint_angle([1, 0], [0, 0], [5, 0]) == pytest.approx(0.0)
    # equilateral triangle: 60 degrees at every corner
    assert joint_angle([0, 0], [1, 0], [0.5, np.sqrt(3) / 2]) == pytest.approx(60.0)
    assert joint_angle([1, 1], [0, 0], [1, 0]) == pytest.approx(45.0)


def test_joint_angle_is_vectorised_and_nan_for_zero_segments() -> None:
    rng = np.random.default_rng(0)
    a, b, c = (rng.normal(size=(5, 3, 2)) for _ in range(3))
    out = joint_angle(a, b, c)
    assert out.shape == (5, 3)
    assert out[2, 1] == pytest.approx(joint_angle(a[2, 1], b[2, 1], c[2, 1]))
    assert np.isnan(joint_angle([0, 0], [0, 0], [1, 0]))
    assert np.isnan(joint_angle([1, 0], [0, 0], [np.nan, 0]))


def _pose(points: dict[str, tuple[float, float]], visible: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    keypoints = np.zeros((skeleton.NUM_JOINTS, 2))
    for name, xy in points.items():
        keypoints[skeleton.joint_index(name)] = xy
    return keypoints, np.full(skeleton.NUM_JOINTS, visible)


def test_torso_lean_from_vertical() -> None:
    upright, vis = _pose({"left_hip": (0, 100), "right_hip": (10, 100),
                          "left_shoulder": (0, 0), "right_shoulder": (10, 0)})
    assert lean(upright, vis, "torso_lean", 0.5) == pytest.approx(0.0)
    flat, vis = _pose({"left_hip": (0, 100), "right_hip": (0, 100),
                       "left_shoulder": (100, 100), "right_shoulder": (100, 100)})
    assert lean(flat, vis, "torso_lean", 0.5) == pytest.approx(90.0)
    leaning, vis = _pose({"left_hip": (0, 100), "right_hip": (0, 100),
                          "left_shoulder": (-50, 50), "right_shoulder": (-50, 50)})
    assert lean(leaning, vis, "torso_lean", 0.5) == pytest.approx(45.0)


def test_body_lean_follows_the_shoulders_height_over_the_feet() -> None:
    """A push-up seen from the side: feet at the origin, shoulders 1.4 m along the body. Straight arms lift the
    shoulders 0.6 m (the body 25 degrees off the floor), bent arms 0.1 m; hips sagging or piked do not count."""
    def plank(shoulder_height: float, hip_offset: float) -> tuple[np.ndarray, np.ndarray]:
        reach = np.sqrt(1.4**2 - shoulder_height**2)
        shoulder, hip = (-reach, -shoulder_height), (-reach / 2, -shoulder_height / 2 + hip_offset)
        return _pose({f"{side}_{joint}": xy for side in ("left", "right")
                      for joint, xy in (("ankle", (0.0, 0.0)), ("shoulder", shoulder), ("hip", hip))})
    top = lean(*plank(0.6, 0.0), "body_lean", 0.5)
    assert top == pytest.approx(90.0 - np.degrees(np.arcsin(0.6 / 1.4)))
    assert lean(*plank(0.6, 0.2), "body_lean", 0.5) == pytest.approx(top)
    assert lean(*plank(0.1, 0.0), "body_lean", 0.5) - top > 20.0


def test_torso_lean_uses_the_visible_side_alone() -> None:
    keypoints, vis = _pose({"left_hip": (0, 100), "left_shoulder": (0, 0),
                            "right_hip": (500, 100), "right_shoulder": (900, 100)})
    vis[[skeleton.joint_index("right_hip"), skeleton.joint_index("right_shoulder")]] = 0.1
    assert lean(keypoints, vis, "torso_lean", 0.5) == pytest.approx(0.0)


def test_facing_side_follows_visibility_with_hysteresis() -> None:
    vis = np.full(skeleton.NUM_JOINTS, 0.5)
    for name in ("right_shoulder", "right_elbow", "right_wrist", "right_hip", "right_knee", "right_ankle"):
        vis[skeleton.joint_index(name)] = 0.9
    assert facing_side(vis) == "right"
    assert facing_side(vis, previous="left", margin=0.5) == "left"  # 0.4 more visible is within the margin
    assert facing_side(vis, previous="left", margin=0.1) == "right"


def test_frame_angles_names_sides_and_visibility() -> None:
    keypoints, vis = _pose({
        "left_hip": (0, 0), "left_knee": (0, 100), "left_ankle": (100, 100),  # left knee at 90
        "right_hip": (0, 0), "right_knee": (0, 100), "right_ankle": (0, 200),  # right knee straight
        "left_shoulder": (0, -100), "right_shoulder": (0, -100),
    })
    angles = frame_angles(keypoints, vis, "left", 0.5)
    assert set(angles) == set(ANGLE_NAMES)
    assert angles["left_knee"] == pytest.approx(90.0)
    assert angles["right_knee"] == pytest.approx(180.0)
    assert angles["knee"] == pytest.approx(90.0)
    assert frame_angles(keypoints, vis, "right", 0.5)["knee"] == pytest.approx(180.0)
    vis[skeleton.joint_index("left_ankle")] = 0.2
    hidden = frame_angles(keypoints, vis, "left", 0.5)
    assert np.isnan(hidden["left_knee"])
    assert hidden["knee"] == pytest.approx(180.0)  # falls back to the side that can be measured
    assert np.isnan(frame_angles(np.full_like(keypoints, np.nan), vis, "left", 0.5)["torso_lean"])
