"""Reference peer: MediaPipe Pose, on videos with the fixed-threshold rep counter of popular fitness tutorials
(issue 8) or on still images one at a time (issue 9).

This script is NOT part of pose_lab. It is the yardstick pose_lab is measured against (issue 8 claims the video
peer "counts all four exactly and runs at about 88 frames/s end to end on 720p"; the benchmarks measure rather
than trust that), run side by side by pose_lab's benchmarks as a subprocess: `python -m pose_lab.exercise.bench`
for videos, `python -m pose_lab.bench peer_python=...` for images. MediaPipe ships opencv-contrib-python, which
clashes with pose_lab's opencv-python-headless, so the peer lives in its own virtual environment:

    python3.11 -m venv .venv-peer && .venv-peer/bin/pip install mediapipe==0.10.14 "numpy<2"
    .venv-peer/bin/python pose_lab/exercise/peer_mediapipe.py VIDEO --exercise squat [--keypoints OUT.npz]
    .venv-peer/bin/python pose_lab/exercise/peer_mediapipe.py --images LIST.txt --output OUT.npz

Hence the imports: stdlib, numpy and cv2 only at module level, never torch or pose_lab. mediapipe is imported
inside :func:`run_peer`, so pose_lab's tests can load the pure helpers below without mediapipe installed.

What the peer does, as the tutorials do it:

1. decode with ``cv2.VideoCapture``, BGR -> RGB;
2. legacy ``mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1)``: video mode, MediaPipe's own
   frame-to-frame tracking;
3. one angle per frame at the middle joint of a triple, on the body side whose three landmarks have the larger
   summed MediaPipe visibility (squat: hip-knee-ankle; push-up and curl: shoulder-elbow-wrist);
4. a two-state counter with fixed thresholds, one rep per return to the extended state after a flexion:

   ===========  ==================  =================  ===================================
   exercise     extended (rest)     flexed (turn)      a rep is counted when
   ===========  ==================  =================  ===================================
   squat        knee > 160 (top)    knee < 100         back at the top after the bottom
   pushup       elbow > 160 (top)   elbow < 90         back at the top after the bottom
   bicep_curl   elbow > 160 (down)  elbow < 40 (up)    back down after the top (down->up->down)
   ===========  ==================  =================  ===================================

   The counter starts armed only once the extended state has been seen, and frames without a pose leave its
   state unchanged.

The loop decode -> pose -> angle -> count is timed with ``time.perf_counter``; building the MediaPipe graph and
opening the video are not. ``--warmup-frames N`` first runs N frames through the same graph untimed, then resets
the graph and rewinds the video, so the timed run still covers every frame from a fresh tracking state.
The result is one JSON line on stdout (MediaPipe's own logging goes to stderr).

``--keypoints OUT.npz`` also writes MediaPipe's landmarks in LSP order (:data:`LSP_JOINT_NAMES`, the same as
``pose_lab.skeleton.JOINT_NAMES``), in frame pixels: ``keypoints`` (T, 14, 2) float32, NaN where MediaPipe found
no pose; ``visibility`` (T, 14) float32 in [0, 1], 0 where no pose; ``fps`` of the video. See
:func:`mediapipe_to_lsp` for the two joints MediaPipe does not have (neck, head_top).

Images mode (``--images LIST.txt --output OUT.npz``, LIST = one image path per line) is MediaPipe as a
single-image pose estimator: legacy ``Pose(static_image_mode=True, model_complexity=1)``, so every image runs
the person detector and then the landmark model, with no tracking between images. Each image is decoded as
pose_lab decodes LSP (``cv2.imread`` ignoring EXIF orientation, BGR -> RGB) outside the clock; the clock
(``time.perf_counter``) covers ``pose.process`` and turning its landmarks into pixel arrays, the same span
pose_lab's side times from a decoded image to keypoints in its pixels. ``--warmup-images N`` first runs the
first N images untimed. OUT.npz holds ``keypoints`` (N, 14, 2) float32 in LSP order and original pixels, NaN
where MediaPipe found no person; ``visibility`` (N, 14), 0 there; ``milliseconds`` (N,) per image; ``images``
(N,) the paths in list order. One JSON line on stdout summarises the run (median and p90 ms, images, images
with a pose).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

PEER_NAME = "mediapipe 0.10.14 pose (model_complexity=1) + fixed thresholds"
IMAGES_PEER_NAME = "MediaPipe Pose (legacy mp.solutions.pose, static_image_mode=True, model_complexity=1)"

# MediaPipe Pose's 33 landmarks, in its output order (mp.solutions.pose.PoseLandmark), so the helpers need no
# mediapipe import. Left/right are the person's own, as in LSP.
MEDIAPIPE_LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear",
    "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_pinky", "right_pinky",
    "left_index", "right_index",
    "left_thumb", "right_thumb",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
    "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip
NUM_MEDIAPIPE_LANDMARKS = len(MEDIAPIPE_LANDMARK_NAMES)

# Copy of pose_lab.skeleton.JOINT_NAMES (this script may not import pose_lab); the test checks they agree.
LSP_JOINT_NAMES: tuple[str, ...] = (
    "right_ankle",
    "right_knee",
    "right_hip",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "neck",
    "head_top",
)

# Ear -> head top as a fraction of shoulder-midpoint -> ear-midpoint. Chosen by eye (crown of the head) on
# frames of the four clips in shared/datasets/exercise_videos; anthropometry (ear ~18 cm above the acromion,
# crown ~13 cm above the ear) would say ~0.7, but MediaPipe's shoulder landmarks sit lower, on the joint, and
# 0.7 visibly overshoots. Following the shoulder -> ear direction keeps the estimate on the head's axis when
# the head is tilted or the body is horizontal (push-ups). A rough LSP head_top, good to about half a head.
HEAD_TOP_BEYOND_EARS = 0.5


@dataclass(frozen=True)
class ExerciseRule:
    """Which landmarks make the tutorial angle and where its fixed thresholds lie (degrees)."""

    joints: tuple[str, str, str]  # landmark names without the side prefix; the angle is at the middle one
    extended_above: float  # rest state: squat/push-up top, curl arm down
    flexed_below: float  # turning point: squat/push-up bottom, curl top


EXERCISE_RULES: dict[str, ExerciseRule] = {
    "squat": ExerciseRule(joints=("hip", "knee", "ankle"), extended_above=160.0, flexed_below=100.0),
    "pushup": ExerciseRule(joints=("shoulder", "elbow", "wrist"), extended_above=160.0, flexed_below=90.0),
    "bicep_curl": ExerciseRule(joints=("shoulder", "elbow", "wrist"), extended_above=160.0, flexed_below=40.0),
}


def joint_angle(first: np.ndarray, vertex: np.ndarray, last: np.ndarray) -> float:
    """Angle in degrees, in [0, 180], at ``vertex`` between the rays to ``first`` and ``last`` (2D points)."""
    to_first = np.asarray(first, dtype=np.float64) - vertex
    to_last = np.asarray(last, dtype=np.float64) - vertex
    cosine = np.dot(to_first, to_last) / (np.linalg.norm(to_first) * np.linalg.norm(to_last) + 1e-12)
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def landmark_index(name: str) -> int:
    """Index of a MediaPipe landmark by name; raises with the valid names on a typo."""
    try:
        return MEDIAPIPE_LANDMARK_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown MediaPipe landmark {name!r}; valid: {', '.join(MEDIAPIPE_LANDMARK_NAMES)}") from None


def tutorial_angle(points: np.ndarray, visibility: np.ndarray, rule: ExerciseRule) -> float:
    """The rule's angle on the body side whose three landmarks MediaPipe sees better.

    ``points`` (33, 2) and ``visibility`` (33,) are one frame of MediaPipe landmarks. The far side in a side
    view is occluded and its landmarks are guesses, hence the choice of side per frame.
    """
    sides = []
    for side in ("left", "right"):
        indices = [landmark_index(f"{side}_{joint}") for joint in rule.joints]
        sides.append((float(visibility[indices].sum()), indices))
    _, (first, vertex, last) = max(sides, key=lambda side: side[0])
    return joint_angle(points[first], points[vertex], points[last])


class FixedThresholdCounter:
    """Two-state rep counter with fixed thresholds, as in the popular MediaPipe fitness tutorials.

    State ``extended`` is entered above ``extended_above``, ``flexed`` below ``flexed_below`` but only from
    ``extended``; every flexed -> extended transition completes one rep. Angles in between, and NaN (no
    pose), leave the state alone: this is the tutorials' whole hysteresis.
    """

    def __init__(self, extended_above: float, flexed_below: float) -> None:
        if not flexed_below < extended_above:
            raise ValueError(f"flexed_below ({flexed_below}) must be below extended_above ({extended_above})")
        self.extended_above = extended_above
        self.flexed_below = flexed_below
        self.state: str | None = None  # None until the extended state is first seen
        self.reps = 0

    def update(self, angle: float) -> int:
        """Feed one frame's angle; returns the rep count so far."""
        if angle > self.extended_above:
            if self.state == "flexed":
                self.reps += 1
            self.state = "extended"
        elif angle < self.flexed_below and self.state == "extended":
            self.state = "flexed"
        return self.reps


def count_reps(angles: np.ndarray, rule: ExerciseRule) -> int:
    """Reps the fixed-threshold counter finds in a whole angle sequence (T,), NaN = no pose."""
    counter = FixedThresholdCounter(rule.extended_above, rule.flexed_below)
    for angle in angles:
        counter.update(float(angle))
    return counter.reps


def mediapipe_to_lsp(points: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe landmarks (33, 2) pixels + visibility (33,) -> LSP joints (14, 2) + visibility (14,).

    The twelve limb joints are MediaPipe's landmarks of the same name. The two that MediaPipe lacks:

    - ``neck`` = midpoint of the shoulders;
    - ``head_top`` = midpoint of the ears, pushed on along the shoulders -> ears direction by
      :data:`HEAD_TOP_BEYOND_EARS` of that distance (roughly the crown of the head).

    A derived joint's visibility is the largest of its sources': in a side view the far shoulder and ear are
    always occluded while the neck and head are in plain sight.
    """
    keypoints = np.empty((len(LSP_JOINT_NAMES), 2), dtype=np.float32)
    joint_visibility = np.empty(len(LSP_JOINT_NAMES), dtype=np.float32)
    shoulders = [landmark_index("left_shoulder"), landmark_index("right_shoulder")]
    ears = [landmark_index("left_ear"), landmark_index("right_ear")]
    shoulder_mid = points[shoulders].mean(axis=0)
    ear_mid = points[ears].mean(axis=0)
    for joint, name in enumerate(LSP_JOINT_NAMES):
        if name == "neck":
            keypoints[joint] = shoulder_mid
            joint_visibility[joint] = visibility[shoulders].max()
        elif name == "head_top":
            keypoints[joint] = ear_mid + HEAD_TOP_BEYOND_EARS * (ear_mid - shoulder_mid)
            joint_visibility[joint] = visibility[ears + shoulders].max()
        else:
            source = landmark_index(name)
            keypoints[joint] = points[source]
            joint_visibility[joint] = visibility[source]
    return keypoints, joint_visibility


def open_video(path: Path) -> cv2.VideoCapture:
    """cv2.VideoCapture of ``path``; exits with the path and the reason if it cannot be read."""
    if not path.is_file():
        raise SystemExit(f"video not found: {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SystemExit(f"cv2 cannot decode {path}; is it a video OpenCV's FFmpeg backend reads (e.g. H.264 mp4)?")
    return capture


def landmarks_as_arrays(pose_landmarks: Any, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's NormalizedLandmarkList -> points (33, 2) in pixels and visibility (33,); for None (no pose
    found) NaN points and zero visibility."""
    if pose_landmarks is None:
        return (np.full((NUM_MEDIAPIPE_LANDMARKS, 2), np.nan, dtype=np.float32),
                np.zeros(NUM_MEDIAPIPE_LANDMARKS, dtype=np.float32))
    values = np.array([(mark.x, mark.y, mark.visibility) for mark in pose_landmarks.landmark], dtype=np.float32)
    return values[:, :2] * np.array([width, height], dtype=np.float32), values[:, 2]


def run_peer(video: Path, exercise: str, warmup_frames: int = 0) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Run the peer on one video.

    Returns the result dict printed as JSON, plus the per-frame MediaPipe points (T, 33, 2) and visibility
    (T, 33), NaN / 0 where no pose was found.
    """
    import mediapipe as mp  # lazy: the helpers above must load without mediapipe (pose_lab's tests)

    rule = EXERCISE_RULES[exercise]
    capture = open_video(video)
    pose = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1)
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    video_fps = float(capture.get(cv2.CAP_PROP_FPS))

    if warmup_frames > 0:
        for _ in range(warmup_frames):
            ok, frame_bgr = capture.read()
            if not ok:
                break
            pose.process(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        capture.release()
        pose.reset()  # forget the warm-up's tracking state; the timed run starts like a cold one
        capture = open_video(video)

    counter = FixedThresholdCounter(rule.extended_above, rule.flexed_below)
    # Landmarks are turned into arrays every frame (the angle needs them anyway) and kept in a list, so the
    # timed loop is the same with and without --keypoints.
    frame_points: list[np.ndarray] = []
    frame_visibility: list[np.ndarray] = []
    frames_with_pose = 0
    start = time.perf_counter()
    while True:
        ok, frame_bgr = capture.read()
        if not ok:
            break
        result = pose.process(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        points, visibility = landmarks_as_arrays(result.pose_landmarks, width, height)
        if result.pose_landmarks is not None:
            counter.update(tutorial_angle(points, visibility, rule))
            frames_with_pose += 1
        frame_points.append(points)
        frame_visibility.append(visibility)
    seconds = time.perf_counter() - start
    capture.release()
    pose.close()

    frames = len(frame_points)
    if frames == 0:
        raise SystemExit(f"no frame could be decoded from {video}")
    summary = {
        "peer": PEER_NAME,
        "video": str(video),
        "exercise": exercise,
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds,
        "reps": counter.reps,
        "frames_with_pose": frames_with_pose,
        "thresholds": {
            "joints": "-".join(rule.joints),
            "extended_above": rule.extended_above,
            "flexed_below": rule.flexed_below,
        },
        "warmup_frames": warmup_frames,
        "video_fps": video_fps,
    }
    return summary, np.stack(frame_points), np.stack(frame_visibility)


def lsp_sequence(points: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe landmarks (T, 33, 2) + (T, 33) -> LSP keypoints (T, 14, 2) + visibility (T, 14), float32;
    a frame without a pose (NaN points) stays NaN."""
    frames = [mediapipe_to_lsp(points_t, visibility_t) for points_t, visibility_t in zip(points, visibility)]
    keypoints = np.stack([frame_keypoints for frame_keypoints, _ in frames]).astype(np.float32)
    joint_visibility = np.stack([frame_visibility for _, frame_visibility in frames]).astype(np.float32)
    return keypoints, joint_visibility


def save_lsp_keypoints(path: Path, points: np.ndarray, visibility: np.ndarray, video_fps: float) -> None:
    """Write MediaPipe landmarks (T, 33, 2) + (T, 33) as LSP ``keypoints`` (T, 14, 2), ``visibility``, ``fps``."""
    keypoints, joint_visibility = lsp_sequence(points, visibility)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, keypoints=keypoints, visibility=joint_visibility, fps=np.float32(video_fps))


def read_image_list(path: Path) -> list[Path]:
    """The image paths of a list file, one per line (blank lines skipped); exits naming what is missing."""
    if not path.is_file():
        raise SystemExit(f"image list not found: {path}")
    images = [Path(line.strip()) for line in path.read_text().splitlines() if line.strip()]
    if not images:
        raise SystemExit(f"{path} lists no images; give one image path per line")
    missing = [str(image) for image in images if not image.is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} image(s) listed in {path} do not exist, e.g. {missing[0]}")
    return images


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB as pose_lab reads LSP: EXIF orientation ignored, as the annotations assume."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise SystemExit(f"cv2 cannot decode {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def timing_summary(milliseconds: np.ndarray) -> dict[str, float]:
    """Median, 90th percentile (linear interpolation) and mean of per-image times in ms."""
    return {"median_ms": float(np.median(milliseconds)), "p90_ms": float(np.percentile(milliseconds, 90)),
            "mean_ms": float(np.mean(milliseconds))}


def run_images(images: list[Path], warmup_images: int = 0) -> tuple[dict[str, Any], np.ndarray, np.ndarray,
                                                                    np.ndarray]:
    """MediaPipe on each image alone (detector + landmarks), timed per image.

    Returns the result dict printed as JSON, the MediaPipe points (N, 33, 2) and visibility (N, 33), NaN / 0
    where no pose was found, and the milliseconds (N,) of each image.
    """
    import mediapipe as mp  # lazy: the helpers above must load without mediapipe (pose_lab's tests)

    pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
    for path in images[:warmup_images]:
        pose.process(read_rgb(path))
    points, visibility, milliseconds = [], [], []
    for path in images:
        image = read_rgb(path)  # decoding is outside the clock, as on pose_lab's side
        height, width = image.shape[:2]
        start = time.perf_counter()
        result = pose.process(image)
        image_points, image_visibility = landmarks_as_arrays(result.pose_landmarks, width, height)
        milliseconds.append((time.perf_counter() - start) * 1e3)
        points.append(image_points)
        visibility.append(image_visibility)
    pose.close()
    points_array = np.stack(points)
    times = np.asarray(milliseconds)
    summary = {
        "peer": IMAGES_PEER_NAME,
        "mediapipe": mp.__version__,
        "images": len(images),
        "images_with_pose": int(np.isfinite(points_array).all(axis=(1, 2)).sum()),
        "warmup_images": min(warmup_images, len(images)),
        **timing_summary(times),
    }
    return summary, points_array, np.stack(visibility), times


def save_image_keypoints(path: Path, images: list[Path], points: np.ndarray, visibility: np.ndarray,
                         milliseconds: np.ndarray) -> None:
    """Write images mode's OUT.npz: LSP ``keypoints`` (N, 14, 2), ``visibility``, ``milliseconds``, ``images``."""
    keypoints, joint_visibility = lsp_sequence(points, visibility)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, keypoints=keypoints, visibility=joint_visibility, milliseconds=milliseconds.astype(np.float64),
             images=np.array([str(image) for image in images]))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Reference peer (not part of pose_lab): MediaPipe Pose, timed; on a video with a "
        "fixed-threshold rep counter, or on still images (--images).",
    )
    parser.add_argument("video", type=Path, nargs="?", help="video file (any format cv2.VideoCapture decodes)")
    parser.add_argument("--exercise", choices=sorted(EXERCISE_RULES), help="video mode: the exercise counted")
    parser.add_argument("--keypoints", type=Path, help="video mode: also save LSP-order keypoints to this .npz")
    parser.add_argument(
        "--warmup-frames", type=int, default=0, help="video mode: frames run untimed before the timed pass (default: 0)"
    )
    parser.add_argument("--images", type=Path, help="images mode: a text file with one image path per line")
    parser.add_argument("--output", type=Path, help="images mode: the .npz of keypoints and per-image times")
    parser.add_argument(
        "--warmup-images", type=int, default=0, help="images mode: first images run untimed first (default: 0)"
    )
    args = parser.parse_args(argv)
    if (args.video is None) == (args.images is None):
        parser.error("give either a VIDEO or --images LIST.txt")
    if args.video is not None and args.exercise is None:
        parser.error("a VIDEO needs --exercise")
    if args.images is not None and args.output is None:
        parser.error("--images needs --output OUT.npz")
    if args.warmup_frames < 0 or args.warmup_images < 0:
        parser.error("--warmup-frames and --warmup-images must be >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.images is not None:
        images = read_image_list(args.images)
        summary, points, visibility, milliseconds = run_images(images, args.warmup_images)
        save_image_keypoints(args.output, images, points, visibility, milliseconds)
    else:
        summary, points, visibility = run_peer(args.video, args.exercise, args.warmup_frames)
        if args.keypoints is not None:
            save_lsp_keypoints(args.keypoints, points, visibility, summary["video_fps"])
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
