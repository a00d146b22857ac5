"""bench: records and bench.json for both inference paths, FLOPs/params of every variant, errors, CUDA, and the
side-by-side comparison with a stand-in MediaPipe peer on the tiny LSP fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

import pose_lab
from pose_lab.bench import (PATHS, available_models, bench, build_variant, count_flops, interleaved_rounds,
                            params_used, time_estimator)
from pose_lab.checkpoint import checkpoint_config
from pose_lab.errors import PoseLabError
from pose_lab.inference import PoseEstimator

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
RECORD_KEYS = {"variant", "path", "backend", "channels_last", "input_size", "params", "gflops", "cpu", "cuda"}
TIMING_KEYS = {"median_ms", "p90_ms", "mean_ms", "min_ms"}


def _bench_cfg(out: Path, *overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("bench", overrides=["input_size=64", "warmup=1", "iters=3", "settle_seconds=0", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    bench(_bench_cfg(out, "models=[base]"))
    return json.loads((out / "bench.json").read_text())


def test_bench_json_has_machine_settings_and_one_record_per_path(summary: dict) -> None:
    assert {"date", "command", "machine", "settings", "flops", "records"} <= set(summary)
    assert {"cpu", "torch", "threads", "cuda"} <= set(summary["machine"])
    assert summary["settings"]["input_size"] == 64 and summary["settings"]["models"] == ["base"]
    assert "2 x multiply-adds" in summary["flops"]
    assert [(r["variant"], r["path"]) for r in summary["records"]] == [("base", "full"), ("base", "regression"),
                                                                       ("base", "heatmap")]
    for record in summary["records"]:
        assert set(record) == RECORD_KEYS
        assert record["input_size"] == 64 and record["backend"] == "torch" and record["channels_last"] is True
        assert 0 < record["params"]["used"] <= record["params"]["total"]
        assert record["gflops"] > 0
        cpu = record["cpu"]
        assert not cpu["skipped"] and TIMING_KEYS <= set(cpu)
        assert cpu["threads"] == torch.get_num_threads() and cpu["batch"] == 1
        assert 0 < cpu["min_ms"] <= cpu["median_ms"] <= cpu["p90_ms"]


def test_regression_and_heatmap_paths_are_cheaper_than_the_full_path(summary: dict) -> None:
    full, regression, heatmap = summary["records"]
    assert regression["gflops"] < full["gflops"] and heatmap["gflops"] < full["gflops"]
    assert regression["params"]["used"] < full["params"]["used"] == full["params"]["total"]
    # The regression branch holds most of the weights.
    assert heatmap["params"]["used"] < regression["params"]["used"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the record written without CUDA")
def test_cuda_is_skipped_with_a_reason_without_a_gpu(summary: dict) -> None:
    for record in summary["records"]:
        assert record["cuda"]["skipped"] is True and "CUDA" in record["cuda"]["reason"]


def test_table_is_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench(_bench_cfg(tmp_path, "models=[base]", "devices=[]", "threads=1"))
    printed = capsys.readouterr().out
    assert "GFLOPs" in printed and "regression" in printed and "bench.json" in printed
    written = json.loads((tmp_path / "bench.json").read_text())
    assert written["settings"]["threads_used"] == 1
    assert all(r["cpu"]["skipped"] and r["cuda"]["skipped"] for r in written["records"])


def test_every_variant_is_found_at_run_time() -> None:
    assert available_models() == MODELS and "base" in MODELS


@pytest.mark.parametrize("model", MODELS)
def test_every_variant_counts_flops_and_params(model: str) -> None:
    net = build_variant(model, 64)
    x = torch.randn(1, 3, 64, 64)
    flops = {path: count_flops(net, path, x) for path in PATHS}
    used = {path: params_used(net, path, x) for path in PATHS}
    assert 0 < flops["regression"] < flops["full"]
    assert 0 < used["regression"] < used["full"] == sum(p.numel() for p in net.parameters())


def test_unknown_model_lists_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(PoseLabError, match="no_such_model") as error:
        bench(_bench_cfg(tmp_path, "models=[base,no_such_model]"))
    assert all(name in str(error.value) for name in MODELS)
    assert not (tmp_path / "bench.json").exists()


def test_several_input_sizes_are_benched_in_one_run(tmp_path: Path) -> None:
    summary = bench(_bench_cfg(tmp_path, "models=[base]", "input_size=[64,96]", "iters=1", "warmup=0"))
    assert [(r["input_size"], r["path"]) for r in summary["records"]] == [
        (size, path) for size in (64, 96) for path in ("full", "regression", "heatmap")]
    assert summary["records"][3]["gflops"] > summary["records"][0]["gflops"]


@pytest.mark.parametrize("override", ["input_size=100", "input_size=[64,100]", "input_size=[]", "devices=[tpu]",
                                      "iters=0", "backend=tensorrt", "backend=[torch,both]", "backend=[]",
                                      "backend=[torch,torch]", "channels_last=[]", "channels_last=[true,true]",
                                      "inference_paths=[]", "inference_paths=[regression,regression]",
                                      "inference_paths=[decoder]"])
def test_bad_settings_are_user_errors(tmp_path: Path, override: str) -> None:
    with pytest.raises(PoseLabError):
        bench(_bench_cfg(tmp_path, "models=[base]", override))


def test_runtimes_and_memory_formats_are_timed_side_by_side(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # compile_backend=eager runs torch.compile's graph capture without generating kernels, and one path is exported
    # to ONNX: the bench's plumbing in seconds (test_runtime.py compiles with inductor).
    summary = bench(_bench_cfg(tmp_path, "models=[base]", "backend=[torch,torch-compile,onnxruntime]",
                               "channels_last=[false,true]", "compile_backend=eager", "warmup=1", "iters=1",
                               "inference_paths=[heatmap]"))
    sides = [("torch", False), ("torch", True), ("torch-compile", False), ("torch-compile", True),
             ("onnxruntime", None)]
    assert [(r["path"], r["backend"], r["channels_last"]) for r in summary["records"]] == [
        ("heatmap", *side) for side in sides]
    records = summary["records"]
    assert len({(record["gflops"], str(record["params"])) for record in records}) == 1
    for record in records:
        assert set(record) == RECORD_KEYS
        assert not record["cpu"]["skipped"] and record["cpu"]["median_ms"] > 0
    assert records[-1]["cuda"]["skipped"] and "CPU only" in records[-1]["cuda"]["reason"]
    assert summary["settings"]["compile_backend"] == "eager"
    printed = capsys.readouterr().out
    assert "torch-compile NCHW" in printed and "torch NHWC" in printed and "onnxruntime " in printed


def test_the_mediapipe_comparison_refuses_a_runtime_predict_does_not_run(tmp_path: Path) -> None:
    with pytest.raises(PoseLabError, match="torch-compile"):
        bench(_bench_cfg(tmp_path, "ckpt=checkpoints/none.pt", "peer_python=/no/python", "backend=[torch-compile]"))
