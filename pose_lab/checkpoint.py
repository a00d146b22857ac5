"""Checkpoints that rebuild themselves: the resolved model/codec config travels inside every checkpoint.

A Lightning checkpoint gets a `pose_lab` entry (config + package version) through the `StoreConfig`
callback; `slim` turns it into an inference-only fp16 file small enough to commit. `load_module` reads
either, so evaluate/predict need nothing but the path.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import pose_lab
from pose_lab.errors import PoseLabError
from pose_lab.module import PoseLitModule
from pose_lab.phases import PARAMETER_GROUPS, valid_groups

# The committed default model (README: Model card): what predict, evaluate and the exercise commands use when
# ckpt is null.
DEFAULT_CHECKPOINT = (Path(__file__).resolve().parents[1] / "checkpoints"
                      / "base_lsp192_sigma3_l1_150_wide_softargmax_s16.pt")


def checkpoint_path(ckpt: str | Path | None) -> Path:
    """A command's `ckpt` setting as a path: null (or empty) means the shipped DEFAULT_CHECKPOINT."""
    return Path(ckpt) if ckpt else DEFAULT_CHECKPOINT


CONFIG_KEYS = ("model", "codec", "data")


class CheckpointError(PoseLabError):
    """A checkpoint that cannot be used: missing, not a pose_lab file, or from an incompatible version."""


def checkpoint_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved parts of a run config needed to rebuild the model, and the split it was trained on (data
    paths left out: they belong to the machine)."""
    config = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in CONFIG_KEYS}
    config["data"] = {"input_size": config["data"]["input_size"], "split": config["data"]["split"]}
    return config


class StoreConfig(L.Callback):
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["pose_lab"] = {"config": self.config, "version": pose_lab.__version__}


def _read(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        # Lightning checkpoints hold callback state beyond plain tensors; only load files you trust.
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error
    if not isinstance(checkpoint, dict) or "pose_lab" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{path} is not a pose_lab checkpoint (no 'pose_lab' config entry); "
            "use a file written by `python -m pose_lab.train` or `python -m pose_lab.checkpoint`"
        )
    major = checkpoint["pose_lab"]["version"].split(".")[0]
    if major != pose_lab.__version__.split(".")[0]:
        raise CheckpointError(
            f"{path} was written by pose_lab {checkpoint['pose_lab']['version']}, "
            f"incompatible with the installed {pose_lab.__version__}"
        )
    return checkpoint


def load_module(path: str | Path) -> tuple[PoseLitModule, DictConfig]:
    """Rebuild the LightningModule of a checkpoint, weights loaded in fp32 and set to eval()."""
    checkpoint = _read(path)
    config = OmegaConf.create(checkpoint["pose_lab"]["config"])
    module: PoseLitModule = instantiate(config.model)
    state = {name: value.float() if value.is_floating_point() else value
             for name, value in checkpoint["state_dict"].items()}
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"weights in {path} do not fit the network its config describes: {error}") from error
    return module.eval(), config


def checkpoint_fingerprint(checkpoint: str | Path) -> str:
    """The first 16 hex digits of the checkpoint file's SHA-256: what it is, whatever its path (recorded in its
    ONNX copies, so a copy is known to be current from its content: file times are not kept by git or copying, and
    in evaluate's metrics.json, so evaluations of one file from two clones compare)."""
    return hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:16]


def load_weights(module: PoseLitModule, path: str | Path, groups: Sequence[str] | None = None) -> None:
    """Initialise `module` from another checkpoint (e.g. the pretrain phase's best) of the same variant; with
    `groups`, only those parameter groups (phases.PARAMETER_GROUPS), and the others keep their initial weights."""
    partial = groups is not None
    if partial and not valid_groups(groups):
        raise CheckpointError(f"init_groups must be a non-empty subset of {PARAMETER_GROUPS}, got {list(groups)}")
    prefixes = tuple(f"net.{group}." for group in groups) if partial else ("",)
    state = {name: value for name, value in _read(path)["state_dict"].items() if name.startswith(prefixes)}
    try:
        # strict for a whole network; a partial load leaves the other groups' weights missing on purpose
        missing, _ = module.load_state_dict(state, strict=not partial)
    except RuntimeError as error:
        raise CheckpointError(
            f"cannot initialise from {path}: it holds a different network (another model variant or "
            f"input size?): {error}"
        ) from error
    lacking = [name for name in missing if name.startswith(prefixes)]
    if lacking:
        raise CheckpointError(f"cannot initialise {list(groups)} from {path}: it lacks {lacking[:3]} "
                              f"({len(lacking)} weights); is it another model variant?")


def slim(source: str | Path, target: str | Path, metrics: dict[str, Any] | None = None) -> Path:
    """Write an inference-only fp16 copy of a checkpoint: weights, config, version (and optional metrics)."""
    checkpoint = _read(source)
    state = {name: value.half() if value.is_floating_point() else value
             for name, value in checkpoint["state_dict"].items()}
    entry = dict(checkpoint["pose_lab"], **({"metrics": metrics} if metrics else {}))
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"pose_lab": entry, "state_dict": state}, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description="Write an inference-only fp16 copy of a pose_lab checkpoint.")
    parser.add_argument("source", help="a checkpoint written by pose_lab.train (e.g. .../checkpoints/best.ckpt)")
    parser.add_argument("target", help="where to write the slim checkpoint (.pt)")
    args = parser.parse_args()
    path = slim(args.source, args.target)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
