"""compose_config: conf/*.yaml from Python, inside an initialised Hydra (an entry point's) or outside one."""

from __future__ import annotations

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from pose_lab.compose import compose_config, written_settings
from pose_lab.paths import CONF_DIR


def test_outside_hydra_composes_with_overrides_and_leaves_hydra_uninitialised() -> None:
    cfg = compose_config("exercise_video", ["exercise=pushup", "median_window=7"])
    assert cfg.exercise.name == "pushup"
    assert cfg.median_window == 7
    assert not GlobalHydra.instance().is_initialized()


def test_inside_an_initialised_hydra_keeps_it_initialised() -> None:
    # An entry point's @hydra.main holds Hydra initialised; composing another config must not clear that.
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose_config("train", ["model=vit"])
        assert GlobalHydra.instance().is_initialized()
        assert cfg.model.net.bridge.depth == 2  # conf/model/vit.yaml


def test_written_settings_are_flat_and_keep_interpolations() -> None:
    config = OmegaConf.create({"a": {"b": 1, "c": "${a.b}"}, "d": [1, 2], "e": {}})
    assert written_settings(config) == {"a.b": 1, "a.c": "${a.b}", "d": [1, 2], "e": {}}
