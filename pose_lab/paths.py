"""Where pose_lab's own files are (its Hydra config folder), and how it names a path in what it writes for people
(RESULTS.md, benchmark records)."""

from __future__ import annotations

from pathlib import Path

# The Hydra config folder the entry points' `config_path` names, for composing configs outside them.
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def shown_path(path: Path) -> Path:
    """`path` relative to the working directory (the repository root under make) when inside it, else whole:
    short enough to read, and never ambiguous, as a bare folder name is when two merged runs share it."""
    path = path.resolve()
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
