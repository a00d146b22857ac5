"""The runtimes that run an inference path of BlazePoseNet, each built into the same `infer(x)` callable.

A path is "full" (`net.forward`: heatmaps, coordinates, visibility), "regression" (`net.forward_regression`:
BlazePose's inference path, which skips the heatmap decoder tail and head) or "heatmap" (`net.forward_heatmaps`:
the heatmaps alone, which skips the regression branch). `torch_infer` runs a path in PyTorch, eagerly or
through torch.compile; `onnx_infer` runs an ONNX file of one path (written by :mod:`pose_lab.export`) in ONNX
Runtime. Both take a (B,3,S,S) float tensor and return the path's outputs as tensors in `OUTPUTS[path]` order, so
what :mod:`pose_lab.bench` times is exactly what :class:`pose_lab.inference.PoseEstimator` runs. `RUNTIMES` names
the runtimes a bench times, `runtimes` reads its `backend` setting and `runtime_label` names a timed record's
runtime and memory format; `summarize` gives the statistics of timed calls that :mod:`pose_lab.bench` and
:mod:`pose_lab.peer_comparison` record.

ONNX Runtime is an optional dependency (`pip install 'pose_lab[onnx]'`): it is imported when a session is
opened, so pose_lab imports, trains and predicts with torch alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from pose_lab.errors import PoseLabError

if TYPE_CHECKING:
    import onnxruntime

# The inference paths of BlazePoseNet and the names of their outputs, in order: everything, the regression
# branch's coordinates alone (BlazePose's fast path), the heatmaps alone.
PATHS: dict[str, Callable[[nn.Module, Tensor], Any]] = {
    "full": lambda net, x: net(x),
    "regression": lambda net, x: net.forward_regression(x),
    "heatmap": lambda net, x: (net.forward_heatmaps(x),),
}
OUTPUTS: dict[str, tuple[str, ...]] = {
    "full": ("heatmaps", "coords", "visibility"),
    "regression": ("coords", "visibility"),
    "heatmap": ("heatmaps",),
}
# Name of the (B,3,S,S) input of exported ONNX files.
INPUT_NAME = "image"
ONNX_INSTALL_HINT = "pip install 'pose_lab[onnx]' (onnx, onnxruntime, onnxscript), or pass backend=torch"

Infer = Callable[[Tensor], Sequence[Tensor]]

# The runtimes a bench times: eager torch, torch.compile (with cfg.compile_backend) and ONNX Runtime.
TORCH_RUNTIMES: tuple[str, ...] = ("torch", "torch-compile")
RUNTIMES: tuple[str, ...] = (*TORCH_RUNTIMES, "onnxruntime")
# `backend` names: a runtime, or "both" (eager torch and ONNX Runtime); a list of runtimes is also accepted.
BACKENDS: dict[str, tuple[str, ...]] = {**{runtime: (runtime,) for runtime in RUNTIMES},
                                        "both": ("torch", "onnxruntime")}


def torch_infer(net: nn.Module, path: str, compile_backend: str | None = None) -> Infer:
    """The PyTorch backend: `path` of `net` under inference_mode (net already in eval mode), eagerly or, with a
    `compile_backend` ("inductor": generated C++/Triton kernels), through torch.compile. A compiled path is
    compiled on its first call, for the shapes of that call: time it after warm-up."""
    run_path = PATHS[path]

    def run(x: Tensor) -> Any:
        return run_path(net, x)

    compiled = run if compile_backend is None else torch.compile(run, backend=compile_backend, dynamic=False)

    def infer(x: Tensor) -> tuple[Tensor, ...]:
        with torch.inference_mode():
            return tuple(compiled(x))

    return infer


def onnx_session(file: str | Path, threads: int = 2) -> onnxruntime.InferenceSession:
    """An ONNX Runtime CPU session on `file` with `threads` intra-op threads (2 = this project's CPU)."""
    try:
        import onnxruntime  # optional dependency, see the module docstring
    except ImportError as error:
        raise PoseLabError(f"ONNX Runtime is not installed: {ONNX_INSTALL_HINT}") from error
    file = Path(file)
    if not file.is_file():
        raise PoseLabError(f"ONNX file not found: {file}; write one with `python -m pose_lab.export ckpt=PATH`")
    if threads < 1:
        raise PoseLabError(f"ONNX Runtime threads must be >= 1, got {threads}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own classes for any unloadable file
        raise PoseLabError(f"ONNX Runtime cannot load {file}: {error}") from error


def session_path(session: onnxruntime.InferenceSession) -> str:
    """The inference path an ONNX session runs, recognised by its output names."""
    names = tuple(output.name for output in session.get_outputs())
    for path, outputs in OUTPUTS.items():
        if names == outputs:
            return path
    raise PoseLabError(
        f"the ONNX model's outputs {list(names)} are not those of a pose_lab export "
        f"({' or '.join(str(list(outputs)) for outputs in OUTPUTS.values())})"
    )


def onnx_infer(session: onnxruntime.InferenceSession) -> Infer:
    """The ONNX Runtime backend: the session's path on a CPU float32 copy of the input."""
    input_name = session.get_inputs()[0].name

    def infer(x: Tensor) -> tuple[Tensor, ...]:
        feed = {input_name: np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)}
        return tuple(torch.from_numpy(output) for output in session.run(None, feed))

    return infer


def runtimes(backend: str | Sequence[str]) -> tuple[str, ...]:
    """The runtimes a `backend` setting names: a name of BACKENDS, or a list of runtimes."""
    return BACKENDS[backend] if isinstance(backend, str) else tuple(backend)


def runtime_label(record: dict[str, Any]) -> str:
    """A record's runtime and, for a torch runtime, its memory format ("torch NCHW", "torch-compile NHWC")."""
    layout = record.get("channels_last")
    return record["backend"] if layout is None else f"{record['backend']} {'NHWC' if layout else 'NCHW'}"


def summarize(times_ms: list[float]) -> dict[str, float]:
    """Median, 90th percentile (linear interpolation), mean and minimum of call times in ms."""
    times = np.asarray(times_ms)
    return {
        "median_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
        "mean_ms": float(times.mean()),
        "min_ms": float(times.min()),
    }
