"""Joint angles and torso lean from 2D keypoints, and the body side that faces the camera.

Angles are in degrees. A joint angle is the inner angle at the middle joint of three (0 = folded shut,
180 = straight). Per-side names are ``left_knee``, ``right_elbow``, ...; the side-free names (``knee``,
``hip``, ``elbow``, ``shoulder``) take the side that faces the camera, falling back to the other side when
the facing side's angle is not measurable. A lean is the angle of a line between two joint midpoints from
the image's upward vertical: 0 upright, 90 horizontal (a plank), 180 upside down. ``torso_lean`` takes the
mid-hip -> mid-shoulder line, ``body_lean`` the mid-ankle -> mid-shoulder line: during a push-up the body
pivots about the feet, so its lean moves with the shoulders' height whether or not the arms are seen.

An angle is NaN when one of its joints is below the visibility threshold or a segment has (almost) zero
length: a number measured on a guessed joint is worse than no number. Joint indices come from
:mod:`pose_lab.skeleton` by name.
"""

from __future__ import annotations

import numpy as np

from pose_lab import skeleton

SIDES: tuple[str, str] = ("left", "right")

# Three joints per angle, the angle being measured at the middle one; the same triple on both sides.
ANGLE_JOINTS: dict[str, tuple[str, str, str]] = {
    "knee": ("hip", "knee", "ankle"),
    "hip": ("shoulder", "hip", "knee"),
    "elbow": ("shoulder", "elbow", "wrist"),
    "shoulder": ("hip", "shoulder", "elbow"),  # upper arm vs torso: abduction from the front, flexion from the side
}
# A lean's line, from its lower joint to its upper one.
LEAN_JOINTS: dict[str, tuple[str, str]] = {
    "torso_lean": ("hip", "shoulder"),
    "body_lean": ("ankle", "shoulder"),
}
ANGLE_NAMES: tuple[str, ...] = (
    tuple(f"{side}_{joint}" for joint in ANGLE_JOINTS for side in SIDES) + tuple(ANGLE_JOINTS) + tuple(LEAN_JOINTS)
)

# Segments shorter than this (pixels) have no direction.
_MIN_SEGMENT = 1e-6

_SIDE_JOINTS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")


def joint_angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle ABC at ``b`` in degrees, [0, 180]; points are (..., 2), the result (...). NaN for a ~zero segment."""
    ba = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    bc = np.asarray(c, dtype=float) - np.asarray(b, dtype=float)
    len_ba = np.linalg.norm(ba, axis=-1)
    len_bc = np.linalg.norm(bc, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.sum(ba * bc, axis=-1) / (len_ba * len_bc)
    angle = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    return np.where((len_ba > _MIN_SEGMENT) & (len_bc > _MIN_SEGMENT), angle, np.nan)


def _trusted(keypoints: np.ndarray, visibility: np.ndarray, name: str, min_visibility: float) -> np.ndarray:
    """(..., 2) position of a joint, NaN where its visibility is below the threshold."""
    index = skeleton.joint_index(name)
    point = np.asarray(keypoints, dtype=float)[..., index, :]
    seen = np.asarray(visibility, dtype=float)[..., index] >= min_visibility
    return np.where(seen[..., None], point, np.nan)


def side_angle(keypoints: np.ndarray, visibility: np.ndarray, name: str, min_visibility: float) -> np.ndarray:
    """One per-side angle such as ``left_knee`` over (..., K, 2) keypoints and (..., K) visibility."""
    side, _, joint = name.partition("_")
    if side not in SIDES or joint not in ANGLE_JOINTS:
        raise KeyError(f"unknown per-side angle {name!r}; known: {', '.join(ANGLE_NAMES[: 2 * len(ANGLE_JOINTS)])}")
    a, b, c = (_trusted(keypoints, visibility, f"{side}_{part}", min_visibility) for part in ANGLE_JOINTS[joint])
    return joint_angle(a, b, c)


def midpoint(keypoints: np.ndarray, visibility: np.ndarray, joint: str, min_visibility: float) -> np.ndarray:
    """(..., 2) mean of the trusted left and right ``joint`` (e.g. "hip"); one side alone when only it is trusted."""
    both = np.stack([_trusted(keypoints, visibility, f"{side}_{joint}", min_visibility) for side in SIDES])
    trusted = np.isfinite(both)
    count = trusted.sum(axis=0)
    total = np.where(trusted, both, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def lean(keypoints: np.ndarray, visibility: np.ndarray, name: str, min_visibility: float) -> np.ndarray:
    """Degrees between a lean's line (:data:`LEAN_JOINTS`) and the image's upward vertical (0 upright, 90 flat)."""
    lower, upper = (midpoint(keypoints, visibility, joint, min_visibility) for joint in LEAN_JOINTS[name])
    up = lower + np.array([0.0, -1.0])  # image y grows downwards
    return joint_angle(up, lower, upper)


def facing_side(visibility: np.ndarray, previous: str | None = None, margin: float = 0.0) -> str:
    """'left' or 'right': the side whose limb joints are more visible, i.e. nearer the camera.

    With ``previous`` the answer only changes when the other side is more visible by more than ``margin``,
    so that a frontal view does not flip sides (and the side-chosen angles jump) from frame to frame.
    """
    visibility = np.nan_to_num(np.asarray(visibility, dtype=float), nan=0.0)
    score = {
        side: float(np.mean([visibility[skeleton.joint_index(f"{side}_{j}")] for j in _SIDE_JOINTS]))
        for side in SIDES
    }
    if previous in SIDES:
        other = SIDES[1 - SIDES.index(previous)]
        return other if score[other] > score[previous] + margin else previous
    return "left" if score["left"] >= score["right"] else "right"


def frame_angles(
    keypoints: np.ndarray, visibility: np.ndarray, side: str, min_visibility: float
) -> dict[str, float]:
    """Every angle of :data:`ANGLE_NAMES` for one frame's (K, 2) keypoints; side-free names use ``side``."""
    angles = {
        f"{s}_{joint}": float(side_angle(keypoints, visibility, f"{s}_{joint}", min_visibility))
        for joint in ANGLE_JOINTS
        for s in SIDES
    }
    other = SIDES[1 - SIDES.index(side)]
    for joint in ANGLE_JOINTS:
        chosen = angles[f"{side}_{joint}"]
        angles[joint] = chosen if np.isfinite(chosen) else angles[f"{other}_{joint}"]
    for name in LEAN_JOINTS:
        angles[name] = float(lean(keypoints, visibility, name, min_visibility))
    return angles
