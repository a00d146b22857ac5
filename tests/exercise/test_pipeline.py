"""The exercise pipeline end to end on generated videos, with a scripted keypoint source standing in for the
network: plumbing, outputs, tracking, cuts and error paths, on the CPU in seconds."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from pose_lab import skeleton
from pose_lab.codecs.heatmap import GaussianHeatmap
from pose_lab.codecs.regression import RegressionLabel
from pose_lab.errors import PoseLabError
from pose_lab.exercise.pipeline import SourcePose, estimator_source
from pose_lab.exercise.run import analyse_video, build_pipeline, onnx_file, video_config
from pose_lab.exercise.tracking import TrackingSettings
from pose_lab.inference import PoseEstimator

CONF = str(Path(__file__).resolve().parents[2] / "conf")
FPS = 30.0
WIDTH, HEIGHT = 320, 240


def squat_pose(knee_angle: float, ankle: tuple[float, float] = (160.0, 220.0), leg: float = 50.0) -> np.ndarray:
    """(K,2) side view of a person whose knees bend to `knee_angle` with the hips above the ankles."""
    tilt = math.radians((180.0 - knee_angle) / 2)  # shin forward, thigh back by the same angle
    ax, ay = ankle
    knee = (ax + leg * math.sin(tilt), ay - leg * math.cos(tilt))
    hip = (ax, ay - 2 * leg * math.cos(tilt))
    shoulder = (hip[0] + 8.0, hip[1] - 60.0)
    points = {
        "ankle": ankle, "knee": knee, "hip": hip, "shoulder": shoulder,
        "elbow": (shoulder[0] + 10, shoulder[1] + 25), "wrist": (shoulder[0] + 30, shoulder[1] + 25),
    }
    pose = np.zeros((skeleton.NUM_JOINTS, 2), np.float32)
    for side, offset in (("left", -2.0), ("right", 2.0)):
        for part, (x, y) in points.items():
            pose[skeleton.joint_index(f"{side}_{part}")] = (x + offset, y)
    pose[skeleton.joint_index("neck")] = (shoulder[0], shoulder[1] - 5)
    pose[skeleton.joint_index("head_top")] = (shoulder[0] + 2, shoulder[1] - 35)
    return pose


def knee_curve(frames: int, reps: int, start: int = 20, period: int = 40, bottom: float = 70.0) -> np.ndarray:
    """Standing (170 deg) with `reps` smooth dips to `bottom` starting at frame `start`."""
    angles = np.full(frames, 170.0)
    for rep in range(reps):
        t = np.arange(period)
        begin = start + rep * (period + 10)
        angles[begin:begin + period] = 170.0 - (170.0 - bottom) * 0.5 * (1 - np.cos(2 * np.pi * t / period))
    return angles


class ScriptedSource:
    """Keypoints from a script, one pose per call (frames come in order); records the regions it was shown."""

    def __init__(self, poses: np.ndarray, visibility: float = 0.9) -> None:
        self.poses = poses
        self.visibility = visibility
        self.calls = 0
        self.regions: list = []

    def __call__(self, frame: np.ndarray, region) -> SourcePose:
        self.regions.append(region)
        pose = self.poses[self.calls]
        self.calls += 1
        visibility = np.full(skeleton.NUM_JOINTS, self.visibility, np.float32)
        return SourcePose(pose.copy(), visibility, visibility >= 0.3)


def write_video(path: Path, frames: int, colour_change_at: int | None = None) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for index in range(frames):
        colour = (200, 60, 40) if colour_change_at is not None and index >= colour_change_at else (90, 90, 90)
        writer.write(np.full((HEIGHT, WIDTH, 3), colour, np.uint8))
    writer.release()
    return path


def config(tmp_path: Path, video: Path, *overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("exercise_video", overrides=[f"video={video}", f"output={tmp_path / 'out'}", *overrides])


def test_the_python_api_builds_the_pipeline_the_command_runs() -> None:
    cfg = video_config("exercise=pushup", "smoothing.beta=2.5", "tracking.turn_frames=3", "median_window=7")
    pipeline = build_pipeline(cfg, ScriptedSource(np.zeros((1, skeleton.NUM_JOINTS, 2))), fps=30)
    assert pipeline.tracker.settings == TrackingSettings(**cfg.tracking) and pipeline.tracker.settings.turn_frames == 3
    assert pipeline.smoother.beta == 2.5 and pipeline.median.window == 7
    assert pipeline.analysis.name == "pushup"


def test_three_squats_end_to_end_with_every_output(tmp_path: Path) -> None:
    frames = 190
    video = write_video(tmp_path / "squats.mp4", frames)
    source = ScriptedSource(np.stack([squat_pose(angle) for angle in knee_curve(frames, reps=3)]))
    summary = analyse_video(config(tmp_path, video, "exercise=squat"), source=source)
    out = tmp_path / "out"
    assert summary["total_reps"] == 3 and summary["complete"] and summary["frames_read"] == frames
    assert json.loads((out / "summary.json").read_text())["total_reps"] == 3
    for rep, begin in zip(summary["reps"], (20, 70, 120), strict=True):
        assert abs(rep["frames"]["bottom"] - (begin + 20)) <= 3  # the deepest frame of each dip
        assert rep["range_of_motion_deg"] == pytest.approx(100, abs=8)
        assert rep["duration_s"] == pytest.approx(40 / FPS, abs=0.35)
    rows = (out / "frames.csv").read_text().splitlines()
    assert len(rows) == frames + 1
    assert cv2.VideoCapture(str(out / "annotated.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == frames
    assert (out / "angle.png").stat().st_size > 0
    # Tracking: the first frame is seen whole, later ones as a square around the previous pose.
    assert source.regions[0] is None and all(region is not None for region in source.regions[1:])


def test_a_cut_between_views_resets_the_rep_in_progress(tmp_path: Path) -> None:
    frames = 120
    angles = knee_curve(frames, reps=2)
    video = write_video(tmp_path / "cut.mp4", frames, colour_change_at=30)  # mid-way down the first dip
    source = ScriptedSource(np.stack([squat_pose(angle) for angle in angles]))
    summary = analyse_video(config(tmp_path, video, "exercise=squat", "annotated_video=false"), source=source)
    notes = [row.split(",")[-1] for row in (tmp_path / "out" / "frames.csv").read_text().splitlines()[1:]]
    assert notes[30] == "scene cut" and notes.count("scene cut") == 1
    assert summary["total_reps"] == 1  # the rep cut in two is not stitched together


def test_a_pose_lost_for_two_frames_at_the_bottom_keeps_the_rep_in_progress(tmp_path: Path) -> None:
    frames = 120
    angles = knee_curve(frames, reps=2)
    poses = np.stack([squat_pose(angle) for angle in angles])
    poses[39:41] = np.nan  # the first dip's bottom (frame 40)
    video = write_video(tmp_path / "blur.mp4", frames)
    source = ScriptedSource(poses)
    summary = analyse_video(config(tmp_path, video, "exercise=squat", "annotated_video=false"), source=source)
    assert source.regions[40] is None  # the tracker did lose the pose
    assert summary["total_reps"] == 2


def test_no_person_anywhere_is_a_clear_error_and_the_outputs_are_kept(tmp_path: Path) -> None:
    frames = 20
    video = write_video(tmp_path / "empty_room.mp4", frames)
    source = ScriptedSource(np.stack([squat_pose(170.0)] * frames), visibility=0.05)
    with pytest.raises(PoseLabError, match="no person found in any of the 20 frames"):
        analyse_video(config(tmp_path, video, "annotated_video=false"), source=source)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["frames_read"] == frames and summary["frames_with_person"] == 0


def test_a_person_who_leaves_and_returns_is_found_again(tmp_path: Path) -> None:
    frames = 60
    poses = np.stack([squat_pose(170.0)] * frames)
    poses[20:30] = np.nan  # out of the frame
    video = write_video(tmp_path / "leave.mp4", frames)
    source = ScriptedSource(poses)
    summary = analyse_video(config(tmp_path, video, "annotated_video=false"), source=source)
    assert summary["frames_with_person"] == frames - 10
    assert source.regions[21] is None and source.regions[31] is not None  # whole frame while lost, then tracked


def test_a_short_clip_and_max_frames(tmp_path: Path) -> None:
    video = write_video(tmp_path / "short.mp4", 3)
    source = ScriptedSource(np.stack([squat_pose(170.0)] * 3))
    summary = analyse_video(config(tmp_path, video, "annotated_video=false", "max_frames=2"), source=source)
    assert summary["frames_read"] == 2 and summary["total_reps"] == 0


def test_bad_inputs_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(PoseLabError, match="missing.mp4"):
        analyse_video(config(tmp_path, tmp_path / "missing.mp4"), source=ScriptedSource(np.zeros((1, 14, 2))))
    video = write_video(tmp_path / "ok.mp4", 2)
    with pytest.raises(PoseLabError, match="max_frames=0"):
        analyse_video(config(tmp_path, video, "max_frames=0"), source=ScriptedSource(np.zeros((2, 14, 2))))
    with pytest.raises(PoseLabError, match="keypoints=elbows"):
        analyse_video(config(tmp_path, video, "keypoints=elbows"))


def test_the_onnx_file_is_the_keypoints_path_next_to_the_checkpoint_and_its_int8_copy_on_request(
        tmp_path: Path) -> None:
    ckpt = tmp_path / "model.pt"  # absent: onnx_beside names the file without exporting
    assert onnx_file(config(tmp_path, tmp_path, f"ckpt={ckpt}")) == tmp_path / "model_full.onnx"
    assert onnx_file(config(tmp_path, tmp_path, f"ckpt={ckpt}", "int8=true")) == tmp_path / "model_full_int8.onnx"
    assert onnx_file(config(tmp_path, tmp_path, f"ckpt={ckpt}", "int8=true", "keypoints=regression")) \
        == tmp_path / "model_int8.onnx"


def test_the_command_names_a_missing_video_and_an_unknown_exercise(tmp_path: Path) -> None:
    missing = subprocess.run([sys.executable, "-m", "pose_lab.exercise", f"video={tmp_path / 'nope.mp4'}",
                              f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "nope.mp4" in missing.stderr and "Traceback" not in missing.stderr
    unknown = subprocess.run([sys.executable, "-m", "pose_lab.exercise", f"video={tmp_path / 'nope.mp4'}",
                              "exercise=burpee", f"hydra.run.dir={tmp_path / 'run'}"],
                             capture_output=True, text=True, check=False)
    assert unknown.returncode != 0 and "burpee" in unknown.stderr and "squat" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_a_joint_is_found_by_its_heatmap_peak_not_by_the_visibility_output() -> None:
    """An empty frame: confident-looking visibility everywhere, but only three joints' heatmaps show a peak.
    The heatmap keypoints find those three; the regression keypoints only have the visibility to go by."""
    size, peaked = 64, [0, 5, 12]

    def full_path(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        heatmaps = torch.zeros(x.shape[0], skeleton.NUM_JOINTS, size // 2, size // 2)
        heatmaps[:, peaked, 10, 20] = 0.6
        return heatmaps, torch.full((x.shape[0], skeleton.NUM_JOINTS, 2), 0.5), torch.full(
            (x.shape[0], skeleton.NUM_JOINTS, 1), 0.9)

    estimator = PoseEstimator({"full": full_path}, size, GaussianHeatmap(size), RegressionLabel(size))
    frame = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    from_heatmaps = estimator_source(estimator, "heatmap", min_found=0.05)(frame, None)
    assert np.flatnonzero(from_heatmaps.found).tolist() == peaked
    assert from_heatmaps.visibility == pytest.approx(np.full(skeleton.NUM_JOINTS, 0.9))
    from_regression = estimator_source(estimator, "regression", min_found=0.3)(frame, None)
    assert from_regression.found.all()
