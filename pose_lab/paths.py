"""Where pose_lab's own files are (its Hydra config folder), and how it names a path in what it writes for people
(RESULTS.md, benchmark records)."""

from __future__ import annotations

from pathlib import Path

# The Hydra config folder the entry points' `config_path` names, for composing configs outside them.
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

# What a pose_lab.train run folder holds besides Lightning's files: the config the run started with, and the
# command-line overrides it started with (Hydra's own .hydra/overrides.yaml in the run folder is rewritten by a
# resume, `resume=RUN_DIR` running in the same folder, so the report reads the command from here).
RUN_CONFIG = "run_config.yaml"
RUN_OVERRIDES = "run_overrides.yaml"


def shown_path(path: Path) -> Path:
    """`path` relative to the working directory (the repository root under make) when inside it, else whole:
    short enough to read, and never ambiguous, as a bare folder name is when two merged runs share it."""
    path = path.resolve()
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
