"""Compose one of pose_lab's Hydra configs (conf/*.yaml) from Python, inside a Hydra app or outside one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from pose_lab.paths import CONF_DIR


def compose_config(config_name: str, overrides: Sequence[str] = (), with_hydra: bool = False) -> DictConfig:
    """conf/<config_name>.yaml with command-line style overrides (e.g. "model=vit"); `with_hydra` keeps the
    `hydra` node (its runtime choices), which `${hydra:...}` interpolations read.

    Inside an entry point's `@hydra.main`, Hydra is already initialised on conf/: reuse it, since clearing it
    would discard the app's own state. Anywhere else, initialise Hydra on conf/ for this one call.
    """
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=with_hydra)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=with_hydra)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A config as a plain container (OmegaConf.to_container) -> {"a.b.c": leaf}; lists stay leaves."""
    if not isinstance(tree, dict) or not tree:
        return {prefix: tree}
    flat = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return {key.removesuffix("."): value for key, value in flat.items()}


def written_settings(config: DictConfig) -> dict[str, Any]:
    """`config`'s settings as written, interpolations left unresolved, flattened to dotted keys."""
    return flatten(OmegaConf.to_container(config, resolve=False))


def plain(value: Any) -> Any:
    """A config value as a plain container (resolved); any other value as it is."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
