"""The training entry point end to end on the tiny fixture with trainer=smoke: stages, outputs, resume."""

import csv
import shutil
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from pose_lab.checkpoint import CheckpointError, load_module
from pose_lab.errors import PoseLabError
from pose_lab.paths import RUN_OVERRIDES
from pose_lab.skeleton import NUM_JOINTS
from pose_lab.train import train


class CrashOnce(L.Callback):
    """Simulates a kill at the start of `epoch` the first time; records the epoch and the time each fit starts from
    and the time each fit ends."""

    def __init__(self, epoch: int, marker: str) -> None:
        self.epoch = epoch
        self.marker = Path(marker)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with self.marker.open("a") as log:
            log.write(f"start {trainer.current_epoch} {time.monotonic()}\n")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with self.marker.open("a") as log:
            log.write(f"end {time.monotonic()}\n")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and "crash" not in self.marker.read_text():
            self.marker.write_text(self.marker.read_text() + "crash\n")
            raise RuntimeError("simulated kill")


class SlowFirstEpoch(L.Callback):
    """Makes epoch 0 `pause` seconds slower (a resumed fit starts after it)."""

    def __init__(self, pause: float) -> None:
        self.pause = pause

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 0:
            time.sleep(self.pause)


class WeightProbe(L.Callback):
    """Writes the sum of the network's weights as the test loop starts to `marker`."""

    def __init__(self, marker: str) -> None:
        self.marker = Path(marker)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.marker.write_text(str(sum(p.double().sum().item() for p in pl_module.net.parameters())))


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


def _killed_run(train_cfg, marker: Path, *overrides: str) -> Path:
    """A 3-epoch pretrain killed at the start of its third epoch (CrashOnce logging to `marker`): its folder."""
    marker.write_text("")
    cfg = train_cfg("phase=pretrain", "phase.stages.pretrain.epochs=3", "trainer.max_steps=-1",
                    "+callbacks.crash._target_=test_train.CrashOnce", "+callbacks.crash.epoch=2",
                    f"+callbacks.crash.marker={marker}", *overrides)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(cfg)
    return Path(cfg.paths.output_dir)


def _resumed(train_cfg, run: Path) -> DictConfig:
    """The config of `resume=run`, writing into that run."""
    cfg = train_cfg(f"resume={run}")
    cfg.paths.output_dir = str(run)
    return cfg


def test_resume_after_a_kill_continues_from_last_checkpoint(train_cfg, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    run = _killed_run(train_cfg, marker, "+callbacks.slow._target_=test_train.SlowFirstEpoch",
                      "+callbacks.slow.pause=1.0")
    assert (run / "pretrain/checkpoints/last.ckpt").is_file()
    assert not (run / "pretrain/metrics.json").exists()
    started_with = OmegaConf.to_container(OmegaConf.load(run / RUN_OVERRIDES))
    assert "phase.stages.pretrain.epochs=3" in started_with
    resumed = _resumed(train_cfg, run)
    summary = train(resumed)
    # The resume keeps the command the run started with (Hydra's .hydra/overrides.yaml would be rewritten).
    assert OmegaConf.to_container(OmegaConf.load(run / RUN_OVERRIDES)) == started_with
    # The second fit starts from the checkpointed epoch, not from scratch.
    first_start, crash, second_start, second_end = marker.read_text().split("\n")[:4]
    assert first_start.split()[1] == "0" and crash == "crash"
    assert int(second_start.split()[1]) >= 1
    assert summary["stages"]["pretrain"]["epochs"] == 3
    # The stage's fit time counts the killed process too (its slow first epoch), not the second process alone.
    record = summary["stages"]["pretrain"]
    second_process = float(second_end.split()[1]) - float(second_start.split()[2])
    assert record["resumed"] is True and record["fit_seconds_whole"] is True
    assert record["fit_seconds"] - second_process >= 1.0
    # The killed fit's logs survive the resume, which logs beside them.
    logs = sorted(p.parent.name for p in (run / "pretrain/logs").glob("version_*/metrics.csv"))
    assert logs == ["version_0", "version_1"]
    # Resuming a finished run does nothing and returns the same numbers.
    assert train(resumed)["test"] == summary["test"]


def test_a_resume_from_a_checkpoint_without_the_clock_says_its_time_is_partial(train_cfg, tmp_path: Path) -> None:
    run = _killed_run(train_cfg, tmp_path / "marker.txt")
    last = run / "pretrain/checkpoints/last.ckpt"
    written_before_the_clock = torch.load(last, weights_only=False)
    del written_before_the_clock["callbacks"]["Timer"]
    torch.save(written_before_the_clock, last)
    record = train(_resumed(train_cfg, run))["stages"]["pretrain"]
    assert record["resumed"] is True and record["fit_seconds_whole"] is False


def test_a_torn_last_checkpoint_is_named_with_the_ways_on(train_cfg, tmp_path: Path) -> None:
    run = _killed_run(train_cfg, tmp_path / "marker.txt")
    last = run / "pretrain/checkpoints/last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(PoseLabError, match=r"last\.ckpt: cannot be read to resume from .*best\.ckpt"):
        train(_resumed(train_cfg, run))


def test_a_split_without_val_trains_without_selection_and_keeps_the_final_epoch(train_cfg) -> None:
    cfg = train_cfg("phase=both", "phase.stages.pretrain.epochs=2", "phase.stages.regression.epochs=2",
                    "trainer.max_steps=-1")
    cfg.data.split = {"train": [1, 12], "test": [13, 16]}
    summary = train(cfg)
    run = Path(cfg.paths.output_dir)
    for stage in ("pretrain", "regression"):
        record = summary["stages"][stage]
        assert record["best_val"] is None and record["epochs"] == 2
        assert torch.load(record["best_checkpoint"], weights_only=False)["epoch"] == 1
        assert sorted(p.name for p in (run / stage / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
        with (run / stage / "logs/version_0/metrics.csv").open() as log:
            assert not any(key.startswith("val/") for key in next(csv.reader(log)))
    assert 0.0 <= summary["test"]["test/pckh@0.5_regression"] <= 1.0


def test_a_stage_records_its_own_fit_time(train_cfg) -> None:
    """No more than the stage's wall time: testing the best checkpoint (here the final epoch's, monitoring the epoch
    for its maximum) must not add the clock it carries to the clock of the fit."""
    cfg = train_cfg("phase=pretrain", "phase.stages.pretrain.epochs=3", "trainer.max_steps=-1",
                    "phase.stages.pretrain.monitor=epoch", "+callbacks.slow._target_=test_train.SlowFirstEpoch",
                    "+callbacks.slow.pause=1.5")
    started = time.monotonic()
    record = train(cfg)["stages"]["pretrain"]
    assert 1.5 <= record["fit_seconds"] <= time.monotonic() - started


def test_weight_averaging_is_what_the_checkpoint_holds_and_the_test_scores(train_cfg, tmp_path: Path) -> None:
    marker = tmp_path / "tested_weights.txt"
    cfg = train_cfg("phase=pretrain", "phase.stages.pretrain.epochs=3", "trainer.max_steps=-1", "callbacks=ema",
                    "callbacks.ema.decay=0.5", "+callbacks.probe._target_=test_train.WeightProbe",
                    f"+callbacks.probe.marker={marker}")
    best = torch.load(train(cfg)["best_checkpoint"], weights_only=False)
    averaged, raw = best["state_dict"], best["current_model_state"]
    weights = [key for key in averaged if key.startswith("net.") and "running_" not in key and
               "num_batches" not in key]
    assert not all(torch.equal(averaged[key], raw[key]) for key in weights)
    assert float(marker.read_text()) == pytest.approx(sum(averaged[key].double().sum().item() for key in weights))


def test_a_run_with_weight_averaging_resumes_with_its_average(train_cfg, tmp_path: Path) -> None:
    run = _killed_run(train_cfg, tmp_path / "marker.txt", "callbacks=ema")
    record = train(_resumed(train_cfg, run))["stages"]["pretrain"]
    assert record["epochs"] == 3 and record["resumed"] is True
    assert "current_model_state" in torch.load(record["best_checkpoint"], weights_only=False)


def test_max_time_still_stops_a_stage(train_cfg) -> None:
    """The stage's fit clock takes trainer.max_time over from the trainer: a stage over its budget stops."""
    cfg = train_cfg("phase=pretrain", "phase.stages.pretrain.epochs=500", "trainer.max_steps=-1",
                    "+trainer.max_time={seconds: 2}")
    record = train(cfg)["stages"]["pretrain"]
    assert record["epochs"] < 500 and 2.0 <= record["fit_seconds"] < 60


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
    summary = train(_resumed(train_cfg, moved))
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
