"""Export a checkpoint's inference path to ONNX: `python -m pose_lab.export ckpt=PATH [path=regression|heatmap|full]`.

Writes one ONNX file with a dynamic batch dimension: the regression path by default (outputs coords (B,K,2),
normalised to [0, 1] of the input frame, and visibility (B,K,1)), the heatmap path (heatmaps (B,K,S/2,S/2)
alone) or the full path (heatmaps first). The
dynamo exporter is used (a clean opset-20 graph, PLATFORM.md); should it fail for a network, the file is written
by the legacy TorchScript exporter instead, with a warning naming the file and the error. A file whose batch
dimension came out fixed is an error (the dynamo exporter silently freezes a batch size that a network turns into
a Python int). The metadata_props of the file say how to feed it (input size, RGB mean/std, letterbox) and what
the outputs are.

Then a parity check runs the file in ONNX Runtime against PyTorch on random inputs (batches 1 and 3, so the
dynamic batch is exercised), prints the largest absolute difference per output, writes them to `export.json`
in the run folder and fails when one exceeds `tolerance`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

import pose_lab
from pose_lab import skeleton
from pose_lab.checkpoint import checkpoint_fingerprint, load_module
from pose_lab.data.errors import LSPDataError
from pose_lab.errors import PoseLabError, exit_on_user_error
from pose_lab.inference import normalization
from pose_lab.jsonfile import write_json
from pose_lab.models.flip_test import FlipAveraged
from pose_lab.models.network import BlazePoseNet
from pose_lab.quantize import SETTINGS_METADATA_KEY, calibration_inputs, quantize_int8, recorded_settings
from pose_lab.runtime import (
    INPUT_NAME,
    ONNX_INSTALL_HINT,
    OUTPUTS,
    PATHS,
    onnx_infer,
    onnx_session,
    session_path,
    torch_infer,
)

METADATA_PREFIX = "pose_lab."
FINGERPRINT_METADATA_KEY = METADATA_PREFIX + "checkpoint_sha256"
# Training images an automatic int8 copy is calibrated on (`python -m pose_lab.export quantize=true` has its own
# setting).
CALIBRATION_IMAGES = 200
# Loggers of the dynamo exporter's graph passes: dozens of INFO lines per export under Hydra's INFO root logger.
EXPORTER_LOGGERS: tuple[str, ...] = ("onnx_ir", "onnxscript")


class ExportError(PoseLabError):
    """An ONNX file that does not reproduce the PyTorch network."""


class InferencePath(nn.Module):
    """One inference path of a network as a module returning a tuple (what the ONNX exporters trace)."""

    def __init__(self, net: nn.Module, path: str) -> None:
        super().__init__()
        if path not in PATHS:
            raise PoseLabError(f"unknown path {path!r}; choose one of {', '.join(PATHS)}")
        self.net = net
        self.path = path

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(PATHS[self.path](self.net, x))


@contextlib.contextmanager
def _quiet(names: Sequence[str]) -> Iterator[None]:
    """Raise the named loggers to WARNING for the duration, then restore their levels."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _finish(file: Path, path: str, metadata: Mapping[str, str]) -> None:
    """Check that the file's batch dimension is dynamic, then add `metadata` to its metadata_props."""
    import onnx  # optional dependency (the `onnx` extra)

    model = onnx.load(str(file))
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    if not batch.dim_param:
        # The dynamo exporter specialises a batch size the network turns into a Python int, without a word.
        raise ExportError(
            f"{file}: the exporter fixed the batch size of the {path} path to {batch.dim_value}: a forward turns "
            "the batch size into a Python int (len(x), int(x.shape[0]), a reshape with it); use shape-free ops"
        )
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(file))


def export_onnx(net: BlazePoseNet | FlipAveraged, path: str, file: str | Path,
                metadata: Mapping[str, str] | None = None) -> str:
    """Write `path` of `net` (eval mode) to `file` with a dynamic batch; returns the exporter used.

    `metadata` goes into the file's metadata_props, with `pose_lab.exporter` added. Raises ExportError when the
    exported batch dimension is not dynamic.
    """
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise PoseLabError(f"ONNX export needs {' and '.join(missing)}: {ONNX_INSTALL_HINT}")
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    module = InferencePath(net.eval(), path).eval()
    # Batch 2: torch.export specialises a dimension whose example size is 1.
    example = torch.randn(2, 3, net.input_size, net.input_size)
    names = {"input_names": [INPUT_NAME], "output_names": list(OUTPUTS[path])}
    try:
        with _quiet(EXPORTER_LOGGERS):
            torch.onnx.export(module, (example,), str(file), dynamo=True, external_data=False, verbose=False,
                              dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, **names)
        exporter = "dynamo"
    except torch.onnx.OnnxExporterError as error:
        warnings.warn(f"{file}: the dynamo ONNX exporter failed on the {path} path "
                      f"({type(error).__name__}: {error}); writing it with the legacy TorchScript exporter",
                      stacklevel=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its removal notice and tracer chatter; the warning above says enough
            torch.onnx.export(module, (example,), str(file), dynamo=False,
                              dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *OUTPUTS[path])}, **names)
        exporter = "torchscript"
    _finish(file, path, {**(metadata or {}), f"{METADATA_PREFIX}exporter": exporter})
    return exporter


# What each output means, for the metadata of the files that have it.
OUTPUT_MEANINGS: dict[str, str] = {
    "heatmaps": ("(B,K,{half},{half}) one map per joint over the input at stride 2, peaking near 1 at the joint "
                 "(the first K channels are joints; a variant may add K mirror-joint maps after them)"),
    "coords": "(B,K,2) x, y normalised to [0, 1] of the input: times input_size gives input pixels",
    "visibility": "(B,K,1) probability that the joint is visible",
}


def onnx_metadata(config: DictConfig, path: str, checkpoint: str | Path, flip_test: bool = False) -> dict[str, str]:
    """metadata_props for the export of a checkpoint: how to prepare the input and read the outputs."""
    size = config.data.input_size
    mean, std = normalization(config)
    entries = {
        "version": pose_lab.__version__,
        "checkpoint": Path(checkpoint).name,
        "checkpoint_sha256": checkpoint_fingerprint(checkpoint),
        "path": path,
        "flip_test": json.dumps(flip_test),
        "input_size": str(size),
        "mean": json.dumps(mean),
        "std": json.dumps(std),
        "input": (f"{INPUT_NAME}: (B,3,{size},{size}) float32, an RGB image letterboxed (aspect kept, centred, "
                  "zero padding) to the input size, then (pixel / 255 - mean) / std per channel"),
        "outputs": ", ".join(OUTPUTS[path]),
        **{name: description.format(half=size // 2) for name, description in OUTPUT_MEANINGS.items()
           if name in OUTPUTS[path]},
        "joint_names": json.dumps(list(skeleton.JOINT_NAMES)),
    }
    return {METADATA_PREFIX + key: value for key, value in entries.items()}


def check_parity(net: BlazePoseNet, file: str | Path, batches: Sequence[int] = (1, 3), threads: int = 2,
                 seed: int = 0) -> dict[str, float]:
    """Largest absolute difference per output between ONNX Runtime on `file` and PyTorch on `net`, over
    random (B,3,S,S) inputs for each batch size B in `batches`."""
    session = onnx_session(file, threads)
    path = session_path(session)
    exported, reference = onnx_infer(session), torch_infer(net.eval(), path)
    generator = torch.Generator().manual_seed(seed)
    worst = dict.fromkeys(OUTPUTS[path], 0.0)
    for batch in batches:
        x = torch.randn(batch, 3, net.input_size, net.input_size, generator=generator)
        for name, ours, theirs in zip(OUTPUTS[path], reference(x), exported(x), strict=True):
            if ours.shape != theirs.shape:
                raise ExportError(f"{file}: output {name} has shape {tuple(theirs.shape)} at batch {batch}, "
                                  f"PyTorch gives {tuple(ours.shape)}")
            worst[name] = max(worst[name], (ours.float() - theirs).abs().max().item())
    return worst


def default_output(checkpoint: str | Path, path: str, flip_test: bool = False) -> Path:
    """Next to the checkpoint: <name>.onnx for the regression path, <name>_<path>.onnx for another path
    (<name>_heatmap.onnx, <name>_full.onnx), with _flip before the suffix for a flip-averaged export."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ("" if path == "regression" else f"_{path}")
                                + ("_flip" if flip_test else "") + ".onnx")


def _made_from(fingerprint: str, file: Path, quantization: str | None = None) -> bool:
    """Whether the ONNX `file` records this checkpoint `fingerprint` and, unless None, these `quantization`
    settings (recorded_settings) (False for a missing or unreadable file)."""
    import onnx  # optional dependency (the `onnx` extra), like the export itself
    from google.protobuf.message import DecodeError  # onnx's own dependency

    if not file.is_file():
        return False
    try:
        model = onnx.load(str(file), load_external_data=False)
    except (OSError, DecodeError):
        return False
    recorded = {entry.key: entry.value for entry in model.metadata_props}
    return recorded.get(FINGERPRINT_METADATA_KEY) == fingerprint and (
        quantization is None or recorded.get(SETTINGS_METADATA_KEY) == quantization)


def onnx_beside(checkpoint: str | Path, path: str, flip_test: bool = False, int8: bool = False,
                lsp_root: str | Path | None = None) -> Path:
    """The ONNX file of `checkpoint`'s `path` next to it (see default_output; int8: its `_int8` copy), written
    there first when it is missing or was made from another checkpoint (an int8 copy also when it was quantized
    with other settings than recorded_settings()): what the commands' ONNX Runtime backend uses when given no
    onnx=. An int8 copy is calibrated on the first CALIBRATION_IMAGES training images of the checkpoint's split
    under the LSP root `lsp_root` (None: $POSE_LAB_LSP_ROOT)."""
    checkpoint = Path(checkpoint)
    file = default_output(checkpoint, path, flip_test)
    target = int8_output(file) if int8 else file
    if not checkpoint.is_file():
        return target
    fingerprint = checkpoint_fingerprint(checkpoint)
    if _made_from(fingerprint, target, recorded_settings() if int8 else None):
        return target
    module, config = load_module(checkpoint)
    try:
        if not _made_from(fingerprint, file):
            net = FlipAveraged(module.net) if flip_test else module.net
            export_onnx(net, path, file, onnx_metadata(config, path, checkpoint, flip_test))
            print(f"exported {checkpoint} ({path} path) to {file} for ONNX Runtime")
        if int8:
            try:
                # Checkpoints written before the split was recorded were all trained on the standard split.
                calibration = calibration_inputs(config, lsp_root, config.data.get("split", "standard"),
                                                 CALIBRATION_IMAGES)
            except LSPDataError as error:
                raise PoseLabError(f"the int8 copy of {checkpoint} is calibrated on its LSP training images, which "
                                   f"are not found: {error}; or pass int8=false") from None
            quantize_int8(file, target, calibration)
            print(f"quantized {file} to {target} (int8, {len(calibration)} calibration images)")
    except OSError as error:
        raise PoseLabError(f"cannot write {error.filename} (an ONNX copy of {checkpoint}): {error.strerror}; pass "
                           "onnx=PATH of a file written by `python -m pose_lab.export`, or backend=torch") from None
    return target


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export, check parity and write export.json into paths.output_dir; returns what it writes."""
    if cfg.path not in PATHS:
        raise PoseLabError(f"unknown path {cfg.path!r}; choose one of {', '.join(PATHS)}")
    module, config = load_module(cfg.ckpt)
    net = FlipAveraged(module.net) if cfg.flip_test else module.net
    file = Path(cfg.output) if cfg.output else default_output(cfg.ckpt, cfg.path, cfg.flip_test)
    exporter = export_onnx(net, cfg.path, file, onnx_metadata(config, cfg.path, cfg.ckpt, cfg.flip_test))
    parity = check_parity(net, file, cfg.parity_batches, cfg.threads)
    summary = {
        "checkpoint": str(cfg.ckpt),
        "onnx": str(file),
        "megabytes": file.stat().st_size / 1e6,
        "path": cfg.path,
        "flip_test": bool(cfg.flip_test),
        "exporter": exporter,
        "input_size": config.data.input_size,
        "parity": {"batches": list(cfg.parity_batches), "tolerance": cfg.tolerance, "max_abs_diff": parity},
    }
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "export.json", summary)
    print(f"wrote {file} ({summary['megabytes']:.2f} MB, {cfg.path} path, {exporter} exporter)")
    print(f"ONNX Runtime vs PyTorch, max abs difference over batches {list(cfg.parity_batches)}:")
    for name, difference in parity.items():
        print(f"  {name:<11}{difference:.2e}")
    failed = {name: difference for name, difference in parity.items() if not difference <= cfg.tolerance}
    if failed:
        raise ExportError(f"{file} does not match PyTorch: max abs difference {failed} above the tolerance "
                          f"{cfg.tolerance} (numbers in {out_dir / 'export.json'})")
    if cfg.quantize:
        calibration = calibration_inputs(config, cfg.lsp_root, cfg.calibration_split, cfg.calibration_images)
        quantized = quantize_int8(file, int8_output(file), calibration)
        summary["int8"] = {"onnx": str(quantized), "megabytes": quantized.stat().st_size / 1e6,
                           "calibration_images": len(calibration)}
        write_json(out_dir / "export.json", summary)
        print(f"wrote {quantized} ({summary['int8']['megabytes']:.2f} MB, int8, calibrated on {len(calibration)} "
              "training images)")
    return summary


def int8_output(file: str | Path) -> Path:
    """Where the int8 copy of an fp32 ONNX file goes: <stem>_int8.onnx beside it."""
    file = Path(file)
    return file.with_name(f"{file.stem}_int8{file.suffix}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
