"""Posture feedback per repetition: named metrics measured on a rep's frames, and rules over them from config.

A rule is ``{metric: NAME, min: X, max: Y, message: "... {value:.0f} ... {max} ..."}`` (``min`` and/or
``max``); it speaks when the metric of a rep falls outside ``[min, max]``. A metric that cannot be measured
on a rep (joints not visible, a side view for a front-view rule) is NaN and its rules stay silent: no
advice is better than advice about a joint that was guessed. The messages are formatted with ``value``,
``min`` and ``max``.

Metrics (:data:`METRICS`), all in degrees unless noted:

- ``bottom_knee_angle`` / ``bottom_elbow_angle``: knee / elbow angle at the rep's turning point (squat and
  lunge depth; push-up depth).
- ``turning_angle``: the primary angle at the turning point (e.g. how high a jumping jack's arms go).
- ``max_torso_lean``: largest torso lean from vertical during the rep.
- ``knee_asymmetry``: |left knee - right knee| at the turning point.
- ``knee_valgus``: knee width / ankle width at the turning point (a ratio; below ~0.9 the knees cave in),
  only from a frontal view (shoulder width at least :data:`FRONTAL_SHOULDER_RATIO` of the torso length).
- ``upper_arm_swing``: range of the shoulder angle (upper arm vs torso) during the rep: the elbow drifting
  forward in a curl.
- ``hip_sag`` / ``hip_pike``: largest bend of the shoulder-hip-ankle line at the hip during the rep, hips
  below the line (sag) or above it (pike), for push-ups and planks.
- ``hip_drop``: how far the hips came down towards the lower ankle between rest and the turning point
  (medians over the rep's frames near each), as a fraction of the leg length (hip-knee-ankle) at rest. A
  squat drops the hips; shifting weight or re-planting a foot bends a knee without doing so. The analysis
  also uses rules as checks that a cycle is the exercise at all (``rep_checks`` in the exercise config).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from pose_lab import skeleton
from pose_lab.errors import PoseLabError
from pose_lab.exercise.angles import joint_angle, midpoint
from pose_lab.exercise.records import Rep

# Seen from the front, the shoulders are about as wide as the torso is long; from the side they overlap.
FRONTAL_SHOULDER_RATIO = 0.5
# hip_drop compares the frames within this fraction of the rep's range from its rest and its turning angle.
_PHASE_FRACTION = 0.25


@dataclass
class RepWindow:
    """The frames of one rep (T frames, K joints), as the analysis saw them."""

    rep: Rep
    indices: np.ndarray  # (T,) frame indices, rep.start .. rep.end
    keypoints: np.ndarray  # (T, K, 2)
    visibility: np.ndarray  # (T, K)
    angles: dict[str, np.ndarray]  # name -> (T,) degrees, the names of pose_lab.exercise.angles.frame_angles
    primary_angle: str
    min_visibility: float

    def at_bottom(self) -> int:
        """Position of the rep's turning point in the window."""
        return int(np.searchsorted(self.indices, self.rep.bottom))

    def angle_at_bottom(self, angle: str) -> float:
        """`angle` (a name of pose_lab.exercise.angles.ANGLE_NAMES) at the rep's turning point."""
        return float(self.angles[angle][self.at_bottom()])

    def joint(self, name: str) -> np.ndarray:
        """(T, 2) positions of a joint, NaN in frames where it is not trusted."""
        index = skeleton.joint_index(name)
        seen = self.visibility[:, index] >= self.min_visibility
        return np.where(seen[:, None], self.keypoints[:, index], np.nan)


def _nanmax(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else float("nan")


def _nanmin(values: np.ndarray) -> float:
    return -_nanmax(-values)


def angle_at_turning_point(angle: str) -> Callable[[RepWindow], float]:
    """The metric: `angle` at the rep's turning point."""
    return lambda window: window.angle_at_bottom(angle)


def turning_angle(window: RepWindow) -> float:
    return window.angle_at_bottom(window.primary_angle)


def max_torso_lean(window: RepWindow) -> float:
    return _nanmax(window.angles["torso_lean"])


def knee_asymmetry(window: RepWindow) -> float:
    return abs(window.angle_at_bottom("left_knee") - window.angle_at_bottom("right_knee"))


def knee_valgus(window: RepWindow) -> float:
    bottom = window.at_bottom()
    at = {name: window.joint(name)[bottom] for name in
          ("left_shoulder", "right_shoulder", "left_knee", "right_knee", "left_ankle", "right_ankle")}
    hips = midpoint(window.keypoints[bottom], window.visibility[bottom], "hip", window.min_visibility)
    shoulders = (at["left_shoulder"] + at["right_shoulder"]) / 2
    torso = np.linalg.norm(shoulders - hips)
    shoulder_width = abs(at["left_shoulder"][0] - at["right_shoulder"][0])
    ankle_width = abs(at["left_ankle"][0] - at["right_ankle"][0])
    if not shoulder_width >= FRONTAL_SHOULDER_RATIO * torso or not ankle_width > 0:
        return float("nan")  # not a frontal view (or joints missing): knee width says nothing
    return float(abs(at["left_knee"][0] - at["right_knee"][0]) / ankle_width)


def upper_arm_swing(window: RepWindow) -> float:
    shoulder = window.angles["shoulder"]
    return _nanmax(shoulder) - _nanmin(shoulder)


def _hip_bend(window: RepWindow) -> np.ndarray:
    """(T,) degrees the body line bends at the hip; positive when the hips sag below the shoulder-ankle line."""
    points = {joint: midpoint(window.keypoints, window.visibility, joint, window.min_visibility)
              for joint in ("shoulder", "hip", "ankle")}
    bend = 180.0 - joint_angle(points["shoulder"], points["hip"], points["ankle"])
    line = points["ankle"] - points["shoulder"]
    along = np.sum((points["hip"] - points["shoulder"]) * line, axis=-1) / np.sum(line * line, axis=-1)
    on_line = points["shoulder"] + along[:, None] * line
    below = np.sign(points["hip"][:, 1] - on_line[:, 1])  # image y grows downwards, towards the floor
    return bend * below


def hip_sag(window: RepWindow) -> float:
    return _nanmax(_hip_bend(window))


def hip_pike(window: RepWindow) -> float:
    return _nanmax(-_hip_bend(window))


def _near(window: RepWindow, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(T,) masks of the rep's frames whose primary angle is within `fraction` of its range of motion from the
    rest angle (before the turning point) and from the turning angle."""
    rep, angle = window.rep, window.angles[window.primary_angle]
    reach = fraction * abs(rep.top_angle - rep.bottom_angle)
    before = np.arange(len(angle)) <= window.at_bottom()
    return before & (np.abs(angle - rep.top_angle) <= reach), np.abs(angle - rep.bottom_angle) <= reach


def hip_drop(window: RepWindow) -> float:
    points = {joint: midpoint(window.keypoints, window.visibility, joint, window.min_visibility)
              for joint in ("hip", "knee", "ankle")}
    # Measured from the lower ankle, the foot on the floor: lifting the other foot is no drop of the hips.
    floor = np.fmax(window.joint("left_ankle")[:, 1], window.joint("right_ankle")[:, 1])  # y grows downwards
    hip_height = floor - points["hip"][:, 1]
    leg = (np.linalg.norm(points["hip"] - points["knee"], axis=-1)
           + np.linalg.norm(points["knee"] - points["ankle"], axis=-1))
    # Medians over the frames near rest and near the turning point, not one frame each: a network's hips
    # and ankles wander by a good part of the drop from frame to frame.
    at_rest, at_turn = _near(window, _PHASE_FRACTION)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN medians: no measure, NaN
        drop = np.nanmedian(hip_height[at_rest]) - np.nanmedian(hip_height[at_turn])
        return float(drop / np.nanmedian(leg[at_rest]))


METRICS: dict[str, Callable[[RepWindow], float]] = {
    "bottom_knee_angle": angle_at_turning_point("knee"),
    "bottom_elbow_angle": angle_at_turning_point("elbow"),
    "turning_angle": turning_angle,
    "max_torso_lean": max_torso_lean,
    "knee_asymmetry": knee_asymmetry,
    "knee_valgus": knee_valgus,
    "upper_arm_swing": upper_arm_swing,
    "hip_sag": hip_sag,
    "hip_pike": hip_pike,
    "hip_drop": hip_drop,
}


@dataclass(frozen=True)
class FeedbackRule:
    """One posture rule: a message when ``metric`` is outside ``[minimum, maximum]``."""

    metric: str
    message: str = ""  # empty: "<metric> {value} outside [min, max]"
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise PoseLabError(f"unknown feedback metric {self.metric!r}; known metrics: {', '.join(METRICS)}")
        if self.minimum is None and self.maximum is None:
            raise PoseLabError(f"feedback rule on {self.metric!r} needs a min or a max")
        if not self.message:
            object.__setattr__(self, "message", f"{self.metric} {{value:.2f}} outside [{{min}}, {{max}}]")
        try:
            self.message.format(value=0.0, min=self.minimum, max=self.maximum)
        except (KeyError, IndexError, ValueError, TypeError) as error:
            raise PoseLabError(f"feedback message {self.message!r} cannot be formatted ({error!r}); "
                               "it may use {value}, {min} and {max}") from None

    def check(self, window: RepWindow) -> str | None:
        """The message if this rep breaks the rule, else None (also when the metric is not measurable)."""
        value = METRICS[self.metric](window)
        if not np.isfinite(value):
            return None
        too_low = self.minimum is not None and value < self.minimum
        too_high = self.maximum is not None and value > self.maximum
        if not (too_low or too_high):
            return None
        return self.message.format(value=value, min=self.minimum, max=self.maximum)


def rules_from_config(entries: Iterable[Mapping]) -> list[FeedbackRule]:
    """Rules from config entries ``{metric, message?, min?, max?}``; PoseLabError on a malformed one."""
    rules = []
    for entry in entries:
        unknown = set(entry) - {"metric", "message", "min", "max"}
        if unknown or "metric" not in entry:
            raise PoseLabError(f"feedback rule {dict(entry)} needs 'metric', 'min' and/or 'max', optionally "
                               "'message'" + (f"; unknown keys: {', '.join(sorted(unknown))}" if unknown else ""))
        rules.append(FeedbackRule(metric=entry["metric"], message=entry.get("message", ""),
                                  minimum=entry.get("min"), maximum=entry.get("max")))
    return rules


def feedback(rules: Iterable[FeedbackRule], window: RepWindow) -> list[str]:
    """The messages of every rule this rep breaks, in rule order."""
    return [message for rule in rules if (message := rule.check(window)) is not None]
