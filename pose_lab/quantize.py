"""Int8 ONNX models for ONNX Runtime on the CPU: static quantization calibrated on real training images.

Weights become int8 per output channel and activations uint8, with scales read off the activations of
calibration inputs (QDQ format, which ONNX Runtime's CPU kernels fuse into integer convolutions). The scales
come from a high percentile of each activation's histogram rather than its min and max: a few outlier
activations would otherwise stretch the range and leave too few levels for the rest (on the validation
images, percentile calibration kept about half of the PCKh that min-max calibration lost). Calibration
uses the training split only, prepared exactly as the estimator prepares an image (letterbox + normalisation),
so test images never shape the quantization. The layers of FLOAT_MODULES stay in float. The int8 file keeps the
fp32 file's metadata (checkpoint, path, flip test) and adds `pose_lab.quantized` (a description) and
`pose_lab.quantization` (the settings of SETTINGS and FLOAT_MODULES, compared by the copies beside a checkpoint).
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig

from pose_lab.compose import plain
from pose_lab.data.dataset import Normalize
from pose_lab.data.lsp import JOINTS_FILE, load_images, read_joints, resolve_root
from pose_lab.data.splits import split_numbers
from pose_lab.errors import PoseLabError
from pose_lab.inference import normalization, prepare

if TYPE_CHECKING:
    import onnx

QUANTIZED_METADATA_KEY = "pose_lab.quantized"
# The settings an int8 file was made with, as recorded_settings writes them: a copy beside a checkpoint that
# records other settings (one an older pose_lab made) is made again.
SETTINGS_METADATA_KEY = "pose_lab.quantization"
# onnxruntime.quantization's quantize_static arguments, by the names of its enum members.
SETTINGS = {"quant_format": "QDQ", "per_channel": True, "activation_type": "QUInt8", "weight_type": "QInt8",
            "calibrate_method": "Percentile"}
# The calibrator keeps every activation of the inputs it has run until it histograms them: all 200 images of
# the flip-averaged full path at once ran a 24 GiB machine out of memory. Histograms of ranges of this many
# inputs are merged instead (that calibration then peaked at 4.4 GiB, /usr/bin/time -v).
CALIBRATION_CHUNK = 25
# Modules whose layers stay in float: the regression branch's readout, whichever it has (dense: its last block and
# heads; soft-argmax: its map and visibility heads). With every layer in int8 the shipped checkpoint's regression
# path scored 55.2 PCKh@0.5 on the LSP test images against 58.4 in fp32 (57.8 with these in float), and these layers
# run at the branch's coarsest resolution, a small part of its compute (RESULTS.md, "Speed and accuracy against
# MediaPipe on LSP" and "… every layer in int8").
FLOAT_MODULES = ("net.regression_branch.readout",)
# Where the dynamo exporter records the modules a node came from (a list of their names, as Python text).
NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def calibration_inputs(config: DictConfig, root: str | Path | None, split: object = "standard",
                       count: int = 200) -> list[np.ndarray]:
    """(1,3,S,S) float32 inputs of the first `count` training images of `split` under the LSP `root`, prepared
    as the estimator of a checkpoint with this `config` prepares an image (its input size and normalisation)."""
    if count < 1:
        raise PoseLabError(f"calibration needs at least 1 image, got {count}")
    folder = resolve_root(root)
    split = plain(split)
    numbers = split_numbers(split, "train", num_images=len(read_joints(folder / JOINTS_FILE)))[:count]
    normalize = Normalize(*normalization(config))
    return [prepare(image, config.data.input_size, normalize)[0][None].numpy()
            for image in load_images(folder, numbers)]


class _Feed:
    """onnxruntime.quantization's CalibrationDataReader protocol over a list of inputs, read a range at a time
    (quantize_static's CalibStridedMinMax sets the ranges)."""

    def __init__(self, input_name: str, inputs: list[np.ndarray]) -> None:
        self._input_name, self._inputs = input_name, inputs
        self.set_range(0, len(inputs))

    def __len__(self) -> int:
        return len(self._inputs)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = iter(
            {self._input_name: x} for x in self._inputs[start_index:end_index])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def calibration_stride(count: int, most: int) -> int:
    """The largest number of inputs, at most `most`, that divides `count` (ONNX Runtime reads the calibration
    inputs in equal ranges)."""
    return next(stride for stride in range(min(count, max(most, 1)), 0, -1) if count % stride == 0)


def recorded_settings(float_modules: tuple[str, ...] = FLOAT_MODULES) -> str:
    """How SETTINGS and `float_modules` are recorded in an int8 file's metadata (SETTINGS_METADATA_KEY)."""
    return json.dumps({**SETTINGS, "float_modules": sorted(float_modules)}, sort_keys=True)


def has_module_scopes(model: onnx.ModelProto) -> bool:
    """Whether the ONNX `model` records the modules its nodes came from (the dynamo exporter does; the legacy
    TorchScript exporter does not)."""
    return any(entry.key == NAME_SCOPES_KEY for node in model.graph.node for entry in node.metadata_props)


def nodes_of_modules(model: onnx.ModelProto, modules: tuple[str, ...]) -> list[str]:
    """Names of the nodes of the ONNX `model` that come from one of `modules` (or a module inside one), as the
    dynamo exporter records it; none for a file of the legacy exporter, which records no modules."""
    found = []
    for node in model.graph.node:
        scopes = next((entry.value for entry in node.metadata_props if entry.key == NAME_SCOPES_KEY), None)
        if scopes is not None and any(name in modules for name in ast.literal_eval(scopes)):
            found.append(node.name)
    return found


def quantize_int8(source: str | Path, target: str | Path, calibration: list[np.ndarray],
                  chunk: int | None = None, float_modules: tuple[str, ...] = FLOAT_MODULES) -> Path:
    """Write an int8 copy of the fp32 ONNX file `source` to `target`, calibrated on `calibration` inputs, whose
    activations are histogrammed `chunk` (None: CALIBRATION_CHUNK) inputs at a time (at most; see
    calibration_stride). The layers of `float_modules` stay in float."""
    import onnx  # optional dependencies (the `onnx` extra), like the export itself
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise PoseLabError("int8 quantization needs calibration inputs (training images); got none")
    stride = calibration_stride(len(calibration), chunk or CALIBRATION_CHUNK)
    source, target = Path(source), Path(target)
    model = onnx.load(str(source))
    kept_float = nodes_of_modules(model, float_modules)
    if float_modules and not has_module_scopes(model):
        warnings.warn(f"{source} does not record which module each node came from (it was written by the legacy "
                      f"TorchScript exporter), so the layers of {', '.join(float_modules)} cannot stay in float and "
                      f"{target} quantizes every layer, which costs accuracy; export the checkpoint again with "
                      "`python -m pose_lab.export` once the dynamo exporter succeeds on it", stacklevel=2)
    with tempfile.TemporaryDirectory(prefix="pose_lab_int8_") as folder:
        prepared = Path(folder) / "prepared.onnx"
        # The symbolic pass cannot size the dynamic batch through Reshape; ONNX's own shape inference suffices.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints its histogram progress
            quantize_static(str(prepared), str(target), _Feed(model.graph.input[0].name, calibration),
                            quant_format=QuantFormat[SETTINGS["quant_format"]], per_channel=SETTINGS["per_channel"],
                            activation_type=QuantType[SETTINGS["activation_type"]],
                            weight_type=QuantType[SETTINGS["weight_type"]],
                            calibrate_method=CalibrationMethod[SETTINGS["calibrate_method"]],
                            nodes_to_exclude=kept_float, extra_options={"CalibStridedMinMax": stride})
    quantized = onnx.load(str(target))
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    settings = ", ".join(f"{key}={value}" for key, value in SETTINGS.items())
    metadata[QUANTIZED_METADATA_KEY] = (f"int8 (quantize_static: {settings}), {len(calibration)} calibration "
                                        f"images, {len(kept_float)} nodes in float")
    metadata[SETTINGS_METADATA_KEY] = recorded_settings(float_modules)
    onnx.helper.set_model_props(quantized, metadata)
    onnx.save(quantized, str(target))
    return target
