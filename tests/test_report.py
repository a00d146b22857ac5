"""report on synthetic run folders: hand-computed mean ± std, failed and short variants listed, plot, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from pose_lab.errors import PoseLabError
from pose_lab.evaluation_record import INFERENCE_SETTINGS
from pose_lab.paths import RUN_OVERRIDES
from pose_lab.report import report
from pose_lab.reporting.evaluations import ROW_SETTINGS, SETTING_NOTES
from pose_lab.reporting.runs import Run, budget_line
from pose_lab.reporting.variants import REPORT_TABLE1

CONF = str(Path(__file__).resolve().parents[1] / "conf")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _write_run(sweep: Path, name: str, variant: str, seed: int, scores: tuple[float, float, float] | None,
               split: str = "seed", input_size: int = 256, extra: tuple[str, ...] = (),
               epochs_run: tuple[int, int] = (60, 40)) -> Path:
    """A run folder as pose_lab.train leaves it; `scores` (PCKh reg, PCKh heatmap, PCK@0.2 reg) or None for a
    run that died before writing metrics.json; `extra` overrides it was started with (the dotted-key ones applied
    to its config); `epochs_run` the epochs its pretrain and regression stages ran."""
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    config = {
        "paths": {"output_dir": str(folder)},
        "data": {"root": "/data/lsp", "split": split, "input_size": input_size},
        "codec": {"heatmap": {"sigma": 2.0}},
        "model": {"loss": {"coordinate": {"kind": "mse"}}},
        "phase": {"stages": {"pretrain": {"epochs": 60}, "regression": {"epochs": 40}}},
        "model_name": variant,
        "seed": seed,
    }
    for override in extra:
        key, _, value = override.lstrip("~+").partition("=")
        *parents, leaf = key.split(".")
        if not parents:
            continue  # a config group choice such as experiment=...
        node = config
        for parent in parents:
            node = node[parent]
        if override.startswith("~"):
            del node[leaf]
        else:
            node[leaf] = yaml.safe_load(value)
    (folder / "run_config.yaml").write_text(yaml.safe_dump(config))
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"model={variant}", f"seed={seed}", *extra]))
    if scores is not None:
        regression, heatmap, pck = scores
        test = {"test/pckh@0.5_regression": regression, "test/pckh@0.5_heatmap": heatmap,
                "test/pck@0.2_regression": pck, "test/pck@0.2_heatmap": 0.1, "test/loss_total": 1.0}
        stages = {"pretrain": {"epochs": epochs_run[0]}, "regression": {"epochs": epochs_run[1]}}
        (folder / "metrics.json").write_text(json.dumps({"model": variant, "seed": seed, "test": test,
                                                         "stages": stages}))
    return folder


def _record(variant: str, path: str, params: int, gflops: float, cpu_ms: float, backend: str = "torch") -> dict:
    return {
        "variant": variant, "path": path, "backend": backend, "input_size": 256,
        "params": {"total": 1_234_567, "used": params}, "gflops": gflops,
        "cpu": {"skipped": False, "batch": 1, "threads": 2, "median_ms": cpu_ms, "p90_ms": cpu_ms + 1},
        "cuda": {"skipped": True, "reason": "no CUDA device"},
    }


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """base and cbam with seeds 0 and 1, a base run that died (seed 2), vit with seed 0 only."""
    root = tmp_path / "multiruns" / "2025-01-01_00-00-00"
    _write_run(root, "0_model=base,seed=0", "base", 0, (0.50, 0.40, 0.30))
    _write_run(root, "1_model=base,seed=1", "base", 1, (0.60, 0.44, 0.35))
    _write_run(root, "2_model=base,seed=2", "base", 2, None)
    _write_run(root, "3_model=cbam,seed=0", "cbam", 0, (0.42, 0.38, 0.20))
    _write_run(root, "4_model=cbam,seed=1", "cbam", 1, (0.46, 0.36, 0.22))
    _write_run(root, "5_model=vit,seed=0", "vit", 0, (0.41, 0.30, 0.25))
    multirun = {"hydra": {"overrides": {"hydra": ["hydra.mode=MULTIRUN"],
                                        "task": ["model=base,cbam,vit", "seed=0,1,2", "phase=both"]},
                          "job": {"name": "train"}, "runtime": {"cwd": "/repo"}}}
    (root / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    return root


@pytest.fixture
def bench_json(tmp_path: Path) -> Path:
    records = []
    for variant, cpu_ms in (("base", 12.34), ("cbam", 14.0), ("vit", 16.0)):
        records += [_record(variant, "full", 1_234_567, 1.5, cpu_ms),
                    _record(variant, "regression", 1_000_000, 1.25, cpu_ms - 3.58),
                    _record(variant, "regression", 1_000_000, 1.25, 2.0, backend="onnxruntime")]
    bench = {"date": "2025-01-02T00:00:00+00:00", "command": "pose_lab/bench.py input_size=256",
             "machine": {"cpu": "Test CPU 9000", "cpu_count": 2, "threads": 2, "torch": "2.x", "python": "3.11",
                         "platform": "Linux", "cuda": None, "cuda_version": None},
             "settings": {"input_size": 256, "warmup": 10, "iters": 50, "channels_last": True, "threads_used": 2},
             "records": records}
    path = tmp_path / "bench" / "bench.json"
    path.parent.mkdir()
    path.write_text(json.dumps(bench))
    return path


def _cfg(tmp_path: Path, sweep: Path | str, bench: Path | str | None, *overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("report", overrides=[
            f"sweep={sweep}", f"bench={bench if bench is not None else 'null'}",
            f"output={tmp_path / 'out' / 'RESULTS.md'}", f"plot={tmp_path / 'out' / 'results' / 'plot.png'}",
            *overrides,
        ])


def _row(markdown: str, variant: str) -> list[str]:
    """The cells of `variant`'s table row."""
    line = next(line for line in markdown.splitlines() if line.startswith(f"| `{variant}` |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.fixture
def written(tmp_path: Path, sweep: Path, bench_json: Path) -> tuple[dict, str]:
    result = report(_cfg(tmp_path, sweep, bench_json))
    return result, Path(result["output"]).read_text()


def test_table_has_hand_computed_mean_and_sample_std(written: tuple[dict, str]) -> None:
    result, markdown = written
    (group,) = result["groups"]
    assert group == ("seed", 256, "pretrain+regression")
    rows = {row.variant: row for row in result["groups"][group]}
    assert list(rows) == ["base", "vit", "cbam"]  # the study's order
    base = rows["base"].stats
    assert base["test/pckh@0.5_regression"].mean == pytest.approx(55.0)
    assert base["test/pckh@0.5_regression"].std == pytest.approx(7.0710678)  # sqrt(((50-55)^2+(60-55)^2)/1)
    assert base["test/pckh@0.5_heatmap"].std == pytest.approx(2.8284271)
    assert rows["vit"].stats["test/pckh@0.5_regression"].std is None
    # variant, n, seeds, PCKh reg, PCKh heatmap, PCK@0.2, params, GFLOPs, CPU ms, GPU ms, report PCK, report ms
    assert _row(markdown, "base") == ["`base`", "2 ⚠", "0, 1", "55.0 ± 7.1", "42.0 ± 2.8", "32.5 ± 3.5",
                                      "1.235 / 1.000", "1.500 / 1.250", "12.3 / 8.8", "n/a / n/a", "58.5", "116"]
    assert _row(markdown, "cbam")[1:6] == ["2", "0, 1", "44.0 ± 2.8", "37.0 ± 1.4", "21.0 ± 1.4"]
    assert _row(markdown, "vit")[1:4] == ["1 ⚠", "0", "41.0"]
    assert "GPU ms n/a: no CUDA device" in markdown


def test_failed_run_and_short_variant_are_listed(written: tuple[dict, str]) -> None:
    _, markdown = written
    issues = markdown.split("## Missing or failed runs")[1].split("##")[0]
    assert "`2_model=base,seed=2` (base, seed 2): failed or unfinished" in issues
    assert "`vit`: 1 finished seed(s), other variants have up to 2" in issues
    assert "cbam" not in issues


def test_report_table1_is_quoted_beside_the_results(written: tuple[dict, str]) -> None:
    _, markdown = written
    assert "| report PCK % (§5.1) | report ms (§5.1) |" in markdown
    assert _row(markdown, "cbam")[-2:] == [f"{REPORT_TABLE1['CBAM Modules Modifications'][0]:.1f}", "124"]
    assert _row(markdown, "vit")[-2:] == ["41.7", "117"]


def test_commands_machine_and_plot_are_written(written: tuple[dict, str], tmp_path: Path) -> None:
    result, markdown = written
    assert "`cd /repo && python -m pose_lab.train -m model=base,cbam,vit seed=0,1,2 phase=both`" in markdown
    assert "python -m pose_lab.report sweep=" in markdown
    assert "Test CPU 9000 (2 cores)" in markdown
    plot = Path(result["plot"])
    assert plot == tmp_path / "out" / "results" / "plot.png"
    assert plot.read_bytes().startswith(PNG_SIGNATURE) and plot.stat().st_size > 1000
    assert "![accuracy against latency](results/plot.png)" in markdown


def test_without_bench_latency_is_not_measured_and_no_plot(tmp_path: Path, sweep: Path) -> None:
    result = report(_cfg(tmp_path, sweep, None))
    markdown = Path(result["output"]).read_text()
    assert _row(markdown, "base")[6:10] == ["not measured"] * 4
    assert result["plot"] is None and "No plot: no bench" in markdown
    assert not (tmp_path / "out" / "results").exists()


def test_runs_outside_a_multirun_give_their_own_command(tmp_path: Path, sweep: Path) -> None:
    (sweep / "multirun.yaml").unlink()
    markdown = Path(report(_cfg(tmp_path, sweep, None))["output"]).read_text()
    assert f"`python -m pose_lab.train model=cbam seed=1` (run `{sweep / '4_model=cbam,seed=1'}`)" in markdown


def test_a_resumed_run_gives_the_command_it_started_with(tmp_path: Path, sweep: Path) -> None:
    (sweep / "multirun.yaml").unlink()
    run = sweep / "4_model=cbam,seed=1"
    (run / RUN_OVERRIDES).write_text((run / ".hydra" / "overrides.yaml").read_text())
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"resume={run}"]))  # what a resume leaves
    markdown = Path(report(_cfg(tmp_path, sweep, None))["output"]).read_text()
    assert f"`python -m pose_lab.train model=cbam seed=1` (run `{sweep / '4_model=cbam,seed=1'}`)" in markdown
    assert "resume=" not in markdown


def test_runs_of_a_variant_that_differ_beyond_the_seed_are_flagged(tmp_path: Path, sweep: Path) -> None:
    config = sweep / "4_model=cbam,seed=1" / "run_config.yaml"
    config.write_text(config.read_text() + "trainer:\n  max_epochs: 3\n")
    markdown = Path(report(_cfg(tmp_path, sweep, None))["output"]).read_text()
    assert "`cbam`: its runs differ in trainer.max_epochs; they are averaged all the same" in markdown
    assert "`base`: its runs differ" not in markdown  # seeds and output folders differ, as they should


def test_latency_comes_from_the_chosen_backend(tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    markdown = Path(report(_cfg(tmp_path, sweep, bench_json, "backend=onnxruntime"))["output"]).read_text()
    assert _row(markdown, "base")[6:10] == ["n/a / 1.000", "n/a / 1.250", "n/a / 2.0", "n/a / n/a"]
    with pytest.raises(PoseLabError, match="no records for backend=tensorrt; it has onnxruntime, torch"):
        report(_cfg(tmp_path, sweep, bench_json, "backend=tensorrt"))


def test_groups_by_split_and_input_size(tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    _write_run(sweep, "6_standard", "base", 0, (0.7, 0.6, 0.5), split="standard", input_size=192)
    result = report(_cfg(tmp_path, sweep, bench_json))
    assert set(result["groups"]) == {("seed", 256, "pretrain+regression"),
                                     ("standard", 192, "pretrain+regression")}
    markdown = Path(result["output"]).read_text()
    assert "each group has its own table" in markdown
    assert "| `base` | 1 | 0 | 70.0 |" in markdown and "not in bench" in markdown  # bench is at 256 only


def test_missing_or_empty_sweep_is_a_user_error(tmp_path: Path, bench_json: Path) -> None:
    with pytest.raises(PoseLabError, match="no such folder"):
        report(_cfg(tmp_path, tmp_path / "nowhere", bench_json))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PoseLabError, match="no run folders"):
        report(_cfg(tmp_path, tmp_path / "empty", bench_json))


def test_missing_or_malformed_bench_is_a_user_error(tmp_path: Path, sweep: Path) -> None:
    with pytest.raises(PoseLabError, match="no such file.*bench=null"):
        report(_cfg(tmp_path, sweep, tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(PoseLabError, match="cannot read it as JSON"):
        report(_cfg(tmp_path, sweep, broken))
    broken.write_text(json.dumps({"machine": {}, "records": [{"variant": "base"}]}))
    with pytest.raises(PoseLabError, match=r"records\[0\] lacks .*gflops"):
        report(_cfg(tmp_path, sweep, broken))


def test_every_benched_runtime_is_compared_side_by_side(written: tuple[dict, str]) -> None:
    _, markdown = written
    runtimes = markdown.split("## Inference runtimes", 1)[1]
    base = next(line for line in runtimes.splitlines() if line.startswith("| `base` |"))
    # torch reg 12.34 - 3.58 = 8.76 ms, onnxruntime reg 2.0 ms (no full path exported): 4.38x.
    assert [cell.strip() for cell in base.strip("|").split("|")] == \
        ["`base`", "256", "12.3 / 8.8", "n/a / 2.0", "4.38×"]


def test_a_single_runtime_has_no_runtime_table(tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    bench = json.loads(bench_json.read_text())
    bench["records"] = [record for record in bench["records"] if record["backend"] == "torch"]
    bench_json.write_text(json.dumps(bench))
    assert "## Inference runtimes" not in Path(report(_cfg(tmp_path, sweep, bench_json))["output"]).read_text()


def _exercise_bench(path: Path, pose_lab_reps: int, turns: bool = True) -> Path:
    """An exercise_bench.json of one clip; without `turns`, as written before the bench checked turning points
    and counted perturbed passes."""
    side = {"frames": 300, "median_seconds": 2.0, "fps": 150.0, "reps": pose_lab_reps, "exact": pose_lab_reps == 3,
            "acceptable": pose_lab_reps == 3}
    peer = {**side, "fps": 50.0, "reps": 4, "exact": False, "acceptable": False}
    noted = {"pose_lab_counter_on_peer_keypoints_turns": {"noted": 3, "matched": 3, "elsewhere": 0}} if turns else {}
    perturbed = {}
    if turns:
        side["turns"] = {"turning_frames": [80, 170, 40], "noted": 3, "matched": 2, "elsewhere": 1}
        perturbed = {"pose_lab_perturbed": [{"start_frame": 2, "scale": 1.0, "reps": 3, "exact": True},
                                            {"start_frame": 0, "scale": 0.75, "reps": 2, "exact": False}]}
    exercise = {"date": "2026-01-01", "command": "python -m pose_lab.exercise.bench", "repeats": 3,
                "peer": "stand-in peer", "machine": {"cpu": "Test CPU", "cpu_count": 2},
                "pipeline": {"backend": "onnxruntime", "keypoints": "regression", "threads": 2},
                "clips": [{"clip": "squat.mp4", "exercise": "squat", "expected": {"reps": 3, "partial": 0},
                           "pose_lab": side, "peer": peer, "pose_lab_counter_on_peer_keypoints": 3,
                           "keypoint_agreement_with_peer": 0.4261, **noted, **perturbed}],
                "overall": {"pose_lab": {"fps": 150.0, "exact_clips": int(side["exact"]), "clips": 1},
                            "peer": {"fps": 50.0, "exact_clips": 0, "clips": 1}, "speed_ratio": 3.0}}
    if turns:
        exercise["overall"]["pose_lab_perturbed"] = {"exact": 1, "passes": 2}
    path.write_text(json.dumps(exercise))
    return path


def test_exercise_bench_becomes_a_section_with_counts_and_the_speed_ratio(
        tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    path = _exercise_bench(tmp_path / "exercise_bench.json", pose_lab_reps=3)
    markdown = Path(report(_cfg(tmp_path, sweep, bench_json, f"exercise_bench={path}"))["output"]).read_text()
    section = markdown.split("## Exercise analytics on real clips", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| `squat.mp4` |"))
    assert [cell.strip() for cell in row.strip("|").split("|")] == \
        ["`squat.mp4`", "squat", "3 (+0)", "3 ✓", "2 of 3 (+1)", "1 of 2 exact (×0.75: 2)", "4 ✗",
         "3 (3 of 3 (+0) at noted turns)", "42.6%", "150.0", "50.0"]
    assert "**3.00×** the peer's speed" in section
    assert "Perturbed passes: 1 of 2 counted exactly." in section
    assert "the keypoints are what fails" not in section  # pose_lab counted its one clip exactly
    with pytest.raises(PoseLabError, match="exercise_bench=.*no such file"):
        report(_cfg(tmp_path, sweep, bench_json, f"exercise_bench={tmp_path / 'missing.json'}"))


def test_miscounts_that_the_counter_gets_right_on_peer_keypoints_blame_the_keypoints(
        tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    path = _exercise_bench(tmp_path / "exercise_bench.json", pose_lab_reps=5, turns=False)
    markdown = Path(report(_cfg(tmp_path, sweep, bench_json, f"exercise_bench={path}"))["output"]).read_text()
    assert "On each of the 1 clip(s) pose_lab miscounts, its own counter counts the peer's keypoints exactly" \
        in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| `squat.mp4` |"))
    assert [cell.strip() for cell in row.strip("|").split("|")][4:8] == ["n/a", "n/a", "4 ✗", "3"]  # an older bench
    assert "Perturbed passes" not in markdown


def test_without_the_peer_a_miscount_is_not_blamed_on_either_side(tmp_path: Path, sweep: Path) -> None:
    path = _exercise_bench(tmp_path / "exercise_bench.json", pose_lab_reps=5)
    bench = json.loads(path.read_text())
    bench["peer"] = None
    bench["clips"][0].update(peer=None, pose_lab_counter_on_peer_keypoints=None)
    path.write_text(json.dumps(bench))
    markdown = Path(report(_cfg(tmp_path, sweep, None, f"exercise_bench={path}"))["output"]).read_text()
    assert "Peer: not run." in markdown and "| `squat.mp4` | squat | 3 (+0) | 5 ✗ |" in markdown
    assert "peer's keypoints:" not in markdown and "the keypoints are what fails" not in markdown


def test_each_group_states_its_training_budget(written: tuple[dict, str]) -> None:
    _, markdown = written
    assert "Training budget (from the runs' configs): pretrain 60 epochs; regression 40 epochs." in markdown


def _peer_bench(path: Path, rounds: int | None) -> Path:
    side = {"median_ms": 4.0, "p90_ms": 5.0, "pck": {"pckh@0.5": {"mean": 48.3}, "pck@0.2": {"mean": 49.4}}}
    comparison = {"checkpoint": "checkpoints/shipped.pt", "split": "standard", "images": 1000,
                  "image_numbers": [1001, 2000], "timed": {"pose_lab": "predict", "peer": "pose.process"},
                  "missing_pose": "no pose: every joint wrong",
                  "pose_lab": [{**side, "backend": "onnxruntime-int8", "ratio_to_peer": 0.2, "threads": 2}],
                  "peer": {"median_ms": 20.0, "p90_ms": 22.0, "name": "stand-in peer", "images_with_pose": 900,
                           "pck": {"pckh@0.5": {"mean": 75.1}, "pck@0.2": {"mean": 75.3}}},
                  **({"rounds": rounds, "predict_default": "onnxruntime-int8"} if rounds is not None else {})}
    path.write_text(json.dumps({"date": "2026-01-01", "command": "pose_lab/bench.py ckpt=checkpoints/shipped.pt",
                                "machine": {"cpu": "Test CPU", "cpu_count": 2},
                                "records": [_record("base", "regression", 1_000_000, 1.25, 10.0)],
                                "peer_comparison": comparison}))
    return path


@pytest.mark.parametrize("rounds", [4, None])
def test_the_mediapipe_section_gives_the_ratio_and_how_the_sides_were_interleaved(
        tmp_path: Path, sweep: Path, rounds: int | None) -> None:
    path = _peer_bench(tmp_path / "peer_bench.json", rounds)
    markdown = Path(report(_cfg(tmp_path, sweep, None, f"peer_bench={path}"))["output"]).read_text()
    section = markdown.split("## Speed and accuracy against MediaPipe on LSP", 1)[1].split("\n## ")[0]
    # Older bench.json files have neither rounds nor the default side.
    backend = "onnxruntime-int8 (`predict`'s default)" if rounds else "onnxruntime-int8"
    assert f"| pose_lab `shipped.pt` | {backend} | 4.00 | 5.00 | 48.3 | 49.4 | **0.200×** |" in section
    assert "MediaPipe found a pose in 900 of 1000 images" in section
    assert ("side by side in one run in 4 interleaved rounds (round r: images r, r + 4, …" in section) == (rounds == 4)


def test_peer_bench_must_hold_a_mediapipe_comparison(tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    with pytest.raises(PoseLabError, match="has no peer_comparison"):
        report(_cfg(tmp_path, sweep, bench_json, f"peer_bench={bench_json}"))


def test_several_sweeps_are_reported_together(tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    other = tmp_path / "multiruns" / "gpu"
    _write_run(other, "run0", "base", 0, (0.42, 0.61, 0.44), split="standard", input_size=192)
    _write_run(other, "run1", "base", 1, (0.44, 0.63, 0.45), split="standard", input_size=192)
    result = report(_cfg(tmp_path, f"[{sweep},{other}]", bench_json))
    assert ("standard", 192, "pretrain+regression") in result["groups"]
    markdown = Path(result["output"]).read_text()
    assert "| `base` | 2 | 0, 1 | 43.0 ± 1.4 | 62.0 ± 1.4 | 44.5 ± 0.7 |" in markdown
    # the multirun's command and the loose runs' both appear, each run named by its whole path
    assert f"(run `{other / 'run1'}`)" in markdown and "`cd /repo && python -m pose_lab.train -m" in markdown
    assert f"sweep=[{sweep},{other}]" in markdown


def test_budget_line_shows_epochs_cut_short_by_a_time_cap(tmp_path: Path) -> None:
    sweep = tmp_path / "capped"
    for seed, pretrain_run in ((0, 41), (1, 45)):
        folder = _write_run(sweep, f"run{seed}", "base", seed, (0.4, 0.5, 0.4), epochs_run=(pretrain_run, 40))
        config = folder / "run_config.yaml"
        config.write_text(config.read_text() + "trainer:\n  max_time: 00:00:04:10\n  accelerator: gpu\n")
    markdown = Path(report(_cfg(tmp_path, sweep, None))["output"]).read_text()
    assert ("pretrain 60 epochs (41–45 run: stopped early); regression 40 epochs; each stage capped at 00:00:04:10 "
            "(trainer.max_time); trained on gpu.") in markdown


def test_budget_line_gives_the_range_of_budgets_that_differ_on_purpose(tmp_path: Path) -> None:
    sweep = tmp_path / "schedules"
    _write_run(sweep, "run0", "base", 0, (0.4, 0.5, 0.4))
    _write_run(sweep, "run1", "base", 0, (0.4, 0.5, 0.4), extra=("phase.stages.pretrain.epochs=100",),
               epochs_run=(100, 40))
    markdown = Path(report(_cfg(tmp_path, sweep, None))["output"]).read_text()
    assert "pretrain 60–100 epochs; regression 40 epochs" in markdown and "stopped early" not in markdown


def test_levers_table_gives_each_change_and_its_difference_from_the_control(
        tmp_path: Path, sweep: Path) -> None:
    levers = tmp_path / "levers"
    _write_run(levers, "run0", "base", 0, (0.340, 0.426, 0.348))
    _write_run(levers, "run1", "base", 0, (0.414, 0.465, 0.423), extra=("model.loss.coordinate.kind=l1",),
               epochs_run=(38, 40))
    _write_run(levers, "run2", "base", 0, None, extra=("data.input_size=192",))
    markdown = Path(report(_cfg(tmp_path, sweep, None, f"levers={levers}"))["output"]).read_text()
    assert "| `run0` | control | 60 / 40 | 34.0 | 42.6 | 34.8 |" in markdown
    assert "| `run1` | `model.loss.coordinate.kind=l1` | 38 / 40 | 41.4 (+7.4) | 46.5 (+3.9) | 42.3 (+7.5) |" \
        in markdown
    assert "| `run2` | `data.input_size=192` | — / — | n/a | n/a | n/a |" in markdown
    (levers / "run0" / "metrics.json").unlink()
    with pytest.raises(PoseLabError, match="the control run .* has no metrics.json"):
        report(_cfg(tmp_path, sweep, None, f"levers={levers}"))


def test_a_lever_run_without_the_regression_phase_scores_its_heatmaps_only(tmp_path: Path, sweep: Path) -> None:
    levers = tmp_path / "levers"
    _write_run(levers, "run0", "base", 0, (0.515, 0.655, 0.532))
    _write_run(levers, "run1", "base", 0, (0.074, 0.690, 0.070),
               extra=("codec.heatmap.sigma=4.0", "~phase.stages.regression"))
    markdown = Path(report(_cfg(tmp_path, sweep, None, f"levers={levers}", "label=CPU"))["output"]).read_text()
    assert "## Levers: one change at a time: CPU" in markdown
    assert ("| `run1` | `codec.heatmap.sigma=4.0`, `~phase.stages.regression` | 60 | untrained | 69.0 (+3.5) "
            "| untrained |") in markdown
    assert "untrained: the run has no regression phase" in markdown
    assert "regression 40 epochs (1 of 2 runs)" in markdown.split("## Levers")[1]  # the stage only one run has


def test_a_lever_change_is_the_resolved_recipe_not_the_overrides_typed(tmp_path: Path, sweep: Path) -> None:
    """The control typed sigma 3 out, the lever named an experiment holding it, plus three changes; the setting
    data.heatmap_codec copies by interpolation is listed once, one added to pose_lab since the control ran is
    compared with what the control did without it (rerun.SETTINGS_ADDED_SINCE), and one the control lacks
    otherwise is marked as added."""
    levers = tmp_path / "levers"
    _write_run(levers, "run0", "base", 0, (0.515, 0.655, 0.532), extra=("codec.heatmap.sigma=3.0",))
    _write_run(levers, "run1", "base", 0, (0.520, 0.660, 0.530),
               extra=("experiment=sigma3", "model.loss.coordinate.kind=l1", "+codec.heatmap.refine=dark",
                      "+codec.heatmap.truncate=3.0", "+model.loss.coordinate.occluded_weight=1.0"))
    for name in ("run0", "run1"):
        config = yaml.safe_load((levers / name / "run_config.yaml").read_text())
        config["codec"]["heatmap"]["sigma"] = 3.0  # run1: from its experiment
        config["data"]["heatmap_codec"] = dict(config["codec"]["heatmap"])
        (levers / name / "run_config.yaml").write_text(yaml.safe_dump(config))
    markdown = Path(report(_cfg(tmp_path, sweep, None, f"levers={levers}"))["output"]).read_text()
    assert ("| `run1` | `codec.heatmap.refine=dark`, `+codec.heatmap.truncate=3.0`, `model.loss.coordinate.kind=l1` "
            "| 60 / 40 | 52.0 (+0.5) | 66.0 (+0.5) | 53.0 (-0.2) |") in markdown
    assert "`+key=value`: a setting the control's config lacks" in markdown


def test_merge_replaces_and_adds_sections_and_keeps_the_rest(tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    report(_cfg(tmp_path, sweep, bench_json))  # the full report; then its inputs are gone but for new ones
    output = tmp_path / "out" / "RESULTS.md"
    before = output.read_text()
    finetune = tmp_path / "finetune"
    for seed, score in ((0, 0.48), (1, 0.50)):
        folder = _write_run(finetune, f"seed_{seed}", "base", seed, (score, 0.6, score), split="standard",
                            input_size=192)
        config = yaml.safe_load((folder / "run_config.yaml").read_text())
        config["phase"] = {"init_from": "checkpoints/shipped.pt", "stages": {"regression": {"epochs": 40}}}
        (folder / "run_config.yaml").write_text(yaml.safe_dump(config))
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["stages"] = {"regression": {"epochs": 40, "fit_seconds": 1200.0 + 150 * seed, "resumed": False}}
        (folder / "metrics.json").write_text(json.dumps(metrics))
    path = _exercise_bench(tmp_path / "exercise_bench.json", pose_lab_reps=3)
    result = report(_cfg(tmp_path, finetune, "null", f"exercise_bench={path}", "merge=true"))
    after = Path(result["output"]).read_text()

    old_sections = [line for line in before.splitlines() if line.startswith("## ")]
    new_sections = [line for line in after.splitlines() if line.startswith("## ")]
    added = ["## Split `standard`, input 192 px, phases regression", "## Exercise analytics on real clips"]
    assert new_sections == old_sections[:-2] + added + old_sections[-2:]  # before the closing sections
    preamble = after.split("\n## ")[0]
    assert preamble.startswith(before.split("\n## ")[0])  # the preamble stays, and names the merged sweep
    assert preamble.endswith(f"Merged into this report since (`merge=true`): `{finetune}`; each merged table gives "
                             "its own training budget, and the last section lists every command.\n")
    assert _row(before, "base") == _row(after.split("phases regression")[0], "base")  # old tables untouched
    added_table = after.split("## Split `standard`, input 192 px, phases regression", 1)[1].split("\n## ")[0]
    assert "| `base` | 2 | 0, 1 | 49.0 ± 1.4 |" in added_table
    assert "regression 40 epochs, 20–22 min to fit (2 of 2 runs timed); initialised from `checkpoints/shipped.pt`" \
        in added_table
    closing = after.split("## How these numbers were made", 1)[1]
    # both report commands and every run's command, each under its heading, none lost
    assert closing.count("- `python -m pose_lab.report") == 2 and "merge=true" in closing
    assert f"(run `{finetune / 'seed_1'}`)" in closing and "`cd /repo && python -m pose_lab.train -m" in closing
    assert closing.index("Sweep:") < closing.index(f"(run `{finetune / 'seed_1'}`)") < closing.index("Report:")
    assert "- `2_model=base,seed=2` (base, seed 2): failed or unfinished" in after  # the old problems stay

    result = report(_cfg(tmp_path, finetune, "null", f"exercise_bench={path}", "merge=true"))
    assert Path(result["output"]).read_text() == after  # merging twice with the same inputs changes nothing
    other = tmp_path / "other"
    _write_run(other, "seed_0", "base", 0, (0.5, 0.6, 0.5), split="standard", input_size=192)
    again = Path(report(_cfg(tmp_path, other, "null", "merge=true", "label=other"))["output"]).read_text()
    assert f"since (`merge=true`): `{finetune}`, `{other}`; each merged" in again.split("\n## ")[0]
    with pytest.raises(PoseLabError, match="merge=true needs an existing report"):
        report(_cfg(tmp_path / "elsewhere", finetune, "null", "merge=true"))


def test_a_labelled_merge_keeps_the_table_of_the_same_split_size_and_phases(
        tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    report(_cfg(tmp_path, sweep, bench_json))
    before = (tmp_path / "out" / "RESULTS.md").read_text()
    recipe = tmp_path / "recipe"
    _write_run(recipe, "seed_0", "base", 0, (0.55, 0.7, 0.56))  # the same split, size and phases as `sweep`
    merged = report(_cfg(tmp_path, recipe / "seed_0", "null", "merge=true", "label='sigma 3'"))
    after = Path(merged["output"]).read_text()
    [old_heading] = [line for line in before.splitlines() if line.startswith("## Split")]
    assert old_heading in after and f"{old_heading}: sigma 3" in after
    assert _row(after.split(f"{old_heading}: sigma 3")[0], "base") == _row(before, "base")
    assert "| `base` | 1 | 0 | 55.0 |" in after.split(f"{old_heading}: sigma 3")[1]
    assert """merge=true 'label="sigma 3"'""" in after  # the recorded command, run again, gives the same heading
    assert f"(run `{recipe / 'seed_0'}`)" in after  # a run passed as the sweep is named by its path


def test_runs_of_the_same_name_from_two_merges_keep_apart_in_the_closing_list(
        tmp_path: Path, sweep: Path, bench_json: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # as under make: the sweeps lie under the working directory
    report(_cfg(tmp_path, sweep, bench_json))
    for budget in ("short", "long"):
        _write_run(tmp_path / budget, "cbam", "cbam", 0, (0.4, 0.5, 0.4))
        report(_cfg(tmp_path, tmp_path / budget, "null", "merge=true", f"label={budget}"))
    closing = (tmp_path / "out" / "RESULTS.md").read_text().split("## How these numbers were made", 1)[1]
    assert "(run `short/cbam`)" in closing and "(run `long/cbam`)" in closing
    assert "(run `cbam`)" not in closing


def test_a_merge_drops_the_report_commands_it_supersedes(tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    report(_cfg(tmp_path, sweep, bench_json))
    first, second = tmp_path / "first", tmp_path / "second"
    _write_run(first, "base", "base", 0, (0.4, 0.5, 0.4))
    _write_run(second, "vit", "vit", 0, (0.4, 0.5, 0.4))
    report(_cfg(tmp_path, first / "base", "null", "merge=true", "label=recipe"))
    report(_cfg(tmp_path, second / "vit", "null", "merge=true", "label=other"))
    # The same label reading the first run again with another: the first command only repeats part of it.
    both = f"[{first / 'base'},{second / 'vit'}]"
    report(_cfg(tmp_path, both, "null", "merge=true", "label=recipe"))
    # The same label reading fewer inputs than the command before it: the one before still made more.
    report(_cfg(tmp_path, second / "vit", "null", "merge=true", "label=recipe"))
    commands = [line for line in (tmp_path / "out" / "RESULTS.md").read_text().splitlines()
                if line.startswith("- `python -m pose_lab.report ")]
    assert len(commands) == 4  # the first report's, other's, and recipe's last two
    assert sum(f"sweep={first / 'base'} " in line for line in commands) == 0
    assert sum(both in line for line in commands) == 1
    assert sum(f"sweep={second / 'vit'} " in line and "label=other" in line for line in commands) == 1


def test_a_labelled_merge_keeps_the_benchmark_sections_beside_the_old_ones(
        tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    shipped = _exercise_bench(tmp_path / "shipped.json", pose_lab_reps=3)
    report(_cfg(tmp_path, sweep, bench_json, f"exercise_bench={shipped}"))
    candidate = _exercise_bench(tmp_path / "candidate.json", pose_lab_reps=2)
    after = Path(report(_cfg(tmp_path, "null", "null", f"exercise_bench={candidate}", "merge=true",
                             "label=candidate"))["output"]).read_text()
    old, new = (after.split(title, 1)[1].split("\n## ")[0] for title in (
        "## Exercise analytics on real clips\n", "## Exercise analytics on real clips: candidate\n"))
    assert "| 3 ✓ |" in old and "| 2 ✗ |" in new


def test_budget_line_times_only_stages_whose_clock_covers_every_process(tmp_path: Path) -> None:
    """A stage resumed from a checkpoint that kept the fit clock is timed whole; one resumed from an older
    checkpoint (no `fit_seconds_whole`, or False) timed only its last process and is left out."""
    sweep = tmp_path / "timed"
    for seed, seconds, resumed, whole in ((0, 600.0, False, None), (1, 900.0, False, None), (2, 60.0, True, None),
                                          (3, 1200.0, True, True), (4, 120.0, True, False)):
        folder = _write_run(sweep, f"run{seed}", "base", seed, (0.4, 0.5, 0.4))
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["stages"]["pretrain"].update(fit_seconds=seconds, resumed=resumed)
        if whole is not None:
            metrics["stages"]["pretrain"]["fit_seconds_whole"] = whole
        (folder / "metrics.json").write_text(json.dumps(metrics))
    markdown = Path(report(_cfg(tmp_path, sweep, None))["output"]).read_text()
    assert "pretrain 60 epochs, 10–20 min to fit (3 of 5 runs timed); regression 40 epochs." in markdown


def test_merge_of_a_benchmark_alone_needs_no_sweep_nor_bench(tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    report(_cfg(tmp_path, sweep, bench_json))
    before = (tmp_path / "out" / "RESULTS.md").read_text()
    path = _exercise_bench(tmp_path / "exercise_bench.json", pose_lab_reps=3)
    after = Path(report(_cfg(tmp_path, "null", "null", f"exercise_bench={path}", "merge=true"))["output"]).read_text()
    assert "## Exercise analytics on real clips" in after and "Latency columns: not measured" not in after
    assert after.split("## Exercise analytics")[0] == before.split("## Missing or failed runs")[0]


def _write_evaluation(folder: Path, pckh: tuple[float, float], checkpoint: str = "checkpoints/model.pt",
                      seconds: float | None = 20.4, sha256: str | None = None,
                      inversions: tuple[float, float] | None = None, **settings: Any) -> Path:
    """A `pose_lab.evaluate` run folder: metrics.json (regression, heatmap PCKh@0.5 in %, and their left/right
    inversions in % where given) and Hydra's overrides."""
    scores = {output: {"pckh@0.5": {"mean": value}, "pck@0.2": {"mean": value + 1.0}}
              for output, value in zip(("regression", "heatmap"), pckh)}
    for output, value in zip(("regression", "heatmap"), inversions or ()):
        scores[output]["pckh@0.5"]["left_right_inversions"] = value
    metrics = {"checkpoint": checkpoint, "split": "standard", "subset": "test", "num_images": 1000,
               "flip_test": False, "heatmap_refine": None, **settings, "scores": scores,
               **({} if seconds is None else {"seconds": seconds}),
               **({} if sha256 is None else {"checkpoint_sha256": sha256})}
    (folder / ".hydra").mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    overrides = ["ckpt=null", *(f"{key}={str(value).lower()}" for key, value in settings.items())]
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return folder


def test_evaluations_table_gives_each_setting_and_its_difference_from_the_control(
        tmp_path: Path, sweep: Path) -> None:
    control = _write_evaluation(tmp_path / "evals" / "demo", (58.4, 70.4), inversions=(6.6, 10.8))
    flip = _write_evaluation(tmp_path / "evals" / "demo_flip", (61.6, 72.5), seconds=None, inversions=(5.1, 9.0),
                             flip_test=True)
    # An evaluate from before the inversion count: its cells say so.
    dark = _write_evaluation(tmp_path / "evals" / "demo_dark", (58.4, 70.3), seconds=19.6, heatmap_refine="dark")
    cfg = _cfg(tmp_path, sweep, None, f"evaluations=[{control},{flip},{dark}]", "label=shipped")
    markdown = Path(report(cfg)["output"]).read_text()
    assert "## Inference-time settings: one change at a time: shipped" in markdown
    assert "| `demo` | as trained | 58.4 | 70.4 | 59.4 | 71.4 | 6.6 | 10.8 | 20 |" in markdown
    assert ("| `demo_flip` | `flip_test=true` | 61.6 (+3.2) | 72.5 (+2.1) | 62.6 (+3.2) | 73.5 (+2.1) | 5.1 | 9.0 "
            "| not recorded |") in markdown
    assert ("| `demo_dark` | `heatmap_refine=dark` | 58.4 (+0.0) | 70.3 (-0.1) | 59.4 (+0.0) | 71.3 (-0.1) "
            "| not recorded | not recorded | 20 |") in markdown
    # The default checkpoint changes as better ones ship: the command names the one scored.
    assert "`python -m pose_lab.evaluate ckpt=checkpoints/model.pt flip_test=true`" in markdown
    assert f"evaluations=[{control},{flip},{dark}]" in markdown  # the report's own command
    other = _write_evaluation(tmp_path / "evals" / "other", (50.0, 60.0), checkpoint="checkpoints/other.pt")
    with pytest.raises(PoseLabError, match="differs from the control .* in checkpoint"):
        report(_cfg(tmp_path, sweep, None, f"evaluations=[{control},{other}]"))


def test_evaluations_of_one_checkpoint_file_from_two_clones_compare_by_content(tmp_path: Path, sweep: Path) -> None:
    here = _write_evaluation(tmp_path / "evals" / "here", (58.4, 70.4), checkpoint="/one/clone/model.pt",
                             sha256="0123abcd")
    there = _write_evaluation(tmp_path / "evals" / "there", (61.6, 72.5), checkpoint="/another/clone/model.pt",
                              sha256="0123abcd", flip_test=True)
    markdown = Path(report(_cfg(tmp_path, sweep, None, f"evaluations=[{here},{there}]"))["output"]).read_text()
    assert "| `there` | `flip_test=true` | 61.6 (+3.2) |" in markdown
    changed = _write_evaluation(tmp_path / "evals" / "changed", (50.0, 60.0), checkpoint="/one/clone/model.pt",
                                sha256="ffff0000")
    with pytest.raises(PoseLabError, match="differs from the control .* in checkpoint"):
        report(_cfg(tmp_path, sweep, None, f"evaluations=[{here},{changed}]"))


def test_every_row_setting_of_an_evaluation_is_explained() -> None:
    assert set(SETTING_NOTES) == set(ROW_SETTINGS) == {*INFERENCE_SETTINGS, "subset"}


def test_evaluation_on_the_training_images_shows_the_fit(tmp_path: Path, sweep: Path) -> None:
    test = _write_evaluation(tmp_path / "evals" / "test", (58.4, 70.4), inversions=(6.6, 10.8))
    train = _write_evaluation(tmp_path / "evals" / "train", (79.5, 87.9), inversions=(2.4, 4.5), subset="train",
                              num_images=900)
    markdown = Path(report(_cfg(tmp_path, sweep, None, f"evaluations=[{test},{train}]", "label=shipped")
                           )["output"]).read_text()
    assert "## Fit: one checkpoint on the images it was trained on and on new ones: shipped" in markdown
    assert "| `test` | as trained | 58.4 | 70.4 |" in markdown
    assert ("| `train` | `subset=train` (900 images) | 79.5 (+21.1) | 87.9 (+17.5) | 80.5 (+21.1) | 88.9 (+17.5) "
            "| 2.4 | 4.5 |") in markdown
    assert "`subset=train` scores the images" in markdown and "`flip_test=true` averages" not in markdown
    assert "on the 1000 test images (other images where a row says so) of split" in markdown
    other_split = _write_evaluation(tmp_path / "evals" / "seed_split", (50.0, 60.0), split="seed")
    with pytest.raises(PoseLabError, match="differs from the control .* in split"):
        report(_cfg(tmp_path, sweep, None, f"evaluations=[{test},{other_split}]"))


def _runtimes_bench(path: Path) -> Path:
    """A bench.json of one checkpoint in eager torch (NCHW, NHWC), torch.compile (NHWC) and ONNX Runtime."""
    sides = (("torch", False, 20.0), ("torch", True, 16.0), ("torch-compile", True, 10.0), ("onnxruntime", None, 5.0))
    records = [{**_record("ckpt:model.pt", name, 1_000_000, 1.0, ms * scale, backend), "channels_last": layout,
                "input_size": 192}
               for name, scale in (("regression", 1.0), ("heatmap", 0.5)) for backend, layout, ms in sides]
    bench = {"date": "2026-12-05T00:00:00+00:00", "command": "python -m pose_lab.bench ckpt=model.pt",
             "machine": {"cpu": "Test CPU 9000", "cpu_count": 2, "threads": 2},
             "settings": {"warmup": 10, "iters": 50, "compile_backend": "inductor", "threads_used": 2},
             "records": records}
    path.write_text(json.dumps(bench))
    return path


def test_runtimes_table_times_each_runtime_and_format_against_the_first(tmp_path: Path, sweep: Path) -> None:
    path = _runtimes_bench(tmp_path / "runtimes.json")
    markdown = Path(report(_cfg(tmp_path, sweep, None, f"runtimes={path}", "label=shipped"))["output"]).read_text()
    section = markdown.split("## Inference runtimes: one change at a time: shipped", 1)[1].split("\n## ", 1)[0]
    assert "`ckpt:model.pt`, input 192 px:" in section and "Test CPU 9000 (2 cores)" in section
    assert "| runtime | regression CPU ms | heatmap CPU ms |" in section
    assert "| torch NCHW | 20.00 (1.00×) | 10.00 (1.00×) |" in section
    assert "| torch NHWC | 16.00 (1.25×) | 8.00 (1.25×) |" in section
    assert "| torch-compile NHWC | 10.00 (2.00×) | 5.00 (2.00×) |" in section
    assert "| onnxruntime | 5.00 (4.00×) | 2.50 (4.00×) |" in section
    assert f"runtimes={path}" in markdown  # the report's own command
    with pytest.raises(PoseLabError, match="runtimes=.*no such file"):
        report(_cfg(tmp_path, sweep, None, f"runtimes={tmp_path / 'none.json'}"))


def test_a_merge_keeps_the_command_of_another_section_of_the_same_label(tmp_path: Path, sweep: Path,
                                                                        bench_json: Path) -> None:
    """The evaluations and runtimes of one checkpoint share a label; remaking one section keeps the other's command
    (a runtimes command once counted as reading nothing, and any command of its label superseded it)."""
    report(_cfg(tmp_path, sweep, bench_json))
    runtimes = _runtimes_bench(tmp_path / "runtimes.json")
    control = _write_evaluation(tmp_path / "evals" / "demo", (58.4, 70.4))
    for inputs in (f"runtimes={runtimes}", f"evaluations=[{control}]"):
        report(_cfg(tmp_path, "null", "null", inputs, "merge=true", "label=shipped"))
    commands = [line for line in (tmp_path / "out" / "RESULTS.md").read_text().splitlines()
                if line.startswith("- `python -m pose_lab.report ")]
    assert sum(f"runtimes={runtimes}" in line for line in commands) == 1
    assert sum(f"evaluations=[{control}]" in line for line in commands) == 1


def test_variant_tables_show_channels_last_records_when_both_formats_were_timed(
        tmp_path: Path, sweep: Path, bench_json: Path) -> None:
    bench = json.loads(bench_json.read_text())
    nchw = [{**record, "channels_last": False, "cpu": {**record["cpu"], "median_ms": 99.0}}
            for record in bench["records"] if record["backend"] == "torch"]
    bench["records"] = nchw + [{**record, "channels_last": record["backend"] == "torch" or None}
                               for record in bench["records"]]
    bench_json.write_text(json.dumps(bench))
    markdown = Path(report(_cfg(tmp_path, sweep, bench_json))["output"]).read_text()
    assert "99.0" not in markdown and "12.3 / 8.8" in markdown


def test_report_loads_without_lightning() -> None:
    """The report reads JSON and YAML; importing Lightning (seconds) for it would be a stray dependency."""
    probe = "import sys, pose_lab.report; print('lightning' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_budget_line_of_runs_from_different_checkpoints_names_none() -> None:
    runs = [Run(folder=Path(name), variant="base", seed=1, split="standard", input_size=192, stages=("regression",),
                settings={"phase.init_from": start, "phase.stages.regression.epochs": 40}, test=None,
                epochs_run={"regression": 40})
            for name, start in (("a", "checkpoints/one.pt"), ("b", "checkpoints/two.pt"))]
    assert "regression 40 epochs; initialised from the checkpoint each run's command names." in budget_line(runs)
    assert "regression 40 epochs; initialised from `checkpoints/one.pt`." in budget_line(runs[:1])
