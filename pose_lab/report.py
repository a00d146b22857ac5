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

The sections are built in `pose_lab.reporting`, one module per kind of input; this module reads the settings,
puts the sections together and writes the files.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, ListConfig

from pose_lab.errors import PoseLabError, exit_on_user_error
from pose_lab.paths import shown_path
from pose_lab.reporting.benches import (INFERENCE_PATHS, gpu_reason, load_bench, machine_lines, peer_section,
                                        read_bench, runtime_table, runtimes_section)
from pose_lab.reporting.evaluations import evaluations_section
from pose_lab.reporting.exercise import exercise_section, load_exercise_bench
from pose_lab.reporting.levers import levers_section
from pose_lab.reporting.markdown import heading
from pose_lab.reporting.merge import NOTHING_MISSING, merge_report
from pose_lab.reporting.plot import draw_plot, plot_points
from pose_lab.reporting.runs import (METRICS_FILE, Group, Run, VariantRow, budget_line, collect_runs, common_root,
                                     problems, sweep_commands, sweep_folders)
from pose_lab.reporting.variants import group_table, summarize
from pose_lab.rerun import override_value


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
    elif (reason := gpu_reason(bench)) is not None:
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
