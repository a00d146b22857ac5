"""Frames of an exercise recording, upright and in order, from a video file or a folder of images.

`open_frames(path)` checks the input before any work starts (missing path, a file OpenCV cannot open, a video
without one decodable frame, a folder without images: a :class:`~pose_lab.errors.PoseLabError` naming the path
and the fix) and returns a :class:`FrameSource` that yields `(index, time_s, rgb)` once.

Rotation: phones store portrait clips as landscape pixels plus a rotation in the container. OpenCV 5 turns
those frames upright by itself (`CAP_PROP_ORIENTATION_AUTO`, on by default for FFMPEG), but whether it does
depends on the backend and build. To rotate exactly once whatever the build, auto-rotation is switched off,
the angle is read from `CAP_PROP_ORIENTATION_META` and applied here; only if a backend refuses to switch it
off is its own rotation trusted. Images in a folder are read with their EXIF orientation applied.

Time of a frame is `index / fps`: OpenCV's `CAP_PROP_POS_MSEC` jumps irregularly on some real clips (e.g. 0,
6.3, 39.7 ms on a 30 fps file), which would distort durations.

A video that stops decoding before its declared frame count (a truncated download, a corrupt tail) ends the
iteration cleanly: `ended_early` and `end_note` say where it stopped, so the caller keeps what was read.
An unreadable image in a folder, or one of another size than the first, is skipped with a warning (one bad
file should not cost the rest of the sequence); frame indices follow the file order, so they then have a gap.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import cv2
import numpy as np

from pose_lab.errors import PoseLabError
from pose_lab.predict import IMAGE_SUFFIXES, read_image

# Frame rate assumed for a folder of images without an fps argument, and for a video without a usable one.
DEFAULT_FPS = 30.0
# Above this a container's fps is a time-base artefact (FFmpeg reports 90000 or 1000 for some files).
MAX_PLAUSIBLE_FPS = 1000.0
# Clockwise rotation in degrees (as CAP_PROP_ORIENTATION_META reports it) -> the cv2.rotate code that undoes it.
_ROTATIONS: dict[int, int] = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}

Frame = tuple[int, float, np.ndarray]  # (index, time in seconds, (H,W,3) uint8 RGB)


def natural_key(path: Path) -> list[int | str]:
    """Sort key that orders frame_2.png before frame_10.png."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _checked_fps(fps: float, path: Path, origin: str) -> tuple[float, bool]:
    """(fps, assumed): `fps` if usable, else DEFAULT_FPS with a warning."""
    if np.isfinite(fps) and 0 < fps <= MAX_PLAUSIBLE_FPS:
        return float(fps), False
    warnings.warn(f"{path}: {origin} frame rate {fps!r} is not usable; assuming {DEFAULT_FPS:g} fps "
                  "(pass fps=... to set it)", stacklevel=4)
    return DEFAULT_FPS, True


class FrameSource:
    """Upright RGB frames of one video or image folder; iterate once for `(index, time_s, rgb)`.

    Attributes:
        path: the input.
        fps: frames per second used for frame times (the argument, the file's, or DEFAULT_FPS).
        fps_assumed: True when fps is DEFAULT_FPS because none was given and the input had no usable one
            (always for a folder without the fps argument).
        width, height: frame size in pixels after rotation.
        declared_frames: frame count the container declares (for a folder: its image files), None when
            unknown; may be wrong for damaged files.
        rotation: clockwise degrees applied to make frames upright (0, 90, 180, 270).
        frames_read: frames yielded so far.
        ended_early: True once iteration stopped before `declared_frames`.
        skipped: 'file: why' for each image of a folder that was skipped.
    """

    def __init__(self, path: Path, fps: float, fps_assumed: bool, declared_frames: int | None, rotation: int,
                 first: Frame, rest: Iterator[Frame], skipped: list[str] | None = None,
                 capture: cv2.VideoCapture | None = None) -> None:
        self.path = path
        self.fps = fps
        self.fps_assumed = fps_assumed
        self.declared_frames = declared_frames
        self.rotation = rotation
        self.height, self.width = first[2].shape[:2]
        self.frames_read = 0
        self.ended_early = False
        self.skipped = [] if skipped is None else skipped  # filled in while iterating, too
        self._first: Frame | None = first
        self._rest = rest
        self._capture = capture

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright frames, the order cv2.VideoWriter takes."""
        return self.width, self.height

    @property
    def end_note(self) -> str | None:
        """One line for the user when the video stopped early, else None."""
        if not self.ended_early:
            return None
        return (f"video stopped after {self.frames_read} of its {self.declared_frames} frames: the rest could "
                f"not be decoded ({self.path} may be truncated or corrupt); results cover the frames read")

    def __iter__(self) -> Iterator[Frame]:
        if self._first is None:
            raise RuntimeError(f"{self.path}: frames can be iterated only once; call open_frames again")
        first, self._first = self._first, None
        self.frames_read = 1
        yield first
        for frame in self._rest:
            self.frames_read += 1
            yield frame
        if self.declared_frames is not None and self.frames_read + len(self.skipped) < self.declared_frames:
            self.ended_early = True

    def close(self) -> None:
        """Release the video file (also done when iteration ends)."""
        self._rest.close()
        if self._capture is not None:
            self._capture.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_frames(source: str | Path, fps: float | None = None) -> FrameSource:
    """Open a video file or a folder of images and check that at least one frame decodes.

    Args:
        source: a video file OpenCV can read, or a folder of images (sorted naturally by name).
        fps: frame rate for frame times; overrides the video's own. Default: the video's, or DEFAULT_FPS
            for a folder.

    Raises:
        PoseLabError: the path is missing, not a video, has no decodable frame, or a folder has no images.
    """
    path = Path(source)
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise PoseLabError(f"fps must be a positive number of frames per second, got {fps}")
    if path.is_dir():
        return _open_folder(path, fps)
    if not path.is_file():
        raise PoseLabError(f"{path}: no such file or folder; give a video file or a folder of frame images")
    return _open_video(path, fps)


def _open_video(path: Path, fps: float | None) -> FrameSource:
    if path.stat().st_size == 0:
        raise PoseLabError(f"{path}: the file is empty (0 bytes); was the copy or download interrupted?")
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise PoseLabError(f"{path}: OpenCV cannot open this as a video (not a video, an unsupported format, "
                           "or an MP4 cut short before its index); convert it to H.264 MP4 or give a folder "
                           "of frame images")
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    rotation = int(capture.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
    if capture.get(cv2.CAP_PROP_ORIENTATION_AUTO):
        rotation = 0  # the backend kept rotating by itself: its frames are already upright
    elif rotation and rotation not in _ROTATIONS:
        warnings.warn(f"{path}: rotation metadata of {rotation} degrees is not a multiple of 90; ignored",
                      stacklevel=4)
        rotation = 0
    ok, first = capture.read()
    if not ok:
        capture.release()
        raise PoseLabError(f"{path}: the video has no frame OpenCV can decode; check that it plays, "
                           "or re-encode it to H.264 MP4")
    rate, assumed = (fps, False) if fps is not None else _checked_fps(capture.get(cv2.CAP_PROP_FPS), path, "its")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return FrameSource(path, rate, assumed, count if count > 0 else None, rotation,
                       (0, 0.0, _upright(first, rotation)), _video_frames(capture, rate, rotation), capture=capture)


def _upright(frame_bgr: np.ndarray, rotation: int) -> np.ndarray:
    frame = cv2.rotate(frame_bgr, _ROTATIONS[rotation]) if rotation else frame_bgr
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _video_frames(capture: cv2.VideoCapture, fps: float, rotation: int) -> Iterator[Frame]:
    """Frames after the first; stops at the end of the stream or at the first frame that fails to decode."""
    index = 1
    try:
        while True:
            try:
                ok, frame = capture.read()
            except cv2.error:  # a damaged packet can make the decoder throw instead of returning False
                return
            if not ok:
                return
            yield index, index / fps, _upright(frame, rotation)
            index += 1
    finally:
        capture.release()


def _open_folder(path: Path, fps: float | None) -> FrameSource:
    files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=natural_key)
    if not files:
        raise PoseLabError(f"{path}: no images ({' '.join(IMAGE_SUFFIXES)}) in this folder; give a video "
                           "file or a folder of frame images")
    rate = DEFAULT_FPS if fps is None else fps
    skipped: list[str] = []
    for index, file in enumerate(files):
        image = read_image(file)
        if image is not None:
            first = (index, index / rate, image)
            rest = _folder_frames(files, index + 1, rate, image.shape, skipped)
            return FrameSource(path, rate, fps is None, len(files), 0, first, rest, skipped)
        skipped.append(_skip(file, "cannot be decoded as an image"))
    raise PoseLabError(f"{path}: none of its {len(files)} images can be decoded; check the files")


def _folder_frames(files: list[Path], start: int, fps: float, shape: tuple[int, ...],
                   skipped: list[str]) -> Iterator[Frame]:
    """Frames of files[start:]; index = position in `files`, so a skipped file leaves a gap."""
    for index in range(start, len(files)):
        image = read_image(files[index])
        if image is None:
            skipped.append(_skip(files[index], "cannot be decoded as an image"))
        elif image.shape != shape:
            skipped.append(_skip(files[index], f"size {image.shape[1]}x{image.shape[0]} differs from the "
                                               f"first frame's {shape[1]}x{shape[0]}"))
        else:
            yield index, index / fps, image


def _skip(file: Path, reason: str) -> str:
    """Warn about a skipped image; returns the entry for FrameSource.skipped."""
    warnings.warn(f"skipped {file}: {reason}", stacklevel=2)
    return f"{file}: {reason}"
