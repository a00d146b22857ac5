"""The files an exercise analysis leaves behind, written as frames arrive so a run cut short keeps its results.

:class:`ExerciseOutputs` is a context manager fed one :class:`~pose_lab.exercise.records.FrameResult` (and
optionally its RGB frame) at a time. In the output folder it writes:

- `frames.csv`: one row per frame, flushed as it is written (frame, time, person, region x0/y0/side/rotation,
  x/y/visibility per joint by name, every angle, primary angle, phase, reps, notes). Columns are fixed at the
  first frame; an unmeasured value is an empty cell.
- `annotated.mp4` (when `annotate` is on): the frame with the skeleton, primary angle, rep count, phase and the
  latest rep's feedback, same size and fps as the input ('mp4v': the encoder every OpenCV wheel has; it
  needs even sizes, so an odd width or height loses its last pixel column or row).
- on leaving the `with` block, also through an exception or Ctrl-C: `angle.png`, the primary angle over time
  with each rep's span shaded and numbered and its bottom marked (frames without a measurement are gaps), and
  `summary.json` last: counts, whether the run is complete and why not, the reps with feedback, a feedback
  tally, the file names and the caller's extra metadata.

:func:`summary_text` turns summary.json's content into the few lines the command prints.
"""

from __future__ import annotations

import csv
import math
import textwrap
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import cv2
import numpy as np
from matplotlib.figure import Figure

from pose_lab import skeleton
from pose_lab.errors import PoseLabError
from pose_lab.exercise.records import FrameResult, Rep
from pose_lab.region import Region
from pose_lab.jsonfile import write_json
from pose_lab.viz import draw_skeleton

CSV_NAME = "frames.csv"
VIDEO_NAME = "annotated.mp4"
PLOT_NAME = "angle.png"
SUMMARY_NAME = "summary.json"
GOOD_FORM = "good form"  # how a rep without feedback messages is shown and tallied

_TEXT_COLOUR = (255, 255, 255)
_GOOD_COLOUR = (80, 220, 80)
_WARN_COLOUR = (255, 170, 40)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _cell(value: float, digits: int) -> str:
    """A CSV number; empty when not measured, so spreadsheets and pandas both read it as missing."""
    return f"{value:.{digits}f}" if math.isfinite(value) else ""


class ExerciseOutputs:
    """Streams per-frame results to CSV (and MP4), then writes the plot and summary.json on exit.

    Args:
        out_dir: folder for the files; created if missing.
        exercise: exercise name (e.g. 'squat'), for the summary, overlay and plot title.
        video: the input path, recorded in the summary.
        fps: frame rate of the input, used for the annotated video.
        annotate: write annotated.mp4 (needs the frame passed to :meth:`write`); off is much faster.
        angle_label: what the primary angle measures (e.g. 'knee'), for the overlay and plot.
        angle_names: angle columns of the CSV; default: the angles of the first frame written.
        visibility_threshold: joints below it are drawn hollow.
    """

    def __init__(self, out_dir: str | Path, exercise: str, video: str | Path, fps: float, annotate: bool = True,
                 angle_label: str = "angle", angle_names: list[str] | None = None,
                 visibility_threshold: float = 0.5) -> None:
        self.out_dir = Path(out_dir)
        self.exercise = exercise
        self.video = Path(video)
        self.fps = fps
        self.annotate = annotate
        self.angle_label = angle_label
        self.visibility_threshold = visibility_threshold
        self.extra: dict[str, Any] = {}  # merged into summary.json (timings, model, settings)
        self.summary: dict[str, Any] | None = None  # what summary.json holds, once closed
        self.reps: list[Rep] = []
        self._angle_names = angle_names
        self._indices: list[int] = []
        self._times: list[float] = []
        self._angles: list[float] = []
        self.frames_written = 0  # the frames written so far (the summary's frames_read) ...
        self.frames_with_person = 0  # ... and how many of them had a person
        self._end_reason: str | None = None
        self._writer: cv2.VideoWriter | None = None
        self._video_size: tuple[int, int] | None = None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            # Line-buffered: every row reaches the file at its newline, so a crash loses no finished frame.
            self._csv_file = open(self.out_dir / CSV_NAME, "w", newline="", buffering=1)  # noqa: SIM115
        except OSError as error:
            raise PoseLabError(f"cannot write {self.out_dir / CSV_NAME}: {error.strerror}; is the output "
                               "folder writable?") from None
        self._csv = csv.writer(self._csv_file, lineterminator="\n")
        if angle_names is not None:
            self._csv.writerow(self._header())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc_type is KeyboardInterrupt:
            self.mark_incomplete("interrupted by the user (Ctrl-C)")
        elif exc is not None:
            self.mark_incomplete(f"stopped by an error: {exc_type.__name__}: {exc}")
        self.close()

    def mark_incomplete(self, reason: str) -> None:
        """Record why the results do not cover the whole video (e.g. FrameSource.end_note); the first reason wins."""
        self._end_reason = self._end_reason or reason

    def _header(self) -> list[str]:
        joints = [f"{name}_{part}" for name in skeleton.JOINT_NAMES for part in ("x", "y", "visibility")]
        angles = [f"angle_{name}" for name in self._angle_names or []]
        return ["frame", "time_s", "person", *(f"region_{field}" for field in Region._fields), *joints, *angles,
                "primary_angle", "phase", "reps", "notes"]

    def write(self, result: FrameResult, frame_rgb: np.ndarray | None = None) -> None:
        """Add one frame: a CSV row, the plot's data, its completed reps and, when annotating, a video frame."""
        if self._angle_names is None:
            self._angle_names = list(result.angles)
            self._csv.writerow(self._header())
        unknown = set(result.angles) - set(self._angle_names)
        if unknown:
            raise ValueError(f"frame {result.index} has angles {sorted(unknown)} that are not CSV columns "
                             f"{self._angle_names}: pass angle_names= with every angle the pipeline measures")
        self._csv.writerow(self._row(result))
        self.frames_written += 1
        self.frames_with_person += bool(result.person)
        self._indices.append(result.index)
        self._times.append(result.time)
        self._angles.append(result.primary_angle)
        self.reps.extend(result.completed)
        if self.annotate:
            if frame_rgb is None:
                raise ValueError("annotate=True needs the frame: call write(result, frame_rgb)")
            self._write_video_frame(self.annotated_frame(frame_rgb, result))

    def _row(self, result: FrameResult) -> list[Any]:
        region = Region(*result.region) if result.region is not None else ("",) * len(Region._fields)
        joints = []
        for (x, y), visibility in zip(result.keypoints, result.visibility, strict=True):
            joints += [_cell(float(x), 2), _cell(float(y), 2), _cell(float(visibility), 4)]
        angles = [_cell(float(result.angles.get(name, math.nan)), 2) for name in self._angle_names or []]
        return [result.index, f"{result.time:.4f}", int(result.person), *region, *joints, *angles,
                _cell(float(result.primary_angle), 2), result.phase, result.reps, "; ".join(result.notes)]

    def annotated_frame(self, frame_rgb: np.ndarray, result: FrameResult) -> np.ndarray:
        """The frame with skeleton and a text panel: reps, primary angle, phase, latest rep's feedback."""
        image = frame_rgb
        if result.person:
            image = draw_skeleton(frame_rgb, result.keypoints, result.visibility, self.visibility_threshold)
        angle = f"{result.primary_angle:.0f} deg" if math.isfinite(result.primary_angle) else "--"
        lines = [(f"{self.exercise}  reps: {result.reps}", _TEXT_COLOUR),
                 (f"{self.angle_label}: {angle}   {result.phase}", _TEXT_COLOUR)]
        if not result.person:
            lines.append(("no person found", _WARN_COLOUR))
        if self.reps:
            latest = self.reps[-1]
            messages = latest.feedback or [GOOD_FORM]
            colour = _WARN_COLOUR if latest.feedback else _GOOD_COLOUR
            lines += [(f"rep {latest.number}: {message}", colour) for message in messages]
        return draw_text_panel(image, lines)

    def _write_video_frame(self, image_rgb: np.ndarray) -> None:
        height, width = image_rgb.shape[:2]
        if self._writer is None:
            path = self.out_dir / VIDEO_NAME
            self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self._writer.isOpened():
                raise PoseLabError(f"cannot write {path}: OpenCV could not start an mp4v video there; is the "
                                   "output folder writable? (or turn the annotated video off)")
            self._video_size = (width, height)
        if (width, height) != self._video_size:
            # VideoWriter silently drops frames of another size: fail loudly instead.
            raise ValueError(f"frame of {width}x{height} after frames of {self._video_size[0]}x"
                             f"{self._video_size[1]}: the annotated video needs one frame size")
        self._writer.write(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        """Finish every file: CSV and video closed, then angle.png and summary.json (even if the plot fails)."""
        if self.summary is not None:
            return
        if self._angle_names is None:  # no frame arrived: still leave a CSV a reader can parse
            self._angle_names = []
            self._csv.writerow(self._header())
        self._csv_file.close()
        if self._writer is not None:
            self._writer.release()
        self.summary = self._summary()
        try:
            figure = angle_figure(np.array(self._indices), np.array(self._times), np.array(self._angles, dtype=float),
                                  self.reps, f"{self.exercise}: {len(self.reps)} reps", self.angle_label)
            figure.savefig(self.out_dir / PLOT_NAME, dpi=120)
        finally:
            write_json(self.out_dir / SUMMARY_NAME, self.summary)

    def _summary(self) -> dict[str, Any]:
        files = {"csv": CSV_NAME, "plot": PLOT_NAME}
        if self._writer is not None:
            files["video"] = VIDEO_NAME
        return {
            "exercise": self.exercise,
            "video": str(self.video),
            "fps": round(self.fps, 3),
            "frames_read": self.frames_written,
            "frames_with_person": self.frames_with_person,
            "duration_s": round(self._times[-1] + 1 / self.fps, 3) if self._times else 0.0,
            "primary_angle": self.angle_label,
            "complete": self._end_reason is None,
            "incomplete_reason": self._end_reason,
            "total_reps": len(self.reps),
            "reps": [rep.to_json() for rep in self.reps],
            "feedback": feedback_tally(self.reps),
            "files": files,
            **self.extra,
        }


def feedback_tally(reps: list[Rep]) -> dict[str, int]:
    """How many reps got each message, most frequent first; reps without messages count as GOOD_FORM."""
    counts = Counter(message for rep in reps for message in (rep.feedback or [GOOD_FORM]))
    return dict(counts.most_common())


def draw_text_panel(image_rgb: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """Lines of coloured text on a dark translucent panel at the top left, sized to the frame's width.

    The font scales with the width (a 406-pixel portrait clip and a 1280-pixel one both get about 40
    characters per line); longer lines wrap instead of running off the frame.
    """
    height, width = image_rgb.shape[:2]
    scale = float(np.clip(width / 900, 0.35, 1.2))
    thickness = max(1, round(scale * 2))
    margin = max(4, round(width / 100))
    char_width = cv2.getTextSize("n", _FONT, scale, thickness)[0][0]
    columns = max(8, (width - 4 * margin) // max(char_width, 1))
    wrapped = [(part, colour) for text, colour in lines for part in textwrap.wrap(text, columns) or [""]]
    line_height = cv2.getTextSize("Ag", _FONT, scale, thickness)[0][1] * 2
    panel_width = max(cv2.getTextSize(text, _FONT, scale, thickness)[0][0] for text, _ in wrapped) + 2 * margin
    panel_height = line_height * len(wrapped) + margin
    canvas = np.ascontiguousarray(image_rgb).copy()
    x1, y1 = min(width, margin + panel_width), min(height, margin + panel_height)
    region = canvas[margin:y1, margin:x1]
    region[:] = (region * 0.4).astype(np.uint8)  # darken, keeping the scene visible underneath
    for row, (text, colour) in enumerate(wrapped):
        baseline = margin + line_height * (row + 1) - line_height // 4
        cv2.putText(canvas, text, (2 * margin, baseline), _FONT, scale, colour, thickness, cv2.LINE_AA)
    return canvas


def angle_figure(frames: np.ndarray, times: np.ndarray, angles: np.ndarray, reps: list[Rep], title: str,
                 angle_label: str = "angle") -> Figure:
    """Primary angle (degrees) over time (seconds): rep spans shaded and numbered, bottoms marked.

    Args:
        frames, times, angles: (N,) frame indices, their times and primary angles; NaN angles (no person, joints
            not trusted) break the curve instead of being bridged by a line.
        reps: the counted reps; a bottom is marked at its frame's time and the rep's bottom angle.
    """
    figure = Figure(figsize=(10, 4), layout="constrained")
    ax = figure.subplots()
    ax.plot(times, angles, color="tab:blue", linewidth=1.5, label=f"{angle_label} angle")
    for rep in reps:
        ax.axvspan(rep.start_time, rep.end_time, color="tab:green", alpha=0.15, linewidth=0)
        ax.annotate(str(rep.number), ((rep.start_time + rep.end_time) / 2, 1.0), xycoords=("data", "axes fraction"),
                    ha="center", va="bottom", fontsize=9)
    if reps:
        bottom_times = np.interp([rep.bottom for rep in reps], frames, times)
        ax.plot(bottom_times, [rep.bottom_angle for rep in reps], "v", color="tab:red", label="rep bottom")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{angle_label} angle (deg)")
    ax.set_title(title, pad=14)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return figure


def summary_text(summary: dict[str, Any], out_dir: str | Path) -> str:
    """The few lines the command prints: reps, one line per rep, incompleteness, where the files are."""
    duration = summary["duration_s"]
    lines = [(f"{summary['exercise']}: {summary['total_reps']} reps in {duration:.1f} s "
              f"({summary['frames_read']} frames, a person in {summary['frames_with_person']})")]
    for rep in summary["reps"]:
        feedback = "; ".join(rep["feedback"]) or GOOD_FORM
        lines.append(f"  rep {rep['number']}: range {rep['range_of_motion_deg']:.0f} deg, "
                     f"{rep['duration_s']:.1f} s, {feedback}")
    if not summary["complete"]:
        lines.append(f"incomplete: {summary['incomplete_reason']}")
    files = ", ".join(summary["files"].values())
    lines.append(f"wrote {SUMMARY_NAME}, {files} in {out_dir}")
    return "\n".join(lines)
