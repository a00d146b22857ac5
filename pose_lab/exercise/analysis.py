"""From one person's keypoints per frame to angles, rep phase, counted reps and their posture feedback.

:class:`ExerciseAnalysis` is what the video pipeline calls once per frame, with keypoints that are already
smoothed (:class:`pose_lab.exercise.smoothing.OneEuroFilter`): smoothing is a property of the keypoint
stream, which the pipeline also draws and writes, so it happens once, before everything that reads it.

Per frame it picks the side facing the camera (with hysteresis), measures every angle
(:func:`pose_lab.exercise.angles.frame_angles`), evaluates the exercise's posture gate, feeds the primary
angle to the :class:`pose_lab.exercise.counter.RepCounter`, and fills in the feedback of each rep the
counter completes (:mod:`pose_lab.exercise.feedback`). The exercise config (``conf/exercise/*.yaml``):

- ``primary_angle``: the counted angle, a name of :data:`pose_lab.exercise.angles.ANGLE_NAMES`.
- ``min_visibility``: joints below this visibility are not measured.
- ``side_switch_margin``: how much more visible the other side must be before the facing side changes.
- ``counter``: the keyword arguments of :class:`~pose_lab.exercise.counter.RepCounter`.
- ``gate``: conditions ``{angle, min?, max?}`` that a frame must meet to look like the exercise (a push-up's
  body roughly horizontal, a squat's torso not); a frame where a gate angle is unmeasured fails.
- ``rep_checks``: rules ``{metric, min?, max?}`` over a whole cycle that it must meet to be counted at all
  (a squat drops the hips: ``hip_drop``); same metrics as the feedback.
- ``feedback``: rules ``{metric, min?, max?, message}`` (see :mod:`pose_lab.exercise.feedback`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pose_lab.errors import PoseLabError
from pose_lab.exercise.angles import ANGLE_NAMES, facing_side, frame_angles
from pose_lab.exercise.counter import RepCounter
from pose_lab.exercise.feedback import RepWindow, feedback, rules_from_config
from pose_lab.exercise.records import Rep


class FrameAnalysis(NamedTuple):
    """The analysis of one frame."""

    angles: dict[str, float]  # every angle by name, NaN where unmeasured
    primary_angle: float  # the counted angle (NaN when unmeasured)
    side: str  # body side facing the camera: "left" or "right"
    gate: bool  # the frame looks like the exercise
    phase: str  # counter phase: see pose_lab.exercise.counter
    reps: int  # reps counted so far, this frame included
    completed: list[Rep]  # reps counted at this frame, feedback filled in


class _Frame(NamedTuple):
    index: int
    keypoints: np.ndarray
    visibility: np.ndarray
    angles: dict[str, float]


class GateCondition(NamedTuple):
    """A frame passes when ``minimum <= angles[angle] <= maximum`` (a missing bound is open)."""

    angle: str
    minimum: float | None
    maximum: float | None

    def passes(self, angles: Mapping[str, float]) -> bool:
        value = angles[self.angle]
        if not np.isfinite(value):
            return False
        return (self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)


def _check_angle(name: object, where: str) -> str:
    if name not in ANGLE_NAMES:
        raise PoseLabError(f"{where}: unknown angle {name!r}; known angles: {', '.join(ANGLE_NAMES)}")
    return str(name)


def _gate_from_config(entries: list[Mapping]) -> list[GateCondition]:
    conditions = []
    for entry in entries:
        if set(entry) - {"angle", "min", "max"} or "angle" not in entry or not ({"min", "max"} & set(entry)):
            raise PoseLabError(f"gate condition {dict(entry)} must be {{angle: NAME, min: X and/or max: Y}}")
        conditions.append(GateCondition(_check_angle(entry["angle"], "gate"), entry.get("min"), entry.get("max")))
    return conditions


class ExerciseAnalysis:
    """Angles, phase, reps and feedback for one video of one exercise; call :meth:`update` per frame."""

    def __init__(self, exercise_cfg: DictConfig | Mapping, fps: float) -> None:
        cfg = OmegaConf.to_container(exercise_cfg, resolve=True) if isinstance(exercise_cfg, DictConfig) \
            else dict(exercise_cfg)
        missing = [key for key in ("primary_angle", "counter") if key not in cfg]
        if missing:
            raise PoseLabError(f"exercise config {cfg.get('name', '?')!r} lacks: {', '.join(missing)}")
        if not fps > 0:
            raise PoseLabError(f"frame rate must be positive, got {fps}")
        self.name = cfg.get("name", "exercise")
        self.fps = fps
        self.primary_angle = _check_angle(cfg["primary_angle"], f"exercise {self.name!r} primary_angle")
        self.min_visibility = float(cfg.get("min_visibility", 0.5))
        self.side_switch_margin = float(cfg.get("side_switch_margin", 0.1))
        self.rep_checks = rules_from_config(cfg.get("rep_checks") or [])
        try:
            self.counter = RepCounter(**cfg["counter"], check=self._why_not_counted)
        except TypeError as error:
            raise PoseLabError(f"exercise {self.name!r} counter settings: {error}") from None
        self.gate = _gate_from_config(cfg.get("gate") or [])
        self.rules = rules_from_config(cfg.get("feedback") or [])
        self._side: str | None = None
        self._frames: deque[_Frame] = deque()

    def update(
        self,
        index: int,
        time: float | None,
        keypoints: np.ndarray,
        visibility: np.ndarray,
        reset: bool = False,
    ) -> FrameAnalysis:
        """One frame: (K, 2) keypoints in pixels (all NaN: nobody found), (K,) visibility, time in s
        (None: ``index / fps``). ``reset`` = a scene cut or a new person: the rep in progress is dropped."""
        if reset:
            self.counter.reset()
            self._side = None
            self._frames.clear()
        time = index / self.fps if time is None else time
        keypoints = np.asarray(keypoints, dtype=float)
        visibility = np.where(np.isfinite(keypoints).all(axis=-1), np.asarray(visibility, dtype=float), 0.0)
        if visibility.any():
            self._side = facing_side(visibility, self._side, self.side_switch_margin)
        side = self._side or "left"
        angles = frame_angles(keypoints, visibility, side, self.min_visibility)
        gate = all(condition.passes(angles) for condition in self.gate)
        primary = angles[self.primary_angle]

        self._frames.append(_Frame(index, keypoints, visibility, angles))
        step = self.counter.update(index, time, primary, gate)
        completed = [self._with_feedback(step.completed)] if step.completed else []
        oldest = self.counter.window_start
        while self._frames and (oldest is None or self._frames[0].index < oldest):
            self._frames.popleft()
        return FrameAnalysis(angles, primary, side, gate, step.phase, step.count, completed)

    def finish(self) -> list[Rep]:
        """End of the video: every counted rep (an unfinished one is dropped), feedback filled in."""
        self._frames.clear()
        return self.counter.finish()

    def _why_not_counted(self, rep: Rep) -> str:
        """'' when the cycle meets every rep check, else the checks it fails (the counter's ``check``)."""
        return "; ".join(feedback(self.rep_checks, self._window(rep)))

    def _with_feedback(self, rep: Rep) -> Rep:
        rep.feedback = feedback(self.rules, self._window(rep))
        return rep

    def _window(self, rep: Rep) -> RepWindow:
        frames = [frame for frame in self._frames if rep.start <= frame.index <= rep.end]
        return RepWindow(
            rep=rep,
            indices=np.array([frame.index for frame in frames]),
            keypoints=np.stack([frame.keypoints for frame in frames]),
            visibility=np.stack([frame.visibility for frame in frames]),
            angles={name: np.array([frame.angles[name] for frame in frames]) for name in ANGLE_NAMES},
            primary_angle=self.primary_angle,
            min_visibility=self.min_visibility,
        )
