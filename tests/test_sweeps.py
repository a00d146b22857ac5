"""Sweeps through Hydra's launchers: the ablation experiment and launcher configs compose, a tiny real multirun
(trainer=smoke) runs end to end and `python -m pose_lab.report` tables it; the parallel launcher when installed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig

from conftest import TINY_SPLIT
from pose_lab.reporting.runs import collect_runs

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
JOBLIB = importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is not None
SUBMITIT = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
NEEDS_SWEEP_EXTRA = "needs the launcher plugins: pip install -e '.[sweep]'"


def _hydra_cfg(*overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def _python(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m ...` from the repository root, as a user would type it."""
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HYDRA_FULL_ERROR": "1"})


def _tiny_sweep(root: Path, sweep_dir: Path, *overrides: str) -> list[str]:
    split = f"{{train: {TINY_SPLIT['train']}, val: {TINY_SPLIT['val']}, test: {TINY_SPLIT['test']}}}"
    return ["pose_lab.train", "-m", "model=base,cbam", "seed=0", "phase=pretrain", "trainer=smoke",
            f"data.root={root}", f"data.split={split}", "data.input_size=64", "data.batch_size=4",
            "data.eval_batch_size=4", f"hydra.sweep.dir={sweep_dir}", *overrides]


def _report(sweep_dir: Path, out: Path) -> str:
    done = _python("pose_lab.report", f"sweep={sweep_dir}", "bench=null", f"output={out / 'RESULTS.md'}",
                   f"plot={out / 'plot.png'}", f"hydra.run.dir={out / 'hydra'}")
    assert done.returncode == 0, done.stderr
    return (out / "RESULTS.md").read_text()


def test_ablation_experiment_is_the_whole_study() -> None:
    cfg = _hydra_cfg("experiment=ablation")
    assert cfg.hydra.mode == RunMode.MULTIRUN
    params = cfg.hydra.sweeper.params

    def swept(key: str) -> list[str]:  # as the basic sweeper reads each params entry
        return list(OverridesParser.create().parse_override(f"{key}={params[key]}").sweep_string_iterator())

    assert swept("model") == ["base", "arch_mod", "neg_heatmap_diff", "neg_heatmap", "neg_heatmap_mean_all",
                              "neg_heatmap_extra_maps", "neg_heatmap_suppress", "vit", "vit2", "cbam"]
    assert sorted(swept("model")) == sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
    assert swept("seed") == ["0", "1", "2"]
    assert cfg.data.split == "seed" and list(cfg.phase.stages) == ["pretrain", "regression"]


@pytest.mark.skipif(not (JOBLIB and SUBMITIT), reason=NEEDS_SWEEP_EXTRA)
def test_launcher_configs_extend_the_plugins_and_stay_overridable() -> None:
    parallel = _hydra_cfg("hydra/launcher=parallel", "hydra.launcher.n_jobs=3").hydra.launcher
    assert parallel._target_.endswith("JoblibLauncher") and parallel.n_jobs == 3
    slurm = _hydra_cfg("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=30")
    launcher = slurm.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node) == ("gpu", 30, 1)


def test_basic_launcher_multirun_then_report(tiny_lsp_root: Path, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    done = _python(*_tiny_sweep(tiny_lsp_root, sweep_dir))
    assert done.returncode == 0, done.stderr
    runs = collect_runs(sweep_dir)
    assert sorted(run.variant for run in runs) == ["base", "cbam"]
    assert all(run.test is not None for run in runs)
    markdown = _report(sweep_dir, tmp_path / "report")
    assert "| `base` | 1 | 0 |" in markdown and "| `cbam` | 1 | 0 |" in markdown
    assert "python -m pose_lab.train -m" in markdown and "model=base,cbam" in markdown
    assert "Latency columns: not measured" in markdown


@pytest.mark.slow
@pytest.mark.skipif(not JOBLIB, reason=NEEDS_SWEEP_EXTRA)
def test_parallel_launcher_runs_jobs_side_by_side(tiny_lsp_root: Path, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    done = _python(*_tiny_sweep(tiny_lsp_root, sweep_dir, "hydra/launcher=parallel", "hydra.launcher.n_jobs=2"))
    assert done.returncode == 0, done.stderr
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr
    assert sorted(run.variant for run in collect_runs(sweep_dir)) == ["base", "cbam"]
    markdown = _report(sweep_dir, tmp_path / "report")
    assert "hydra/launcher=parallel" in markdown and "None: every run folder has its metrics.json" in markdown
