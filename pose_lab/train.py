"""Train a pose_lab model: `python -m pose_lab.train model=base phase=pretrain` (any value is an override).

Each phase stage (pretrain, regression, or both in turn) is one Lightning fit in its own folder of the run
directory, with best/last checkpoints, CSV + TensorBoard logs and a `metrics.json` written when it ends.
A killed run continues with the single override `resume=RUN_DIR`: finished stages are skipped and the
running one continues from its `last.ckpt`, under the config the run started with.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint, Timer
from omegaconf import DictConfig, OmegaConf

from pose_lab.checkpoint import StoreConfig, checkpoint_config, load_weights
from pose_lab.data.splits import split_subsets
from pose_lab.errors import PoseLabError, exit_on_user_error
from pose_lab.jsonfile import write_json
from pose_lab.paths import RUN_CONFIG, RUN_OVERRIDES
from pose_lab.phases import TrainOnly

# Within a stage's folder: the checkpoint written after every epoch, which a resume continues from.
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def _run_config(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """The config this run started with (kept in the run folder, with its overrides), so a resume cannot silently
    change it."""
    saved = run_dir / RUN_CONFIG
    if cfg.get("resume"):
        if not saved.is_file():
            raise PoseLabError(
                f"resume={cfg.resume}: no {RUN_CONFIG} there; pass the folder of a run started by pose_lab.train"
            )
        return OmegaConf.load(saved)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    OmegaConf.save(resolved, saved)
    if HydraConfig.initialized():
        OmegaConf.save(OmegaConf.create(list(HydraConfig.get().overrides.task)), run_dir / RUN_OVERRIDES)
    return resolved


def _relocated(result: dict[str, Any], stage_dir: Path) -> dict[str, Any]:
    """A finished stage's record, with its best checkpoint found in `stage_dir` when the run folder has moved
    since it was written (copied back from a GPU machine, say), so that the next stage can start from it."""
    recorded = Path(result["best_checkpoint"])
    here = stage_dir / "checkpoints" / recorded.name
    if not recorded.is_file() and here.is_file():
        return {**result, "best_checkpoint": str(here)}
    return result


def _holds_fit_clock(checkpoint: Path) -> bool:
    """Whether the checkpoint a stage resumes from carries a Timer's state, i.e. the fit time of the processes
    that wrote it."""
    try:
        state = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=False)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise PoseLabError(
            f"{checkpoint}: cannot be read to resume from ({error}); a kill while it was being written tears it. "
            f"Copy {checkpoint.parent / 'best.ckpt'} over it to resume from the best epoch, or delete it to "
            "restart this stage"
        ) from error
    return Timer().state_key in state.get("callbacks", {})


def _stage_trainer(cfg: DictConfig, stage: DictConfig, stage_dir: Path) -> tuple[L.Trainer, ModelCheckpoint, Timer]:
    """The stage's trainer, with the callbacks whose state the stage's record reads: the best-checkpoint one and
    the fit clock."""
    last = stage_dir / LAST_CHECKPOINT
    # Without a val subset nothing is selected: the "best" checkpoint is the final epoch's.
    validated = "val" in split_subsets(cfg.data.split)
    checkpointing: ModelCheckpoint = instantiate(
        cfg.callbacks.model_checkpoint, dirpath=str(last.parent), monitor=stage.monitor if validated else None,
        save_last=False
    )
    # Lightning's save_last copies a checkpoint only when the best one is saved: a run stopped after epochs without
    # a new best would resume from that older epoch. This one writes last.ckpt after every epoch.
    latest = [ModelCheckpoint(dirpath=str(last.parent), filename=last.stem, save_top_k=1,
                              enable_version_counter=False)] if cfg.callbacks.model_checkpoint.get("save_last") else []
    others = [instantiate(c) for key, c in cfg.callbacks.items() if key != "model_checkpoint"]
    loggers = [instantiate(c, save_dir=str(stage_dir)) for c in (cfg.logger or {}).values()]
    # Lightning's Timer keeps the elapsed fit time in every checkpoint, so a resumed stage's time counts each of
    # its processes; it is also what enforces trainer.max_time, whose budget it takes over from the trainer.
    max_time = cfg.trainer.get("max_time")
    clock = Timer(duration=OmegaConf.to_container(max_time) if isinstance(max_time, DictConfig) else max_time)
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        max_epochs=stage.epochs,
        max_time=None,
        **({} if validated else {"limit_val_batches": 0}),
        callbacks=[TrainOnly(stage.train), checkpointing, *latest, StoreConfig(checkpoint_config(cfg)), clock,
                   *others],
        logger=loggers or False,
        default_root_dir=str(stage_dir),
    )
    return trainer, checkpointing, clock


def run_stage(cfg: DictConfig, name: str, stage: DictConfig, datamodule: L.LightningDataModule,
              stage_dir: Path, init_from: str | None, init_groups: Sequence[str] | None = None) -> dict[str, Any]:
    """Fit one phase stage (or skip it if it already finished) and test its best checkpoint; a new stage starts
    from the `init_groups` of `init_from` (all of it where None)."""
    done = stage_dir / "metrics.json"
    if done.is_file():
        return _relocated(json.loads(done.read_text()), stage_dir)
    L.seed_everything(cfg.seed, workers=True)
    optimizer = cfg.model.optimizer if stage.get("lr") is None else OmegaConf.merge(cfg.model.optimizer,
                                                                                     {"lr": stage.lr})
    module = instantiate(cfg.model, scheduler=stage.get("scheduler"), optimizer=optimizer)
    last = stage_dir / LAST_CHECKPOINT
    last_existed = last.is_file()
    if init_from and not last_existed:
        load_weights(module, init_from, init_groups)
    trainer, checkpointing, clock = _stage_trainer(cfg, stage, stage_dir)
    clock_carried = not last_existed or _holds_fit_clock(last)
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if last_existed else None)
    fit_seconds = clock.time_elapsed("train")
    best = checkpointing.best_model_path or str(last)
    # The best checkpoint's weights as the file holds them: testing it through `ckpt_path` would restore every
    # callback's state from it too (a weight average would put back the raw weights, the clock that epoch's time).
    module.load_state_dict(torch.load(best, map_location="cpu", weights_only=False)["state_dict"])
    tested = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    result = {
        "stage": name,
        "trained": list(stage.train),
        "epochs": trainer.current_epoch,
        "monitor": stage.monitor,
        "best_val": float(checkpointing.best_model_score) if checkpointing.best_model_score is not None else None,
        "best_checkpoint": best,
        # Wall time, so it includes any time the process was stopped; the part of an epoch a kill interrupted is
        # not counted, its rerun is.
        "fit_seconds": round(fit_seconds, 1),
        "resumed": last_existed,
        # False where the stage resumed from a checkpoint written before pose_lab kept the clock in it: then
        # fit_seconds is the last process's alone.
        "fit_seconds_whole": clock_carried,
        "test": {key: float(value) for key, value in tested.items()},
    }
    write_json(done, result)
    return result


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run every stage of `cfg.phase` in order; returns and writes the run summary (metrics.json)."""
    run_dir = Path(cfg.paths.output_dir)
    cfg = _run_config(cfg, run_dir)
    datamodule = instantiate(cfg.data)
    init_from, init_groups = cfg.phase.init_from, cfg.phase.get("init_groups")
    stages = {}
    for name, stage in cfg.phase.stages.items():
        stages[name] = run_stage(cfg, name, stage, datamodule, run_dir / name, init_from, init_groups)
        # A later stage continues the whole network of the stage before it.
        init_from, init_groups = stages[name]["best_checkpoint"], None
    final = stages[name]
    summary = {
        "model": cfg.model_name,
        "seed": cfg.seed,
        "split": OmegaConf.to_container(cfg.data, resolve=True)["split"],
        "input_size": cfg.data.input_size,
        "final_stage": name,
        "test": final["test"],
        "best_checkpoint": final["best_checkpoint"],
        "stages": stages,
    }
    write_json(run_dir / "metrics.json", summary)
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    """Returns the final stage's test score on its monitored metric, for Hydra sweepers to optimise."""
    summary = train(cfg)
    print(json.dumps(summary["test"], indent=2))
    final = summary["stages"][summary["final_stage"]]
    return summary["test"][final["monitor"].replace("val/", "test/", 1)]


if __name__ == "__main__":
    main()
