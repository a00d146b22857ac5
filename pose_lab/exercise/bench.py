"""`python -m pose_lab.exercise.bench`: pose_lab against MediaPipe on real exercise clips, side by side.

For every clip, `repeats` times, alternating which side goes first: pose_lab's whole pipeline (decode ->
keypoints -> smoothing -> angles -> counting, the network built beforehand, no output files) timed with
perf_counter in this process, and the peer (`pose_lab/exercise/peer_mediapipe.py`, MediaPipe Pose with the
fixed-threshold counter of fitness tutorials) run in its own virtual environment, timing the same span itself.
MediaPipe is never imported here: it pins another OpenCV and numpy, so it lives in `peer_python`'s environment.

Per clip and side: the median frames/s over the repeats and the rep count against the hand count, and for
pose_lab's counter (on its own keypoints and on the peer's) how many of the hand-noted turning points a counted
rep's turning point falls on, and how many counted reps turn elsewhere; pose_lab's count again on the clip
perturbed (started late, resized: `perturbations`), untimed; overall: the frames/s over all clips (total
frames / total median seconds), pose_lab's speed as a ratio of the peer's, and how many perturbed passes
counted exactly. Everything goes to exercise_bench.json, which `python -m pose_lab.report
exercise_bench=PATH` turns into a section of RESULTS.md.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from pose_lab import skeleton
from pose_lab.bench import machine_info, rerun_command
from pose_lab.checkpoint import checkpoint_path
from pose_lab.errors import PoseLabError, exit_on_user_error
from pose_lab.exercise.pipeline import KeypointSource, SourcePose
from pose_lab.exercise.run import build_pipeline, build_source, video_config
from pose_lab.exercise.video import open_frames
from pose_lab.jsonfile import write_json
from pose_lab.metrics import pck_hits
from pose_lab.paths import shown_path
from pose_lab.peer import check_peer_python, run_peer


def pipeline_config(exercise: str, video: Path, overrides: list[str]) -> DictConfig:
    """conf/exercise_video.yaml for one clip, composed as the command line would."""
    return video_config(f"video={video}", f"exercise={exercise}", "annotated_video=false", *overrides)


def time_pose_lab(cfg: DictConfig, source: KeypointSource, start_frame: int = 0, scale: float = 1.0) -> dict[str, Any]:
    """One timed pass of pose_lab's pipeline over cfg.video: frames, seconds, reps, their turning frames, the
    video's frame rate and the (T,K,2) smoothed keypoints it analysed (NaN where it found no person).

    A perturbed pass skips the first `start_frame` frames and resizes every frame by `scale` (area-averaged);
    turning frames keep the video's frame numbers, keypoints are in the resized frame's pixels."""
    started = time.perf_counter()
    frames = open_frames(cfg.video, cfg.fps)
    pipeline = build_pipeline(cfg, source, frames.fps)
    keypoints, with_person = [], 0
    with frames:
        for index, seconds, frame in frames:
            if index < start_frame:
                continue
            if scale != 1.0:
                frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            result = pipeline.step(index, seconds, frame)
            keypoints.append(result.keypoints)
            with_person += result.person
    reps = pipeline.finish()
    elapsed = time.perf_counter() - started
    return {"frames": len(keypoints), "seconds": elapsed, "reps": len(reps), "frames_with_person": with_person,
            "turns": [rep.bottom for rep in reps], "video_fps": frames.fps, "keypoints": np.stack(keypoints)}


def perturbed_counts(cfg: DictConfig, source: KeypointSource, perturbations: DictConfig,
                     expected: dict[str, int]) -> list[dict[str, Any]]:
    """pose_lab's count with the clip started later and with its frames resized, one change per pass: changes
    a trim or another camera makes, which should leave a count alone. An exact count that one of them breaks
    was luck of the tracker's feedback loop (each region comes from the previous frame's pose)."""
    passes = [{"start_frame": start, "scale": 1.0} for start in perturbations.start_frames]
    passes += [{"start_frame": 0, "scale": scale} for scale in perturbations.scales]
    for perturbation in passes:
        reps = time_pose_lab(cfg, source, **perturbation)["reps"]
        perturbation.update(reps=reps, exact=reps == expected["reps"])
    return passes


def noted_turns(turns: list[int], noted: Sequence[Sequence[int]], tolerance_s: float, fps: float) -> dict[str, Any]:
    """Counted reps' turning frames against the hand-noted [first, last] frame ranges: how many noted ranges
    hold a counted turn (at most `tolerance_s` seconds outside), and how many counted turns fall in none."""
    tolerance = round(tolerance_s * fps)
    near = [[first - tolerance <= turn <= last + tolerance for first, last in noted] for turn in turns]
    return {"turning_frames": list(turns), "noted": len(noted),
            "matched": sum(any(row[index] for row in near) for index in range(len(noted))),
            "elsewhere": sum(not any(row) for row in near)}


def agreement_with_peer(ours: np.ndarray, peer: np.ndarray, peer_visibility: np.ndarray,
                        min_visibility: float = 0.5) -> float | None:
    """PCK@0.2 (torso) of our (T,K,2) keypoints with the peer's standing in for the truth: the fraction of the
    peer's limb joints (visibility >= min_visibility; LSP's neck and head top are only derived from MediaPipe's
    landmarks) that ours put within 0.2 torso lengths, over the frames where the peer found the torso. Our frames
    without a person count as misses. None when the peer found nobody. It tells a keypoint problem from a
    counting problem, in numbers."""
    frames = min(len(ours), len(peer))
    ours, peer, peer_visibility = ours[:frames], peer[:frames], peer_visibility[:frames]
    torso = list(skeleton.NORMALISER_JOINTS["torso"])
    with_torso = np.isfinite(peer[:, torso]).all(axis=(1, 2))
    if not with_torso.any():
        return None
    hits = pck_hits(torch.from_numpy(ours[with_torso]), torch.from_numpy(np.nan_to_num(peer[with_torso])),
                    "torso", 0.2).numpy()
    scored = (peer_visibility[with_torso] >= min_visibility) & np.isfinite(peer[with_torso]).all(axis=2)
    scored[:, [skeleton.joint_index("neck"), skeleton.joint_index("head_top")]] = False
    return round(float(hits[scored].mean()), 4) if scored.any() else None


def time_peer(python: Path, video: Path, exercise: str, keypoints: Path) -> dict[str, Any]:
    """One pass of the MediaPipe peer in its own environment: its JSON line. Its landmarks (LSP order) go to
    `keypoints`, written after its timed loop."""
    return run_peer(python, [str(video), "--exercise", exercise, "--keypoints", str(keypoints)])


def count_peer_keypoints(cfg: DictConfig, keypoints: Path, frame_size: tuple[int, int]) -> list[int]:
    """pose_lab's counting (tracking checks, smoothing, angles, counter) on the peer's keypoints instead of the
    network's: the turning frames of the reps it counts. Tells a counting problem from a keypoint problem."""
    stored = np.load(keypoints)
    poses, visibility, fps = stored["keypoints"], stored["visibility"], float(stored["fps"])
    frame_index = iter(range(len(poses)))

    def peer_source(frame: np.ndarray, region: object) -> SourcePose:
        index = next(frame_index)
        # MediaPipe's visibility is a probability, like the regression path's visibility output.
        return SourcePose(poses[index], visibility[index], visibility[index] >= cfg.min_found.regression)

    pipeline = build_pipeline(cfg, peer_source, fps)
    blank = np.zeros((frame_size[1], frame_size[0], 3), np.uint8)  # no cuts: the peer saw the real frames
    for index in range(len(poses)):
        pipeline.step(index, index / fps, blank)
    return [rep.bottom for rep in pipeline.finish()]


def _side(passes: list[dict[str, Any]], expected: dict[str, int]) -> dict[str, Any]:
    seconds = statistics.median(run["seconds"] for run in passes)
    counts = sorted({run["reps"] for run in passes})
    reps = passes[0]["reps"]
    return {
        "frames": passes[0]["frames"], "median_seconds": round(seconds, 4),
        "fps": round(passes[0]["frames"] / seconds, 2), "reps": reps, "reps_every_pass": counts,
        "exact": reps == expected["reps"],
        "acceptable": expected["reps"] <= reps <= expected["reps"] + expected["partial"],
        "seconds_every_pass": [round(run["seconds"], 4) for run in passes],
    }


def _overall(clips: list[dict[str, Any]], side: str) -> dict[str, Any] | None:
    measured = [clip[side] for clip in clips if clip.get(side)]
    if len(measured) != len(clips):
        return None
    frames = sum(entry["frames"] for entry in measured)
    seconds = sum(entry["median_seconds"] for entry in measured)
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2),
            "exact_clips": sum(entry["exact"] for entry in measured), "clips": len(measured)}


def bench(cfg: DictConfig) -> dict[str, Any]:
    """Time both sides on every clip; write and return exercise_bench.json's content."""
    if not cfg.videos:
        raise PoseLabError("videos is not set: export POSE_LAB_EXERCISE_VIDEOS=/path/to/exercise_videos or pass "
                           "videos=DIR (the folder of the clips listed in conf/exercise_bench.yaml)")
    if cfg.repeats < 1:
        raise PoseLabError(f"repeats={cfg.repeats}: give at least 1")
    if any(start < 1 for start in cfg.perturbations.start_frames) or any(
            scale <= 0 or scale == 1 for scale in cfg.perturbations.scales):
        raise PoseLabError(f"perturbations={cfg.perturbations}: start_frames are frames to skip (>= 1), scales "
                           "resize factors (> 0, not 1); [] for none")
    folder = Path(cfg.videos)
    missing = [name for name in cfg.clips if not (folder / name).is_file()]
    if missing:
        raise PoseLabError(f"videos={folder}: missing {', '.join(missing)}; point videos= at the clips' folder")
    command = rerun_command("pose_lab.exercise.bench")
    peer = Path(cfg.peer_python) if cfg.peer_python else None
    if peer is not None:
        check_peer_python(peer)
    clips = []
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, clip in cfg.clips.items():
        video = folder / name
        landmarks = out / f"{video.stem}.peer_keypoints.npz"
        pipeline_cfg = pipeline_config(clip.exercise, video, list(cfg.pipeline))
        source = build_source(pipeline_cfg)
        time_pose_lab(pipeline_cfg, source)  # warm-up: first-call allocations, file cache
        ours, theirs = [], []
        for repeat in range(cfg.repeats):
            order = ("ours", "peer") if repeat % 2 == 0 else ("peer", "ours")
            for side in order:
                if side == "ours":
                    ours.append(time_pose_lab(pipeline_cfg, source))
                elif peer is not None:
                    theirs.append(time_peer(peer, video, clip.exercise, landmarks))
        expected = {"reps": clip.reps, "partial": clip.partial}
        entry = {"clip": name, "exercise": clip.exercise, "expected": expected, "pose_lab": _side(ours, expected),
                 "peer": _side(theirs, expected) if theirs else None}
        entry["pose_lab_perturbed"] = perturbed_counts(pipeline_cfg, source, cfg.perturbations, expected)
        noted, fps = clip.get("turns"), ours[0]["video_fps"]
        if noted:
            entry["pose_lab"]["turns"] = noted_turns(ours[0]["turns"], noted, cfg.turn_tolerance_s, fps)
        if theirs:
            with open_frames(video) as frames:
                size = frames.size
            turns = count_peer_keypoints(pipeline_cfg, landmarks, size)
            entry["pose_lab_counter_on_peer_keypoints"] = len(turns)
            if noted:
                entry["pose_lab_counter_on_peer_keypoints_turns"] = noted_turns(turns, noted, cfg.turn_tolerance_s,
                                                                                fps)
            stored = np.load(landmarks)
            entry["keypoint_agreement_with_peer"] = agreement_with_peer(ours[0]["keypoints"], stored["keypoints"],
                                                                        stored["visibility"])
        clips.append(entry)
        print(_line(entry))
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(),
        "pipeline": {"overrides": list(cfg.pipeline),
                     "checkpoint": str(shown_path(checkpoint_path(pipeline_cfg.ckpt))),
                     "backend": pipeline_cfg.backend,
                     "keypoints": pipeline_cfg.keypoints, "threads": pipeline_cfg.threads},
        "peer": theirs[0]["peer"] if peer is not None and theirs else None,
        "repeats": cfg.repeats,
        "clips": clips,
        "overall": {"pose_lab": _overall(clips, "pose_lab"), "peer": _overall(clips, "peer")},
    }
    overall = result["overall"]
    perturbed = [run for clip in clips for run in clip["pose_lab_perturbed"]]
    overall["pose_lab_perturbed"] = {"exact": sum(run["exact"] for run in perturbed), "passes": len(perturbed)}
    if overall["pose_lab"] and overall["peer"]:
        overall["speed_ratio"] = round(overall["pose_lab"]["fps"] / overall["peer"]["fps"], 3)
    write_json(out / "exercise_bench.json", result)
    print(f"wrote {out / 'exercise_bench.json'}")
    if "speed_ratio" in overall:
        print(f"pose_lab {overall['pose_lab']['fps']:.1f} frames/s, peer {overall['peer']['fps']:.1f} frames/s: "
              f"{overall['speed_ratio']:.2f}x")
    return result


def _line(entry: dict[str, Any]) -> str:
    def side(name: str) -> str:
        data = entry[name]
        if data is None:
            return "n/a"
        turns = data.get("turns")
        at = f" ({turns['matched']} of {turns['noted']} noted turns, {turns['elsewhere']} elsewhere)" if turns else ""
        return f"{data['reps']} reps{' (exact)' if data['exact'] else ''}{at}, {data['fps']:.1f} fps"
    perturbed = ", ".join(f"{run['reps']}" for run in entry["pose_lab_perturbed"])
    return (f"{entry['clip']}: expected {entry['expected']['reps']} (+{entry['expected']['partial']} partial); "
            f"pose_lab {side('pose_lab')}; peer {side('peer')}"
            + (f"; pose_lab perturbed: {perturbed}" if perturbed else ""))


@hydra.main(version_base="1.3", config_path="../../conf", config_name="exercise_bench")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    bench(cfg)


if __name__ == "__main__":
    main()
