"""What the exercise pipeline produces: one FrameResult per video frame and one Rep per counted repetition.

Keypoints are in the pixels of the (upright) frame, in :data:`pose_lab.skeleton.JOINT_NAMES` order. Angles are
in degrees; NaN where the joints that define an angle are not trusted in that frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pose_lab.region import Region


@dataclass
class Rep:
    """One counted repetition: top -> bottom -> top of the exercise's primary angle (frame indices)."""

    number: int  # 1-based, in the order reps were completed
    start: int
    bottom: int  # the turning point: deepest squat or push-up, highest curl
    end: int
    start_time: float  # seconds from the start of the video
    end_time: float
    range_of_motion: float  # degrees the primary angle travelled between its extremes in this rep
    top_angle: float
    bottom_angle: float
    feedback: list[str] = field(default_factory=list)  # posture messages for this rep; empty = good form

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "frames": {"start": self.start, "bottom": self.bottom, "end": self.end},
            "start_time_s": round(self.start_time, 3),
            "end_time_s": round(self.end_time, 3),
            "duration_s": round(self.duration, 3),
            "range_of_motion_deg": round(self.range_of_motion, 1),
            "top_angle_deg": round(self.top_angle, 1),
            "bottom_angle_deg": round(self.bottom_angle, 1),
            "feedback": list(self.feedback),
        }


@dataclass
class FrameResult:
    """Everything the pipeline knows about one frame, as it leaves the pipeline."""

    index: int  # 0-based frame number in the video
    time: float  # seconds
    person: bool  # a pose was found (False: keypoints/angles are NaN)
    keypoints: np.ndarray  # (K,2) smoothed, frame pixels
    visibility: np.ndarray  # (K,) predicted visibility probabilities
    region: Region | None  # the square the network saw, pixels rounded; None = whole frame
    angles: dict[str, float]  # every measured angle by name (see pose_lab.exercise.angles)
    primary_angle: float  # the exercise's counting angle (NaN when not measurable)
    phase: str  # counter phase: see pose_lab.exercise.counter
    reps: int  # repetitions counted up to and including this frame
    completed: list[Rep] = field(default_factory=list)  # reps that ended at this frame (feedback filled in)
    notes: list[str] = field(default_factory=list)  # events: "pose lost", "scene cut", ...
