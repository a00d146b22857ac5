"""`python -m pose_lab.exercise video=PATH exercise=NAME`: one video through the exercise pipeline to files.

Builds the keypoint source from the checkpoint (ONNX Runtime by default: the checkpoint's inference path is
exported next to it on first use and reused while it was made from this checkpoint), opens the video, runs
:class:`pose_lab.exercise.pipeline.ExercisePipeline` frame by frame and streams every result to
:class:`pose_lab.exercise.outputs.ExerciseOutputs`. The outputs are closed in every case (end of video,
a video that breaks mid-way, Ctrl-C, an error), so the frames analysed up to then are never lost.
"""

from __future__ import annotations

import time
from itertools import islice
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pose_lab.checkpoint import checkpoint_path
from pose_lab.compose import compose_config
from pose_lab.errors import PoseLabError
from pose_lab.exercise.outputs import ExerciseOutputs, summary_text
from pose_lab.exercise.pipeline import ExercisePipeline, KeypointSource, estimator_source
from pose_lab.exercise.tracking import TrackingSettings
from pose_lab.exercise.video import open_frames
from pose_lab.export import onnx_beside
from pose_lab.inference import PoseEstimator

# The network path each keypoint choice needs.
NETWORK_PATH: dict[str, str] = {"regression": "regression", "heatmap": "full"}


def onnx_file(cfg: DictConfig) -> Path:
    """The ONNX file of the checkpoint's needed path: cfg.onnx as given, or next to the checkpoint (its int8 copy
    when cfg.int8), exported there when missing or made from another checkpoint."""
    if cfg.onnx:
        return Path(cfg.onnx)
    return onnx_beside(checkpoint_path(cfg.ckpt), NETWORK_PATH[cfg.keypoints], cfg.flip_test, int8=cfg.int8,
                       lsp_root=cfg.lsp_root)


def build_source(cfg: DictConfig) -> KeypointSource:
    """The keypoint source cfg asks for: checkpoint, backend, keypoints (regression or heatmap)."""
    if cfg.keypoints not in NETWORK_PATH:
        raise PoseLabError(f"keypoints={cfg.keypoints}: choose regression or heatmap")
    checkpoint = checkpoint_path(cfg.ckpt)
    onnx = onnx_file(cfg) if cfg.backend == "onnxruntime" else None
    estimator = PoseEstimator.from_checkpoint(checkpoint, device=cfg.device, backend=cfg.backend, onnx_path=onnx,
                                              threads=cfg.threads, flip_test=cfg.flip_test)
    return estimator_source(estimator, cfg.keypoints, cfg.min_found[cfg.keypoints])


def video_config(*overrides: str) -> DictConfig:
    """conf/exercise_video.yaml with command-line style overrides (e.g. "exercise=pushup"), for the Python API:
    the one place the pipeline's settings (tracking, smoothing, thresholds) have their defaults."""
    return compose_config("exercise_video", overrides)


def build_pipeline(cfg: DictConfig, source: KeypointSource, fps: float) -> ExercisePipeline:
    """The pipeline cfg (conf/exercise_video.yaml, see video_config) sets up, reading keypoints from `source`."""
    return ExercisePipeline(source, cfg.exercise, fps, TrackingSettings(**cfg.tracking),
                            OmegaConf.to_container(cfg.smoothing), cfg.median_window)


def analyse_video(cfg: DictConfig, source: KeypointSource | None = None) -> dict[str, Any]:
    """Analyse cfg.video into cfg.output; returns what summary.json holds. `source` replaces the network."""
    if cfg.max_frames is not None and cfg.max_frames < 1:
        raise PoseLabError(f"max_frames={cfg.max_frames}: give a positive number of frames, or null for all")
    frames = open_frames(cfg.video, cfg.fps)
    source = source or build_source(cfg)
    pipeline = build_pipeline(cfg, source, frames.fps)
    out_dir = Path(cfg.output)
    outputs = ExerciseOutputs(out_dir, cfg.exercise.name, cfg.video, frames.fps, annotate=cfg.annotated_video,
                              angle_label=cfg.exercise.primary_angle)
    started = time.perf_counter()
    with frames, outputs:
        outputs.extra["settings"] = {
            "checkpoint": str(checkpoint_path(cfg.ckpt)), "backend": cfg.backend, "keypoints": cfg.keypoints,
            "rotation_applied_deg": frames.rotation, "frame_size": list(frames.size),
        }
        for index, seconds, frame in islice(frames, cfg.max_frames):
            outputs.write(pipeline.step(index, seconds, frame), frame if cfg.annotated_video else None)
        outputs.reps = pipeline.finish()
        if frames.end_note:
            outputs.mark_incomplete(frames.end_note)
        seconds = time.perf_counter() - started
        outputs.extra["timing"] = {"seconds": round(seconds, 3),
                                   "frames_per_second": round(outputs.frames_written / seconds, 2) if seconds else None}
    summary = outputs.summary
    print(summary_text(summary, out_dir))
    if summary["frames_read"] and summary["frames_with_person"] == 0:
        raise PoseLabError(f"no person found in any of the {summary['frames_read']} frames of {cfg.video} (outputs "
                           f"kept in {out_dir}); the model needs one person with most joints in view")
    return summary
