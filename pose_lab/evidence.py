"""`python -m pose_lab.evidence FOLDER [FOLDER ...]`: keep the records of result folders in the repository.

RESULTS.md is made by `pose_lab.report` from run folders and benchmark files under `outputs/`, which git ignores
(checkpoints are tens of MB) and which a fresh clone, or another machine, does not have. This copies the small
files those commands read (a run's metrics.json, run_config.yaml, Hydra's .hydra/*.yaml and its metrics.csv
curves; a benchmark's bench.json or exercise_bench.json) into `results/evidence/`, keeping each folder's path below
`outputs/`, so the report can be rerun from a clone with `sweep=results/evidence/...` and the like. Checkpoints,
TensorBoard events and keypoint arrays stay behind.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterable
from pathlib import Path

from pose_lab.errors import PoseLabError, exit_on_user_error

# What pose_lab.report and a reader of a run need: scores, the config a run started with, its command line,
# its learning curves and the benchmarks' records.
RECORD_PATTERNS: tuple[str, ...] = ("metrics.json", "run_config.yaml", "run_overrides.yaml", ".hydra/*.yaml",
                                    "multirun.yaml", "**/metrics.csv", "bench.json", "exercise_bench.json",
                                    "export.json")
EVIDENCE_DIR = Path("results/evidence")


def record_files(folder: Path) -> list[Path]:
    """The record files under `folder` (see RECORD_PATTERNS), sorted."""
    found = {path for pattern in RECORD_PATTERNS for path in folder.rglob(pattern) if path.is_file()}
    return sorted(found)


def _below_outputs(folder: Path) -> Path:
    """`folder`'s path below its `outputs` folder (outputs/train/runs/x -> train/runs/x), else its name."""
    parts = folder.resolve().parts
    if "outputs" in parts:
        return Path(*parts[len(parts) - parts[::-1].index("outputs"):])
    return Path(folder.name)


def keep(folders: Iterable[str | Path], target: str | Path = EVIDENCE_DIR) -> list[Path]:
    """Copy the record files of each folder into `target`, at the folder's path below `outputs/`; returns the
    copies. A folder without any record file is an error (a typo, or a run that never started)."""
    copies = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise PoseLabError(f"{folder} is not a folder: pass run or benchmark folders under outputs/")
        files = record_files(folder)
        if not files:
            raise PoseLabError(f"{folder} holds none of {', '.join(RECORD_PATTERNS)}: is it a pose_lab run or "
                               "benchmark folder?")
        destination = Path(target) / _below_outputs(folder)
        for file in files:
            copy = destination / file.relative_to(folder)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, copy)
            copies.append(copy)
    return copies


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("folders", nargs="+", help="run or benchmark folders (under outputs/)")
    parser.add_argument("--target", default=str(EVIDENCE_DIR), help="where the copies go (default: %(default)s)")
    args = parser.parse_args(argv)
    copies = keep(args.folders, args.target)
    print(f"kept {len(copies)} record file(s) of {len(args.folders)} folder(s) in {args.target}")


if __name__ == "__main__":
    main()
