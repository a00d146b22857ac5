"""bench: records and bench.json for both inference paths, FLOPs/params of every variant, errors, CUDA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

import pose_lab
from pose_lab.bench import PATHS, available_models, bench, build_variant, count_flops, params_used
from pose_lab.checkpoint import checkpoint_config
from pose_lab.errors import PoseLabError

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
RECORD_KEYS = {"variant", "path", "backend", "input_size", "params", "gflops", "cpu", "cuda"}
TIMING_KEYS = {"median_ms", "p90_ms", "mean_ms", "min_ms"}


def _bench_cfg(out: Path, *overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("bench", overrides=["input_size=64", "warmup=1", "iters=3", *overrides])
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
    assert [(r["variant"], r["path"]) for r in summary["records"]] == [("base", "full"), ("base", "regression")]
    for record in summary["records"]:
        assert set(record) == RECORD_KEYS
        assert record["input_size"] == 64 and record["backend"] == "torch"
        assert 0 < record["params"]["used"] <= record["params"]["total"]
        assert record["gflops"] > 0
        cpu = record["cpu"]
        assert not cpu["skipped"] and TIMING_KEYS <= set(cpu)
        assert cpu["threads"] == torch.get_num_threads() and cpu["batch"] == 1
        assert 0 < cpu["min_ms"] <= cpu["median_ms"] <= cpu["p90_ms"]


def test_regression_path_is_cheaper_than_the_full_path(summary: dict) -> None:
    full, regression = summary["records"]
    assert regression["gflops"] < full["gflops"]
    assert regression["params"]["used"] < full["params"]["used"] == full["params"]["total"]


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


@pytest.mark.parametrize("override", ["input_size=100", "devices=[tpu]", "iters=0", "backend=tensorrt"])
def test_bad_settings_are_user_errors(tmp_path: Path, override: str) -> None:
    with pytest.raises(PoseLabError):
        bench(_bench_cfg(tmp_path, "models=[base]", override))


def test_both_backends_time_every_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = bench(_bench_cfg(tmp_path, "models=[base]", "backend=both", "warmup=0", "iters=2"))
    assert [(r["path"], r["backend"]) for r in summary["records"]] == [
        ("full", "torch"), ("full", "onnxruntime"), ("regression", "torch"), ("regression", "onnxruntime")]
    for record in summary["records"]:
        assert set(record) == RECORD_KEYS
        assert not record["cpu"]["skipped"] and record["cpu"]["median_ms"] > 0
    for torch_record, onnx_record in zip(summary["records"][::2], summary["records"][1::2]):
        assert onnx_record["gflops"] == torch_record["gflops"] and onnx_record["params"] == torch_record["params"]
        assert onnx_record["cuda"]["skipped"] and "CPU only" in onnx_record["cuda"]["reason"]
    assert "onnxruntime" in capsys.readouterr().out


def test_bench_a_checkpoint(train_cfg, tmp_path: Path) -> None:
    cfg = train_cfg("data.input_size=64")
    path = tmp_path / "tiny.ckpt"
    torch.save({"pose_lab": {"config": checkpoint_config(cfg), "version": pose_lab.__version__},
                "state_dict": instantiate(cfg.model).state_dict()}, path)
    summary = bench(_bench_cfg(tmp_path / "out", f"ckpt={path}", "input_size=256", "devices=[]"))
    assert [r["variant"] for r in summary["records"]] == ["ckpt:tiny.ckpt"] * 2
    assert all(r["input_size"] == 64 for r in summary["records"])  # the checkpoint's size, not input_size
    with pytest.raises(PoseLabError, match="not both"):
        bench(_bench_cfg(tmp_path / "out", f"ckpt={path}", "models=[base]"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_latency_and_throughput(tmp_path: Path) -> None:
    summary = bench(_bench_cfg(tmp_path, "models=[base]", "devices=[cuda]", "cuda_batch=8"))
    for record in summary["records"]:
        cuda = record["cuda"]
        assert cuda["skipped"] is False and cuda["device"]
        assert 0 < cuda["median_ms"] <= cuda["p90_ms"]
        assert cuda["throughput"]["batch"] == 8 and cuda["throughput"]["images_per_s"] > 0
        assert record["cpu"]["skipped"]
