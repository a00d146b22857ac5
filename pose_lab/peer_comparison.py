"""pose_lab's checkpoint against MediaPipe Pose on real LSP test images, side by side in the run of
`python -m pose_lab.bench ckpt=PATH peer_python=PYTHON` (see `peer_comparison`; :mod:`pose_lab.bench` calls it).

Per image, at batch 1, pose_lab's inference paths (:meth:`pose_lab.inference.PoseEstimator.predict` on one decoded
image: letterbox, the side's path, keypoints back to original pixels): the regression path in every backend of
`backend`, and the ONNX Runtime sides of ONNX_SIDES that peer_int8 and peer_heatmap ask for (`predict`'s default
among them); then the MediaPipe peer (`pose_lab/exercise/peer_mediapipe.py --images`, person detector + landmark
model per image) in its own virtual environment, as a subprocess: MediaPipe pins another OpenCV and numpy and is
never a dependency of pose_lab. Both sides' keypoints are scored here with pose_lab's PCK
(:func:`pose_lab.evaluate.score`) against joints.mat.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from pose_lab.checkpoint import DEFAULT_CHECKPOINT, load_module
from pose_lab.compose import plain
from pose_lab.data.lsp import (
    JOINTS_FILE,
    ROOT_ENV_VAR,
    image_path,
    load_images,
    read_joints,
    resolve_root,
)
from pose_lab.data.splits import split_numbers
from pose_lab.errors import PoseLabError
from pose_lab.evaluate import score
from pose_lab.export import export_onnx, int8_output, onnx_metadata
from pose_lab.inference import BACKENDS as PREDICT_RUNTIMES
from pose_lab.inference import PoseEstimator
from pose_lab.paths import CONF_DIR
from pose_lab.peer import PEER_SCRIPT, check_peer_python, run_peer
from pose_lab.quantize import calibration_inputs, quantize_int8
from pose_lab.runtime import runtimes, summarize

# The peer comparison's ONNX Runtime sides, as (inference path, int8): the regression path (backend=onnxruntime
# or both), its int8 copy (peer_int8=true), and the heatmap path, keypoints decoded from its heatmaps, with its
# int8 copy (peer_heatmap=true; the int8 one with peer_int8=true too): what `predict` runs by default.
INT8_SIDE = "onnxruntime-int8"
HEATMAP_SIDE = "onnxruntime-heatmap"
HEATMAP_INT8_SIDE = "onnxruntime-heatmap-int8"
ONNX_SIDES: dict[str, tuple[str, bool]] = {"onnxruntime": ("regression", False), INT8_SIDE: ("regression", True),
                                          HEATMAP_SIDE: ("heatmap", False), HEATMAP_INT8_SIDE: ("heatmap", True)}
PREDICT_CONFIG = CONF_DIR / "predict.yaml"
# What each side's per-image time covers, written into bench.json beside the times.
TIMED_SPANS: dict[str, str] = {
    "pose_lab": "PoseEstimator.predict on one decoded RGB image: letterbox, normalisation, the side's inference "
                "path at batch 1 (the regression path; the heatmap sides: the heatmap path, keypoints decoded from "
                "its heatmaps), keypoints mapped back to original pixels",
    "peer": "pose.process on one decoded RGB image (person detector + landmark model), landmarks to pixels",
}


class LSPTestImages(NamedTuple):
    """The images a peer comparison runs on, in image-number order."""

    numbers: np.ndarray  # (N,) 1-based LSP image numbers
    paths: list[Path]
    images: list[np.ndarray]  # decoded (H,W,3) uint8 RGB
    truth: np.ndarray  # (N,K,2) ground truth, original pixels


def lsp_test_images(cfg: DictConfig) -> LSPTestImages:
    """The first `peer_images` (null: all) test images of `peer_split` under `lsp_root`, with joints.mat."""
    root = resolve_root(cfg.lsp_root)
    annotations = read_joints(root / JOINTS_FILE)
    numbers = split_numbers(plain(cfg.peer_split), "test", len(annotations))[: cfg.peer_images]
    return LSPTestImages(numbers, [image_path(root, int(number)) for number in numbers],
                         load_images(root, numbers), annotations.keypoints[numbers - 1])


def comparison_estimators(cfg: DictConfig, backends: Sequence[str], folder: Path) -> dict[str, PoseEstimator]:
    """The checkpoint's PoseEstimator for each side: eager torch on the regression path, or ONNX Runtime on the
    side's path (ONNX_SIDES) exported into `folder` (as `python -m pose_lab.export` would, metadata included; an
    int8 side also quantized, calibrated on training images of the comparison's split), with as many intra-op
    threads as torch uses. The checkpoint is read, and the calibration images decoded, once for all sides."""
    module, config = load_module(cfg.ckpt)
    calibration: list[np.ndarray] | None = None
    estimators = {}
    for backend in backends:
        if backend == "torch":
            estimators[backend] = PoseEstimator.from_module(module, config, cfg.ckpt, backend="torch")
            continue
        path, int8 = ONNX_SIDES[backend]
        file = folder / f"{path}.onnx"
        if not file.is_file():  # the fp32 and int8 sides of a path share its export in `folder`
            export_onnx(module.net, path, file, onnx_metadata(config, path, cfg.ckpt))
        if int8:
            if calibration is None:
                calibration = calibration_inputs(config, cfg.lsp_root, cfg.peer_split, cfg.calibration_images)
            file = quantize_int8(file, int8_output(file), calibration)
        estimators[backend] = PoseEstimator.from_module(module, config, cfg.ckpt, backend="onnxruntime",
                                                        onnx_path=file, threads=torch.get_num_threads())
    return estimators


def time_estimator(estimator: PoseEstimator, images: list[np.ndarray], warmup: int) -> tuple[np.ndarray, list[float]]:
    """Keypoints (N,K,2) in original pixels and the milliseconds of each image, predicted one at a time after
    `warmup` untimed calls on the first image."""
    for _ in range(warmup):
        estimator.predict(images[0])
    keypoints, times = [], []
    for image in images:
        begin = time.perf_counter()
        (prediction,) = estimator.predict(image)
        times.append((time.perf_counter() - begin) * 1e3)
        keypoints.append(prediction.keypoints)
    return np.stack(keypoints), times


def run_peer_on_images(python: Path, paths: list[Path], folder: Path, warmup: int) -> tuple[dict[str, Any], Any]:
    """The MediaPipe peer on `paths` in its own environment: its JSON summary and its answers (LSP keypoints and
    per-image milliseconds, the peer's OUT.npz, written in `folder`)."""
    listing, output = folder / "peer_images.txt", folder / "peer_keypoints.npz"
    listing.write_text("".join(f"{path}\n" for path in paths))
    summary = run_peer(python, ["--images", str(listing), "--output", str(output), "--warmup-images", str(warmup)])
    stored = dict(np.load(output))
    if stored["keypoints"].shape[0] != len(paths) or len(stored["milliseconds"]) != len(paths):
        raise PoseLabError(f"{output}: the peer answered {stored['keypoints'].shape[0]} images, "
                           f"{len(paths)} were asked; is {PEER_SCRIPT.name} the one next to this pose_lab?")
    return summary, stored


def interleaved_rounds(count: int, rounds: int) -> list[np.ndarray]:
    """Image indices of each round: round r takes images r, r + rounds, r + 2 * rounds, ..., so that every round
    holds the same mix of images."""
    return [np.arange(start, count, rounds) for start in range(min(rounds, count))]


def scored_side(times_ms: list[float] | np.ndarray, keypoints: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """One side of the comparison: its per-image timing summary and its PCK (percent, every protocol)."""
    return {**summarize(list(times_ms)),
            "pck": score(torch.from_numpy(np.asarray(keypoints, np.float32)), torch.from_numpy(truth))}


def predict_default_side() -> str:
    """The side that `python -m pose_lab.predict` runs when given no overrides (conf/predict.yaml)."""
    defaults = OmegaConf.load(PREDICT_CONFIG)
    return next(side for side, spec in ONNX_SIDES.items() if spec == (defaults.inference_path, defaults.int8))


def peer_comparison(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """pose_lab's checkpoint (every backend of cfg.backend) and the MediaPipe peer on the same LSP test images,
    timed per image and scored against joints.mat; bench.json's `peer_comparison`.

    The images are timed in `peer_rounds` interleaved rounds, each of every pose_lab side then the peer (the
    other way round in odd rounds), so that a slow period of a shared machine falls on both sides alike.
    """
    test = lsp_test_images(cfg)
    count, joints = test.truth.shape[:2]
    extra = (*((INT8_SIDE,) if cfg.peer_int8 else ()), *((HEATMAP_SIDE,) if cfg.peer_heatmap else ()),
             *((HEATMAP_INT8_SIDE,) if cfg.peer_heatmap and cfg.peer_int8 else ()))
    backends = (*runtimes(cfg.backend), *extra)
    times = {side: np.zeros(count) for side in (*backends, "peer")}
    keypoints = {side: np.full((count, joints, 2), np.nan, np.float32) for side in (*backends, "peer")}
    peer_visibility = np.zeros((count, joints), np.float32)
    rounds = interleaved_rounds(count, cfg.peer_rounds)
    peer_summaries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pose_lab_peer_") as folder:
        estimators = comparison_estimators(cfg, backends, Path(folder))

        def time_ours(index: np.ndarray) -> None:
            for backend, estimator in estimators.items():
                time.sleep(cfg.settle_seconds)
                found, spent = time_estimator(estimator, [test.images[i] for i in index], cfg.warmup)
                keypoints[backend][index], times[backend][index] = found, spent

        def time_peer(index: np.ndarray) -> None:
            summary, stored = run_peer_on_images(Path(cfg.peer_python), [test.paths[i] for i in index],
                                                 Path(folder), min(cfg.warmup, len(index)))
            keypoints["peer"][index], times["peer"][index] = stored["keypoints"], stored["milliseconds"]
            peer_visibility[index] = stored["visibility"]
            peer_summaries.append(summary)

        for number, index in enumerate(rounds):
            for step in (time_ours, time_peer) if number % 2 == 0 else (time_peer, time_ours):
                step(index)
    (out_dir / "peer_images.txt").write_text("".join(f"{path}\n" for path in test.paths))
    output = out_dir / "peer_keypoints.npz"
    np.savez(output, keypoints=keypoints["peer"], visibility=peer_visibility, milliseconds=times["peer"],
             images=np.array([str(path) for path in test.paths]))
    summary = peer_summaries[0]
    peer = {"name": summary["peer"], "version": summary.get("mediapipe"),
            "images_with_pose": sum(part["images_with_pose"] for part in peer_summaries),
            "keypoints_file": str(output), **scored_side(times["peer"], keypoints["peer"], test.truth)}
    ours = [{"backend": backend, "threads": torch.get_num_threads(),
             **scored_side(times[backend], keypoints[backend], test.truth)} for backend in backends]
    for side in ours:
        side["ratio_to_peer"] = side["median_ms"] / peer["median_ms"]
    return {
        "checkpoint": str(cfg.ckpt),
        "split": plain(cfg.peer_split),
        "subset": "test",
        "images": len(test.numbers),
        "image_numbers": [int(test.numbers[0]), int(test.numbers[-1])],
        "warmup": cfg.warmup,
        "rounds": len(rounds),
        "timed": TIMED_SPANS,
        "predict_default": predict_default_side(),
        "missing_pose": "a MediaPipe image without a pose counts as wrong for every joint (NaN keypoints)",
        "pose_lab": ours,
        "peer": peer,
    }


def format_comparison(comparison: dict[str, Any]) -> str:
    """Two lines per side: time per image, PCK and, for pose_lab, its time as a ratio of the peer's."""
    def line(label: str, side: dict[str, Any]) -> str:
        pck = ", ".join(f"{protocol} {side['pck'][protocol]['mean']:.1f} %" for protocol in side["pck"])
        return f"{label:<32}{side['median_ms']:>7.2f} ms/image (p90 {side['p90_ms']:.2f}); {pck}"

    lines = [f"\nagainst {comparison['peer']['name']} on {comparison['images']} LSP test images:"]
    for side in comparison["pose_lab"]:
        lines.append(line(f"pose_lab ({side['backend']})", side) + f"; {side['ratio_to_peer']:.3f}x the peer's time")
    lines.append(line("peer", comparison["peer"])
                 + f"; a pose in {comparison['peer']['images_with_pose']} of {comparison['images']} images")
    return "\n".join(lines)


def check_peer(cfg: DictConfig) -> None:
    """The peer comparison's settings, checked before anything is timed."""
    if cfg.ckpt is None:
        raise PoseLabError("peer_python is set but ckpt is not: the comparison with MediaPipe runs a trained "
                           f"checkpoint, pass ckpt=PATH (e.g. ckpt={DEFAULT_CHECKPOINT})")
    unsupported = [runtime for runtime in runtimes(cfg.backend) if runtime not in PREDICT_RUNTIMES]
    if unsupported:
        raise PoseLabError(f"backend={plain(cfg.backend)}: the MediaPipe comparison times `predict`'s runtimes "
                           f"({', '.join(PREDICT_RUNTIMES)}), not {', '.join(unsupported)}; bench those without "
                           "peer_python")
    check_peer_python(Path(cfg.peer_python))
    if not cfg.lsp_root:
        raise PoseLabError(f"the comparison with MediaPipe runs on LSP test images: set {ROOT_ENV_VAR}=/path/to/lsp "
                           "or pass lsp_root=/path/to/lsp")
    if cfg.peer_images is not None and cfg.peer_images < 1:
        raise PoseLabError(f"peer_images={cfg.peer_images}: give at least 1, or null for every test image")
    if cfg.peer_rounds < 1:
        raise PoseLabError(f"peer_rounds={cfg.peer_rounds}: give at least 1 (1 = every side over all images in turn)")
