"""Frames in, one FrameResult per frame out: the exercise pipeline as a Python API.

    cfg = video_config("exercise=squat")        # pose_lab.exercise.run: conf/exercise_video.yaml, the defaults
    pipeline = build_pipeline(cfg, build_source(cfg), fps=30)   # build_source: the network cfg names
    for result in pipeline.process(frames):      # frames: (index, time_s, RGB uint8 HxWx3), e.g. a webcam loop
        print(result.reps, result.phase)
    reps = pipeline.finish()

Per frame: scene-cut check -> keypoints of the tracked person's region (:mod:`pose_lab.exercise.tracking`)
-> a running median (removes a joint's one- or two-frame jumps) and One Euro smoothing, in resolution-free
units (keypoints divided by the frame's longer side, so the filters' settings mean the same on 406-wide and
1280-wide video) -> the next frame's region, from the smoothed keypoints -> angles, counting and feedback
(:class:`pose_lab.exercise.analysis.ExerciseAnalysis`). A cut resets the tracker, the filters and the rep
in progress, so a rep is never stitched together across two camera views. A lost pose resets the tracker and
the filters only: the rep in progress survives a loss shorter than the counter's `max_gap`, since a deep
squat's bottom or a blurred frame loses the pose for a frame or two in the middle of a real rep (dropping the
rep on every loss lost real reps on the bench's clips).

The keypoint source is any callable `(frame, region) -> SourcePose`: keypoints, their visibility, and which
joints it found at all (the tracker's person test); :func:`estimator_source` wraps a trained network, and tests
pass a scripted one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import numpy as np
from omegaconf import DictConfig

from pose_lab.exercise.analysis import ExerciseAnalysis
from pose_lab.exercise.median import RunningMedian
from pose_lab.exercise.records import FrameResult, Rep
from pose_lab.exercise.smoothing import OneEuroFilter
from pose_lab.exercise.tracking import PersonTracker, TrackingSettings
from pose_lab.inference import PoseEstimator
from pose_lab.region import Region
from pose_lab.skeleton import NUM_JOINTS

Frame = tuple[int, float, np.ndarray]


class SourcePose(NamedTuple):
    """One frame's pose from a keypoint source."""

    keypoints: np.ndarray  # (K,2) frame pixels
    visibility: np.ndarray  # (K,) probability that each joint is visible: facing side, which joints angles use
    found: np.ndarray  # (K,) bool: the source found the joint at all: the tracker's "is there a person" test


KeypointSource = Callable[[np.ndarray, Region | None], SourcePose]


def estimator_source(estimator: PoseEstimator, keypoints: str, min_found: float) -> KeypointSource:
    """A KeypointSource running `estimator` on one frame: its regression output (BlazePose's fast path) or,
    with keypoints="heatmap", the heatmap-decoded joints of the full path.

    A joint is found when its confidence reaches `min_found`: the peak of its heatmap for heatmap keypoints,
    the visibility output for regression keypoints (the fast path computes no heatmaps). The heatmap peak is
    the better test: the visibility output stays high on a frame with nobody in it.
    """
    if keypoints not in ("regression", "heatmap"):
        raise ValueError(f"keypoints must be 'regression' or 'heatmap', got {keypoints!r}")
    heatmaps = keypoints == "heatmap"

    def source(frame: np.ndarray, region: Region | None) -> SourcePose:
        [prediction] = estimator.predict(frame, return_heatmaps=heatmaps, regions=[region])
        if heatmaps:
            return SourcePose(prediction.heatmap_keypoints, prediction.confidence,
                              prediction.heatmap_scores >= min_found)
        return SourcePose(prediction.keypoints, prediction.visibility, prediction.visibility >= min_found)

    return source


class ExercisePipeline:
    """Track one person through frames, count repetitions of `exercise` and judge their posture.

    Args:
        source: keypoints for a frame and a region (see the module docstring).
        exercise: one conf/exercise/*.yaml.
        fps: frames per second of the input (durations and the counter's timing use it).
        tracking: the person tracker's settings.
        smoothing: OneEuroFilter keyword arguments, in units of the frame's longer side per second.
        median_window: frames of the running median taken before the One Euro filter (1: none).

    The settings have no defaults here: conf/exercise_video.yaml holds them, with their reasons
    (pose_lab.exercise.run.build_pipeline reads them from there).
    """

    def __init__(self, source: KeypointSource, exercise: DictConfig, fps: float, tracking: TrackingSettings,
                 smoothing: dict, median_window: int) -> None:
        self.source = source
        self.analysis = ExerciseAnalysis(exercise, fps)
        self.tracker = PersonTracker(tracking)
        self.median = RunningMedian(median_window)
        self.smoother = OneEuroFilter(**smoothing)

    def _reset(self) -> None:
        self.tracker.reset()
        self.median.reset()
        self.smoother.reset()

    def step(self, index: int, time: float, frame: np.ndarray) -> FrameResult:
        """The result of one frame; frames must come in order."""
        notes = []
        cut = self.tracker.is_cut(frame)
        if cut:
            self._reset()
            notes.append("scene cut")
        height, width = frame.shape[:2]
        region = self.tracker.region
        keypoints, visibility, found = self.source(frame, region)
        person = self.tracker.accepts(keypoints, found, (width, height))
        if person:
            unit = float(max(width, height))
            keypoints = self.smoother(self.median(keypoints / unit), time) * unit
            self.tracker.follow(keypoints, found)
        else:
            if self.tracker.region is None and region is not None:
                notes.append("pose lost")
            self.median.reset()
            self.smoother.reset()
            keypoints = np.full((NUM_JOINTS, 2), np.nan, dtype=np.float32)
        analysed = self.analysis.update(index, time, keypoints, visibility, reset=cut)
        return FrameResult(
            index=index, time=time, person=person, keypoints=np.asarray(keypoints, dtype=np.float32),
            visibility=np.asarray(visibility, dtype=np.float32),
            region=None if region is None else Region(*(round(value) for value in region[:3]), region.rotation),
            angles=analysed.angles, primary_angle=analysed.primary_angle, phase=analysed.phase,
            reps=analysed.reps, completed=list(analysed.completed), notes=notes,
        )

    def process(self, frames: Iterable[Frame]) -> Iterator[FrameResult]:
        """One FrameResult per (index, time_s, RGB frame), as the frames come."""
        for index, time, frame in frames:
            yield self.step(index, time, frame)

    def finish(self) -> list[Rep]:
        """Every counted repetition, with its feedback; call after the last frame."""
        return self.analysis.finish()
