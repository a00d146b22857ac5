"""The levers table: one-change training runs against a control run, each change read off the runs' configs."""

from __future__ import annotations

from pathlib import Path

from pose_lab.errors import PoseLabError
from pose_lab.reporting.markdown import heading, markdown_table
from pose_lab.reporting.runs import METRICS, METRICS_FILE, Run, budget_line, recipe_change, sweep_commands

# A levers-table cell for an output whose branch the run never trained.
UNTRAINED = "untrained"


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
            *markdown_table(header, body),
            *(["", f"{UNTRAINED}: the run has no regression phase, so its regression branch is untrained; its "
                   "heatmap scores compare."] if untrained else []),
            *(["", "`+key=value`: a setting the control's config lacks (pose_lab gained it after the control ran, "
                   "or the run added it)."] if added else []),
            "", "Lever runs:", "", *(f"- {command}" for command in sweep_commands([root], runs))]
