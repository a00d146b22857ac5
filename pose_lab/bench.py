"""Benchmark the model variants: `python -m pose_lab.bench [models=[base,vit]] [input_size=192] [ckpt=PATH]
[backend=torch|torch-compile|onnxruntime|both|[torch,torch-compile,...]] [channels_last=true|false|[false,true]]`.

For every variant (each conf/model/*.yaml, or the network of a checkpoint) and every inference path of
:data:`pose_lab.runtime.PATHS` ("full", "regression": BlazePose's inference path, "heatmap": the heatmaps
alone) it measures parameters (total and those
the path runs), FLOPs at batch 1, CPU batch-1 latency and, when CUDA is available, GPU batch-1 latency and
batch-`cuda_batch` throughput. Prints a table and writes `bench.json` into the run folder.

Every latency is the timing of one callable `infer(x)` (see `time_infer`) built by :mod:`pose_lab.runtime`:
`torch_infer` for PyTorch, eager ("torch") or through torch.compile ("torch-compile", `compile_backend`), in each
memory format of `channels_last`; `onnx_infer` for ONNX Runtime on the path exported by
:func:`pose_lab.export.export_onnx` into a temporary folder (CPU only, NCHW, with as many intra-op threads as
torch uses). There is one record per variant, path, runtime and (for the torch runtimes) memory format, all timed
side by side in one run: `backend=[torch,torch-compile,onnxruntime] channels_last=[false,true]` measures the
inference-path levers against eager NCHW.

With `ckpt=PATH peer_python=PYTHON` the bench also sets the checkpoint against MediaPipe Pose on real LSP test
images, side by side in the same run (see `peer_comparison`): per image, at batch 1, pose_lab's inference paths
(:meth:`pose_lab.inference.PoseEstimator.predict` on one decoded image: letterbox, the side's path, keypoints back
to original pixels): the regression path in every backend of `backend`, and the ONNX Runtime sides of ONNX_SIDES
that peer_int8 and peer_heatmap ask for (`predict`'s default among them); then the MediaPipe peer
(`pose_lab/exercise/peer_mediapipe.py --images`, person detector + landmark model per image) in its own virtual
environment, as a subprocess: MediaPipe pins another OpenCV and numpy and is never a dependency of pose_lab.
Both sides' keypoints are scored here with pose_lab's PCK (:func:`pose_lab.evaluate.score`) against joints.mat.
"""

from __future__ import annotations

import gc
import os
import platform
import shlex
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from pose_lab.checkpoint import DEFAULT_CHECKPOINT, load_module
from pose_lab.compose import compose_config
from pose_lab.data.lsp import (
    JOINTS_FILE,
    ROOT_ENV_VAR,
    image_path,
    load_images,
    read_joints,
    resolve_root,
)
from pose_lab.data.splits import split_numbers
from pose_lab.errors import PoseLabError, exit_on_user_error
from pose_lab.evaluate import score
from pose_lab.export import export_onnx, int8_output, onnx_metadata
from pose_lab.inference import BACKENDS as PREDICT_RUNTIMES
from pose_lab.inference import PoseEstimator
from pose_lab.jsonfile import write_json
from pose_lab.models.network import BlazePoseNet
from pose_lab.paths import CONF_DIR
from pose_lab.peer import PEER_SCRIPT, check_peer_python, run_peer
from pose_lab.quantize import calibration_inputs, quantize_int8
from pose_lab.runtime import PATHS, Infer, onnx_infer, onnx_session, torch_infer

DEVICES: tuple[str, ...] = ("cpu", "cuda")
# The peer comparison's ONNX Runtime sides, as (inference path, int8): the regression path (backend=onnxruntime
# or both), its int8 copy (peer_int8=true), and the heatmap path, keypoints decoded from its heatmaps, with its
# int8 copy (peer_heatmap=true; the int8 one with peer_int8=true too): what `predict` runs by default.
INT8_SIDE = "onnxruntime-int8"
HEATMAP_SIDE = "onnxruntime-heatmap"
HEATMAP_INT8_SIDE = "onnxruntime-heatmap-int8"
ONNX_SIDES: dict[str, tuple[str, bool]] = {"onnxruntime": ("regression", False), INT8_SIDE: ("regression", True),
                                          HEATMAP_SIDE: ("heatmap", False), HEATMAP_INT8_SIDE: ("heatmap", True)}
PREDICT_CONFIG = CONF_DIR / "predict.yaml"
# The runtimes a bench times: eager torch, torch.compile (with cfg.compile_backend) and ONNX Runtime.
TORCH_RUNTIMES: tuple[str, ...] = ("torch", "torch-compile")
RUNTIMES: tuple[str, ...] = (*TORCH_RUNTIMES, "onnxruntime")
# `backend` names: a runtime, or "both" (eager torch and ONNX Runtime); a list of runtimes is also accepted.
BACKENDS: dict[str, tuple[str, ...]] = {**{runtime: (runtime,) for runtime in RUNTIMES},
                                        "both": ("torch", "onnxruntime")}
ONNX_CUDA_SKIPPED = {"skipped": True, "reason": "onnxruntime is timed on the CPU only (CPU execution provider)"}
FLOPS_CONVENTION = (
    "torch.utils.flop_counter.FlopCounterMode at batch 1: 2 x multiply-adds of convolutions, matmuls and "
    "attention; element-wise ops, pooling and interpolation are not counted"
)
# Config keys copied into bench.json.
SETTINGS: tuple[str, ...] = ("models", "ckpt", "inference_paths", "backend", "input_size", "warmup", "iters", "threads",
                             "channels_last", "compile_backend", "settle_seconds", "devices", "cuda_device",
                             "cuda_batch", "peer_python", "lsp_root", "peer_split", "peer_images", "peer_int8",
                             "peer_heatmap", "peer_rounds", "calibration_images")
# What each side's per-image time covers, written into bench.json beside the times.
TIMED_SPANS: dict[str, str] = {
    "pose_lab": "PoseEstimator.predict on one decoded RGB image: letterbox, normalisation, the side's inference "
                "path at batch 1 (the regression path; the heatmap sides: the heatmap path, keypoints decoded from "
                "its heatmaps), keypoints mapped back to original pixels",
    "peer": "pose.process on one decoded RGB image (person detector + landmark model), landmarks to pixels",
}


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _names(value: Any) -> list[str]:
    """A config list of names; a single name (`models=base` on the command line) as a one-item list."""
    return [value] if isinstance(value, str) else list(value)


def available_models() -> list[str]:
    """Variant names, one per conf/model/*.yaml, read at call time."""
    return sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml"))


def check_models(names: list[str]) -> None:
    """Raise a PoseLabError listing the available variants when a name is not one of them."""
    models = available_models()
    unknown = [name for name in names if name not in models]
    if unknown:
        raise PoseLabError(
            f"unknown model(s) {', '.join(unknown)}; available models (conf/model/*.yaml): {', '.join(models)}"
        )


def build_variant(model: str, input_size: int) -> BlazePoseNet:
    """The network of conf/model/<model>.yaml at `input_size`, freshly initialised, in eval mode."""
    check_models([model])
    # Only model.net is instantiated, so train.yaml's ${hydra:...} values are never resolved.
    cfg = compose_config("train", [f"model={model}", f"data.input_size={input_size}"])
    return instantiate(cfg.model.net).eval()


def params_used(net: nn.Module, path: str, x: Tensor) -> int:
    """Parameters of the modules that one call of `path` runs (shared parameters counted once)."""
    ran: list[nn.Module] = []
    handles = [module.register_forward_hook(lambda module, *_: ran.append(module)) for module in net.modules()]
    try:
        with torch.inference_mode():
            PATHS[path](net, x)
    finally:
        for handle in handles:
            handle.remove()
    unique = {id(p): p for module in ran for p in module.parameters(recurse=False)}
    return sum(p.numel() for p in unique.values())


def count_flops(net: nn.Module, path: str, x: Tensor) -> int:
    """FLOPs (2 x multiply-adds, see FLOPS_CONVENTION) of one call of `path` on `x`."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        PATHS[path](net, x)
    return counter.get_total_flops()


def time_infer(infer: Infer, x: Tensor, warmup: int, iters: int) -> list[float]:
    """Milliseconds of each of `iters` calls after `warmup` untimed ones.

    CUDA inputs are timed with CUDA events around each call (GPU time, one synchronisation at the end);
    anything else with time.perf_counter around each call.
    """
    for _ in range(warmup):
        infer(x)
    if x.device.type == "cuda":
        with torch.cuda.device(x.device):  # events record on the current stream of the input's device
            torch.cuda.synchronize()
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                      for _ in range(iters)]
            for start, end in events:
                start.record()
                infer(x)
                end.record()
            torch.cuda.synchronize()
        return [start.elapsed_time(end) for start, end in events]
    times = []
    for _ in range(iters):
        begin = time.perf_counter()
        infer(x)
        times.append((time.perf_counter() - begin) * 1e3)
    return times


def summarize(times_ms: list[float]) -> dict[str, float]:
    """Median, 90th percentile (linear interpolation), mean and minimum of call times in ms."""
    times = np.asarray(times_ms)
    return {
        "median_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
        "mean_ms": float(times.mean()),
        "min_ms": float(times.min()),
    }


def _memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def _input(batch: int, size: int, device: torch.device, channels_last: bool) -> Tensor:
    return torch.randn(batch, 3, size, size).to(device, memory_format=_memory_format(channels_last))


def runtimes(cfg: DictConfig) -> tuple[str, ...]:
    """The runtimes of cfg.backend: a name of BACKENDS, or a list of runtimes."""
    return BACKENDS[cfg.backend] if isinstance(cfg.backend, str) else tuple(cfg.backend)


def inference_paths(cfg: DictConfig) -> list[str]:
    """The inference paths to time: cfg.inference_paths, or every path of PATHS when it is null."""
    return list(PATHS) if cfg.inference_paths is None else _names(cfg.inference_paths)


def memory_formats(cfg: DictConfig) -> list[bool]:
    """cfg.channels_last as a list: one memory format for the torch runtimes, or several timed side by side."""
    value = cfg.channels_last
    return [bool(item) for item in value] if isinstance(value, ListConfig) else [bool(value)]


def _torch_infer(runtime: str, net: nn.Module, path: str, device: str | torch.device, channels_last: bool,
                 cfg: DictConfig) -> Infer:
    return torch_infer(net.to(device, memory_format=_memory_format(channels_last)), path,
                       cfg.compile_backend if runtime == "torch-compile" else None)


def cpu_infer(backend: str, net: BlazePoseNet, path: str, folder: Path, channels_last: bool,
              cfg: DictConfig) -> Infer:
    """`path` of `net` on the CPU in `backend`; onnxruntime exports it into `folder` first and gets as many
    intra-op threads as torch uses."""
    if backend in TORCH_RUNTIMES:
        return _torch_infer(backend, net, path, "cpu", channels_last, cfg)
    file = folder / f"{path}.onnx"
    export_onnx(net.to("cpu", memory_format=torch.contiguous_format), path, file)
    return onnx_infer(onnx_session(file, threads=torch.get_num_threads()))


def bench_cpu(backend: str, net: BlazePoseNet, path: str, folder: Path, channels_last: bool,
              cfg: DictConfig) -> dict[str, Any]:
    """Batch-1 CPU latency of `path` in `backend` with inputs in the `channels_last` memory format (ONNX Runtime
    reads plain NCHW inputs: pass False)."""
    if "cpu" not in _names(cfg.devices):
        return {"skipped": True, "reason": f"cpu not in devices={_names(cfg.devices)}"}
    infer = cpu_infer(backend, net, path, folder, channels_last, cfg)
    x = _input(1, net.input_size, torch.device("cpu"), channels_last)
    # Both runtimes keep their worker threads spinning for a while after a call; on two cores the last
    # measurement's spinning threads would steal this one's time. Let them go idle first.
    time.sleep(cfg.settle_seconds)
    times = time_infer(infer, x, cfg.warmup, cfg.iters)
    del infer
    gc.collect()  # an ONNX Runtime session's thread pool ends with the session
    return {"skipped": False, "batch": 1, "threads": torch.get_num_threads(), **summarize(times)}


def bench_cuda(backend: str, net: nn.Module, path: str, size: int, channels_last: bool,
               cfg: DictConfig) -> dict[str, Any]:
    """Batch-1 GPU latency and batch-`cuda_batch` throughput of `path` in the torch runtime `backend` at input
    `size`; the net is moved back to the CPU afterwards."""
    if "cuda" not in _names(cfg.devices):
        return {"skipped": True, "reason": f"cuda not in devices={_names(cfg.devices)}"}
    if not torch.cuda.is_available():
        return {"skipped": True, "reason": "no CUDA device (torch.cuda.is_available() is False)"}
    device = torch.device(cfg.cuda_device)
    try:
        infer = _torch_infer(backend, net, path, device, channels_last, cfg)
        latency = summarize(time_infer(infer, _input(1, size, device, channels_last), cfg.warmup, cfg.iters))
        batch = _input(cfg.cuda_batch, size, device, channels_last)
        batch_ms = summarize(time_infer(infer, batch, cfg.warmup, cfg.iters))["median_ms"]
    finally:
        net.cpu()
    return {
        "skipped": False,
        "device": torch.cuda.get_device_name(device),
        "batch": 1,
        **latency,
        "throughput": {"batch": cfg.cuda_batch, "batch_median_ms": batch_ms,
                       "images_per_s": cfg.cuda_batch * 1e3 / batch_ms},
    }


def bench_network(variant: str, net: BlazePoseNet, cfg: DictConfig) -> list[dict[str, Any]]:
    """One record per inference path of `net`, runtime of cfg.backend and, for the torch runtimes, memory format
    of cfg.channels_last (`channels_last`: null for ONNX Runtime)."""
    net.eval()
    x = torch.randn(1, 3, net.input_size, net.input_size)
    total = sum(p.numel() for p in net.parameters())
    records = []
    with tempfile.TemporaryDirectory(prefix="pose_lab_bench_") as folder:
        for path in inference_paths(cfg):
            common = {
                "variant": variant,
                "path": path,
                "input_size": net.input_size,
                "params": {"total": total, "used": params_used(net, path, x)},
                "gflops": count_flops(net, path, x) / 1e9,
            }
            for backend in runtimes(cfg):
                if backend not in TORCH_RUNTIMES:
                    cpu = bench_cpu(backend, net, path, Path(folder), False, cfg)
                    records.append({**common, "backend": backend, "channels_last": None, "cpu": cpu,
                                    "cuda": ONNX_CUDA_SKIPPED})
                    continue
                for channels_last in memory_formats(cfg):
                    cpu = bench_cpu(backend, net, path, Path(folder), channels_last, cfg)
                    cuda = bench_cuda(backend, net, path, net.input_size, channels_last, cfg)
                    records.append({**common, "backend": backend, "channels_last": channels_last, "cpu": cpu,
                                    "cuda": cuda})
    return records


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rerun_command(module: str) -> str:
    """`python -m module` with the command-line overrides of this Hydra run (its hydra.* ones left out): the
    command that reruns it, recorded with its results. Read it before composing other configs."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return " ".join([f"python -m {module}", *map(shlex.quote, overrides)])


def machine_info() -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if cuda else None,
        "cuda_version": torch.version.cuda if cuda else None,
    }


def _networks(cfg: DictConfig) -> list[tuple[str, BlazePoseNet]]:
    """(variant label, network) pairs to bench, checking the names before building anything."""
    if cfg.ckpt is not None:
        if cfg.models is not None:
            raise PoseLabError("give either ckpt=PATH or models=[...], not both")
        return [(f"ckpt:{Path(cfg.ckpt).name}", load_module(cfg.ckpt)[0].net)]
    models = available_models() if cfg.models is None else _names(cfg.models)
    check_models(models)
    return [(name, build_variant(name, size)) for size in input_sizes(cfg) for name in models]


def input_sizes(cfg: DictConfig) -> list[int]:
    """cfg.input_size as a list: one size, or several benched in the same run."""
    sizes = cfg.input_size
    return [int(size) for size in sizes] if isinstance(sizes, ListConfig) else [int(sizes)]


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
    numbers = split_numbers(_plain(cfg.peer_split), "test", len(annotations))[: cfg.peer_images]
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
    backends = (*runtimes(cfg), *extra)
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
        "split": _plain(cfg.peer_split),
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


def _check_peer(cfg: DictConfig) -> None:
    """The peer comparison's settings, checked before anything is timed."""
    if cfg.ckpt is None:
        raise PoseLabError("peer_python is set but ckpt is not: the comparison with MediaPipe runs a trained "
                           f"checkpoint, pass ckpt=PATH (e.g. ckpt={DEFAULT_CHECKPOINT})")
    unsupported = [runtime for runtime in runtimes(cfg) if runtime not in PREDICT_RUNTIMES]
    if unsupported:
        raise PoseLabError(f"backend={_plain(cfg.backend)}: the MediaPipe comparison times `predict`'s runtimes "
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


def _check(cfg: DictConfig) -> None:
    if not input_sizes(cfg) or any(size <= 0 or size % 32 for size in input_sizes(cfg)):
        raise PoseLabError(f"input_size must be a positive multiple of 32 (or a list of them), got {cfg.input_size}")
    names = [cfg.backend] if isinstance(cfg.backend, str) else list(cfg.backend)
    unknown = [name for name in names if name not in (BACKENDS if isinstance(cfg.backend, str) else RUNTIMES)]
    if unknown or not names or len(set(names)) < len(names):
        raise PoseLabError(f"backend={_plain(cfg.backend)}: give one of {', '.join(BACKENDS)}, or a list of "
                           f"distinct runtimes among {', '.join(RUNTIMES)}")
    paths = inference_paths(cfg)
    if not paths or set(paths) - set(PATHS) or len(set(paths)) < len(paths):
        raise PoseLabError(f"inference_paths={_plain(cfg.inference_paths)}: give distinct paths among "
                           f"{', '.join(PATHS)}, or null for all")
    if not memory_formats(cfg) or len(set(memory_formats(cfg))) < len(memory_formats(cfg)):
        raise PoseLabError(f"channels_last={_plain(cfg.channels_last)}: give true, false or [false,true]")
    if cfg.warmup < 0 or cfg.iters < 1:
        raise PoseLabError(f"need warmup >= 0 and iters >= 1, got warmup={cfg.warmup} iters={cfg.iters}")
    unknown = sorted(set(_names(cfg.devices)) - set(DEVICES))
    if unknown:
        raise PoseLabError(f"unknown device(s) {unknown} in devices; valid: {', '.join(DEVICES)}")
    if cfg.peer_python is not None:
        _check_peer(cfg)


def _cell(section: dict[str, Any], *keys: str) -> str:
    if section["skipped"]:
        return "-"
    for key in keys:
        section = section[key]
    return f"{section:.2f}" if section < 100 else f"{section:.0f}"


def runtime_label(record: dict[str, Any]) -> str:
    """A record's runtime and, for a torch runtime, its memory format ("torch NCHW", "torch-compile NHWC")."""
    layout = record.get("channels_last")
    return record["backend"] if layout is None else f"{record['backend']} {'NHWC' if layout else 'NCHW'}"


def format_table(records: list[dict[str, Any]]) -> str:
    header = (f"{'variant':<18}{'input':>6}  {'path':<12}{'runtime':<20}{'params M':>9}{'GFLOPs':>8}{'CPU ms':>8}"
              f"{'p90 ms':>8}{'GPU ms':>8}{'GPU img/s':>10}")
    rows = [header, "-" * len(header)]
    for r in records:
        rows.append(
            f"{r['variant']:<18}{r['input_size']:>6}  {r['path']:<12}{runtime_label(r):<20}"
            f"{r['params']['used'] / 1e6:>9.3f}{r['gflops']:>8.3f}"
            f"{_cell(r['cpu'], 'median_ms'):>8}{_cell(r['cpu'], 'p90_ms'):>8}"
            f"{_cell(r['cuda'], 'median_ms'):>8}{_cell(r['cuda'], 'throughput', 'images_per_s'):>10}"
        )
    return "\n".join(rows)


def bench(cfg: DictConfig) -> dict[str, Any]:
    """Bench the configured networks; returns what is written to `bench.json` in paths.output_dir."""
    _check(cfg)
    command = rerun_command("pose_lab.bench")
    previous_threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        networks = _networks(cfg)
        records = [record for variant, net in networks for record in bench_network(variant, net, cfg)]
        summary = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command,
            "machine": machine_info(),
            "settings": {
                **{key: _plain(cfg[key]) for key in SETTINGS},
                "threads_used": torch.get_num_threads(),
            },
            "flops": FLOPS_CONVENTION,
            "records": records,
        }
        if cfg.peer_python is not None:
            summary["peer_comparison"] = peer_comparison(cfg, out_dir)
    finally:
        torch.set_num_threads(previous_threads)
    write_json(out_dir / "bench.json", summary)
    print(format_table(records))
    if "peer_comparison" in summary:
        print(format_comparison(summary["peer_comparison"]))
    print(f"\nparams M = parameters the path runs; GFLOPs = 2 x multiply-adds at batch 1; "
          f"CPU/GPU ms = batch-1 median; GPU img/s at batch {cfg.cuda_batch}\nwrote {out_dir / 'bench.json'}")
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    bench(cfg)


if __name__ == "__main__":
    main()
