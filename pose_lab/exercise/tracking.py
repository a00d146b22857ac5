"""Where the network looks in the next frame: BlazePose's tracking idea on a person-centred model.

The network was trained on crops centred on one person, so a person who fills a tenth of a 720p frame is
found poorly in the whole frame and well in a square around them. The first frame, and any frame after the
pose was lost, is letterboxed whole; every later frame is cropped to a square around the previous frame's
confident keypoints, grown by a margin on each side so the next pose still fits after the person moves.

A pose counts as lost when the keypoint source found too few joints or when the skeleton collapses to a small
blob (a weak prediction on background tends to pile every joint together); the tracker then returns to the
whole frame. A scene cut (a large change between consecutive frame thumbnails) also resets it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pose_lab.inference import Region

# Thumbnail on which consecutive frames are compared for cuts: small enough to cost well under a millisecond.
THUMBNAIL_SIZE: tuple[int, int] = (32, 32)


@dataclass(frozen=True)
class TrackingSettings:
    """conf/exercise_video.yaml `tracking`: see the comments there."""

    margin: float = 0.25
    min_found_joints: int = 8
    min_pose_fraction: float = 0.1
    cut_threshold: float = 40.0


class PersonTracker:
    """The square region of the next frame to show the network, from the keypoints of this one."""

    def __init__(self, settings: TrackingSettings) -> None:
        if settings.margin < 0 or settings.min_found_joints < 2:
            raise ValueError(f"invalid tracking settings {settings}: margin >= 0 and min_found_joints >= 2 "
                             "are required")
        self.settings = settings
        self.region: Region | None = None
        self._thumbnail: np.ndarray | None = None

    def reset(self) -> None:
        """Look at the whole frame next time."""
        self.region = None

    def is_cut(self, frame_rgb: np.ndarray) -> bool:
        """True when this frame differs from the previous one like a cut between camera views; resets."""
        thumbnail = cv2.resize(frame_rgb, THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        previous, self._thumbnail = self._thumbnail, thumbnail
        if previous is None:
            return False
        cut = float(np.abs(thumbnail - previous).mean()) > self.settings.cut_threshold
        if cut:
            self.reset()
        return cut

    def update(self, keypoints: np.ndarray, found: np.ndarray, frame_size: tuple[int, int]) -> bool:
        """Take this frame's (K,2) keypoints in frame pixels and which of them the source found; returns whether
        they are a usable pose, and sets the region for the next frame (the whole frame again when they are not)."""
        width, height = frame_size
        found = np.asarray(found, dtype=bool) & np.isfinite(keypoints).all(axis=1)
        if found.sum() < self.settings.min_found_joints:
            self.reset()
            return False
        points = keypoints[found]
        low, high = points.min(axis=0), points.max(axis=0)
        extent = float(max(high - low))
        if extent < self.settings.min_pose_fraction * min(width, height):
            self.reset()
            return False
        side = extent * (1 + 2 * self.settings.margin)
        centre = (low + high) / 2
        self.region = (float(centre[0] - side / 2), float(centre[1] - side / 2), side)
        return True
