"""FrameSource: frame order, size, time and rotation from tiny generated videos and image folders; clean
errors for user mistakes; a damaged video stops with the frames read so far."""

from __future__ import annotations

import re
import struct
from contextlib import nullcontext
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose_lab.errors import PoseLabError
from pose_lab.exercise.video import DEFAULT_FPS, open_frames

FPS = 10.0


def shade(index: int) -> int:
    """Grey level that encodes a frame's index (far apart, so lossy mp4v keeps them distinguishable)."""
    return 10 + 20 * index


def decode_index(image: np.ndarray) -> int:
    return round((float(image.mean()) - 10) / 20)


def write_video(path: Path, width: int, height: int, frames: int = 10, fourcc: str = "mp4v",
                noise: bool = False) -> Path:
    """Solid frames whose grey level encodes the index, plus a red block at the top left (BGR order)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (width, height))
    assert writer.isOpened(), f"cannot write {fourcc} here"
    rng = np.random.default_rng(0)
    for index in range(frames):
        frame = (rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if noise
                 else np.full((height, width, 3), shade(index), np.uint8))
        frame[:8, :8] = (0, 0, 255)
        writer.write(frame)
    writer.release()
    return path


def find_box(data: bytes, path: list[str], start: int = 0, end: int | None = None) -> tuple[int, int]:
    """(offset, size) of the MP4 box at `path` (e.g. ['moov', 'trak', 'tkhd'])."""
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        if kind.decode() == path[0]:
            return (start, size) if len(path) == 1 else find_box(data, path[1:], start + 8, start + size)
        start += size
    raise KeyError(path)


# Track-header display matrices (16.16 fixed point, w in 2.30) for a clockwise display rotation.
DISPLAY_MATRICES = {
    90: (0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30),
    180: (-(1 << 16), 0, 0, 0, -(1 << 16), 0, 0, 0, 1 << 30),
    270: (0, -(1 << 16), 0, 1 << 16, 0, 0, 0, 0, 1 << 30),
}


def set_rotation(path: Path, degrees: int) -> Path:
    """Write the rotation into the track header, as a phone does for a clip filmed upright."""
    data = bytearray(path.read_bytes())
    offset, _ = find_box(data, ["moov", "trak", "tkhd"])
    assert data[offset + 8] == 0, "expected a version-0 tkhd"
    matrix = offset + 8 + 4 + 20 + 8 + 8  # header, version/flags, times/ids/duration, reserved, layer..volume
    data[matrix:matrix + 36] = struct.pack(">9i", *DISPLAY_MATRICES[degrees])
    path.write_bytes(data)
    return path


def make_faststart(path: Path) -> Path:
    """Move the index (moov) before the media data, as streaming-friendly MP4s have it."""
    data = bytes(path.read_bytes())
    moov_at, moov_size = find_box(data, ["moov"])
    assert moov_at + moov_size == len(data), "expected moov at the end, as OpenCV writes it"
    moov = bytearray(data[moov_at:])
    stco, _ = find_box(moov, ["moov", "trak", "mdia", "minf", "stbl", "stco"])
    count = struct.unpack(">I", moov[stco + 12:stco + 16])[0]
    for entry in range(count):  # chunk offsets move by the size of the index now in front of them
        at = stco + 16 + 4 * entry
        moov[at:at + 4] = struct.pack(">I", struct.unpack(">I", moov[at:at + 4])[0] + moov_size)
    ftyp_at, ftyp_size = find_box(data, ["ftyp"])
    body = data[ftyp_at + ftyp_size:moov_at]
    path.write_bytes(data[:ftyp_at + ftyp_size] + bytes(moov) + body)
    return path


@pytest.mark.parametrize(("width", "height"), [(64, 48), (48, 64)], ids=["landscape", "portrait"])
def test_video_frames_in_order_with_size_and_time(tmp_path: Path, width: int, height: int) -> None:
    source = open_frames(write_video(tmp_path / "clip.mp4", width, height))
    assert (source.fps, source.size, source.declared_frames, source.rotation) == (FPS, (width, height), 10, 0)
    frames = list(source)
    assert [index for index, _, _ in frames] == list(range(10))
    assert [time for _, time, _ in frames] == pytest.approx([i / FPS for i in range(10)])
    for index, _, image in frames:
        assert image.shape == (height, width, 3) and image.dtype == np.uint8
        assert decode_index(image[16:, 16:]) == index
        red, _, blue = image[:8, :8].reshape(-1, 3).mean(axis=0)
        assert red > 200 > blue  # RGB, not OpenCV's BGR
    assert source.frames_read == 10 and not source.ended_early and source.end_note is None


def test_explicit_fps_overrides_the_file(tmp_path: Path) -> None:
    source = open_frames(write_video(tmp_path / "clip.mp4", 64, 48), fps=25)
    assert source.fps == 25 and [t for _, t, _ in source][1] == pytest.approx(1 / 25)


def test_unusable_fps_falls_back_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_capture = cv2.VideoCapture

    class NoFrameRate:  # a capture whose container has no frame rate (subclassing the cv2 class crashes)
        def __init__(self, *args: object) -> None:
            self._capture = real_capture(*args)

        def get(self, prop: int) -> float:
            return 0.0 if prop == cv2.CAP_PROP_FPS else self._capture.get(prop)

        def __getattr__(self, name: str) -> object:
            return getattr(self._capture, name)

    monkeypatch.setattr(cv2, "VideoCapture", NoFrameRate)
    with pytest.warns(UserWarning, match="assuming 30 fps"):
        source = open_frames(write_video(tmp_path / "clip.mp4", 64, 48))
    assert source.fps == DEFAULT_FPS and source.fps_assumed


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_metadata_applied_exactly_once(tmp_path: Path, degrees: int) -> None:
    path = set_rotation(write_video(tmp_path / "phone.mp4", 64, 48, frames=3), degrees)
    source = open_frames(path)
    frames = [image for _, _, image in source]
    upright = (48, 64) if degrees in (90, 270) else (64, 48)
    assert source.rotation == degrees and source.size == upright
    # Where the top-left red block of the stored pixels ends up once turned clockwise for display.
    corner = {90: (slice(0, 8), slice(-8, None)), 180: (slice(-8, None), slice(-8, None)),
              270: (slice(-8, None), slice(0, 8))}[degrees]
    assert frames[0][corner][..., 0].mean() > 200 and frames[0][:8, :8][..., 0].mean() < 100
    # The same frames as OpenCV's own auto-rotation gives.
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    ok, reference = capture.read()
    capture.release()
    assert ok and np.array_equal(frames[0], cv2.cvtColor(reference, cv2.COLOR_BGR2RGB))


def test_folder_sorted_naturally_with_default_fps(tmp_path: Path) -> None:
    for index in range(12):  # frame_10 and frame_11 must come after frame_9
        cv2.imwrite(str(tmp_path / f"frame_{index}.png"), np.full((48, 64, 3), shade(index), np.uint8))
    (tmp_path / "notes.txt").write_text("not a frame")
    source = open_frames(tmp_path)
    assert (source.fps, source.size, source.declared_frames) == (DEFAULT_FPS, (64, 48), 12)
    assert source.fps_assumed
    frames = list(source)
    assert [decode_index(image) for _, _, image in frames] == list(range(12))
    assert frames[-1][1] == pytest.approx(11 / DEFAULT_FPS)
    given = open_frames(tmp_path, fps=5)
    assert given.fps == 5 and not given.fps_assumed


def test_folder_skips_unreadable_and_mismatched_images(tmp_path: Path) -> None:
    for index in range(5):
        cv2.imwrite(str(tmp_path / f"{index:03d}.png"), np.full((48, 64, 3), shade(index), np.uint8))
    (tmp_path / "002.png").write_text("broken")
    cv2.imwrite(str(tmp_path / "003.png"), np.zeros((10, 10, 3), np.uint8))
    source = open_frames(tmp_path)
    with pytest.warns(UserWarning, match="skipped"):
        indices = [index for index, _, _ in source]
    assert indices == [0, 1, 4]  # frame numbers keep the file order
    assert len(source.skipped) == 2 and not source.ended_early


@pytest.mark.parametrize("content", ["empty folder", "no images", "broken images"])
def test_folder_without_usable_images_is_a_user_error(tmp_path: Path, content: str) -> None:
    if content == "no images":
        (tmp_path / "readme.txt").write_text("hello")
    if content == "broken images":
        (tmp_path / "a.png").write_text("not a png")
    warns = pytest.warns(UserWarning, match="skipped") if content == "broken images" else nullcontext()
    with pytest.raises(PoseLabError, match=re.escape(str(tmp_path))), warns:
        open_frames(tmp_path)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(PoseLabError, match="no such file or folder"):
        open_frames(tmp_path / "nope.mp4")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(PoseLabError, match="empty"):
        open_frames(tmp_path / "empty.mp4")


def test_text_file_named_mp4(tmp_path: Path) -> None:
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 50)
    with pytest.raises(PoseLabError, match="cannot open"):
        open_frames(tmp_path / "notes.mp4")


def test_bad_fps_argument(tmp_path: Path) -> None:
    with pytest.raises(PoseLabError, match="fps"):
        open_frames(write_video(tmp_path / "clip.mp4", 64, 48), fps=0)


def cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def test_mp4_cut_before_its_index_is_a_user_error(tmp_path: Path) -> None:
    path = cut_in_half(write_video(tmp_path / "clip.mp4", 64, 48, frames=20, noise=True))
    with pytest.raises(PoseLabError, match="cut short"):
        open_frames(path)


@pytest.mark.parametrize(("name", "fourcc"), [("fast.mp4", "mp4v"), ("clip.mkv", "mp4v"), ("clip.avi", "MJPG")])
def test_truncated_video_stops_cleanly_with_frames_read(tmp_path: Path, name: str, fourcc: str) -> None:
    path = write_video(tmp_path / name, 64, 48, frames=20, fourcc=fourcc, noise=True)
    if name == "fast.mp4":
        make_faststart(path)
        assert len(list(open_frames(path))) == 20  # the relocation itself is sound
    source = open_frames(cut_in_half(path))
    frames = list(source)
    assert 0 < len(frames) < 20 and source.frames_read == len(frames)
    assert [index for index, _, _ in frames] == list(range(len(frames)))
    assert source.declared_frames == 20 and source.ended_early
    assert f"after {len(frames)} of its 20 frames" in source.end_note


def test_frames_iterate_once(tmp_path: Path) -> None:
    with open_frames(write_video(tmp_path / "clip.mp4", 64, 48)) as source:
        list(source)
        with pytest.raises(RuntimeError, match="only once"):
            list(source)
