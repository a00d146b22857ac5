"""Compose one of pose_lab's Hydra configs (conf/*.yaml) from Python, inside a Hydra app or outside one."""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from pose_lab.paths import CONF_DIR


def compose_config(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """conf/<config_name>.yaml with command-line style overrides (e.g. "model=vit").

    Inside an entry point's `@hydra.main`, Hydra is already initialised on conf/: reuse it, since clearing it
    would discard the app's own state. Anywhere else, initialise Hydra on conf/ for this one call.
    """
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=list(overrides))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))
