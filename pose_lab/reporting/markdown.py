"""Text shared by the report's sections: section headings, markdown tables, the PCK protocols' column titles."""

from __future__ import annotations

# Column titles of the PCK protocols (pose_lab.metrics.PCK_PROTOCOLS), in the order shown.
PCK_TITLES: dict[str, str] = {"pckh@0.5": "PCKh@0.5 %", "pck@0.2": "PCK@0.2 %"}


def heading(title: str, label: str | None) -> str:
    """A section heading, `label` appended: a merge replaces the section of the same heading, so a labelled one
    (another recipe's table, a candidate checkpoint's benchmarks) stands beside the unlabelled one."""
    return f"## {title}" + (f": {label}" if label else "")


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table of `header` and `rows`, as lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]
