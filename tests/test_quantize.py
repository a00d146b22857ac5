"""Int8 quantization: calibration reads training images only, prepared as the estimator prepares them; the
export command's int8 copy runs in ONNX Runtime close to the fp32 file, keeps its metadata and is smaller."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict
from readouts import shipped_readout_by_default

from pose_lab.checkpoint import load_module
from pose_lab.data.lsp import load_lsp
from pose_lab.errors import PoseLabError
from pose_lab.export import export, export_onnx, onnx_metadata
from pose_lab.inference import PoseEstimator, prepare
from pose_lab.models.network import REGRESSION_READOUTS, BlazePoseNet
from pose_lab import quantize
from pose_lab.quantize import QUANTIZED_METADATA_KEY, calibration_inputs, calibration_stride, quantize_int8
from pose_lab.runtime import onnx_session
from pose_lab.skeleton import NUM_JOINTS

CONF = Path(__file__).resolve().parents[1] / "conf"
TINY_SPLIT = "{train: [1, 8], val: [9, 12], test: [13, 16]}"


def test_calibration_uses_the_first_training_images_prepared_like_the_estimator(
        smoke_checkpoint: Path, tiny_lsp_root: Path) -> None:
    estimator = PoseEstimator.from_checkpoint(smoke_checkpoint)
    split = {"train": [5, 8], "val": [9, 12], "test": [1, 4]}
    config = load_module(smoke_checkpoint)[1]
    inputs = calibration_inputs(config, tiny_lsp_root, split, count=3)
    _, images = load_lsp(tiny_lsp_root)
    assert len(inputs) == 3
    expected = prepare(images[4], estimator.input_size, estimator.normalize)[0][None].numpy()  # image 5
    np.testing.assert_array_equal(inputs[0], expected)
    assert len(calibration_inputs(config, tiny_lsp_root, split, count=100)) == 4  # all of train, no more
    with pytest.raises(PoseLabError, match="at least 1 image"):
        calibration_inputs(config, tiny_lsp_root, split, count=0)
    with pytest.raises(PoseLabError, match="calibration inputs"):
        quantize_int8("unused.onnx", "unused_int8.onnx", [])


def _record_ranges(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The calibration ranges ONNX Runtime asks the reader for, as they are set."""
    ranges_read = []
    set_range = quantize._Feed.set_range

    def recorded(feed: quantize._Feed, start_index: int, end_index: int) -> None:
        ranges_read.append((start_index, end_index))
        set_range(feed, start_index, end_index)

    monkeypatch.setattr(quantize._Feed, "set_range", recorded)
    return ranges_read


def test_export_writes_an_int8_copy_close_to_fp32_calibrated_a_range_at_a_time(
        smoke_checkpoint: Path, tiny_lsp_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quantize, "CALIBRATION_CHUNK", 2)
    ranges_read = _record_ranges(monkeypatch)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("export", overrides=[f"ckpt={smoke_checkpoint}", f"output={tmp_path / 'model.onnx'}",
                                           "quantize=true", f"lsp_root={tiny_lsp_root}",
                                           f"calibration_split={TINY_SPLIT}", "calibration_images=6"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    summary = export(cfg)
    fp32, int8 = tmp_path / "model.onnx", tmp_path / "model_int8.onnx"
    assert summary["int8"] == {"onnx": str(int8), "megabytes": int8.stat().st_size / 1e6, "calibration_images": 6}
    assert ranges_read[-3:] == [(0, 2), (2, 4), (4, 6)]
    assert summary["int8"]["megabytes"] < 0.75 * summary["megabytes"]  # the FLOAT_MODULES hold most weights here
    metadata = {entry.key: entry.value for entry in onnx.load(str(int8)).metadata_props}
    assert metadata[QUANTIZED_METADATA_KEY].startswith("int8 (quantize_static: quant_format=QDQ, per_channel=True,")
    fp32_keys = {entry.key for entry in onnx.load(str(fp32)).metadata_props}
    assert fp32_keys < set(metadata)
    x = np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)
    (coords, visibility), (coords8, visibility8) = (onnx_session(f).run(None, {"image": x}) for f in (fp32, int8))
    assert coords8.shape == coords.shape and visibility8.shape == visibility.shape
    assert np.abs(coords8 - coords).max() < 0.05  # coordinates in [0, 1] of the input
    estimator = PoseEstimator.from_checkpoint(smoke_checkpoint, backend="onnxruntime", onnx_path=int8)
    assert estimator.predict(np.zeros((50, 40, 3), np.uint8))[0].keypoints.shape == (14, 2)


@pytest.mark.parametrize(("count", "most", "stride"), [(200, 25, 25), (7, 25, 7), (30, 25, 15), (13, 5, 1)])
def test_calibration_is_read_in_equal_ranges_of_at_most_the_chunk(count: int, most: int, stride: int) -> None:
    assert calibration_stride(count, most) == stride


@pytest.mark.slow
def test_int8_calibrated_a_range_at_a_time_matches_it_calibrated_at_once(
        smoke_checkpoint: Path, tiny_lsp_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ranges_read = _record_ranges(monkeypatch)
    module, config = load_module(smoke_checkpoint)
    fp32 = tmp_path / "model.onnx"
    export_onnx(module.net, "regression", fp32, onnx_metadata(config, "regression", smoke_checkpoint))
    calibration = calibration_inputs(config, tiny_lsp_root, {"train": [1, 8], "val": [9, 12], "test": [13, 16]},
                                     count=8)
    whole, ranges = (quantize_int8(fp32, tmp_path / f"int8_{chunk}.onnx", calibration, chunk=chunk)
                     for chunk in (8, 2))
    assert ranges_read == [(0, 8), (0, 8), (0, 8), (0, 2), (2, 4), (4, 6), (6, 8)]
    x = np.concatenate(calibration[:2])
    (coords, _), (coords8, _) = (onnx_session(f).run(None, {"image": x}) for f in (whole, ranges))
    assert np.abs(coords8 - coords).max() < 0.02


def test_every_float_module_belongs_to_a_regression_readout() -> None:
    names = {f"net.{name}" for readout in REGRESSION_READOUTS
             for name, _ in BlazePoseNet(input_size=64, regression_readout=readout).named_modules()}
    assert set(quantize.FLOAT_MODULES) <= names


@pytest.mark.parametrize("readout", shipped_readout_by_default(REGRESSION_READOUTS))
def test_the_float_modules_stay_in_float(readout: str, tmp_path: Path) -> None:
    net = BlazePoseNet(input_size=64, regression_readout=readout).eval()
    fp32 = tmp_path / "regression.onnx"
    export_onnx(net, "regression", fp32)
    exported = onnx.load(str(fp32))
    kept = set(quantize.nodes_of_modules(exported, quantize.FLOAT_MODULES))
    # The readout's heads: the linear layers, and the soft-argmax head's 1×1 conv to K×3 maps.
    shapes = {tensor.name: tuple(tensor.dims) for tensor in exported.graph.initializer}
    heads = {node.name for node in exported.graph.node if node.op_type in ("Gemm", "MatMul")
             or node.op_type == "Conv" and shapes.get(node.input[1], ())[:1] == (3 * NUM_JOINTS,)}
    calibration = [np.random.default_rng(i).normal(size=(1, 3, 64, 64)).astype(np.float32) for i in range(4)]
    quantized = onnx.load(str(quantize_int8(fp32, tmp_path / "int8.onnx", calibration)))
    dequantized = {name for node in quantized.graph.node if node.op_type == "DequantizeLinear" for name in node.output}
    int8_weights = {node.name: node.input[1] in dequantized for node in quantized.graph.node
                    if node.op_type in ("Conv", "Gemm", "MatMul")}
    assert len(heads) >= 2 and heads <= kept
    assert not any(int8_weights[name] for name in kept if name in int8_weights)
    assert sum(int8_weights[name] for name in int8_weights.keys() - kept) > 10


def test_a_file_without_module_scopes_is_quantized_whole_with_a_warning(smoke_checkpoint: Path, tmp_path: Path) -> None:
    module, config = load_module(smoke_checkpoint)
    fp32 = tmp_path / "regression.onnx"
    export_onnx(module.net, "regression", fp32, onnx_metadata(config, "regression", smoke_checkpoint))
    exported = onnx.load(str(fp32))
    for node in exported.graph.node:  # as the legacy TorchScript exporter writes it
        del node.metadata_props[:]
    onnx.save(exported, str(fp32))
    size = config.data.input_size
    calibration = [np.random.default_rng(i).normal(size=(1, 3, size, size)).astype(np.float32) for i in range(2)]
    with pytest.warns(UserWarning, match=r"legacy TorchScript exporter.*net\.regression_branch\.readout"):
        quantized = quantize_int8(fp32, tmp_path / "int8.onnx", calibration)
    assert ", 0 nodes in float" in {entry.key: entry.value for entry in onnx.load(str(quantized)).metadata_props}[
        quantize.QUANTIZED_METADATA_KEY]
