"""Training run folders of `pose_lab.train`: reading them (a folder holding run_config.yaml is a run, one
without metrics.json failed or has not finished), comparing their configs, and the report's lines on them: what
failed, the commands that made them and how long they trained."""

from __future__ import annotations

import json
import os
import shlex
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from pose_lab.compose import plain, written_settings
from pose_lab.errors import PoseLabError
from pose_lab.paths import RUN_CONFIG, RUN_OVERRIDES, shown_path
from pose_lab.rerun import (RUN_LOCATION, check_rerun, completed_settings, override_value, read_yaml, run_overrides,
                            subtree)

METRICS_FILE = "metrics.json"
MULTIRUN_FILE = "multirun.yaml"  # written by Hydra's sweeper into the sweep folder
# (metrics.json test key, column title); the first is the headline metric of the table and the plot.
METRICS: tuple[tuple[str, str], ...] = (
    ("test/pckh@0.5_regression", "PCKh@0.5 %"),
    ("test/pckh@0.5_heatmap", "heatmap PCKh@0.5 %"),
    ("test/pck@0.2_regression", "PCK@0.2 %"),
)


@dataclass(frozen=True)
class Run:
    """One run folder: what it trained, and its test scores (None when it has no metrics.json)."""

    folder: Path
    variant: str
    seed: int
    split: str
    input_size: int
    stages: tuple[str, ...]  # the phase stages in order, e.g. ("pretrain", "regression")
    settings: dict[str, Any]  # run_config.yaml flattened (completed_settings), for spotting unequal runs
    test: dict[str, float] | None
    epochs_run: dict[str, int]  # epochs each finished stage ran (fewer than configured when time-capped)
    fit_seconds: dict[str, float] = field(default_factory=dict)  # wall time of each stage's fit, where recorded

    @property
    def phases(self) -> str:
        """The stages as one label, e.g. "pretrain+regression"."""
        return "+".join(self.stages) or "unknown"


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (None for one value) of n values, in percent."""

    mean: float
    std: float | None
    n: int


@dataclass(frozen=True)
class VariantRow:
    """One variant in one (split, input size, phases) group."""

    variant: str
    seeds: list[int]  # seeds of the finished runs, one entry per run
    failed: list[Run]
    differing: list[str]  # settings (besides seed and paths) that differ between its runs
    stats: dict[str, Stat | None]  # per METRICS key; None when a finished run lacks it or none finished


Group = tuple[str, int, str]  # (split label, input size, phases)
# Settings expected to differ between the runs of one variant (dotted-key prefixes).
PER_RUN_SETTINGS: tuple[str, ...] = ("seed", *RUN_LOCATION)


def split_label(split: Any) -> str:
    """A named split as its name, an explicit one as compact JSON."""
    return split if isinstance(split, str) else json.dumps(split)


def load_json(path: Path, what: str) -> Any:
    """`path` read as JSON; a PoseLabError naming the file and `what` to do when it cannot be."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PoseLabError(f"{path}: cannot read it as JSON ({error}); {what}") from error


def load_run(folder: Path) -> Run:
    """The run in `folder` from its run_config.yaml and, if present, metrics.json."""
    config = read_yaml(folder / RUN_CONFIG)
    metrics_path = folder / METRICS_FILE
    metrics = load_json(metrics_path, "re-run or delete that run") if metrics_path.is_file() else None
    variant = OmegaConf.select(config, "model_name") or (metrics or {}).get("model")
    data = config.get("data")
    if variant is None or config.get("seed") is None or not isinstance(data, DictConfig) \
            or "split" not in data or "input_size" not in data:
        raise PoseLabError(f"{folder / RUN_CONFIG}: needs model_name, seed, data.split and data.input_size; "
                           "is this a pose_lab.train run folder?")
    test = None
    if metrics is not None:
        if not isinstance(metrics.get("test"), dict):
            raise PoseLabError(f"{metrics_path}: has no 'test' scores; re-run or delete that run")
        test = {key: float(value) for key, value in metrics["test"].items()}
    split = plain(data.split)
    stages = tuple(OmegaConf.select(config, "phase.stages", default={}) or {})
    records = (metrics or {}).get("stages") or {}
    epochs_run = {name: int(stage["epochs"]) for name, stage in records.items()
                  if isinstance(stage, dict) and isinstance(stage.get("epochs"), int)}
    # A stage resumed before pose_lab kept the fit clock in its checkpoints recorded its last process's fit alone.
    fit_seconds = {name: float(stage["fit_seconds"]) for name, stage in records.items()
                   if isinstance(stage, dict) and "fit_seconds" in stage
                   and stage.get("fit_seconds_whole", not stage.get("resumed"))}
    return Run(folder, str(variant), int(config.seed), split_label(split), int(data.input_size), stages,
               completed_settings(written_settings(config)), test, epochs_run, fit_seconds)


def differing_settings(runs: list[Run]) -> list[str]:
    """Dotted keys whose values differ between `runs`, besides PER_RUN_SETTINGS."""
    keys = sorted({key for run in runs for key in run.settings})
    return [key for key in keys if not key.startswith(PER_RUN_SETTINGS)
            and len({json.dumps(run.settings.get(key), sort_keys=True) for run in runs}) > 1]


def recipe_change(control: Run, run: Run) -> list[str]:
    """How `run`'s resolved config differs from `control`'s, besides PER_RUN_SETTINGS, in Hydra's override
    syntax: `key=value` for a changed setting, `+key=value` for one the control's config lacks and `~key` for a
    removed subtree (its topmost missing key). Runs that reach one recipe by different overrides (an experiment
    file or its settings typed out) show no change. A subtree that copies another in both runs (an interpolation
    such as data.heatmap_codec: ${codec.heatmap}) is given once, under its shortest key."""
    keys = differing_settings([control, run])
    changed = [key for key in keys if key in run.settings]
    parents = sorted({key.rpartition(".")[0] for key in changed}, key=lambda prefix: (prefix.count("."), prefix))

    def copied(prefix: str) -> bool:
        return any(subtree(control.settings, other) == subtree(control.settings, prefix)
                   and subtree(run.settings, other) == subtree(run.settings, prefix)
                   for other in parents[:parents.index(prefix)])

    words = [f"{'' if key in control.settings else '+'}{key}={override_value(run.settings[key])}" for key in changed
             if not (key.rpartition(".")[0] and copied(key.rpartition(".")[0]))]
    for key in (key for key in keys if key not in run.settings):
        parts = key.split(".")
        prefixes = (".".join(parts[:depth]) for depth in range(1, len(parts) + 1))
        topmost = next(prefix for prefix in prefixes
                       if not any(other == prefix or other.startswith(f"{prefix}.") for other in run.settings))
        words.append(f"~{topmost}")
    return list(dict.fromkeys(words))


def sweep_folders(sweep: Any) -> list[Path]:
    """`sweep` (one folder or a list of folders) as resolved paths."""
    folders = list(sweep) if isinstance(sweep, (list, ListConfig)) else [sweep]
    return [Path(str(folder)).resolve() for folder in folders]


def common_root(folders: list[Path]) -> Path:
    """The deepest folder holding all of `folders` (run paths in the report are shown relative to it)."""
    return Path(os.path.commonpath(folders)) if len(folders) > 1 else folders[0]


def collect_runs(sweep_dir: Path) -> list[Run]:
    """Every run folder (one holding run_config.yaml) under `sweep_dir`, in path order."""
    if not sweep_dir.is_dir():
        raise PoseLabError(f"sweep={sweep_dir}: no such folder; pass the folder of a `pose_lab.train -m` "
                           "sweep, e.g. outputs/train/multiruns/DATE")
    folders = sorted(path.parent for path in sweep_dir.rglob(RUN_CONFIG))
    if not folders:
        raise PoseLabError(f"sweep={sweep_dir}: no run folders (none holds {RUN_CONFIG}); pass the folder of "
                           "a `pose_lab.train -m` sweep, e.g. outputs/train/multiruns/DATE")
    return [load_run(folder) for folder in folders]


def mean_std(values: list[float]) -> Stat:
    """Mean and sample standard deviation of fractions, in percent."""
    percent = [100.0 * value for value in values]
    std = statistics.stdev(percent) if len(percent) > 1 else None
    return Stat(statistics.fmean(percent), std, len(percent))


def problems(root: Path, summary: dict[Group, list[VariantRow]]) -> list[str]:
    """Failed or unfinished runs, variants with fewer finished seeds than others, repeated seeds, and
    variants whose runs differ in more than the seed."""
    lines = []
    for (split, size, phases), rows in summary.items():
        most = max(len(row.seeds) for row in rows)
        where = f"split {split}, input {size}, phases {phases}" if len(summary) > 1 else ""
        for row in rows:
            for run in row.failed:
                lines.append(f"- `{run.folder.relative_to(root)}` ({row.variant}, seed {run.seed}): "
                             f"failed or unfinished ({RUN_CONFIG} without {METRICS_FILE})")
            if len(row.seeds) < most:
                lines.append(f"- `{row.variant}`{' (' + where + ')' if where else ''}: {len(row.seeds)} finished "
                             f"seed(s), other variants have up to {most}; its mean is over fewer runs")
            repeated = sorted({seed for seed in row.seeds if row.seeds.count(seed) > 1})
            if repeated:
                lines.append(f"- `{row.variant}`: seed(s) {', '.join(map(str, repeated))} finished more than "
                             "once; every run is averaged")
            if row.differing:
                lines.append(f"- `{row.variant}`: its runs differ in {', '.join(row.differing)}; they are "
                             "averaged all the same")
    return lines


def rerun_note(runs: list[Run], named: bool) -> str:
    """What the recorded commands of `runs` need today to compose their runs' configs (pose_lab.rerun), as a
    suffix of their command line ("" when they compose them as they are); `named` names each run."""
    notes = []
    for run in runs:
        overrides = run_overrides(run.folder)
        if overrides is None:
            continue
        rerun = check_rerun(run.settings, overrides, run.folder)
        who = f"run `{shown_path(run.folder)}` " if named else ""
        if not rerun.exact:
            more = f" (and {len(rerun.reasons) - 1} more)" if len(rerun.reasons) > 1 else ""
            notes.append(f"{who}cannot be composed exactly with today's conf/: {rerun.reasons[0]}{more}")
        elif rerun.corrections:
            notes.append(f"{who}needs `{shlex.join(rerun.corrections)}` added to compose its config with "
                         "today's conf/")
    return f"; {'; '.join(notes)}" if notes else ""


def sweep_commands(sweep_dirs: list[Path], runs: list[Run]) -> list[str]:
    """The command of each sweep (its multirun.yaml) and of each run outside any sweep (.hydra/overrides.yaml),
    each run named by its shown_path, with what the command needs today to compose the runs' configs."""
    commands = []
    sweeps = sorted(path.parent for sweep_dir in sweep_dirs for path in sweep_dir.rglob(MULTIRUN_FILE))
    for folder in sweeps:
        # Overrides as typed: `${...}` in them is not resolved.
        hydra_cfg = OmegaConf.to_container(read_yaml(folder / MULTIRUN_FILE).hydra, resolve=False)
        hydra_overrides = hydra_cfg["overrides"]["hydra"]
        multirun = "hydra.mode=MULTIRUN" in hydra_overrides
        words = ["python", "-m", f"pose_lab.{hydra_cfg['job']['name']}", *(["-m"] if multirun else []),
                 *(o for o in hydra_overrides if o != "hydra.mode=MULTIRUN"), *hydra_cfg["overrides"]["task"]]
        note = rerun_note([run for run in runs if run.folder.is_relative_to(folder)], named=True)
        commands.append(f"`cd {shlex.quote(hydra_cfg['runtime']['cwd'])} && {shlex.join(words)}`{note}")
    for run in runs:
        if any(run.folder.is_relative_to(folder) for folder in sweeps):
            continue
        overrides = run_overrides(run.folder)
        if overrides is not None:
            words = ["python", "-m", "pose_lab.train", *overrides]
            commands.append(f"`{shlex.join(words)}` (run `{shown_path(run.folder)}`){rerun_note([run], False)}")
        else:
            commands.append(f"not recorded for `{shown_path(run.folder)}` "
                            f"(no {RUN_OVERRIDES} or .hydra/overrides.yaml)")
    return commands


def budget_line(runs: list[Run]) -> str:
    """How much training the runs of one group had, read from their configs (values shared by all runs)."""
    def shared(key: str, among: list[Run] = runs) -> Any:
        values = {json.dumps(run.settings.get(key), sort_keys=True) for run in among}
        return json.loads(values.pop()) if len(values) == 1 else "varies"

    stages = []
    # A levers table may hold runs without a stage (a pretrain-only lever): each stage is read off the runs with it.
    for stage in dict.fromkeys(stage for run in runs for stage in run.stages):
        having = [run for run in runs if stage in run.stages]
        scheduler = shared(f"phase.stages.{stage}.scheduler._target_", having)
        schedule = f", {scheduler.rsplit('.', 1)[-1]} schedule" if scheduler not in (None, "varies") else ""
        def budget(run: Run) -> Any:
            return run.settings.get(f"phase.stages.{stage}.epochs")

        budgets = sorted({budget(run) for run in having}, key=lambda epochs: (epochs is None, epochs or 0))
        configured = budgets[0] if len(budgets) == 1 else "–".join(map(str, (budgets[0], budgets[-1])))
        ran = sorted({run.epochs_run[stage] for run in having if stage in run.epochs_run})
        # Each run against its own budget: runs given different budgets on purpose did not stop early.
        stopped = any(run.epochs_run[stage] != budget(run) for run in having if stage in run.epochs_run)
        early = f" ({'–'.join(map(str, sorted({ran[0], ran[-1]})))} run: stopped early)" if stopped else ""
        minutes = sorted(round(run.fit_seconds[stage] / 60) for run in having if stage in run.fit_seconds)
        span = "–".join(map(str, sorted({minutes[0], minutes[-1]}))) if minutes else ""
        timed = f", {span} min to fit ({len(minutes)} of {len(having)} runs timed)" if minutes else ""
        without = f" ({len(having)} of {len(runs)} runs)" if len(having) < len(runs) else ""
        stages.append(f"{stage} {configured} epochs{without}{early}{schedule}{timed}")
    parts = ["; ".join(stages)]
    if (start := shared("phase.init_from")) == "varies":
        parts.append("initialised from the checkpoint each run's command names")
    elif start is not None:
        parts.append(f"initialised from `{start}`")
    if (cap := shared("trainer.max_time")) is not None:
        parts.append(f"each stage capped at {cap} (trainer.max_time)")
    if (accelerator := shared("trainer.accelerator")) not in (None, "auto"):
        parts.append(f"trained on {accelerator}")
    if (batch := shared("data.batch_size")) is not None:
        parts.append(f"batch {batch}")
    if (optimizer := shared("model.optimizer._target_")) is not None:
        parts.append(f"{str(optimizer).rsplit('.', 1)[-1]} lr {shared('model.optimizer.lr')}, weight decay "
                     f"{shared('model.optimizer.weight_decay')}")
    return f"Training budget (from the runs' configs): {'; '.join(parts)}."
