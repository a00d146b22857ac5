"""Running the MediaPipe reference peer (`pose_lab/exercise/peer_mediapipe.py`) in its own environment.

MediaPipe pins another OpenCV and numpy than pose_lab, so it is never imported here: the benchmarks run the
peer script with the Python of a separate virtual environment (`make peer-venv`) and read the one JSON line it
prints last. Both benchmarks (`pose_lab.bench` on LSP images, `pose_lab.exercise.bench` on videos) go through
:func:`run_peer`, so a missing or broken peer environment reads the same everywhere.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

from pose_lab.errors import PoseLabError

PEER_SCRIPT = Path(__file__).resolve().parent / "exercise" / "peer_mediapipe.py"
SETUP_HINT = f"create it with `make peer-venv` (see {PEER_SCRIPT.name}'s docstring), or pass peer_python=null"


def check_peer_python(python: Path) -> None:
    """Fail early, before any timing, when the peer's Python does not exist."""
    if not python.is_file():
        raise PoseLabError(f"peer_python={python} does not exist; {SETUP_HINT}")


def run_peer(python: Path, arguments: list[str]) -> dict[str, Any]:
    """Run the peer script with `arguments` under `python`; its JSON summary line."""
    command = [str(python), str(PEER_SCRIPT), *arguments]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise PoseLabError(f"peer_python={python} cannot run: {error.strerror}; {SETUP_HINT}") from None
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no message"
        raise PoseLabError(f"the MediaPipe peer failed (exit {done.returncode}): {last}; run `{shlex.join(command)}` "
                           "to see all of its output")
    return json.loads(done.stdout.strip().splitlines()[-1])
