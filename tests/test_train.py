"""The training entry point end to end on the tiny fixture with trainer=smoke: stages, outputs, resume."""

import csv
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from pose_lab.checkpoint import CheckpointError, load_module
from pose_lab.paths import RUN_OVERRIDES
from pose_lab.skeleton import NUM_JOINTS
from pose_lab.train import train


class CrashOnce(L.Callback):
    """Simulates a kill at the start of `epoch` the first time; records the epoch each fit starts from."""

    def __init__(self, epoch: int, marker: str) -> None:
        self.epoch = epoch
        self.marker = Path(marker)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with self.marker.open("a") as log:
            log.write(f"start {trainer.current_epoch}\n")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and "crash" not in self.marker.read_text():
            self.marker.write_text(self.marker.read_text() + "crash\n")
            raise RuntimeError("simulated kill")


def test_a_seed_reproduces_its_run(train_cfg, tmp_path: Path) -> None:
    """Augmentation included: the same seed trains the same weights, another seed others."""
    weights = []
    for name, seed in (("first", 0), ("again", 0), ("other", 1)):
        cfg = train_cfg("phase=pretrain", f"seed={seed}")
        cfg.paths.output_dir = str(tmp_path / name)
        weights.append(torch.load(train(cfg)["best_checkpoint"], weights_only=False)["state_dict"])
    first, again, other = weights
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first)


def test_both_phases_write_checkpoints_metrics_and_keep_frozen_weights(train_cfg) -> None:
    cfg = train_cfg("phase=both")
    summary = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert (run / "metrics.json").is_file() and (run / "run_config.yaml").is_file()
    assert set(summary["stages"]) == {"pretrain", "regression"}
    for stage in ("pretrain", "regression"):
        assert (run / stage / "checkpoints" / "last.ckpt").is_file()
        assert (run / stage / "metrics.json").is_file()
        assert summary["stages"][stage]["resumed"] is False and summary["stages"][stage]["fit_seconds"] > 0
    assert 0.0 <= summary["test"]["test/pckh@0.5_regression"] <= 1.0
    pretrained, _ = load_module(summary["stages"]["pretrain"]["best_checkpoint"])
    regressed, config = load_module(summary["best_checkpoint"])
    assert config.data.split == {"train": [1, 8], "val": [9, 12], "test": [13, 16]}  # int8 calibration reads it
    before, after = pretrained.state_dict(), regressed.state_dict()
    frozen = [k for k in before if not k.startswith("net.regression_branch.")]
    trained = [k for k in before if k.startswith("net.regression_branch.") and before[k].is_floating_point()]
    assert all(torch.equal(before[k], after[k]) for k in frozen)  # weights and BatchNorm statistics
    assert any(not torch.equal(before[k], after[k]) for k in trained)


def test_resume_after_a_kill_continues_from_last_checkpoint(train_cfg, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    marker.write_text("")
    overrides = [
        "phase=pretrain",
        "phase.stages.pretrain.epochs=3",
        "trainer.max_steps=-1",
        "+callbacks.crash._target_=test_train.CrashOnce",
        "+callbacks.crash.epoch=2",
        f"+callbacks.crash.marker={marker}",
    ]
    cfg = train_cfg(*overrides)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(cfg)
    run = Path(cfg.paths.output_dir)
    assert (run / "pretrain/checkpoints/last.ckpt").is_file()
    assert not (run / "pretrain/metrics.json").exists()
    started_with = OmegaConf.to_container(OmegaConf.load(run / RUN_OVERRIDES))
    assert "phase.stages.pretrain.epochs=3" in started_with
    resumed = train_cfg(f"resume={run}")
    resumed.paths.output_dir = str(run)
    summary = train(resumed)
    # The resume keeps the command the run started with (Hydra's .hydra/overrides.yaml would be rewritten).
    assert OmegaConf.to_container(OmegaConf.load(run / RUN_OVERRIDES)) == started_with
    # The second fit starts from the checkpointed epoch, not from scratch.
    assert marker.read_text().split("\n")[:2] == ["start 0", "crash"]
    assert int(marker.read_text().split("\n")[2].split()[1]) >= 1
    assert summary["stages"]["pretrain"]["epochs"] == 3
    assert summary["stages"]["pretrain"]["resumed"] is True and summary["stages"]["pretrain"]["fit_seconds"] > 0
    # The killed fit's logs survive the resume, which logs beside them.
    logs = sorted(p.parent.name for p in (run / "pretrain/logs").glob("version_*/metrics.csv"))
    assert logs == ["version_0", "version_1"]
    # Resuming a finished run does nothing and returns the same numbers.
    assert train(resumed)["test"] == summary["test"]


def test_regression_phase_needs_pretrained_weights(train_cfg) -> None:
    from omegaconf.errors import MissingMandatoryValue

    with pytest.raises(MissingMandatoryValue, match="init_from"):
        train(train_cfg("phase=regression"))


def test_a_stage_schedule_is_sized_to_that_stage(train_cfg) -> None:
    cfg = train_cfg(
        "phase=pretrain",
        "phase.stages.pretrain.epochs=3",
        "trainer.max_steps=-1",
        "+phase.stages.pretrain.scheduler={_target_: pose_lab.schedules.cosine, _partial_: true, final_ratio: 0.1}",
    )
    train(cfg)
    with open(Path(cfg.paths.output_dir) / "pretrain/logs/version_0/metrics.csv") as log:
        rates = [float(row["lr-Adam"]) for row in csv.DictReader(log) if row.get("lr-Adam")]
    # The whole cosine runs within the stage's 3 epochs: base rate first, final_ratio of it last.
    assert rates == pytest.approx([1e-3, 1e-3 * (0.1 + 0.9 * 0.5), 1e-3 * 0.1])


def test_a_stage_may_have_its_own_learning_rate(train_cfg) -> None:
    cfg = train_cfg("phase=both", "phase.stages.regression.lr=0.01")
    train(cfg)
    for stage, expected in (("pretrain", 1e-3), ("regression", 0.01)):  # conf/model/base.yaml's lr, the stage's
        with open(Path(cfg.paths.output_dir) / stage / "logs/version_0/metrics.csv") as log:
            rates = [float(row["lr-Adam"]) for row in csv.DictReader(log) if row.get("lr-Adam")]
        assert rates and rates == pytest.approx([expected] * len(rates)), stage


def test_a_moved_run_folder_resumes_from_its_own_checkpoints(train_cfg, tmp_path: Path) -> None:
    cfg = train_cfg("phase=both")
    first = Path(cfg.paths.output_dir)
    train(cfg)
    moved = tmp_path / "copied_back"
    shutil.move(first, moved)
    shutil.rmtree(moved / "regression")  # as if the run had stopped before its regression stage
    (moved / "metrics.json").unlink()
    resumed = train_cfg(f"resume={moved}")
    resumed.paths.output_dir = str(moved)
    summary = train(resumed)
    assert summary["stages"]["pretrain"]["best_checkpoint"] == str(moved / "pretrain/checkpoints/best.ckpt")
    assert Path(summary["best_checkpoint"]).is_relative_to(moved / "regression")


def test_last_checkpoint_is_the_latest_epoch_when_the_best_is_older(train_cfg) -> None:
    """Monitoring the epoch number for its minimum, the best checkpoint is epoch 0's; last.ckpt must still be the
    final epoch's, or a resumed run would go back to the best epoch."""
    cfg = train_cfg("phase=pretrain", "phase.stages.pretrain.epochs=3", "trainer.max_steps=-1",
                    "phase.stages.pretrain.monitor=epoch", "callbacks.model_checkpoint.mode=min")
    summary = train(cfg)
    checkpoints = Path(cfg.paths.output_dir) / "pretrain/checkpoints"
    assert torch.load(summary["best_checkpoint"], weights_only=False)["epoch"] == 0
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["epoch"] == 2
    assert sorted(path.name for path in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_init_groups_take_those_groups_and_leave_the_others_fresh(train_cfg, smoke_checkpoint: Path,
                                                                  tmp_path: Path) -> None:
    """A regression branch that reads the heatmaps cannot take the smoke run's: init_groups gives it a fresh one
    on the smoke run's backbone and heatmap branch, which the regression phase then leaves as they were."""
    cfg = train_cfg("phase=regression", f"phase.init_from={smoke_checkpoint}",
                    "phase.init_groups=[backbone,heatmap_branch]", "model.net.regression_inputs=[coords,heatmaps]")
    summary = train(cfg)
    source = torch.load(smoke_checkpoint, weights_only=False)["state_dict"]
    regressed, _ = load_module(summary["best_checkpoint"])
    after = regressed.state_dict()
    assert all(torch.equal(source[k], after[k]) for k in source if not k.startswith("net.regression_branch."))
    tap_input = after["net.regression_branch.stages.conv12.conv_a.down.depthwise.weight"]
    assert tap_input.shape[0] == cfg.model.net.decoder_channels + 2 + NUM_JOINTS  # tap, coords, heatmaps

    everything = train_cfg("phase=regression", f"phase.init_from={smoke_checkpoint}",
                           "model.net.regression_inputs=[coords]")
    everything.paths.output_dir = str(tmp_path / "everything")
    with pytest.raises(CheckpointError, match="different network"):
        train(everything)


@pytest.mark.parametrize("groups, message", [("[regression]", "non-empty subset"), ("[]", "non-empty subset")])
def test_init_groups_name_parameter_groups(train_cfg, smoke_checkpoint: Path, groups: str, message: str) -> None:
    cfg = train_cfg("phase=regression", f"phase.init_from={smoke_checkpoint}", f"phase.init_groups={groups}")
    with pytest.raises(CheckpointError, match=message):
        train(cfg)
