"""Where the network looks in the next frame: BlazePose's tracking idea on a person-centred model.

The network was trained on crops centred on one person, so a person who fills a tenth of a 720p frame is
found poorly in the whole frame and well in a square around them. The first frame, and any frame after the
pose was lost, is letterboxed whole; every later frame is cropped to a square around the previous frame's
confident keypoints, grown by a margin on each side so the next pose still fits after the person moves.

The square also encloses BlazePose's "Vitruvian" circle: centred between the hips, through the top of the head.
A person's hips are about halfway along their body whatever the pose (standing, squatting, in a plank), so the
circle holds the whole body even when the keypoints do not. Without it, a region built from the found joints
alone loses whatever they missed: feet the network placed on a nearby object leave the real feet outside
the next region, where it cannot find them again. The region is also turned by quarter turns so that the body
stands upright in it (BlazePose aligns its region the same way, by any angle): the network saw few people lying
down, and a push-up's plank, turned, looks like the standing people it saw most.

A pose counts as lost when the keypoint source found too few joints, when the skeleton collapses to a small
blob (a weak prediction on background tends to pile every joint together), or when the body shrinks to a part
of its recent size; the tracker then returns to the whole frame. A scene cut (a large change between
consecutive frame thumbnails) also resets it. Because each region is made from the network's own keypoints, a
wrong pose can steer the region off the person; the shrink test and the slow quarter turns keep that from
feeding on itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pose_lab import skeleton
from pose_lab.data.geometry import rotation_matrix
from pose_lab.region import Region

HIPS: list[int] = [skeleton.joint_index("left_hip"), skeleton.joint_index("right_hip")]
HEAD_TOP: int = skeleton.joint_index("head_top")
# Degrees past halfway between two quarter turns before the region turns on.
QUARTER_TURN_HYSTERESIS = 15.0

# Thumbnail on which consecutive frames are compared for cuts: small enough to cost well under a millisecond.
THUMBNAIL_SIZE: tuple[int, int] = (32, 32)


@dataclass(frozen=True)
class TrackingSettings:
    """conf/exercise_video.yaml `tracking`, where the defaults and their reasons are (see run.video_config)."""

    margin: float
    min_found_joints: int
    min_pose_fraction: float
    cut_threshold: float
    upright: bool
    turn_frames: int
    min_size_ratio: float
    size_memory_frames: int


class PersonTracker:
    """The square region of the next frame to show the network, from the keypoints of this one."""

    def __init__(self, settings: TrackingSettings) -> None:
        if (settings.margin < 0 or settings.min_found_joints < 2 or settings.turn_frames < 1
                or not 0 <= settings.min_size_ratio < 1 or settings.size_memory_frames < 1):
            raise ValueError(f"invalid tracking settings {settings}: margin >= 0, min_found_joints >= 2, "
                             "turn_frames >= 1, 0 <= min_size_ratio < 1 and size_memory_frames >= 1 are required")
        self.settings = settings
        self.region: Region | None = None
        self._thumbnail: np.ndarray | None = None
        # Consecutive frames whose body asked for the same quarter turn (signed: +n one way, -n the other).
        self._turn_votes = 0
        # The tracked body's size (body_extent's side, pixels), averaged over about size_memory_frames frames.
        self._body_size: float | None = None

    def reset(self) -> None:
        """Look at the whole frame next time."""
        self.region = None
        self._turn_votes = 0
        self._body_size = None

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

    def _quarter_turn(self, tilt: float) -> float:
        """The region's turn for a body tilted by `tilt` degrees: a multiple of 90 (the network copes with the
        tilts its training rotated by; small turns would only add the head's and hips' noise), moved one
        quarter at a time. A tracked region turns only when the tilt stayed well past halfway for `turn_frames`
        frames in a row: a person takes a second or more to go from standing to a plank, while a wrong pose
        lasts a few frames, and a region turned by one shows the network a sideways person, whose pose is worse
        still. A pose found in the whole frame has no tracked turn to keep and turns at once."""
        current = self.region.rotation if self.region is not None else 0.0
        offset = (tilt - current + 180.0) % 360.0 - 180.0
        if abs(offset) <= 45.0 + QUARTER_TURN_HYSTERESIS:
            self._turn_votes = 0
            return current
        direction = int(np.sign(offset))
        self._turn_votes = self._turn_votes + direction if self._turn_votes * direction > 0 else direction
        if self.region is not None and abs(self._turn_votes) < self.settings.turn_frames:
            return current
        self._turn_votes = 0
        return (current + 90.0 * direction) % 360.0

    def accepts(self, keypoints: np.ndarray, found: np.ndarray, frame_size: tuple[int, int]) -> bool:
        """Whether this frame's (K,2) keypoints in frame pixels, and which of them the source found, are a usable
        pose; when they are not, the next frame is looked at whole.

        Besides too few joints and a pose too small for the frame, a body that shrank below min_size_ratio of
        its recent size is lost: a person does not halve in half a second, but a region that followed a wrong
        pose onto part of the body sees only that part, whose pose then fits the smaller region, and the
        region shrinks on (the real goblet squat's deep bottom once locked the region on the legs for five
        seconds). The whole frame breaks that loop."""
        width, height = frame_size
        found = np.asarray(found, dtype=bool) & np.isfinite(keypoints).all(axis=1)
        if found.sum() < self.settings.min_found_joints:
            self.reset()
            return False
        extent = float(np.ptp(keypoints[found], axis=0).max())
        shrunk = (self._body_size is not None
                  and body_extent(keypoints, found)[1] < self.settings.min_size_ratio * self._body_size)
        if extent < self.settings.min_pose_fraction * min(width, height) or shrunk:
            self.reset()
            return False
        return True

    def follow(self, keypoints: np.ndarray, found: np.ndarray) -> None:
        """Set the next frame's region around an accepted pose: the square enclosing its body extent (see
        body_extent), grown by the margin, turned upright by quarter turns when `upright`. The pipeline passes
        the smoothed keypoints, as MediaPipe derives its next region from separately smoothed landmarks: a
        region that jumps with every frame's keypoint noise shows the network a differently framed person each
        frame, and the noise feeds on itself."""
        found = np.asarray(found, dtype=bool) & np.isfinite(keypoints).all(axis=1)
        rotation = 0.0
        if self.settings.upright and found[HIPS].all() and found[HEAD_TOP]:
            body = keypoints[HEAD_TOP] - keypoints[HIPS].mean(axis=0)
            rotation = self._quarter_turn(float(np.degrees(-np.pi / 2 - np.arctan2(body[1], body[0]))))
        centre, extent = body_extent(keypoints, found, rotation)
        weight = 1.0 / self.settings.size_memory_frames
        self._body_size = extent if self._body_size is None else (1 - weight) * self._body_size + weight * extent
        side = extent * (1 + 2 * self.settings.margin)
        self.region = Region(float(centre[0] - side / 2), float(centre[1] - side / 2), side, rotation)


def body_extent(keypoints: np.ndarray, found: np.ndarray, rotation: float = 0.0) -> tuple[np.ndarray, float]:
    """Centre (image pixels) and side of the smallest square, turned by `rotation` degrees, that holds the
    found joints of a (K,2) pose and, when the hips and head top are found, its body circle."""
    found = np.asarray(found, dtype=bool)
    turn = rotation_matrix(rotation)
    # Bounds in the turned square's own axes, so the joints stay inside it once it is turned.
    points = keypoints[found] @ turn.T
    low, high = points.min(axis=0), points.max(axis=0)
    if found[HIPS].all() and found[HEAD_TOP]:
        hip_centre = keypoints[HIPS].mean(axis=0)
        radius = float(np.linalg.norm(keypoints[HEAD_TOP] - hip_centre))
        low, high = np.minimum(low, turn @ hip_centre - radius), np.maximum(high, turn @ hip_centre + radius)
    return turn.T @ ((low + high) / 2), float(max(high - low))
