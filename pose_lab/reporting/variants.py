"""The ablation tables: runs summarized per model variant within each (split, input size, phases) group, mean ±
std over seeds, with the bench's size and latency columns and the report's own Table 1 (§5.1) beside them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pose_lab.reporting.benches import bench_records, latency, pair
from pose_lab.reporting.markdown import markdown_table
from pose_lab.reporting.runs import METRICS, Group, Run, Stat, VariantRow, differing_settings, mean_std

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


def _percent(stat: Stat | None) -> str:
    if stat is None:
        return "n/a"
    return f"{stat.mean:.1f}" if stat.std is None else f"{stat.mean:.1f} ± {stat.std:.1f}"


def _bench_cells(bench: dict[str, Any] | None, records: dict[str, dict[str, Any]]) -> list[str]:
    if bench is None:
        return ["not measured"] * 4
    if not records:
        return ["not in bench"] * 4
    return [
        pair(records, lambda r: f"{r['params']['used'] / 1e6:.3f}"),
        pair(records, lambda r: f"{r['gflops']:.3f}"),
        pair(records, lambda r: latency(r["cpu"])),
        pair(records, lambda r: latency(r["cuda"])),
    ]


def _report_cells(variant: str) -> list[str]:
    row = REPORT_ROW.get(variant)
    if row is None:
        return ["—", "—"]
    pck, milliseconds = REPORT_TABLE1[row]
    return [f"{pck:.1f}", f"{milliseconds:.0f}"]


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
    return markdown_table(header, body)
