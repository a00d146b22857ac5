"""Turn a sweep and a bench into RESULTS.md and a plot: `python -m pose_lab.report sweep=DIR bench=PATH`.

Reads only files. Every folder under `sweep` holding a `run_config.yaml` is one training run
(`pose_lab.train` writes it first and `metrics.json` last, so a folder without `metrics.json` is a run that
failed or has not finished). Runs are grouped by model variant within each (split, input size, phases), as
only runs differing in seed should be averaged (other differences are flagged); per variant the report gives
mean ± sample standard deviation over seeds of the test PCKh@0.5 of the regression output (the inference
path) and of the heatmap output, and PCK@0.2 of the regression output, and joins `bench.json`
(`python -m pose_lab.bench`) for parameters, GFLOPs and batch-1 latency of both inference paths at the
runs' input size. Beside them stand the report's own Table 1 numbers (§5.1), labelled as the report's: those
are the only numbers typed in this code. Missing runs are listed, never dropped, and the commands that
made the sweep, the bench and this report are written under the table, with the bench machine. When the
bench timed several runtimes (`backend=both`), a second table sets their CPU latencies side by side. When it
compared a checkpoint with MediaPipe (`peer_comparison`, `python -m pose_lab.bench ckpt=PATH peer_python=...`), a
section gives both sides' time per image, the ratio and both PCKs. `levers` and `evaluations` add tables of
one-change training runs and of inference-time settings (`pose_lab.evaluate` run folders), each against its first;
`runtimes` a table of inference runtimes and memory formats from a bench.json that timed several side by side.

The plot is accuracy (PCKh@0.5 regression, mean with std error bars) against CPU latency of the
`latency_path` inference path, one labelled point per variant.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from matplotlib.figure import Figure
from omegaconf import DictConfig, ListConfig, OmegaConf

from pose_lab.bench import runtime_label
from pose_lab.compose import written_settings
from pose_lab.errors import PoseLabError, exit_on_user_error
from pose_lab.evaluate import INFERENCE_SETTINGS
from pose_lab.paths import CONF_DIR, shown_path
from pose_lab.rerun import (RUN_LOCATION, check_rerun, completed_settings, override_value, read_override_value,
                            read_yaml, run_overrides, subtree)
from pose_lab.train import RUN_CONFIG, RUN_OVERRIDES

METRICS_FILE = "metrics.json"
MULTIRUN_FILE = "multirun.yaml"  # written by Hydra's sweeper into the sweep folder
INFERENCE_PATHS: tuple[str, ...] = ("full", "regression")  # bench.json record paths
# (metrics.json test key, column title); the first is the headline metric of the table and the plot.
METRICS: tuple[tuple[str, str], ...] = (
    ("test/pckh@0.5_regression", "PCKh@0.5 %"),
    ("test/pckh@0.5_heatmap", "heatmap PCKh@0.5 %"),
    ("test/pck@0.2_regression", "PCK@0.2 %"),
)
BENCH_RECORD_KEYS = frozenset({"variant", "path", "backend", "input_size", "params", "gflops", "cpu", "cuda"})
# What the MediaPipe section reads from bench.json's peer_comparison, and from each of its sides.
PEER_COMPARISON_KEYS = frozenset({"checkpoint", "split", "images", "image_numbers", "timed", "missing_pose",
                                  "pose_lab", "peer"})
PEER_SIDE_KEYS = frozenset({"median_ms", "p90_ms", "pck"})
# A levers-table cell for an output whose branch the run never trained.
UNTRAINED = "untrained"
# Column titles of the PCK protocols (pose_lab.metrics.PCK_PROTOCOLS), in the order shown.
PCK_TITLES: dict[str, str] = {"pckh@0.5": "PCKh@0.5 %", "pck@0.2": "PCK@0.2 %"}

# The report's Table 1 (§5.1 Ablation): PCK score (%) and latency (ms) per row, on its 60/20/20 split and
# its own hardware. Quoted for reference only; nothing computed here comes from these numbers.
REPORT_TABLE1: dict[str, tuple[float, float]] = {
    "Base Model": (58.5, 116),
    "Architecture Modifications": (39.1, 290),
    "Heatmap Loss Modifications": (43.7, 93),
    "ViT Modules Modifications": (41.7, 117),
    "CBAM Modules Modifications": (42.0, 124),
}
# Which Table 1 row describes each variant (conf/model/<variant>.yaml), in the study's order. None: the
# report gives no test score (§4.2 attempt 1). Table 1 has one ViT row and does not say if it is ViT or ViT2.
REPORT_ROW: dict[str, str | None] = {
    "base": "Base Model",
    "arch_mod": "Architecture Modifications",
    "neg_heatmap_diff": None,
    "neg_heatmap": "Heatmap Loss Modifications",
    "neg_heatmap_mean_all": "Heatmap Loss Modifications",  # neg_heatmap, the report's 1/N over every pixel
    "neg_heatmap_extra_maps": "Heatmap Loss Modifications",  # neg_heatmap, the report's L on its extra output
    "neg_heatmap_suppress": "Heatmap Loss Modifications",  # ours: neg_heatmap with another negative term
    "vit": "ViT Modules Modifications",
    "vit2": "ViT Modules Modifications",
    "cbam": "CBAM Modules Modifications",
}


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


def _split_label(split: Any) -> str:
    """A named split as its name, an explicit one as compact JSON."""
    return split if isinstance(split, str) else json.dumps(split)


def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PoseLabError(f"{path}: cannot read it as JSON ({error}); {what}") from error


def load_run(folder: Path) -> Run:
    """The run in `folder` from its run_config.yaml and, if present, metrics.json."""
    config = read_yaml(folder / RUN_CONFIG)
    metrics_path = folder / METRICS_FILE
    metrics = _load_json(metrics_path, "re-run or delete that run") if metrics_path.is_file() else None
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
    split = OmegaConf.to_container(data.split) if OmegaConf.is_config(data.split) else data.split
    stages = tuple(OmegaConf.select(config, "phase.stages", default={}) or {})
    records = (metrics or {}).get("stages") or {}
    epochs_run = {name: int(stage["epochs"]) for name, stage in records.items()
                  if isinstance(stage, dict) and isinstance(stage.get("epochs"), int)}
    # A resumed stage recorded only its last process's fit: not the stage's wall time.
    fit_seconds = {name: float(stage["fit_seconds"]) for name, stage in records.items()
                   if isinstance(stage, dict) and "fit_seconds" in stage and not stage.get("resumed")}
    return Run(folder, str(variant), int(config.seed), _split_label(split), int(data.input_size), stages,
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


def _order(variant: str) -> tuple[int, str]:
    known = list(REPORT_ROW)
    return (known.index(variant), "") if variant in known else (len(known), variant)


def summarize(runs: list[Run]) -> dict[Group, list[VariantRow]]:
    """Runs grouped by (split, input size, phases), then by variant in the study's order."""
    grouped: dict[Group, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        grouped[(run.split, run.input_size, run.phases)][run.variant].append(run)
    summary = {}
    for group, variants in grouped.items():
        rows = []
        for variant in sorted(variants, key=_order):
            finished = [run for run in variants[variant] if run.test is not None]
            stats: dict[str, Stat | None] = {}
            for key, _ in METRICS:
                values = [run.test[key] for run in finished if key in run.test]
                stats[key] = mean_std(values) if values and len(values) == len(finished) else None
            rows.append(VariantRow(variant, sorted(run.seed for run in finished),
                                   [run for run in variants[variant] if run.test is None],
                                   differing_settings(variants[variant]), stats))
        summary[group] = rows
    return summary


def read_bench(path: Path, key: str = "bench") -> dict[str, Any]:
    """bench.json given as report setting `key`, checked for what the report reads."""
    if not path.is_file():
        raise PoseLabError(f"{key}={path}: no such file; run `python -m pose_lab.bench` (make bench) and pass "
                           f"its bench.json, or {key}=null")
    bench = _load_json(path, "pass the bench.json written by `python -m pose_lab.bench`")
    if not isinstance(bench, dict) or not isinstance(bench.get("records"), list) \
            or not isinstance(bench.get("machine"), dict):
        raise PoseLabError(f"{key}={path}: not a pose_lab.bench file (needs 'machine' and a 'records' list)")
    for index, record in enumerate(bench["records"]):
        missing = BENCH_RECORD_KEYS - set(record) if isinstance(record, dict) else BENCH_RECORD_KEYS
        if missing:
            raise PoseLabError(f"{key}={path}: records[{index}] lacks {', '.join(sorted(missing))}; "
                               "re-run `python -m pose_lab.bench`")
    if "peer_comparison" in bench:
        check_peer_comparison(bench["peer_comparison"], path)
    return bench


def load_bench(path: Path | None, backend: str) -> dict[str, Any] | None:
    """bench.json, checked for what the report reads, with only the records of `backend` (bench.json holds
    one record per variant, path and backend); None when no bench is given."""
    if path is None:
        return None
    bench = read_bench(path)
    found = backends(bench)
    if backend not in found:
        raise PoseLabError(f"bench={path}: no records for backend={backend}; it has {', '.join(found) or 'none'}")
    return {**bench, "backend": backend}


def check_peer_comparison(comparison: Any, path: Path) -> None:
    """Raise a PoseLabError naming what bench.json's peer_comparison lacks for the MediaPipe section."""
    def lacking(part: Any, keys: frozenset[str], prefix: str = "") -> list[str]:
        return [prefix + key for key in sorted(keys - (set(part) if isinstance(part, dict) else set()))]

    missing = lacking(comparison, PEER_COMPARISON_KEYS)
    if not missing:
        missing = lacking(comparison["peer"], PEER_SIDE_KEYS | {"name"}, "peer.")
        for index, side in enumerate(comparison["pose_lab"]):
            missing += lacking(side, PEER_SIDE_KEYS | {"backend", "ratio_to_peer"}, f"pose_lab[{index}].")
    if missing:
        raise PoseLabError(f"bench={path}: peer_comparison lacks {', '.join(missing)}; re-run "
                           "`python -m pose_lab.bench ckpt=PATH peer_python=PYTHON`")


def backends(bench: dict[str, Any]) -> list[str]:
    """The runtimes bench.json timed, in a fixed order."""
    return sorted({str(record["backend"]) for record in bench["records"]})


def table_layout(bench: dict[str, Any]) -> bool | None:
    """The memory format (channels_last) of the torch records that the variant tables show: the bench's only one,
    or channels-last, the format pose_lab trains and predicts in, when it timed both."""
    formats = {record.get("channels_last") for record in bench["records"]} - {None}
    return (True in formats) if formats else None


def bench_records(bench: dict[str, Any] | None, variant: str, input_size: int,
                  backend: str | None = None) -> dict[str, dict[str, Any]]:
    """The bench records of `variant` at `input_size` for `backend` (default: the report's) in the table's memory
    format, by inference path (empty when not benched)."""
    if bench is None:
        return {}
    backend = backend or bench["backend"]
    layout = table_layout(bench)
    return {record["path"]: record for record in bench["records"]
            if record["variant"] == variant and record["input_size"] == input_size and record["backend"] == backend
            and record.get("channels_last") in (None, layout)}


def runtime_table(bench: dict[str, Any], summary: dict[Group, list[VariantRow]]) -> list[str]:
    """CPU batch-1 latency of every runtime bench.json timed, per variant at the runs' input size, with each
    runtime's speed-up over the first (torch eager) on the regression path; empty with a single runtime."""
    runtimes = backends(bench)
    if len(runtimes) < 2:
        return []
    reference = runtimes[0] if "torch" not in runtimes else "torch"
    others = [runtime for runtime in runtimes if runtime != reference]
    header = ["variant", "input", *(f"{runtime} CPU ms (full / reg)" for runtime in [reference, *others]),
              *(f"{reference} ÷ {runtime} (reg)" for runtime in others)]
    body, shown = [], set()
    for (_, size, _), rows in summary.items():
        for row in rows:
            records = {runtime: bench_records(bench, row.variant, size, runtime) for runtime in runtimes}
            if not any(records.values()) or (row.variant, size) in shown:
                continue
            shown.add((row.variant, size))
            ratios = []
            for runtime in others:
                ours, theirs = records[reference].get("regression"), records[runtime].get("regression")
                usable = ours and theirs and not ours["cpu"].get("skipped") and not theirs["cpu"].get("skipped")
                ratios.append(f"{ours['cpu']['median_ms'] / theirs['cpu']['median_ms']:.2f}×" if usable else "n/a")
            body.append([f"`{row.variant}`", str(size),
                         *(_pair(records[runtime], lambda r: _latency(r["cpu"])) for runtime in [reference, *others]),
                         *ratios])
    if not body:
        return []
    return ["", "## Inference runtimes", "",
            f"The same exported inference paths timed in every runtime of `{bench.get('command')}`, side by side "
            "in that one run (batch 1, CPU, median ms); the ratio is how many times faster than "
            f"{reference} each runtime runs the regression path.", "", *_markdown_table(header, body)]


def heading(title: str, label: str | None) -> str:
    """A section heading, `label` appended: a merge replaces the section of the same heading, so a labelled one
    (another recipe's table, a candidate checkpoint's benchmarks) stands beside the unlabelled one."""
    return f"## {title}" + (f": {label}" if label else "")


def peer_section(bench: dict[str, Any], path: str, label: str | None = None) -> list[str]:
    """RESULTS.md's section on bench.json's peer_comparison: pose_lab's checkpoint and MediaPipe on the same LSP
    test images, time per image, pose_lab's time as a ratio of MediaPipe's, and both PCKs."""
    comparison = bench["peer_comparison"]
    peer = comparison["peer"]
    first, last = comparison["image_numbers"]

    def cells(side: dict[str, Any]) -> list[str]:
        return [f"{side['median_ms']:.2f}", f"{side['p90_ms']:.2f}",
                *(f"{side['pck'][protocol]['mean']:.1f}" for protocol in PCK_TITLES)]

    header = ["side", "backend", "median ms / image", "p90 ms / image", *PCK_TITLES.values(), "time ÷ MediaPipe's"]
    default = comparison.get("predict_default")  # bench.json files written before it have no mark

    def backend(side: dict[str, Any]) -> str:
        return f"{side['backend']} (`predict`'s default)" if side["backend"] == default else side["backend"]

    body = [[f"pose_lab `{Path(comparison['checkpoint']).name}`", backend(side), *cells(side),
             f"**{side['ratio_to_peer']:.3f}×**"] for side in comparison["pose_lab"]]
    body.append([peer["name"], "—", *cells(peer), "1×"])
    machine = bench.get("machine", {})
    version = f" {peer['version']}" if peer.get("version") else ""
    rounds = comparison.get("rounds", 1)  # bench.json files written before rounds timed each side in one pass
    interleaved = (f" in {rounds} interleaved rounds (round r: images r, r + {rounds}, …; every side in each "
                   "round, the order of the sides flipped every other round)") if rounds > 1 else ""
    return ["", heading("Speed and accuracy against MediaPipe on LSP", label), "",
            f"`{comparison['checkpoint']}` and MediaPipe{version} on the same {comparison['images']} "
            f"LSP test images (im{first:04d}–im{last:04d}, split `{_split_label(comparison['split'])}`), "
            f"each image alone (batch 1), side by side in one run{interleaved}. pose_lab's time per image: "
            f"{comparison['timed']['pose_lab']}. MediaPipe's: {comparison['timed']['peer']} (in its own virtual "
            "environment). PCK over all 14 joints in original pixels, scored by pose_lab against joints.mat; "
            f"{comparison['missing_pose']} (MediaPipe found a pose in {peer.get('images_with_pose', 'n/a')} of "
            f"{comparison['images']} images). The last column is pose_lab's median time over MediaPipe's.", "",
            *_markdown_table(header, body), "",
            f"Made by `{bench.get('command')}` on {bench.get('date')} ({path}); CPU {machine.get('cpu')} "
            f"({machine.get('cpu_count')} cores), pose_lab threads "
            f"{', '.join(str(side.get('threads')) for side in comparison['pose_lab'])}."]


def _percent(stat: Stat | None) -> str:
    if stat is None:
        return "n/a"
    return f"{stat.mean:.1f}" if stat.std is None else f"{stat.mean:.1f} ± {stat.std:.1f}"


def _pair(records: dict[str, dict[str, Any]], cell: Callable[[dict[str, Any]], str]) -> str:
    """`full / regression` values of one bench column."""
    return " / ".join(cell(records[path]) if path in records else "n/a" for path in INFERENCE_PATHS)


def _latency(section: dict[str, Any]) -> str:
    return "n/a" if section.get("skipped") else f"{section['median_ms']:.1f}"


def _bench_cells(bench: dict[str, Any] | None, records: dict[str, dict[str, Any]]) -> list[str]:
    if bench is None:
        return ["not measured"] * 4
    if not records:
        return ["not in bench"] * 4
    return [
        _pair(records, lambda r: f"{r['params']['used'] / 1e6:.3f}"),
        _pair(records, lambda r: f"{r['gflops']:.3f}"),
        _pair(records, lambda r: _latency(r["cpu"])),
        _pair(records, lambda r: _latency(r["cuda"])),
    ]


def _report_cells(variant: str) -> list[str]:
    row = REPORT_ROW.get(variant)
    if row is None:
        return ["—", "—"]
    pck, latency = REPORT_TABLE1[row]
    return [f"{pck:.1f}", f"{latency:.0f}"]


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def group_table(rows: list[VariantRow], bench: dict[str, Any] | None, input_size: int) -> list[str]:
    """The markdown table of one (split, input size, phases) group."""
    most = max(len(row.seeds) for row in rows)
    header = ["variant", "n", "seeds", *(title for _, title in METRICS), "params M (full / reg)",
              "GFLOPs (full / reg)", "CPU ms (full / reg)", "GPU ms (full / reg)",
              "report PCK % (§5.1)", "report ms (§5.1)"]
    body = []
    for row in rows:
        n = f"{len(row.seeds)} ⚠" if len(row.seeds) < most or row.failed else str(len(row.seeds))
        body.append([
            f"`{row.variant}`", n, ", ".join(map(str, row.seeds)) or "—",
            *(_percent(row.stats[key]) for key, _ in METRICS),
            *_bench_cells(bench, bench_records(bench, row.variant, input_size)),
            *_report_cells(row.variant),
        ])
    return _markdown_table(header, body)


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


def levers_section(runs: list[Run], root: Path, label: str | None = None) -> list[str]:
    """RESULTS.md's table of one-change runs: the first run folder is the control, each other run's change is
    how its resolved config differs from the control's (recipe_change), and its scores are given with their
    difference from the control's. A run without the regression phase shows no regression-output scores (that branch is
    as initialised). `label` is appended to the heading, so that tables of other lever sets stand side by side."""
    control, *others = runs
    if control.test is None:
        raise PoseLabError(f"levers: the control run `{control.folder}` (the first run folder) has no "
                           f"{METRICS_FILE}; finish or re-run it")

    changes = {run.folder: recipe_change(control, run) for run in others}

    def score(run: Run, key: str) -> str:
        if key.endswith("_regression") and "regression" not in run.stages:
            return UNTRAINED
        if run.test is None or key not in run.test:
            return "n/a"
        value = f"{100 * run.test[key]:.1f}"
        return value if run is control else f"{value} ({100 * (run.test[key] - control.test[key]):+.1f})"

    header = ["run", "change from the control", "epochs run", *(title for _, title in METRICS)]
    body = [[f"`{run.folder.relative_to(root)}`",
             "control" if run is control else ", ".join(f"`{word}`" for word in changes[run.folder]) or "none",
             " / ".join(str(run.epochs_run.get(stage, "—")) for stage in run.stages),
             *(score(run, key) for key, _ in METRICS)] for run in [control, *others]]
    seeds = sorted({run.seed for run in runs})
    untrained = any(cell == UNTRAINED for row in body for cell in row)
    added = any(word.startswith("+") for words in changes.values() for word in words)
    return ["", heading("Levers: one change at a time", label), "",
            "Each run changes the control's recipe by the settings shown (its resolved config against the "
            "control's, in Hydra's override syntax); one seed each "
            f"({', '.join(map(str, seeds))}), test scores of the final phase with the difference from the control. "
            "A single run moves by a few points with the seed alone (see the std of the seeded tables above): "
            "read these as leads to re-run over seeds, not as settled effects. Common control settings: split "
            f"`{control.split}`, input {control.input_size} px, phases {control.phases}. {budget_line(runs)}", "",
            *_markdown_table(header, body),
            *(["", f"{UNTRAINED}: the run has no regression phase, so its regression branch is untrained; its "
                   "heatmap scores compare."] if untrained else []),
            *(["", "`+key=value`: a setting the control's config lacks (pose_lab gained it after the control ran, "
                   "or the run added it)."] if added else []),
            "", "Lever runs:", "", *(f"- {command}" for command in sweep_commands([root], runs))]


# metrics.json keys of `pose_lab.evaluate` that every evaluation in one table must share, besides the checkpoint
# (compared by content where recorded, see same_checkpoint).
EVALUATION_SHARED: tuple[str, ...] = ("split", "subset", "num_images")


def evaluation_defaults() -> dict[str, Any]:
    """evaluate's inference-time settings with their defaults in conf/evaluate.yaml: "as the checkpoint was
    trained"."""
    defaults = OmegaConf.load(CONF_DIR / "evaluate.yaml")
    return {key: defaults[key] for key in INFERENCE_SETTINGS}


def same_checkpoint(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether two evaluations scored one checkpoint: by content fingerprint (the same file evaluated from two
    clones), or by path where an older evaluate recorded none."""
    key = "checkpoint_sha256" if "checkpoint_sha256" in first and "checkpoint_sha256" in second else "checkpoint"
    return bool(first[key] == second[key])


def _evaluation_command(folder: Path) -> str:
    """The evaluate command of a run folder, from Hydra's record of its overrides."""
    overrides = folder / ".hydra" / "overrides.yaml"
    if not overrides.is_file():
        return f"(run `{shown_path(folder)}`: its command was not recorded)"
    words = ["python", "-m", "pose_lab.evaluate", *map(str, read_yaml(overrides, ListConfig))]
    return f"`{shlex.join(words)}` (run `{shown_path(folder)}`)"


def evaluations_section(folders: list[Path], label: str | None = None) -> list[str]:
    """RESULTS.md's table of inference-time settings (test-time flip, heatmap sub-pixel step): `pose_lab.evaluate`
    run folders of one checkpoint on one set of images, the first the control, the others with their difference
    from it."""
    found = [(folder, _load_json(folder / METRICS_FILE, "pass folders written by `python -m pose_lab.evaluate`"))
             for folder in folders]
    control = found[0][1]
    for folder, metrics in found:
        missing = [key for key in ("checkpoint", *EVALUATION_SHARED, *INFERENCE_SETTINGS, "scores")
                   if key not in metrics]
        if missing:
            raise PoseLabError(f"{folder / METRICS_FILE} lacks {', '.join(missing)}: is it an evaluate run's?")
        differing = [key for key in EVALUATION_SHARED if metrics[key] != control[key]]
        if not same_checkpoint(metrics, control):
            differing.insert(0, "checkpoint")
        if differing:
            raise PoseLabError(f"evaluations: {folder} differs from the control {folders[0]} in "
                               f"{', '.join(differing)}; one table compares settings on one checkpoint and images")
    columns = [(output, protocol) for protocol in PCK_TITLES for output in ("regression", "heatmap")]

    def cell(metrics: dict[str, Any], output: str, protocol: str) -> str:
        value = metrics["scores"][output][protocol]["mean"]
        shift = value - control["scores"][output][protocol]["mean"]
        return f"{value:.1f}" if metrics is control else f"{value:.1f} ({shift:+.1f})"

    defaults = evaluation_defaults()

    def setting(metrics: dict[str, Any]) -> str:
        changed = [f"`{key}={override_value(metrics[key])}`" for key, default in defaults.items()
                   if metrics[key] != default]
        return ", ".join(changed) or "as trained"

    def seconds(metrics: dict[str, Any]) -> str:
        return f"{metrics['seconds']:.0f}" if "seconds" in metrics else "not recorded"

    header = ["run", "setting", *(f"{output} {PCK_TITLES[protocol]}" for output, protocol in columns), "seconds"]
    body = [[f"`{folder.name}`", setting(metrics), *(cell(metrics, *column) for column in columns),
             seconds(metrics)] for folder, metrics in found]
    return ["", heading("Inference-time settings: one change at a time", label), "",
            f"`python -m pose_lab.evaluate` of `{shown_path(Path(control['checkpoint']))}` on the "
            f"{control['num_images']} {control['subset']} images of split `{_split_label(control['split'])}` "
            "(all 14 joints, original pixels), with the setting shown: `flip_test=true` averages each image's answer "
            "with its mirror image's (twice the compute), `heatmap_refine` replaces the checkpoint's sub-pixel step "
            "of heatmap decoding. The same weights each time, so differences are the setting's alone; the first "
            "row is the control. `seconds`: the command's wall time, loading included.", "",
            *_markdown_table(header, body),
            "", "Evaluations:", "", *(f"- {_evaluation_command(folder)}" for folder, _ in found)]


def runtimes_section(bench: dict[str, Any], path: str, label: str | None = None) -> list[str]:
    """RESULTS.md's table of inference runtimes and memory formats (`python -m pose_lab.bench
    backend=[torch,torch-compile,onnxruntime] channels_last=[false,true]`): per network and input size, the CPU
    batch-1 latency of every path in each runtime, timed side by side in one run, against the first (the control)."""
    groups: dict[tuple[str, int], dict[str, dict[str, dict[str, Any]]]] = {}
    for record in bench["records"]:
        side = runtime_label(record)
        groups.setdefault((record["variant"], record["input_size"]), {}).setdefault(side, {})[record["path"]] = record
    settings = bench.get("settings", {})
    lines = ["", heading("Inference runtimes: one change at a time", label), "",
             f"`{bench.get('command')}` ({path}, {bench.get('date')}): every inference path of each network in "
             "each runtime and memory format, timed side by side in that one run at batch 1 on the CPU, median ms "
             f"of {settings.get('iters')} calls after {settings.get('warmup')} warm-up calls (torch.compile "
             f"compiles during warm-up, with backend `{settings.get('compile_backend', 'inductor')}`); in brackets "
             "how many times faster than the first row, the control. NCHW / NHWC: the torch network's and input's "
             "memory format (NHWC = channels_last); ONNX Runtime runs the exported path on NCHW input. "
             f"{cpu_line(bench)}, torch {bench['machine'].get('torch')}."]
    for (variant, size), sides in groups.items():
        paths = list(dict.fromkeys(path for records in sides.values() for path in records))
        control = next(iter(sides.values()))

        def cell(records: dict[str, dict[str, Any]], path: str) -> str:
            ours, reference = records.get(path), control.get(path)
            if ours is None or ours["cpu"].get("skipped"):
                return "n/a"
            if reference is None or reference["cpu"].get("skipped"):
                return f"{ours['cpu']['median_ms']:.2f}"
            return f"{ours['cpu']['median_ms']:.2f} ({reference['cpu']['median_ms'] / ours['cpu']['median_ms']:.2f}×)"

        body = [[side, *(cell(records, path) for path in paths)] for side, records in sides.items()]
        lines += ["", f"`{variant}`, input {size} px:", "",
                  *_markdown_table(["runtime", *(f"{path} CPU ms" for path in paths)], body)]
    return lines


def cpu_line(bench: dict[str, Any]) -> str:
    """The bench CPU and torch's threads, as recorded in bench.json."""
    machine, settings = bench["machine"], bench.get("settings", {})
    return (f"CPU: {machine.get('cpu')} ({machine.get('cpu_count')} cores), torch threads "
            f"{settings.get('threads_used', machine.get('threads'))}")


def machine_lines(bench: dict[str, Any]) -> list[str]:
    """The bench machine and settings, as recorded in bench.json."""
    machine, settings = bench["machine"], bench.get("settings", {})
    return [
        f"- {cpu_line(bench)}",
        f"- GPU: {machine.get('cuda') or 'none'}"
        + (f" (CUDA {machine['cuda_version']})" if machine.get("cuda_version") else ""),
        f"- torch {machine.get('torch')}, Python {machine.get('python')}, {machine.get('platform')}",
        f"- bench settings: warmup {settings.get('warmup')}, iters {settings.get('iters')}, channels_last "
        f"{settings.get('channels_last')}, batch 1; date {bench.get('date')}; command `{bench.get('command')}`",
    ]


def _gpu_reason(bench: dict[str, Any]) -> str | None:
    reasons = {r["cuda"].get("reason") for r in bench["records"] if r["cuda"].get("skipped")}
    return "; ".join(sorted(str(reason) for reason in reasons)) or None


def plot_points(summary: dict[Group, list[VariantRow]], bench: dict[str, Any] | None,
                latency_path: str) -> dict[Group, list[tuple[str, float, Stat]]]:
    """(variant, CPU ms of `latency_path`, headline Stat) per group, for variants with both numbers."""
    headline = METRICS[0][0]
    points: dict[Group, list[tuple[str, float, Stat]]] = {}
    for group, rows in summary.items():
        for row in rows:
            record = bench_records(bench, row.variant, group[1]).get(latency_path)
            stat = row.stats[headline]
            if record is not None and not record["cpu"].get("skipped") and stat is not None:
                points.setdefault(group, []).append((row.variant, record["cpu"]["median_ms"], stat))
    return points


def draw_plot(points: dict[Group, list[tuple[str, float, Stat]]], latency_path: str, path: Path) -> None:
    """Accuracy against CPU latency, one labelled point per variant (one series per group), as a PNG."""
    figure = Figure(figsize=(7, 5), layout="constrained")
    axes = figure.add_subplot()
    for (split, size, phases), series in points.items():
        xs = [x for _, x, _ in series]
        ys = [stat.mean for _, _, stat in series]
        errors = [stat.std or 0.0 for _, _, stat in series]
        axes.errorbar(xs, ys, yerr=errors, fmt="o", capsize=4, label=f"split {split}, input {size}, {phases}")
        for (variant, x, stat) in series:
            axes.annotate(f"{variant} (n={stat.n})", (x, stat.mean), textcoords="offset points", xytext=(6, 6))
    axes.set_xlabel(f"CPU latency, batch 1, {latency_path} path (ms, median)")
    axes.set_ylabel("test PCKh@0.5, regression output (%, mean ± std over seeds)")
    axes.set_title("Accuracy against latency per variant")
    axes.grid(alpha=0.3)
    axes.margins(x=0.15, y=0.1)  # room for the labels
    if len(points) > 1:
        axes.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def load_exercise_bench(path: Path) -> dict[str, Any]:
    """exercise_bench.json of `python -m pose_lab.exercise.bench`, checked for what the report reads."""
    if not path.is_file():
        raise PoseLabError(f"exercise_bench={path}: no such file; run `python -m pose_lab.exercise.bench` and pass "
                           "its exercise_bench.json, or exercise_bench=null")
    bench = _load_json(path, "pass the exercise_bench.json written by `python -m pose_lab.exercise.bench`")
    if not isinstance(bench, dict) or not isinstance(bench.get("clips"), list) or "overall" not in bench:
        raise PoseLabError(f"exercise_bench={path}: not a pose_lab.exercise.bench file (needs 'clips' and "
                           "'overall')")
    return bench


def _perturbation(run: dict[str, Any]) -> str:
    """A perturbed pass by its one change: "start +2" (frames skipped) or "×0.75" (frames resized)."""
    return f"start +{run['start_frame']}" if run["start_frame"] else f"×{run['scale']:g}"


def exercise_section(bench: dict[str, Any], path: str, label: str | None = None) -> list[str]:
    """RESULTS.md's exercise analytics section: counts against the hand counts and frames/s, side by side."""
    def count(side: dict[str, Any] | None) -> str:
        if side is None:
            return "n/a"
        return f"{side['reps']} {'✓' if side['exact'] else ('~' if side['acceptable'] else '✗')}"

    def speed(side: dict[str, Any] | None) -> str:
        return "n/a" if side is None else f"{side['fps']:.1f}"

    def at_turns(turns: dict[str, Any] | None) -> str:
        return "n/a" if turns is None else f"{turns['matched']} of {turns['noted']} (+{turns['elsewhere']})"

    def agreement(clip: dict[str, Any]) -> str:
        value = clip.get("keypoint_agreement_with_peer")
        return "n/a" if value is None else f"{100 * value:.1f}%"

    def perturbed(clip: dict[str, Any]) -> str:
        passes = clip.get("pose_lab_perturbed") or []
        wrong = [f"{_perturbation(run)}: {run['reps']}" for run in passes if not run["exact"]]
        return "n/a" if not passes else (f"{len(passes) - len(wrong)} of {len(passes)} exact"
                                         + (f" ({', '.join(wrong)})" if wrong else ""))

    header = ["clip", "exercise", "hand count (+ partial)", "pose_lab reps", "pose_lab reps at noted turns",
              "pose_lab counts when perturbed", "peer reps", "pose_lab counter on peer keypoints",
              "keypoints within 0.2 torso of peer's", "pose_lab frames/s", "peer frames/s"]
    body = [[f"`{clip['clip']}`", clip["exercise"], f"{clip['expected']['reps']} (+{clip['expected']['partial']})",
             count(clip["pose_lab"]), at_turns(clip["pose_lab"].get("turns")), perturbed(clip),
             count(clip["peer"]),
             str(clip.get("pose_lab_counter_on_peer_keypoints", "n/a"))
             + (f" ({at_turns(clip['pose_lab_counter_on_peer_keypoints_turns'])} at noted turns)"
                if "pose_lab_counter_on_peer_keypoints_turns" in clip else ""),
             agreement(clip), speed(clip["pose_lab"]), speed(clip["peer"])] for clip in bench["clips"]]
    overall = bench["overall"]
    ours, theirs = overall.get("pose_lab"), overall.get("peer")
    lines = ["", heading("Exercise analytics on real clips", label), "",
             "Repetitions counted on the real clips against their hand counts (✓ exact, ~ within the partial reps, "
             "✗ wrong), and end-to-end frames/s (decode → keypoints → smoothing → angles → counting; median of "
             f"{bench['repeats']} passes per clip, the two sides alternating), side by side in one run. Peer: "
             f"{bench.get('peer') or 'not run'}. `pose_lab reps at noted turns`: of the turning points the clips' "
             "README notes by frame (squat and push-up bottoms, curl tops), how many a counted rep turns at, and in "
             "brackets how many counted reps turn elsewhere: a right count made of wrong reps shows here. "
             "`pose_lab counts when perturbed`: pose_lab's count again with the clip started a few frames late, "
             "or every frame resized, one change per pass, and the counts that were not exact: a trim or another "
             "camera makes such changes, so an exact count that one of them breaks was luck. "
             "`pose_lab counter on peer keypoints` runs pose_lab's counting on "
             "the peer's keypoints instead of pose_lab's network: it separates counting errors from keypoint "
             "errors. `keypoints within 0.2 torso of peer's` is PCK@0.2 of pose_lab's smoothed keypoints with the "
             "peer's standing in for the truth (the peer's visible limb joints, frames where it found the torso; "
             "frames where pose_lab found nobody count as misses): how far apart the two keypoint streams are.",
             "", *_markdown_table(header, body)]
    if ours:
        lines += ["", f"Overall: pose_lab {ours['fps']:.1f} frames/s, {ours['exact_clips']} of {ours['clips']} clips "
                      "counted exactly"
                  + (f"; peer {theirs['fps']:.1f} frames/s, {theirs['exact_clips']} of {theirs['clips']} exact; "
                     f"pose_lab runs at **{overall['speed_ratio']:.2f}×** the peer's speed." if theirs else ".")]
    stability = overall.get("pose_lab_perturbed")
    if stability and stability["passes"]:
        lines += ["", f"Perturbed passes: {stability['exact']} of {stability['passes']} counted exactly."]
    # Only clips whose peer keypoints were counted can tell keypoint errors from counting errors.
    missed = [clip for clip in bench["clips"]
              if not clip["pose_lab"]["exact"] and clip.get("pose_lab_counter_on_peer_keypoints") is not None]
    diagnosed = [clip for clip in missed if clip["pose_lab_counter_on_peer_keypoints"] == clip["expected"]["reps"]]
    if missed and len(diagnosed) == len(missed):
        lines += ["", f"On each of the {len(missed)} clip(s) pose_lab miscounts, its own counter counts the peer's "
                      "keypoints exactly: the keypoints are what fails, not the counting. The fix is a keypoint model "
                      "that holds up on exercise video (the accuracy push of issue 9: longer training, scale "
                      "augmentation for people far from the camera), with the counting left as it is."]
    elif missed:
        lines += ["", "Clips where pose_lab's counter is also wrong on the peer's keypoints: "
                      + ", ".join(f"`{clip['clip']}`" for clip in missed if clip not in diagnosed) + "."]
    pipeline = bench.get("pipeline", {})
    machine = bench.get("machine", {})
    lines += ["", f"Made by `{bench.get('command')}` on {bench.get('date')} ({path}): pose_lab backend "
                  f"{pipeline.get('backend')}, checkpoint `{pipeline.get('checkpoint', 'not recorded')}`, "
                  f"{pipeline.get('keypoints')} keypoints, {pipeline.get('threads')} "
                  f"threads; CPU {machine.get('cpu')} ({machine.get('cpu_count')} cores)."]
    return lines


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
    if (start := shared("phase.init_from")) is not None:
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


def _folders_override(value: Any) -> str:
    """A folder or list of folders as a Hydra override value."""
    return f"[{','.join(map(str, value))}]" if isinstance(value, (list, ListConfig)) else str(value)


def report_command(cfg: DictConfig) -> str:
    """The command line that reproduces this report, from its settings."""
    words = ["python", "-m", "pose_lab.report", f"sweep={_folders_override(cfg.sweep) if cfg.sweep else 'null'}",
             f"bench={cfg.bench or 'null'}",
             f"backend={cfg.backend}", f"output={cfg.output}", f"plot={cfg.plot}",
             f"latency_path={cfg.latency_path}", f"exercise_bench={cfg.exercise_bench or 'null'}",
             f"peer_bench={cfg.peer_bench or 'null'}",
             f"levers={_folders_override(cfg.levers) if cfg.levers else 'null'}",
             *([f"evaluations={_folders_override(cfg.evaluations)}"] if cfg.evaluations else []),
             *([f"runtimes={cfg.runtimes}"] if cfg.runtimes else []),
             *(["merge=true"] if cfg.merge else []),
             *([f"label={override_value(cfg.label)}"] if cfg.label else [])]
    return shlex.join(words)


# Sections that an update merges line by line instead of replacing: their lists accumulate every input's lines.
MERGED_SECTIONS: tuple[str, ...] = ("Missing or failed runs", "How these numbers were made")
# What "Missing or failed runs" says when nothing is missing: an update that has no problem to add keeps the old.
NOTHING_MISSING = "None: every run folder has its"


def render(cfg: DictConfig, sweep_dirs: list[Path], runs: list[Run], summary: dict[Group, list[VariantRow]],
           bench: dict[str, Any] | None, plot: Path | None, plot_note: str,
           exercise: dict[str, Any] | None = None, peer: dict[str, Any] | None = None,
           levers: tuple[list[Run], Path] | None = None, evaluations: list[Path] | None = None,
           runtimes: dict[str, Any] | None = None) -> str:
    """The whole RESULTS.md."""
    finished = sum(run.test is not None for run in runs)
    root = common_root(sweep_dirs) if sweep_dirs else Path.cwd()
    lines = [
        "# Results",
        "",
        f"Sweep{'s' if len(sweep_dirs) > 1 else ''} {', '.join(f'`{folder}`' for folder in sweep_dirs)}: "
        f"{len(runs)} run folder(s), {finished} finished. Test scores of the final phase "
        "of each run (best validation checkpoint), mean ± sample std over seeds; `n` = finished runs "
        "(⚠: fewer than other variants, or runs failed). Latency: batch-1 median of `pose_lab.bench` at the "
        f"runs' input size, backend `{cfg.backend}`, `full` = heatmaps + coordinates, `reg` = the regression-only "
        "inference path.",
    ]
    if len(summary) > 1:
        lines += ["", "**The runs differ in split, input size or phases; each group has its own table.**"]
    for (split, size, phases), rows in summary.items():
        group_runs = [run for run in runs if (run.split, run.input_size, run.phases) == (split, size, phases)]
        lines += ["", heading(f"Split `{split}`, input {size} px, phases {phases}", cfg.label), "",
                  budget_line(group_runs), "",
                  *group_table(rows, bench, size)]
        if split != "seed":
            lines += ["", "The report's numbers are on its 60/20/20 split (`data.split=seed`), not this one."]
    if summary:
        lines += [
            "",
            "`report PCK %` and `report ms` are the report's own Table 1 (§5.1), quoted for reference: its PCK "
            "score on its 60/20/20 split and its latency on its own hardware. Table 1 has one ViT row for both "
            "`vit` and `vit2`; it gives no test score for `neg_heatmap_diff` (§4.2 attempt 1).",
        ]
    if bench is None:
        if summary:
            lines += ["", "Latency columns: not measured (`bench=null`)."]
    elif (reason := _gpu_reason(bench)) is not None:
        lines += ["", f"GPU ms n/a: {reason}."]
    if bench is not None:
        lines += runtime_table(bench, summary)
    if plot is not None:
        lines += ["", f"![accuracy against latency]({os.path.relpath(plot, Path(cfg.output).resolve().parent)})"]
    if plot_note:
        lines += ["", plot_note]
    if peer is not None:
        lines += peer_section(peer, f"`{cfg.peer_bench or cfg.bench}`", cfg.label)
    if exercise is not None:
        lines += exercise_section(exercise, f"`{cfg.exercise_bench}`", cfg.label)
    if levers:
        lines += levers_section(*levers, label=cfg.label)
    if evaluations:
        lines += evaluations_section(evaluations, label=cfg.label)
    if runtimes is not None:
        lines += runtimes_section(runtimes, f"`{cfg.runtimes}`", label=cfg.label)
    issues = problems(root, summary)
    lines += ["", "## Missing or failed runs", "",
              *(issues or [f"{NOTHING_MISSING} {METRICS_FILE} and every variant the same seeds."])]
    lines += ["", "## How these numbers were made", "", "Sweep:", "",
              *(f"- {command}" for command in sweep_commands(sweep_dirs, runs)),
              "", "Report:", "", f"- `{report_command(cfg)}`"]
    if bench is not None:
        lines += ["", f"Latency machine (from `{cfg.bench}`):", "", *machine_lines(bench)]
    return "\n".join(lines) + "\n"


def split_sections(markdown: str) -> tuple[list[str], dict[str, list[str]]]:
    """The lines before the first `## ` heading, and each `## ` section's lines by title (in order)."""
    preamble: list[str] = []
    sections: dict[str, list[str]] = {}
    current = preamble
    for line in markdown.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:], [])
        else:
            current.append(line)
    return preamble, sections


def _blocks(lines: list[str]) -> dict[str, list[str]]:
    """A closing section's lines as blocks: each line that is not a list item heads the list items after it
    ("Report:" and its commands); list items before any heading fall under ""."""
    blocks: dict[str, list[str]] = {}
    head = ""
    for line in lines:
        if not line.strip():
            continue
        if line.startswith("- "):
            blocks.setdefault(head, []).append(line)
        else:
            head = line
            blocks.setdefault(head, [])
    return blocks


def _merged_lines(old: list[str], new: list[str]) -> list[str]:
    """Old's blocks (see _blocks) with new's list items added to the block of the same heading, and new's
    other blocks after them."""
    blocks = _blocks(old)
    for head, items in _blocks(new).items():
        blocks[head] = blocks.get(head, []) + [item for item in items if item not in blocks.get(head, [])]
    lines = [""]
    for head, items in blocks.items():
        lines += [*([head] if head else []), *([""] if head and items else []), *items, ""]
    return lines


# The preamble's line naming the sweeps merged in after the report was made.
MERGED_PREFIX = "Merged into this report since (`merge=true`): "
MERGED_SUFFIX = "; each merged table gives its own training budget, and the last section lists every command."


# The inputs of a report command; a list value (sweep=[A,B]) names several folders.
REPORT_INPUTS: tuple[str, ...] = ("sweep", "levers", "bench", "peer_bench", "exercise_bench", "evaluations")
REPORT_PREFIX = "- `python -m pose_lab.report "


def _report_inputs(line: str) -> tuple[str | None, dict[str, set[str]]] | None:
    """A closing-list line's report command as (label, {input: folders}), or None for other lines."""
    if not line.startswith(REPORT_PREFIX):
        return None
    words = dict(word.split("=", 1) for word in shlex.split(line[len("- `"):].rstrip("`")) if "=" in word)
    inputs = {}
    for key in REPORT_INPUTS:
        value = words.get(key, "null")
        if value != "null":
            inputs[key] = set(value.strip("[]").split(",")) if value.startswith("[") else {value}
    label = words.get("label")
    return (None if label is None else str(read_override_value(label))), inputs


def _superseded(old_line: str, new_commands: Sequence[tuple[str | None, dict[str, set[str]]]]) -> bool:
    """Whether a new report command (as _report_inputs gives it) of the same label reads every input old_line's
    command read: it then remakes all the sections that command made, so old_line would only repeat part of it."""
    old = _report_inputs(old_line)
    if old is None:
        return False
    label, inputs = old
    return any(new_label == label and all(folders <= new_inputs.get(key, set()) for key, folders in inputs.items())
               for new_label, new_inputs in new_commands)


def merge_report(old: str, new: str, sweep_dirs: Sequence[Path] = ()) -> str:
    """`old` RESULTS.md updated by `new`: every section of `new` replaces the one of the same title in `old`, or
    comes before old's closing sections when `old` has none; the closing sections (MERGED_SECTIONS) keep old's
    lines and gain new's, less old report commands that a new one supersedes (_superseded). The preamble stays
    old's, with a line naming the merged sweep folders it lacks."""
    preamble, sections = split_sections(old)
    unnamed = [f"`{folder}`" for folder in sweep_dirs if f"`{folder}`" not in "\n".join(preamble)]
    if unnamed:
        merged = next((index for index, line in enumerate(preamble) if line.startswith(MERGED_PREFIX)), None)
        if merged is None:
            while preamble and not preamble[-1].strip():
                preamble = preamble[:-1]
            preamble += ["", MERGED_PREFIX + ", ".join(unnamed) + MERGED_SUFFIX, ""]
        else:
            named = preamble[merged][len(MERGED_PREFIX):-len(MERGED_SUFFIX)]
            preamble[merged] = MERGED_PREFIX + ", ".join([named, *unnamed]) + MERGED_SUFFIX
    _, updates = split_sections(new)
    closing = {title: sections.pop(title) for title in MERGED_SECTIONS if title in sections}
    for title, lines in updates.items():
        if title not in MERGED_SECTIONS:
            sections[title] = lines
    for title in MERGED_SECTIONS:
        old_lines, new_lines = closing.get(title, []), updates.get(title, [])
        if title == "Missing or failed runs":  # "None: ..." only while neither side lists a problem
            if any(line.startswith(NOTHING_MISSING) for line in new_lines):
                new_lines = [] if old_lines else new_lines
            elif new_lines:
                old_lines = [line for line in old_lines if not line.startswith(NOTHING_MISSING)]
        else:
            new_commands = [command for command in map(_report_inputs, new_lines) if command is not None]
            old_lines = [line for line in old_lines if not _superseded(line, new_commands)]
        closing[title] = _merged_lines(old_lines, new_lines)
    body = [line for title, lines in {**sections, **closing}.items() for line in (f"## {title}", *lines)]
    return "\n".join([*preamble, *body]).rstrip("\n") + "\n"


def report(cfg: DictConfig) -> dict[str, Any]:
    """Write RESULTS.md (cfg.output) and the plot (cfg.plot); returns the per-group rows and the paths."""
    if not cfg.sweep and not cfg.merge:
        raise PoseLabError("pass sweep=DIR: the folder of a `pose_lab.train -m` sweep, "
                           "e.g. outputs/train/multiruns/DATE (or merge=true to update sections of an existing "
                           "report from other inputs)")
    output = Path(cfg.output)
    if cfg.merge and not output.is_file():
        raise PoseLabError(f"merge=true needs an existing report at output={output}; run without merge first")
    if cfg.latency_path not in INFERENCE_PATHS:
        raise PoseLabError(f"latency_path={cfg.latency_path}; valid: {', '.join(INFERENCE_PATHS)}")
    sweep_dirs = sweep_folders(cfg.sweep) if cfg.sweep else []
    runs = [run for sweep_dir in sweep_dirs for run in collect_runs(sweep_dir)]
    bench = load_bench(Path(cfg.bench) if cfg.bench else None, cfg.backend)
    exercise = load_exercise_bench(Path(cfg.exercise_bench)) if cfg.exercise_bench else None
    peer = load_bench(Path(cfg.peer_bench), cfg.backend) if cfg.peer_bench else bench
    if peer is not None and "peer_comparison" not in peer:
        if cfg.peer_bench:
            raise PoseLabError(f"peer_bench={cfg.peer_bench} has no peer_comparison; write one with "
                               "`python -m pose_lab.bench ckpt=PATH peer_python=.venv-peer/bin/python`")
        peer = None
    summary = summarize(runs)
    # A merge leaves the plot of the full report as it is.
    points = {} if cfg.merge else plot_points(summary, bench, cfg.latency_path)
    plot: Path | None = None
    if cfg.merge:
        note = ""
    elif points:
        plot = Path(cfg.plot).resolve()
        draw_plot(points, cfg.latency_path, plot)
        plotted = {(group, variant) for group, series in points.items() for variant, _, _ in series}
        left_out = [f"`{row.variant}` (split {group[0]}, input {group[1]})" for group, rows in summary.items()
                    for row in rows if (group, row.variant) not in plotted]
        note = ("Not in the plot (no finished run or no CPU latency at its input size): " + ", ".join(left_out)
                + ".") if left_out else ""
    else:
        note = ("No plot: " + ("no bench (`bench=null`)." if bench is None else
                               "no variant has both a finished run and a CPU latency at its input size."))
    output.parent.mkdir(parents=True, exist_ok=True)
    levers = None
    if cfg.levers:
        lever_dirs = sweep_folders(cfg.levers)
        levers = ([run for folder in lever_dirs for run in collect_runs(folder)], common_root(lever_dirs))
    evaluations = sweep_folders(cfg.evaluations) if cfg.evaluations else None
    runtimes = read_bench(Path(cfg.runtimes), "runtimes") if cfg.runtimes else None
    text = render(cfg, sweep_dirs, runs, summary, bench, plot, note, exercise, peer, levers, evaluations, runtimes)
    named = [shown_path(folder) for folder in sweep_dirs]
    output.write_text(merge_report(output.read_text(), text, named) if cfg.merge else text)
    print(f"wrote {output}" + (f" and {plot}" if plot else ""))
    return {"output": str(output), "plot": str(plot) if plot else None, "groups": summary}


@hydra.main(version_base="1.3", config_path="../conf", config_name="report")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    report(cfg)


if __name__ == "__main__":
    main()
