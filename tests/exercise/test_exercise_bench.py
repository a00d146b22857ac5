"""The side-by-side exercise benchmark on a generated clip, with a stand-in peer (a script that answers like
peer_mediapipe.py) so it runs without MediaPipe: timing bookkeeping, the ratio, counting on peer keypoints."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf
from test_pipeline import CONF, FPS, HEIGHT, WIDTH, knee_curve, squat_pose, write_video

from pose_lab import skeleton
from pose_lab.errors import PoseLabError
from pose_lab.exercise.bench import agreement_with_peer, bench, noted_turns, perturbed_counts, pipeline_config
from pose_lab.exercise.pipeline import SourcePose

FRAMES = 190
PEER_SECONDS = 0.5
BAR_OFFSET = 60


def fake_peer(tmp_path: Path) -> Path:
    """An executable standing in for the peer's Python: copies scripted squat keypoints to --keypoints and
    prints a peer JSON line that took PEER_SECONDS."""
    poses = np.stack([squat_pose(angle) for angle in knee_curve(FRAMES, reps=3)])
    stored = tmp_path / "scripted.npz"
    np.savez(stored, keypoints=poses, visibility=np.full(poses.shape[:2], 0.9, np.float32), fps=np.float32(FPS))
    answer = {"peer": "stand-in", "frames": FRAMES, "seconds": PEER_SECONDS, "fps": FRAMES / PEER_SECONDS,
              "reps": 3}
    script = tmp_path / "peer_python"
    script.write_text(f"#!{sys.executable}\n"
                      "import json, shutil, sys\n"
                      "args = sys.argv[1:]\n"
                      f"shutil.copy({str(stored)!r}, args[args.index('--keypoints') + 1])\n"
                      f"print(json.dumps({answer!r}))\n")
    script.chmod(0o755)
    return script


def bench_config(tmp_path: Path, *overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("exercise_bench", overrides=[f"videos={tmp_path}", "repeats=2", f"output={tmp_path / 'out'}",
                                                   "perturbations.start_frames=[]", "perturbations.scales=[]",
                                                   *overrides])
    cfg.clips = OmegaConf.create({"clip.mp4": {"exercise": "squat", "reps": 3, "partial": 0,
                                               "turns": [[35, 45], [85, 95], [135, 145]]}})  # knee_curve's bottoms
    return cfg


def test_both_sides_are_timed_and_compared(tmp_path: Path) -> None:
    write_video(tmp_path / "clip.mp4", FRAMES)
    result = bench(bench_config(tmp_path, f"peer_python={fake_peer(tmp_path)}", "perturbations.start_frames=[1]",
                                "perturbations.scales=[0.9]"))
    [clip] = result["clips"]
    assert clip["peer"]["fps"] == pytest.approx(FRAMES / PEER_SECONDS) and clip["peer"]["exact"]
    assert clip["pose_lab"]["frames"] == FRAMES and len(clip["pose_lab"]["seconds_every_pass"]) == 2
    # pose_lab's counting on the peer's (here: scripted) keypoints finds the scripted reps.
    assert clip["pose_lab_counter_on_peer_keypoints"] == 3
    on_peer = clip["pose_lab_counter_on_peer_keypoints_turns"]
    assert (on_peer["noted"], on_peer["matched"], on_peer["elsewhere"]) == (3, 3, 0), on_peer
    assert clip["pose_lab"]["turns"] == {"turning_frames": [], "noted": 3, "matched": 0, "elsewhere": 0}
    # The clip is a blank grey frame: the network finds nobody, so none of the peer's keypoints is matched,
    # and no perturbed pass counts the 3 reps.
    assert clip["keypoint_agreement_with_peer"] == 0.0
    assert [(run["start_frame"], run["scale"], run["reps"]) for run in clip["pose_lab_perturbed"]] == \
        [(1, 1.0, 0), (0, 0.9, 0)]
    overall = result["overall"]
    assert overall["pose_lab_perturbed"] == {"exact": 0, "passes": 2}
    assert overall["speed_ratio"] == pytest.approx(overall["pose_lab"]["fps"] / overall["peer"]["fps"], rel=1e-2)
    assert json.loads((tmp_path / "out" / "exercise_bench.json").read_text())["clips"][0]["clip"] == "clip.mp4"


def test_without_a_peer_only_pose_lab_is_timed(tmp_path: Path) -> None:
    write_video(tmp_path / "clip.mp4", 20)
    result = bench(bench_config(tmp_path, "peer_python=null", "repeats=1"))
    assert result["clips"][0]["peer"] is None and "speed_ratio" not in result["overall"]


def numbered_video(path: Path, frames: int) -> Path:
    """A clip whose frame i has a white bar at column BAR_OFFSET + i: a source can tell which frame it was shown."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for index in range(frames):
        frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        frame[:, BAR_OFFSET + index - 1:BAR_OFFSET + index + 2] = 255
        writer.write(frame)
    writer.release()
    return path


class SquatByFrame:
    """The scripted squat of the frame it is shown (read from its bar), in that frame's pixels; it finds
    nobody in a frame narrower than `min_width`, and records the frames it saw."""

    def __init__(self, curve: np.ndarray, min_width: int) -> None:
        self.curve, self.min_width = curve, min_width
        self.seen: list[tuple[int, int]] = []

    def __call__(self, frame: np.ndarray, region: object) -> SourcePose:
        width = frame.shape[1]
        columns = frame.mean(axis=(0, 2))
        bar = np.flatnonzero(columns >= columns.max() / 2).mean()
        index = round(bar * WIDTH / width) - BAR_OFFSET
        self.seen.append((index, width))
        pose = squat_pose(self.curve[min(index, len(self.curve) - 1)]) * (width / WIDTH)
        visibility = np.full(skeleton.NUM_JOINTS, 0.9 if width >= self.min_width else 0.0, np.float32)
        return SourcePose(pose, visibility, visibility >= 0.3)


def test_perturbed_passes_start_late_and_resize(tmp_path: Path) -> None:
    video = numbered_video(tmp_path / "clip.mp4", FRAMES)
    pipeline_cfg = pipeline_config("squat", video, [])
    source = SquatByFrame(knee_curve(FRAMES, reps=3), min_width=WIDTH // 2)
    perturbations = OmegaConf.create({"start_frames": [2], "scales": [0.75, 0.25]})
    passes = perturbed_counts(pipeline_cfg, source, perturbations, {"reps": 3, "partial": 0})
    assert [(run["start_frame"], run["scale"]) for run in passes] == [(2, 1.0), (0, 0.75), (0, 0.25)]
    # Started late or 0.75 as large, the squat still counts 3; at 0.25 this source finds nobody: 0 reps.
    assert [(run["reps"], run["exact"]) for run in passes] == [(3, True), (3, True), (0, False)]
    assert [index for index, _ in source.seen[:2]] == [2, 3]  # the late pass began at frame 2
    assert len(source.seen) == 3 * FRAMES - 2
    assert {width for _, width in source.seen[FRAMES - 2:]} == {round(WIDTH * 0.75), round(WIDTH * 0.25)}
    assert OmegaConf.load(Path(CONF) / "exercise_bench.yaml").perturbations.start_frames  # on by default


def test_bench_input_errors(tmp_path: Path) -> None:
    with pytest.raises(PoseLabError, match="missing clip.mp4"):
        bench(bench_config(tmp_path))
    write_video(tmp_path / "clip.mp4", 5)
    with pytest.raises(PoseLabError, match="peer_python=.*does not exist"):
        bench(bench_config(tmp_path, f"peer_python={tmp_path / 'no_python'}"))
    with pytest.raises(PoseLabError, match="perturbations=.*scales resize factors"):
        bench(bench_config(tmp_path, "perturbations.scales=[1.0]"))
    with pytest.raises(PoseLabError, match="videos is not set"):
        bench(bench_config(tmp_path, "videos=null"))
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def test_counted_turns_against_the_noted_ones() -> None:
    noted = [[70, 90], [160, 180], [250, 260]]
    assert noted_turns([85, 170, 255], noted, 0.0, 30.0) == {"turning_frames": [85, 170, 255], "noted": 3,
                                                             "matched": 3, "elsewhere": 0}
    # Right count, wrong reps: two turns in the first range, one before the clip's first rep.
    wrong = noted_turns([20, 75, 88], noted, 0.0, 30.0)
    assert (wrong["matched"], wrong["elsewhere"]) == (1, 1)
    # A tolerance of 0.5 s at 10 frames/s: 5 frames either side of a range.
    assert noted_turns([95], noted, 0.5, 10.0)["matched"] == 1 and noted_turns([96], noted, 0.5, 10.0)["matched"] == 0


def test_keypoint_agreement_with_the_peer() -> None:
    peer = np.stack([squat_pose(angle) for angle in (170.0, 120.0, 80.0)])
    visibility = np.full(peer.shape[:2], 0.9, np.float32)
    assert agreement_with_peer(peer.copy(), peer, visibility) == 1.0
    torso = np.linalg.norm(peer[:, skeleton.joint_index("left_shoulder")] - peer[:, skeleton.joint_index("right_hip")],
                           axis=1)
    shifted = peer + np.stack([0.3 * torso, np.zeros(3)], axis=1)[:, None]  # every joint 0.3 torso lengths off
    assert agreement_with_peer(shifted, peer, visibility) == 0.0
    nobody_in_one = peer.copy()
    nobody_in_one[1] = np.nan  # pose_lab found no person in frame 1: a miss, not skipped
    assert agreement_with_peer(nobody_in_one, peer, visibility) == pytest.approx(2 / 3, abs=1e-4)
    # Joints the peer does not see are not scored; neither are the neck and head top it only derives.
    hidden = visibility.copy()
    hidden[:, skeleton.joint_index("left_knee")] = 0.1
    wrong_knee_and_head = peer.copy()
    for joint in ("left_knee", "neck", "head_top"):
        wrong_knee_and_head[:, skeleton.joint_index(joint)] += 500
    assert agreement_with_peer(wrong_knee_and_head, peer, hidden) == 1.0
    assert agreement_with_peer(peer, np.full_like(peer, np.nan), visibility) is None
