"""The plot of accuracy (PCKh@0.5 regression, mean with std error bars) against the CPU latency of one inference
path, one labelled point per variant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from pose_lab.reporting.benches import bench_records
from pose_lab.reporting.runs import METRICS, Group, Stat, VariantRow


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
