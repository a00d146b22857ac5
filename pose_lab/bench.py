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
images, side by side in the same run: :mod:`pose_lab.peer_comparison`, into bench.json's `peer_comparison`.
"""

from __future__ import annotations

import gc
import os
import platform
import shlex
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from pose_lab.checkpoint import load_module
from pose_lab.compose import compose_config, plain
from pose_lab.errors import PoseLabError, exit_on_user_error
from pose_lab.export import export_onnx
from pose_lab.jsonfile import write_json
from pose_lab.models.network import BlazePoseNet
from pose_lab.paths import CONF_DIR
from pose_lab.peer_comparison import check_peer, format_comparison, peer_comparison
from pose_lab.runtime import (
    BACKENDS,
    PATHS,
    RUNTIMES,
    TORCH_RUNTIMES,
    Infer,
    onnx_infer,
    onnx_session,
    runtime_label,
    runtimes,
    summarize,
    torch_infer,
)

DEVICES: tuple[str, ...] = ("cpu", "cuda")
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


def _memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def _input(batch: int, size: int, device: torch.device, channels_last: bool) -> Tensor:
    return torch.randn(batch, 3, size, size).to(device, memory_format=_memory_format(channels_last))


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
            for backend in runtimes(cfg.backend):
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


def _check(cfg: DictConfig) -> None:
    if not input_sizes(cfg) or any(size <= 0 or size % 32 for size in input_sizes(cfg)):
        raise PoseLabError(f"input_size must be a positive multiple of 32 (or a list of them), got {cfg.input_size}")
    names = [cfg.backend] if isinstance(cfg.backend, str) else list(cfg.backend)
    unknown = [name for name in names if name not in (BACKENDS if isinstance(cfg.backend, str) else RUNTIMES)]
    if unknown or not names or len(set(names)) < len(names):
        raise PoseLabError(f"backend={plain(cfg.backend)}: give one of {', '.join(BACKENDS)}, or a list of "
                           f"distinct runtimes among {', '.join(RUNTIMES)}")
    paths = inference_paths(cfg)
    if not paths or set(paths) - set(PATHS) or len(set(paths)) < len(paths):
        raise PoseLabError(f"inference_paths={plain(cfg.inference_paths)}: give distinct paths among "
                           f"{', '.join(PATHS)}, or null for all")
    if not memory_formats(cfg) or len(set(memory_formats(cfg))) < len(memory_formats(cfg)):
        raise PoseLabError(f"channels_last={plain(cfg.channels_last)}: give true, false or [false,true]")
    if cfg.warmup < 0 or cfg.iters < 1:
        raise PoseLabError(f"need warmup >= 0 and iters >= 1, got warmup={cfg.warmup} iters={cfg.iters}")
    unknown = sorted(set(_names(cfg.devices)) - set(DEVICES))
    if unknown:
        raise PoseLabError(f"unknown device(s) {unknown} in devices; valid: {', '.join(DEVICES)}")
    if cfg.peer_python is not None:
        check_peer(cfg)


def _cell(section: dict[str, Any], *keys: str) -> str:
    if section["skipped"]:
        return "-"
    for key in keys:
        section = section[key]
    return f"{section:.2f}" if section < 100 else f"{section:.0f}"


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
                **{key: plain(cfg[key]) for key in SETTINGS},
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
