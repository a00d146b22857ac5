"""ExerciseOutputs: CSV rows, summary.json, annotated MP4 and angle plot from synthetic frame results; files
kept (and marked incomplete) when the run stops inside the `with` block."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose_lab import skeleton
from pose_lab.exercise.outputs import (
    CSV_NAME,
    PLOT_NAME,
    SUMMARY_NAME,
    VIDEO_NAME,
    ExerciseOutputs,
    draw_text_panel,
    feedback_tally,
    summary_text,
)
from pose_lab.exercise.records import FrameResult, Rep

FPS = 10.0
FRAMES = 30
WIDTH, HEIGHT = 64, 48
ANGLES = ["left_knee", "right_knee"]
REPS = [
    Rep(1, start=2, bottom=7, end=12, start_time=0.2, end_time=1.2, range_of_motion=80.0, top_angle=170.0,
        bottom_angle=90.0),
    Rep(2, start=14, bottom=19, end=24, start_time=1.4, end_time=2.4, range_of_motion=60.0, top_angle=170.0,
        bottom_angle=110.0, feedback=["knees cave in"]),
]
NO_PERSON = {26, 27}


def frame_result(index: int) -> FrameResult:
    """Frame `index` of a synthetic squat: angle dips in each rep; no person in NO_PERSON."""
    person = index not in NO_PERSON
    angle = 130.0 + 40.0 * math.cos(2 * math.pi * (index - 2) / 12) if person else math.nan
    keypoints = np.tile([[WIDTH / 2, HEIGHT / 2]], (skeleton.NUM_JOINTS, 1)) + np.arange(skeleton.NUM_JOINTS)[:, None]
    if not person:
        keypoints = np.full((skeleton.NUM_JOINTS, 2), np.nan)
    visibility = np.full(skeleton.NUM_JOINTS, 0.9 if person else np.nan)
    done = [rep for rep in REPS if rep.end == index]
    return FrameResult(index=index, time=index / FPS, person=person, keypoints=keypoints, visibility=visibility,
                       region=None if not person else (0, 0, 48, 90) if index == 4 else (0, 0, 48),
                       angles={"left_knee": angle, "right_knee": angle + 1 if index != 5 else math.nan},
                       primary_angle=angle, phase="down" if 7 <= index % 12 <= 11 else "up",
                       reps=sum(rep.end <= index for rep in REPS), completed=done,
                       notes=["pose lost"] if index == 26 else [])


def image(index: int) -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), 8 * index, np.uint8)


def read_rows(out_dir: Path) -> list[dict[str, str]]:
    with open(out_dir / CSV_NAME, newline="") as file:
        return list(csv.DictReader(file))


def test_all_outputs_written(tmp_path: Path) -> None:
    with ExerciseOutputs(tmp_path, "squat", "clip.mp4", FPS, angle_label="knee") as outputs:
        for index in range(FRAMES):
            outputs.write(frame_result(index), image(index))
        outputs.extra["timings"] = {"total_s": 1.5}

    rows = read_rows(tmp_path)
    assert len(rows) == FRAMES
    header = list(rows[0])
    assert header[:7] == ["frame", "time_s", "person", "region_x0", "region_y0", "region_side", "region_rotation"]
    assert header[-6:] == ["angle_left_knee", "angle_right_knee", "primary_angle", "phase", "reps", "notes"]
    assert header[7:10] == ["right_ankle_x", "right_ankle_y", "right_ankle_visibility"]
    assert len(header) == 7 + 3 * skeleton.NUM_JOINTS + len(ANGLES) + 4
    assert rows[3]["region_side"] == "48" and rows[3]["region_rotation"] == "0.0"  # a 3-tuple: upright
    assert rows[4]["region_rotation"] == "90" and float(rows[4]["right_ankle_x"]) == pytest.approx(WIDTH / 2)
    assert rows[3]["frame"] == "3" and float(rows[3]["time_s"]) == pytest.approx(0.3)
    assert float(rows[3]["primary_angle"]) == pytest.approx(frame_result(3).primary_angle, abs=0.01)
    assert float(rows[3]["neck_x"]) == pytest.approx(WIDTH / 2 + skeleton.joint_index("neck"))
    assert rows[5]["angle_right_knee"] == ""  # unmeasured -> empty cell
    assert rows[26]["person"] == "0" and rows[26]["neck_x"] == "" and rows[26]["region_x0"] == ""
    assert rows[26]["notes"] == "pose lost" and rows[-1]["reps"] == "2"

    summary = json.loads((tmp_path / SUMMARY_NAME).read_text())
    assert summary["exercise"] == "squat" and summary["video"] == "clip.mp4" and summary["fps"] == FPS
    assert summary["frames_read"] == FRAMES and summary["frames_with_person"] == FRAMES - len(NO_PERSON)
    assert summary["complete"] and summary["incomplete_reason"] is None
    assert summary["total_reps"] == 2 and summary["reps"] == [rep.to_json() for rep in REPS]
    assert summary["feedback"] == {"good form": 1, "knees cave in": 1}
    assert summary["files"] == {"csv": CSV_NAME, "plot": PLOT_NAME, "video": VIDEO_NAME}
    assert summary["timings"] == {"total_s": 1.5}
    assert outputs.summary == summary

    capture = cv2.VideoCapture(str(tmp_path / VIDEO_NAME))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == FRAMES
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (WIDTH, HEIGHT)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    capture.release()
    plot = cv2.imread(str(tmp_path / PLOT_NAME))
    assert plot is not None and plot.shape[1] > 600


def test_without_video(tmp_path: Path) -> None:
    with ExerciseOutputs(tmp_path, "squat", "clip.mp4", FPS, annotate=False) as outputs:
        for index in range(FRAMES):
            outputs.write(frame_result(index))
    assert not (tmp_path / VIDEO_NAME).exists()
    assert "video" not in outputs.summary["files"] and len(read_rows(tmp_path)) == FRAMES


@pytest.mark.parametrize("stop", [RuntimeError("network exploded"), KeyboardInterrupt()])
def test_stop_inside_the_block_keeps_outputs(tmp_path: Path, stop: BaseException) -> None:
    with pytest.raises(type(stop)), ExerciseOutputs(tmp_path, "squat", "clip.mp4", FPS) as outputs:
        for index in range(15):
            outputs.write(frame_result(index), image(index))
        raise stop
    assert len(read_rows(tmp_path)) == 15
    summary = json.loads((tmp_path / SUMMARY_NAME).read_text())
    assert not summary["complete"] and summary["frames_read"] == 15 and summary["total_reps"] == 1
    expected = "network exploded" if isinstance(stop, RuntimeError) else "Ctrl-C"
    assert expected in summary["incomplete_reason"]
    assert (tmp_path / PLOT_NAME).is_file() and (tmp_path / VIDEO_NAME).is_file()


def test_rows_reach_the_disk_before_close(tmp_path: Path) -> None:
    outputs = ExerciseOutputs(tmp_path, "squat", "clip.mp4", FPS, annotate=False)
    for index in range(3):
        outputs.write(frame_result(index))
    assert len(read_rows(tmp_path)) == 3  # what a crash that skips close() would leave
    outputs.close()


def test_early_video_end_is_recorded(tmp_path: Path) -> None:
    with ExerciseOutputs(tmp_path, "squat", "clip.mp4", FPS, annotate=False) as outputs:
        for index in range(5):
            outputs.write(frame_result(index))
        outputs.mark_incomplete("video stopped after 5 of its 30 frames")
    assert outputs.summary["incomplete_reason"] == "video stopped after 5 of its 30 frames"
    text = summary_text(outputs.summary, tmp_path)
    assert "incomplete: video stopped after 5 of its 30 frames" in text


def test_no_frames_still_leaves_readable_files(tmp_path: Path) -> None:
    with ExerciseOutputs(tmp_path, "squat", "clip.mp4", FPS, angle_names=ANGLES) as outputs:
        pass
    header = (tmp_path / CSV_NAME).read_text().splitlines()
    assert len(header) == 1 and "angle_left_knee" in header[0]
    assert outputs.summary["frames_read"] == 0 and outputs.summary["total_reps"] == 0
    assert (tmp_path / PLOT_NAME).is_file() and not (tmp_path / VIDEO_NAME).exists()


def test_angle_outside_the_columns_is_refused(tmp_path: Path) -> None:
    result = frame_result(0)
    result.angles["hip"] = 100.0
    with pytest.raises(ValueError, match="hip"), ExerciseOutputs(tmp_path, "squat", "clip.mp4", FPS,
                                                                   angle_names=ANGLES) as outputs:
        outputs.write(result, image(0))
    assert not outputs.summary["complete"]


def test_summary_text(tmp_path: Path) -> None:
    with ExerciseOutputs(tmp_path, "squat", "clip.mp4", FPS, annotate=False) as outputs:
        for index in range(FRAMES):
            outputs.write(frame_result(index))
    lines = summary_text(outputs.summary, tmp_path).splitlines()
    assert lines[0] == f"squat: 2 reps in 3.0 s ({FRAMES} frames, a person in {FRAMES - len(NO_PERSON)})"
    assert lines[1] == "  rep 1: range 80 deg, 1.0 s, good form"
    assert lines[2] == "  rep 2: range 60 deg, 1.0 s, knees cave in"
    assert lines[3].startswith("wrote summary.json, frames.csv, angle.png in ")


def test_feedback_tally_counts_reps() -> None:
    reps = [Rep(i, 0, 1, 2, 0.0, 1.0, 50.0, 170.0, 120.0, feedback) for i, feedback in
            enumerate([["shallow"], ["shallow", "lean"], []], start=1)]
    assert feedback_tally(reps) == {"shallow": 2, "lean": 1, "good form": 1}


@pytest.mark.parametrize(("width", "height"), [(406, 720), (1280, 720)])
def test_text_panel_stays_inside_small_and_large_frames(width: int, height: int) -> None:
    frame = np.full((height, width, 3), 200, np.uint8)
    long_feedback = "rep 3: keep your knees over your toes and push the hips back further"
    drawn = draw_text_panel(frame, [("squat  reps: 3", (255, 255, 255)), (long_feedback, (255, 170, 40))])
    changed = np.nonzero((drawn != frame).any(axis=2))
    right_margin = width - changed[1].max()
    assert right_margin >= width // 100  # wrapped, not cut off at the frame's edge
    assert changed[0].max() < height // 3  # a panel at the top, not a wall of text
    assert frame.max() == 200  # the input is left untouched
