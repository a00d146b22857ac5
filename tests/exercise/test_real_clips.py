"""The four real clips of ../shared/datasets/exercise_videos through the whole command with the shipped
checkpoint (ONNX Runtime, as by default). Skipped when the clips are absent.

The hand counts come from conf/exercise_bench.yaml (copied from the clips' README). The plumbing must hold on
real footage, every clip but the known miscounts is counted exactly, each rep at a noted turning point, and
every clip within a rep on any CPU.

Slow: analysing the four clips took 33-51 s in the default runs measured, more than the default run can spare on
a 2-core CPU; `make test-full` runs them, and `make exercise-bench` measures the same counts against the hand
counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf
from test_pipeline import config

from pose_lab.exercise.bench import noted_turns
from pose_lab.exercise.run import analyse_video

BENCH = OmegaConf.load(Path(__file__).resolve().parents[2] / "conf" / "exercise_bench.yaml")
CLIPS = BENCH.clips

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def summaries(exercise_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    results = {}
    for name, clip in CLIPS.items():
        out = tmp_path_factory.mktemp(Path(name).stem)
        results[name] = analyse_video(config(out, exercise_videos / name, f"exercise={clip.exercise}",
                                             "annotated_video=false"))
    return results


@pytest.mark.parametrize("name", list(CLIPS))
def test_real_clip_is_read_whole_and_the_person_is_found(summaries: dict[str, dict[str, Any]], name: str) -> None:
    summary = summaries[name]
    assert summary["complete"] and summary["frames_read"] > 300
    assert summary["frames_with_person"] >= 0.5 * summary["frames_read"]
    assert summary["settings"]["rotation_applied_deg"] == 0


# Clips the shipped checkpoint is known to miscount, and how (README, model card: Exercise clips). Strict: a clip
# that starts counting exactly fails here until it leaves this list.
KNOWN_MISCOUNTS = {
    "squat_side_home_yuyoujiang.mp4": "the right total, 3, but 2 at the noted bottoms and 1 elsewhere",
    "pushup_rooftop.mp4": "the right total, 4, but 3 at the noted bottoms and 1 elsewhere",
}


def _clip_param(name: str) -> Any:
    miscount = KNOWN_MISCOUNTS.get(name)
    return pytest.param(name, id=Path(name).stem,
                        marks=[pytest.mark.xfail(strict=True, reason=miscount)] if miscount else [])


@pytest.mark.parametrize("name", [_clip_param(name) for name in CLIPS])
def test_real_clip_is_counted_exactly(summaries: dict[str, dict[str, Any]], name: str) -> None:
    """The right count, made of the right reps: each turns where the clips' README notes a turning point."""
    summary = summaries[name]
    turns = noted_turns([rep["frames"]["bottom"] for rep in summary["reps"]], CLIPS[name].turns,
                        BENCH.turn_tolerance_s, summary["fps"])
    assert summary["total_reps"] == CLIPS[name].reps
    assert turns["matched"] == turns["noted"] and turns["elsewhere"] == 0, turns


def test_every_clip_is_counted_within_a_rep(summaries: dict[str, dict[str, Any]]) -> None:
    """Within one rep leaves room for the network's run-to-run noise on another CPU while still catching a
    tracker that loses the legs (7 on the goblet clip once) or a counter that splits reps (10 on the push-ups)."""
    for name, clip in CLIPS.items():
        assert abs(summaries[name]["total_reps"] - clip.reps) <= 1, name
