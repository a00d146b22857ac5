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
from omegaconf import DictConfig, open_dict

from pose_lab.bench import PATHS, available_models, bench, build_variant, count_flops, params_used
from pose_lab.errors import PoseLabError
from pose_lab.inference import PoseEstimator
from pose_lab.peer_comparison import interleaved_rounds, time_estimator

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


def test_bench_a_checkpoint(smoke_checkpoint: Path, tmp_path: Path) -> None:
    summary = bench(_bench_cfg(tmp_path / "out", f"ckpt={smoke_checkpoint}", "input_size=256", "devices=[]"))
    assert [r["variant"] for r in summary["records"]] == [f"ckpt:{smoke_checkpoint.name}"] * 3
    assert all(r["input_size"] == 64 for r in summary["records"])  # the checkpoint's size, not input_size
    with pytest.raises(PoseLabError, match="not both"):
        bench(_bench_cfg(tmp_path / "out", f"ckpt={smoke_checkpoint}", "models=[base]"))


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


# The stand-in peer's time per image: image i of the list takes 10 * (i + 1) ms.
STAND_IN_MS_STEP = 10.0
TINY_TEST_SPLIT = "peer_split={train: [1, 8], val: [9, 12], test: [13, 16]}"

STAND_IN_PEER = """#!{python}
# Stand-in for `PYTHON peer_mediapipe.py --images LIST --output OUT.npz --warmup-images N`: answers the first half
# of the listed images with their ground truth, the next with no pose (NaN) and the rest 1000 px off.
import json, sys
from pathlib import Path
import numpy as np
import scipy.io

args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
images = [Path(line) for line in Path(args["--images"]).read_text().splitlines()]
joints = scipy.io.loadmat(images[0].parents[1] / "joints.mat")["joints"]  # 3 x 14 x N
keypoints = np.stack([joints[:2, :, int(image.stem[2:]) - 1].T for image in images]).astype(np.float32)
correct = len(images) // 2
keypoints[correct] = np.nan
keypoints[correct + 1:] += 1000.0
milliseconds = {step} * np.arange(1, len(images) + 1)
np.savez(args["--output"], keypoints=keypoints, visibility=np.ones(keypoints.shape[:2], np.float32),
         milliseconds=milliseconds, images=np.array([str(image) for image in images]))
print(json.dumps({{"peer": "stand-in peer", "mediapipe": "0.0", "images": len(images),
                  "images_with_pose": len(images) - 1, "warmup_images": int(args["--warmup-images"]),
                  "median_ms": float(np.median(milliseconds))}}))
"""


@pytest.fixture
def stand_in_peer(tmp_path: Path) -> Path:
    path = tmp_path / "peer_venv" / "python"
    path.parent.mkdir()
    path.write_text(STAND_IN_PEER.format(python=sys.executable, step=STAND_IN_MS_STEP))
    path.chmod(0o755)
    return path


def _peer_cfg(out: Path, checkpoint: Path, peer: Path, lsp_root: Path, *overrides: str) -> DictConfig:
    return _bench_cfg(out, f"ckpt={checkpoint}", f"peer_python={peer}", f"lsp_root={lsp_root}", TINY_TEST_SPLIT,
                      "devices=[]", "warmup=1", "peer_rounds=1", "settle_seconds=0", *overrides)


def test_comparison_with_a_peer_scores_both_sides_on_the_test_images(
        smoke_checkpoint: Path, tmp_path: Path, tiny_lsp_root: Path, stand_in_peer: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    bench(_peer_cfg(tmp_path / "out", smoke_checkpoint, stand_in_peer, tiny_lsp_root, "backend=both",
                    "peer_int8=false", "peer_heatmap=false"))
    comparison = json.loads((tmp_path / "out" / "bench.json").read_text())["peer_comparison"]
    assert comparison["images"] == 4 and comparison["image_numbers"] == [13, 16]
    assert comparison["subset"] == "test" and comparison["checkpoint"] == str(smoke_checkpoint)
    peer = comparison["peer"]
    assert peer["name"] == "stand-in peer" and peer["images_with_pose"] == 3
    # Images 13 and 14 answered with the ground truth, 15 without a pose, 16 far off: 2 of 4 images right.
    assert peer["pck"]["pckh@0.5"]["mean"] == pytest.approx(50.0)
    assert peer["pck"]["pck@0.2"]["mean"] == pytest.approx(50.0)
    assert peer["median_ms"] == pytest.approx(25.0) and peer["p90_ms"] == pytest.approx(37.0)
    assert Path(peer["keypoints_file"]) == tmp_path / "out" / "peer_keypoints.npz"
    listed = (tmp_path / "out" / "peer_images.txt").read_text().split()
    assert [Path(line).name for line in listed] == ["im0013.jpg", "im0014.jpg", "im0015.jpg", "im0016.jpg"]
    assert [side["backend"] for side in comparison["pose_lab"]] == ["torch", "onnxruntime"]
    torch_side, onnx_side = comparison["pose_lab"]
    for side in comparison["pose_lab"]:
        assert 0 < side["min_ms"] <= side["median_ms"] <= side["p90_ms"]
        assert side["ratio_to_peer"] == pytest.approx(side["median_ms"] / 25.0)
        assert set(side["pck"]) == {"pckh@0.5", "pck@0.2"} and 0 <= side["pck"]["pckh@0.5"]["mean"] <= 100
    # The same network in both runtimes finds the same joints (a 4-image PCK moves in steps of 1/56).
    assert onnx_side["pck"]["pckh@0.5"]["mean"] == pytest.approx(torch_side["pck"]["pckh@0.5"]["mean"], abs=2.0)
    printed = capsys.readouterr().out
    assert "against stand-in peer on 4 LSP test images" in printed and "x the peer's time" in printed


def test_rounds_interleave_the_images_and_put_every_answer_back_in_its_place(
        smoke_checkpoint: Path, tmp_path: Path, tiny_lsp_root: Path, stand_in_peer: Path) -> None:
    assert [list(index) for index in interleaved_rounds(5, 2)] == [[0, 2, 4], [1, 3]]
    assert len(interleaved_rounds(2, 4)) == 2  # never an empty round
    summary = bench(_peer_cfg(tmp_path / "out", smoke_checkpoint, stand_in_peer, tiny_lsp_root, "peer_rounds=2",
                              "peer_int8=false", "peer_heatmap=false"))
    comparison = summary["peer_comparison"]
    assert comparison["rounds"] == 2 and summary["settings"]["peer_rounds"] == 2
    # Round 0 asks the stand-in for images 13 and 15, round 1 for 14 and 16: each answers its first image with the
    # ground truth in 10 ms and its second without a pose in 20 ms; put back in order, 13 and 14 are right.
    stored = np.load(comparison["peer"]["keypoints_file"])
    np.testing.assert_array_equal(stored["milliseconds"], [10.0, 10.0, 20.0, 20.0])
    assert np.isfinite(stored["keypoints"][:2]).all() and np.isnan(stored["keypoints"][2:]).all()
    assert [Path(name).name for name in stored["images"]] == ["im0013.jpg", "im0014.jpg", "im0015.jpg", "im0016.jpg"]
    assert comparison["peer"]["pck"]["pckh@0.5"]["mean"] == pytest.approx(50.0)
    assert comparison["peer"]["images_with_pose"] == 2 and comparison["peer"]["median_ms"] == pytest.approx(15.0)
    in_one_pass = bench(_peer_cfg(tmp_path / "one", smoke_checkpoint, stand_in_peer, tiny_lsp_root, "peer_int8=false",
                                  "peer_heatmap=false"))
    assert comparison["pose_lab"][0]["pck"] == in_one_pass["peer_comparison"]["pose_lab"][0]["pck"]
    with pytest.raises(PoseLabError, match="peer_rounds=0"):
        bench(_peer_cfg(tmp_path / "out", smoke_checkpoint, stand_in_peer, tiny_lsp_root, "peer_rounds=0"))


def test_comparison_adds_int8_sides_calibrated_on_training_images(
        smoke_checkpoint: Path, tmp_path: Path, tiny_lsp_root: Path, stand_in_peer: Path) -> None:
    summary = bench(_peer_cfg(tmp_path / "out", smoke_checkpoint, stand_in_peer, tiny_lsp_root, "backend=onnxruntime",
                              "calibration_images=4", "peer_heatmap=true"))  # peer_int8 is on by default
    sides = summary["peer_comparison"]["pose_lab"]
    assert [side["backend"] for side in sides] == ["onnxruntime", "onnxruntime-int8", "onnxruntime-heatmap",
                                                   "onnxruntime-heatmap-int8"]
    for side in sides:
        assert side["median_ms"] > 0 and 0 <= side["pck"]["pckh@0.5"]["mean"] <= 100
    assert summary["settings"]["peer_int8"] is True and summary["settings"]["calibration_images"] == 4
    assert summary["peer_comparison"]["predict_default"] == "onnxruntime-heatmap-int8"


def test_the_heatmap_side_scores_the_keypoints_decoded_from_heatmaps(smoke_checkpoint: Path, tmp_path: Path) -> None:
    estimator = PoseEstimator.from_checkpoint(smoke_checkpoint)
    images = [np.random.default_rng(seed).integers(0, 256, (50, 70, 3), dtype=np.uint8) for seed in range(2)]
    decoded, times = time_estimator(PoseEstimator.from_checkpoint(smoke_checkpoint, inference_path="heatmap"), images,
                                    warmup=1)
    regressed, _ = time_estimator(estimator, images, warmup=0)
    expected = [prediction.heatmap_keypoints for prediction in estimator.predict(images, return_heatmaps=True)]
    np.testing.assert_allclose(decoded, np.stack(expected), atol=1e-4)
    assert len(times) == 2 and not np.allclose(decoded, regressed)


def test_comparison_on_the_first_images_only(smoke_checkpoint: Path, tmp_path: Path, tiny_lsp_root: Path,
                                             stand_in_peer: Path) -> None:
    summary = bench(_peer_cfg(tmp_path / "out", smoke_checkpoint, stand_in_peer, tiny_lsp_root, "peer_images=2",
                              "peer_int8=false", "peer_heatmap=false"))
    comparison = summary["peer_comparison"]
    assert comparison["images"] == 2 and comparison["image_numbers"] == [13, 14]
    assert [side["backend"] for side in comparison["pose_lab"]] == ["torch"]
    # One right (13) and one without a pose (14); 10 and 20 ms.
    assert comparison["peer"]["pck"]["pckh@0.5"]["mean"] == pytest.approx(50.0)
    assert comparison["peer"]["median_ms"] == pytest.approx(15.0)


def test_comparison_settings_are_user_errors(smoke_checkpoint: Path, tmp_path: Path, tiny_lsp_root: Path,
                                             stand_in_peer: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(PoseLabError, match="peer_python=.*does not exist"):
        bench(_peer_cfg(out, smoke_checkpoint, tmp_path / "no_venv" / "python", tiny_lsp_root))
    with pytest.raises(PoseLabError, match="POSE_LAB_LSP_ROOT"):
        bench(_peer_cfg(out, smoke_checkpoint, stand_in_peer, tiny_lsp_root, "lsp_root=null"))
    with pytest.raises(PoseLabError, match="no_lsp_here"):
        bench(_peer_cfg(out, smoke_checkpoint, stand_in_peer, tmp_path / "no_lsp_here"))
    with pytest.raises(PoseLabError, match="pass ckpt=PATH"):
        bench(_bench_cfg(out, "models=[base]", f"peer_python={stand_in_peer}", f"lsp_root={tiny_lsp_root}"))
    with pytest.raises(PoseLabError, match="runtimes .*not torch-compile"):
        bench(_peer_cfg(out, smoke_checkpoint, stand_in_peer, tiny_lsp_root, "backend=[torch,torch-compile]"))
    with pytest.raises(PoseLabError, match="peer_images=0"):
        bench(_peer_cfg(out, smoke_checkpoint, stand_in_peer, tiny_lsp_root, "peer_images=0"))
    assert not (out / "bench.json").exists()


def test_a_failing_peer_is_a_user_error_with_its_message(smoke_checkpoint: Path, tmp_path: Path,
                                                         tiny_lsp_root: Path) -> None:
    broken = tmp_path / "broken_python"
    broken.write_text(f"#!{sys.executable}\nimport sys\nsys.exit('mediapipe is not installed')\n")
    broken.chmod(0o755)
    with pytest.raises(PoseLabError, match=r"peer failed \(exit 1\): mediapipe is not installed"):
        bench(_peer_cfg(tmp_path / "out", smoke_checkpoint, broken, tiny_lsp_root, "peer_int8=false",
                        "peer_heatmap=false"))


def test_the_command_recorded_reruns_the_bench(tmp_path: Path) -> None:
    overrides = ["models=[base]", "input_size=64", "iters=1", "warmup=0", "devices=[cpu]", "settle_seconds=0"]
    subprocess.run([sys.executable, "-m", "pose_lab.bench", *overrides, f"hydra.run.dir={tmp_path}"], check=True,
                   capture_output=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, timeout=300)
    command = json.loads((tmp_path / "bench.json").read_text())["command"]
    assert command == "python -m pose_lab.bench " + " ".join(f"'{o}'" if "[" in o else o for o in overrides)
