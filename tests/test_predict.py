"""predict: folder/glob/file inputs -> predictions.json + overlays; undecodable files skipped, named and failing
the command at the end; inputs that match nothing are user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from pose_lab import skeleton
from pose_lab.data.lsp import ROOT_ENV_VAR
from pose_lab.errors import PoseLabError
from pose_lab.predict import find_images, predict

CONF = Path(__file__).resolve().parents[1] / "conf"
SIZES = {"tall.png": (120, 80), "wide.jpg": (70, 160)}  # name: (height, width)


@pytest.fixture
def checkpoint(smoke_checkpoint: Path, tiny_lsp_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The smoke checkpoint; $POSE_LAB_LSP_ROOT points at its tiny LSP, where its int8 copy is calibrated."""
    monkeypatch.setenv(ROOT_ENV_VAR, str(tiny_lsp_root))
    return smoke_checkpoint


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two good images, one corrupt .jpg and a text file that a folder input ignores."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (height, width) in SIZES.items():
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _predict_cfg(*overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("predict", overrides=list(overrides))


def test_folder_gives_json_and_overlays_and_skips_the_corrupt_file(checkpoint: Path, folder: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = predict(_predict_cfg(f"ckpt={checkpoint}", f"input={folder}", f"output={out}", "batch_size=2"))
    written = json.loads((out / "predictions.json").read_text())
    assert written == summary
    assert [Path(entry["file"]).name for entry in written["failed"]] == ["broken.jpg"]
    assert [Path(entry["file"]).name for entry in written["images"]] == sorted(SIZES)
    for entry in written["images"]:
        height, width = SIZES[Path(entry["file"]).name]
        assert (entry["height"], entry["width"]) == (height, width)
        assert list(entry["keypoints"]) == list(skeleton.JOINT_NAMES)
        assert all(len(value) == 3 and 0 <= value[2] <= 1 for value in entry["keypoints"].values())
        overlay = cv2.imread(str(out / entry["overlay"]))
        assert overlay is not None and overlay.shape == (height, width, 3)
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["tall.png", "wide.png"]


def test_command_exits_non_zero_and_names_the_corrupt_file(checkpoint: Path, folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "pose_lab.predict", f"ckpt={checkpoint}", f"input={folder}", f"output={out}",
         f"hydra.run.dir={tmp_path / 'hydra'}", "backend=torch"],  # the exit code, not the runtime: no export
        capture_output=True, text=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "broken.jpg" in result.stderr and "could not be decoded" in result.stderr
    assert len(json.loads((out / "predictions.json").read_text())["images"]) == 2  # finished work is kept


def test_glob_and_single_file_inputs(checkpoint: Path, folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "more"
    other.mkdir()
    cv2.imwrite(str(other / "tall.png"), np.zeros((40, 30, 3), np.uint8))  # same name as one in `folder`
    out = tmp_path / "out"
    summary = predict(_predict_cfg(f"ckpt={checkpoint}", f"input={tmp_path}/*/*.png", f"output={out}"))
    assert [entry["overlay"] for entry in summary["images"]] == ["overlays/tall.png", "overlays/tall-2.png"]
    assert not summary["failed"]
    single = predict(_predict_cfg(f"ckpt={checkpoint}", f"input={folder / 'wide.jpg'}", f"output={out}"))
    assert [Path(entry["file"]).name for entry in single["images"]] == ["wide.jpg"]


def test_default_backend_is_the_heatmap_paths_int8_onnx_copy_written_next_to_the_checkpoint(
        checkpoint: Path, folder: Path, tmp_path: Path) -> None:
    image = f"input={folder / 'wide.jpg'}"
    fast = predict(_predict_cfg(f"ckpt={checkpoint}", image, f"output={tmp_path / 'ort'}"))
    int8 = checkpoint.with_name(checkpoint.stem + "_heatmap_int8.onnx")
    assert fast["backend"] == "onnxruntime" and fast["onnx"] == str(int8) and int8.is_file()
    assert fast["inference_path"] == "heatmap" and "peak of the joint's heatmap" in fast["keypoint_format"]
    fp32 = predict(_predict_cfg(f"ckpt={checkpoint}", image, f"output={tmp_path / 'fp32'}", "int8=false"))
    assert fp32["onnx"] == str(checkpoint.with_name(checkpoint.stem + "_heatmap.onnx"))
    eager = predict(_predict_cfg(f"ckpt={checkpoint}", image, f"output={tmp_path / 'torch'}", "backend=torch"))
    for joint in skeleton.JOINT_NAMES:
        # The confidences (heatmap peaks): a barely trained network's near-flat maps can move the argmax itself
        # to another pixel on a rounding difference.
        truth = eager["images"][0]["keypoints"][joint][2]
        assert abs(fp32["images"][0]["keypoints"][joint][2] - truth) < 1e-3
        assert abs(fast["images"][0]["keypoints"][joint][2] - truth) < 0.05  # int8 rounding


def test_regression_path_runs_its_own_onnx_copy(checkpoint: Path, folder: Path, tmp_path: Path) -> None:
    # The int8 copies are named and calibrated alike for every path: test_export covers the regression one.
    image, regression = f"input={folder / 'wide.jpg'}", "inference_path=regression"
    fp32 = predict(_predict_cfg(f"ckpt={checkpoint}", image, f"output={tmp_path / 'fp32'}", "int8=false", regression))
    assert fp32["onnx"] == str(checkpoint.with_suffix(".onnx"))
    assert fp32["inference_path"] == "regression" and "probability" in fp32["keypoint_format"]
    eager = predict(_predict_cfg(f"ckpt={checkpoint}", image, f"output={tmp_path / 'torch'}", "backend=torch",
                                 regression))
    for joint in skeleton.JOINT_NAMES:
        np.testing.assert_allclose(fp32["images"][0]["keypoints"][joint], eager["images"][0]["keypoints"][joint],
                                   atol=0.02)
    with pytest.raises(PoseLabError, match="runs the regression path, not inference_path=heatmap"):
        predict(_predict_cfg(f"ckpt={checkpoint}", image, f"output={tmp_path / 'mixed'}", f"onnx={fp32['onnx']}"))
    with pytest.raises(PoseLabError, match="choose heatmap or regression"):
        predict(_predict_cfg(f"ckpt={checkpoint}", image, f"output={tmp_path / 'bad'}", "inference_path=full"))


def test_inputs_that_match_nothing_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(PoseLabError, match="no file matches"):
        find_images(str(tmp_path / "*.jpg"))
    with pytest.raises(PoseLabError, match="no such file"):
        find_images(str(tmp_path / "missing.png"))
    with pytest.raises(PoseLabError, match="no images"):
        find_images(str(tmp_path))
    with pytest.raises(PoseLabError, match="no file matches"):
        predict(_predict_cfg(f"input={tmp_path}/*.jpg", f"output={tmp_path / 'out'}"))
    assert not (tmp_path / "out").exists()
