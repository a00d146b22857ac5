"""ONNX export: every variant and path matches PyTorch in ONNX Runtime with a dynamic batch; the command on a
checkpoint (metadata, export.json, the estimator's onnxruntime backend), the legacy fallback, parity failures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict
from readouts import SHIPPED_READOUT, shipped_readout_by_default
from torch import Tensor, nn

import pose_lab.export as export_module
from pose_lab.bench import build_variant
from pose_lab.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, checkpoint_fingerprint
from pose_lab.errors import PoseLabError
from pose_lab.export import (
    FINGERPRINT_METADATA_KEY,
    METADATA_PREFIX,
    ExportError,
    check_parity,
    default_output,
    export,
    export_onnx,
    int8_output,
    onnx_beside,
)
from pose_lab.inference import PoseEstimator
from pose_lab.models.network import SOFT_ARGMAX_STAGES, BlazePoseNet
from pose_lab.quantize import QUANTIZED_METADATA_KEY, SETTINGS_METADATA_KEY, recorded_settings
from pose_lab.runtime import OUTPUTS, PATHS, onnx_session

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
TOLERANCE = 1e-4
SIZE = 64


def _export_cfg(out: Path, *overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("export", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg


def _varied(net: nn.Module) -> nn.Module:
    """Default PyTorch init for every layer and random BatchNorm statistics and affines (seeded).

    The networks' own init zeroes the regression heads and starts the heatmaps flat, so an untrained network
    would give constant outputs that any export matches; this one's outputs vary with the input, and the
    exported graph's BatchNorm folding has something to fold.
    """
    torch.manual_seed(0)
    for module in net.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            module.reset_parameters()
        elif isinstance(module, nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return net


def _metadata(file: Path) -> dict[str, str]:
    return {entry.key: entry.value for entry in onnx.load(str(file)).metadata_props}


# About 10 s per export on the 2-core CPU: the 14 exports take minutes.
@pytest.mark.slow
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("model", MODELS)
def test_every_variant_exports_and_matches_pytorch(model: str, path: str, tmp_path: Path) -> None:
    net = _varied(build_variant(model, SIZE))
    with torch.no_grad():
        outputs = net(torch.randn(4, 3, SIZE, SIZE))
    assert all(output.std() > 1e-3 for output in outputs), "constant outputs would make the parity check vacuous"
    file = tmp_path / f"{model}_{path}.onnx"
    assert export_onnx(net, path, file) == "dynamo", f"{model}/{path} needed the legacy exporter"
    session = onnx_session(file)
    assert [output.name for output in session.get_outputs()] == list(OUTPUTS[path])
    assert isinstance(session.get_inputs()[0].shape[0], str), "the batch dimension is not dynamic"
    worst = check_parity(net, file, batches=(1, 3))
    assert max(worst.values()) <= TOLERANCE, f"{model}/{path}: ONNX Runtime vs PyTorch max abs diff {worst}"


def test_the_default_test_run_covers_the_shipped_checkpoints_readout() -> None:
    assert torch.load(DEFAULT_CHECKPOINT, weights_only=False)["pose_lab"]["config"]["model"]["net"][
        "regression_readout"] == SHIPPED_READOUT


@pytest.mark.parametrize("readout", shipped_readout_by_default(sorted(SOFT_ARGMAX_STAGES)))
def test_soft_argmax_readouts_export_and_match_pytorch(readout: str, tmp_path: Path) -> None:
    net = _varied(BlazePoseNet(input_size=SIZE, regression_readout=readout)).eval()
    file = tmp_path / f"{readout}.onnx"
    assert export_onnx(net, "regression", file) == "dynamo"
    worst = check_parity(net, file, batches=(1, 3))
    assert max(worst.values()) <= TOLERANCE, f"ONNX Runtime vs PyTorch max abs diff {worst}"


def test_export_command_on_a_checkpoint(smoke_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    summary = export(_export_cfg(tmp_path / "run", f"ckpt={smoke_checkpoint}"))
    file = smoke_checkpoint.with_name(smoke_checkpoint.stem + ".onnx")  # default: next to the checkpoint
    assert summary["onnx"] == str(file) and file.is_file() and summary["exporter"] == "dynamo"
    printed = capsys.readouterr().out
    assert "coords" in printed and "visibility" in printed and "heatmaps" not in printed
    written = json.loads((tmp_path / "run/export.json").read_text())
    assert written["path"] == "regression" and written["parity"]["batches"] == [1, 3]
    assert written["megabytes"] == file.stat().st_size / 1e6
    assert set(written["parity"]["max_abs_diff"]) == {"coords", "visibility"}
    assert max(written["parity"]["max_abs_diff"].values()) <= TOLERANCE
    metadata = _metadata(file)
    assert metadata["pose_lab.input_size"] == str(SIZE) and metadata["pose_lab.path"] == "regression"
    assert json.loads(metadata["pose_lab.mean"]) == [0.485, 0.456, 0.406]
    assert json.loads(metadata["pose_lab.std"]) == [0.229, 0.224, 0.225]
    assert metadata["pose_lab.exporter"] == "dynamo"

    image = np.random.default_rng(0).integers(0, 256, (90, 140, 3), dtype=np.uint8)
    onnx_estimator = PoseEstimator.from_checkpoint(smoke_checkpoint, backend="onnxruntime", onnx_path=file)
    [ours], [theirs] = PoseEstimator.from_checkpoint(smoke_checkpoint).predict(image), onnx_estimator.predict(image)
    np.testing.assert_allclose(theirs.keypoints, ours.keypoints, atol=1e-3)
    with pytest.raises(PoseLabError, match="path=heatmap or path=full"):
        onnx_estimator.predict(image, return_heatmaps=True)


def test_falls_back_to_the_legacy_exporter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dynamo_export = torch.onnx.export

    def failing_dynamo(*args, dynamo: bool = True, **kwargs):
        if dynamo:
            raise torch.onnx.OnnxExporterError("unsupported operator (simulated)")
        return dynamo_export(*args, dynamo=False, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", failing_dynamo)
    net = _varied(build_variant("base", SIZE))
    file = tmp_path / "base_full.onnx"
    with pytest.warns(UserWarning, match=r"base_full\.onnx.*full path.*simulated.*legacy"):
        assert export_onnx(net, "full", file) == "torchscript"
    assert _metadata(file)["pose_lab.exporter"] == "torchscript"
    assert max(check_parity(net, file, batches=(1, 3)).values()) <= TOLERANCE


class _BatchAsInt(nn.Module):
    """A regression path that freezes its batch size into the graph through len(x)."""

    input_size = SIZE

    def forward_regression(self, x: Tensor) -> tuple[Tensor, Tensor]:
        flat = x.reshape(len(x), -1)
        return flat[:, :28].reshape(len(x), 14, 2), flat[:, :14].reshape(len(x), 14, 1)


def test_a_frozen_batch_size_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="fixed the batch size of the regression path to 2"):
        export_onnx(_BatchAsInt(), "regression", tmp_path / "frozen.onnx")


def test_parity_failure_raises_and_keeps_the_numbers(smoke_checkpoint: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_export(net, path, file, metadata=None) -> str:
        Path(file).write_bytes(b"")
        return "dynamo"

    monkeypatch.setattr(export_module, "export_onnx", fake_export)
    monkeypatch.setattr(export_module, "check_parity", lambda *args: {"coords": 0.5, "visibility": 0.0})
    cfg = _export_cfg(tmp_path / "run", f"ckpt={smoke_checkpoint}", f"output={tmp_path / 'bad.onnx'}")
    with pytest.raises(ExportError, match=r"coords.*0\.5.*tolerance"):
        export(cfg)
    assert json.loads((tmp_path / "run/export.json").read_text())["parity"]["max_abs_diff"]["coords"] == 0.5


def test_bad_settings_are_user_errors(smoke_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(PoseLabError, match="unknown path"):
        export(_export_cfg(tmp_path, f"ckpt={smoke_checkpoint}", "path=heatmaps"))
    with pytest.raises(CheckpointError, match="not found"):
        export(_export_cfg(tmp_path, f"ckpt={tmp_path / 'missing.ckpt'}"))


def _rewrite_weights(smoke_checkpoint: Path) -> None:
    """Change one weight of `checkpoint` in place: another checkpoint under the same name."""
    state = torch.load(smoke_checkpoint, map_location="cpu", weights_only=False)
    name = next(key for key, value in state["state_dict"].items() if value.is_floating_point())
    state["state_dict"][name] = state["state_dict"][name] + 1.0
    torch.save(state, smoke_checkpoint)


def test_copy_beside_the_checkpoint_follows_its_content_not_file_times(
        smoke_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(smoke_checkpoint.read_bytes())
    file = onnx_beside(ckpt, "regression")
    assert file == tmp_path / "model.onnx"
    assert _metadata(file)[FINGERPRINT_METADATA_KEY] == checkpoint_fingerprint(ckpt)

    exports = []
    real_export = export_module.export_onnx
    monkeypatch.setattr(export_module, "export_onnx", lambda *args: exports.append(args) or real_export(*args))
    os.utime(file, (0, 0))  # older than the checkpoint, as after a clone or a copy: still the same network
    assert onnx_beside(ckpt, "regression") == file and exports == []
    _rewrite_weights(ckpt)  # a retrained checkpoint: its old copy is rewritten
    assert onnx_beside(ckpt, "regression") == file and len(exports) == 1
    assert _metadata(file)[FINGERPRINT_METADATA_KEY] == checkpoint_fingerprint(ckpt)


def test_heatmap_path_copy_beside_the_checkpoint(smoke_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(smoke_checkpoint.read_bytes())
    file = onnx_beside(ckpt, "heatmap")
    assert file == tmp_path / "model_heatmap.onnx"
    assert [output.name for output in onnx_session(file).get_outputs()] == ["heatmaps"]
    metadata = _metadata(file)
    assert metadata[METADATA_PREFIX + "path"] == "heatmap"
    assert METADATA_PREFIX + "heatmaps" in metadata and METADATA_PREFIX + "coords" not in metadata


def test_int8_copy_beside_the_checkpoint_is_calibrated_on_its_training_images(
        smoke_checkpoint: Path, tiny_lsp_root: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(smoke_checkpoint.read_bytes())
    with pytest.raises(PoseLabError, match=r"calibrated on its LSP training images.*int8=false"):
        onnx_beside(ckpt, "regression", int8=True, lsp_root=tmp_path / "no_lsp_here")
    int8 = onnx_beside(ckpt, "regression", int8=True, lsp_root=tiny_lsp_root)
    assert int8 == tmp_path / "model_int8.onnx"
    metadata = _metadata(int8)
    assert metadata[FINGERPRINT_METADATA_KEY] == checkpoint_fingerprint(ckpt)
    assert ", 8 calibration images," in metadata[QUANTIZED_METADATA_KEY]  # all of the tiny training split
    assert metadata[SETTINGS_METADATA_KEY] == recorded_settings()
    # Current: found again without LSP (how a clone uses the committed copy of the shipped checkpoint).
    assert onnx_beside(ckpt, "regression", int8=True, lsp_root=tmp_path / "no_lsp_here") == int8


def test_int8_copy_beside_the_checkpoint_made_with_other_settings_is_made_again(
        smoke_checkpoint: Path, tiny_lsp_root: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(smoke_checkpoint.read_bytes())
    int8 = onnx_beside(ckpt, "regression", int8=True, lsp_root=tiny_lsp_root)
    model = onnx.load(str(int8))
    # As an older pose_lab wrote it: every layer in int8, and no settings recorded.
    onnx.helper.set_model_props(model, {key: value for key, value in _metadata(int8).items()
                                        if key != SETTINGS_METADATA_KEY})
    onnx.save(model, str(int8))
    with pytest.raises(PoseLabError, match="calibrated on its LSP training images"):
        onnx_beside(ckpt, "regression", int8=True, lsp_root=tmp_path / "no_lsp_here")
    assert onnx_beside(ckpt, "regression", int8=True, lsp_root=tiny_lsp_root) == int8
    assert _metadata(int8)[SETTINGS_METADATA_KEY] == recorded_settings()


@pytest.mark.parametrize("path", ["heatmap", "regression"])
def test_the_committed_int8_copies_are_current(path: str, tmp_path: Path) -> None:
    """A clone without LSP runs the shipped checkpoint's committed int8 copies: out of date, they would be made
    again, which needs its training images."""
    committed = int8_output(default_output(DEFAULT_CHECKPOINT, path))
    assert onnx_beside(DEFAULT_CHECKPOINT, path, int8=True, lsp_root=tmp_path / "no_lsp_here") == committed
    metadata = _metadata(committed)
    assert metadata[FINGERPRINT_METADATA_KEY] == checkpoint_fingerprint(DEFAULT_CHECKPOINT)
    assert metadata[SETTINGS_METADATA_KEY] == recorded_settings()
