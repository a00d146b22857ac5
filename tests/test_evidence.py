"""evidence: a run's and a benchmark's record files are copied at their path below outputs/, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from pose_lab.errors import PoseLabError
from pose_lab.evidence import keep, main


def _touch(path: Path, text: str = "{}") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_records_are_kept_at_their_path_below_outputs_and_checkpoints_are_not(tmp_path: Path) -> None:
    run = tmp_path / "outputs/train/multiruns/reg_l1/seed_0"
    for name in ("metrics.json", "run_config.yaml", ".hydra/overrides.yaml", "regression/metrics.json",
                 "regression/logs/version_0/metrics.csv"):
        _touch(run / name, name)
    for name in ("regression/checkpoints/best.ckpt", "regression/tensorboard/events.out", "train.log"):
        _touch(run / name)
    bench = tmp_path / "outputs/bench/runs/peer"
    _touch(bench / "bench.json")
    _touch(bench / "peer_keypoints.npz")

    target = tmp_path / "results/evidence"
    copies = keep([run, bench], target)
    kept = sorted(str(path.relative_to(target)) for path in copies)
    assert kept == ["bench/runs/peer/bench.json",
                    "train/multiruns/reg_l1/seed_0/.hydra/overrides.yaml",
                    "train/multiruns/reg_l1/seed_0/metrics.json",
                    "train/multiruns/reg_l1/seed_0/regression/logs/version_0/metrics.csv",
                    "train/multiruns/reg_l1/seed_0/regression/metrics.json",
                    "train/multiruns/reg_l1/seed_0/run_config.yaml"]
    assert (target / "train/multiruns/reg_l1/seed_0/regression/metrics.json").read_text() == "regression/metrics.json"
    assert sorted(path.relative_to(target) for path in target.rglob("*") if path.is_file()) == \
        sorted(Path(name) for name in kept)


def test_a_folder_with_no_records_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PoseLabError, match="holds none of"):
        keep([tmp_path / "empty"], tmp_path / "target")
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "missing"), "--target", str(tmp_path / "target")])
    assert exit_info.value.code == 2 and "is not a folder" in capsys.readouterr().err
