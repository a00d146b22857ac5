"""rerun: a run's recorded command checked against today's conf/, and the overrides that bring back its config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from pose_lab.report import PER_RUN_SETTINGS, load_run, report, run_overrides
from pose_lab.rerun import (SETTINGS_ADDED_SINCE, check_rerun, composed_settings, override_value,
                             read_override_value)
from pose_lab.train import RUN_CONFIG, RUN_OVERRIDES

EVIDENCE = Path(__file__).resolve().parents[1] / "results" / "evidence" / "train"
OVERRIDES = ["model=neg_heatmap_extra_maps", "data.split=seed", "seed=3"]


def _settings(tmp_path: Path, overrides: list[str] = OVERRIDES) -> dict[str, Any]:
    return composed_settings(overrides, tmp_path)[0]


def _reproduced(settings: dict[str, Any], overrides: list[str], tmp_path: Path) -> None:
    """The recorded overrides plus the corrections compose `settings` again."""
    rerun = check_rerun(settings, overrides, tmp_path, PER_RUN_SETTINGS)
    assert rerun.exact
    again, copies = composed_settings(overrides + rerun.corrections, tmp_path)
    for key in settings.keys() | again.keys():
        if not key.startswith((*PER_RUN_SETTINGS, *copies)):
            assert again.get(key) == settings.get(key, SETTINGS_ADDED_SINCE.get(key)), key


def test_a_run_made_with_todays_conf_needs_nothing(tmp_path: Path) -> None:
    rerun = check_rerun(_settings(tmp_path), OVERRIDES, tmp_path, PER_RUN_SETTINGS)
    assert rerun.exact and rerun.corrections == []


def test_a_default_changed_since_the_run_becomes_an_override(tmp_path: Path) -> None:
    settings = {**_settings(tmp_path), "model.net.stem_channels": 16, "model.optimizer.weight_decay": 0.5}
    rerun = check_rerun(settings, OVERRIDES, tmp_path, PER_RUN_SETTINGS)
    assert rerun.corrections == ["model.net.stem_channels=16", "model.optimizer.weight_decay=0.5"]
    _reproduced(settings, OVERRIDES, tmp_path)


def test_a_setting_added_since_the_run_is_set_to_what_runs_without_it_did(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings["model.net.extra_heatmap_prior"] == 0.99  # conf/model/neg_heatmap_extra_maps.yaml today
    del settings["model.net.extra_heatmap_prior"]
    assert check_rerun(settings, OVERRIDES, tmp_path, PER_RUN_SETTINGS).corrections == \
        ["model.net.extra_heatmap_prior=null"]
    _reproduced(settings, OVERRIDES, tmp_path)


def test_what_no_override_brings_back_is_named(tmp_path: Path) -> None:
    settings = {**_settings(tmp_path), "model.net.retired_setting": 3}
    del settings["trainer.log_every_n_steps"]
    rerun = check_rerun(settings, OVERRIDES, tmp_path, PER_RUN_SETTINGS)
    assert not rerun.exact
    assert [reason.split(" ")[0] for reason in rerun.irreparable] == ["model.net.retired_setting=3:",
                                                                       "trainer.log_every_n_steps"]
    gone = check_rerun(settings, ["model=retired_variant"], tmp_path, PER_RUN_SETTINGS)
    assert not gone.exact and "retired_variant" in gone.error


def test_the_seed_and_paths_are_not_compared(tmp_path: Path) -> None:
    settings = {**_settings(tmp_path), "seed": 7, "data.root": "/elsewhere/lsp"}
    assert check_rerun(settings, OVERRIDES, tmp_path, PER_RUN_SETTINGS).corrections == []


@pytest.mark.parametrize("value", [None, True, 3, 0.001, "cosine", "two words", "it's", 'say "hi"', "a\\b", "end\\",
                                   'a\\"b', "a=b,c", "null", "1e-3", [64, 128], ["a b", "c"], {}])
def test_override_values_read_back_as_themselves(value: Any) -> None:
    parsed = OverridesParser.create().parse_override(f"key={override_value(value)}").value()
    assert parsed == value and type(parsed) is type(value)


def test_a_value_reads_back_from_its_override_text_and_older_unquoted_labels_as_typed() -> None:
    for value in ("seed split, CPU", 'say "hi"', None, [1, 2]):
        assert read_override_value(override_value(value)) == value
    assert read_override_value("sigma 3, L1 recipe, CPU") == "sigma 3, L1 recipe, CPU"


def test_the_report_lists_what_a_command_needs_today(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "old_prior"
    run.mkdir(parents=True)
    settings = _settings(run)
    del settings["model.net.extra_heatmap_prior"]
    config = OmegaConf.create()
    for key, value in settings.items():
        OmegaConf.update(config, key, value, force_add=True)
    OmegaConf.save(config, run / RUN_CONFIG)
    (run / RUN_OVERRIDES).write_text(yaml.safe_dump(OVERRIDES))
    cfg = OmegaConf.create({"sweep": str(tmp_path / "runs"), "bench": None, "backend": "torch",
                            "output": str(tmp_path / "RESULTS.md"), "plot": str(tmp_path / "plot.png"),
                            "latency_path": "regression", "exercise_bench": None, "peer_bench": None,
                            "levers": None, "merge": False, "label": None})
    markdown = Path(report(cfg)["output"]).read_text()
    assert (f"`python -m pose_lab.train {' '.join(OVERRIDES)}` (run `{run}`); needs "
            "`model.net.extra_heatmap_prior=null` added to compose its config with today's conf/") in markdown


@pytest.mark.skipif(not EVIDENCE.is_dir(), reason="no results/evidence in this checkout")
def test_every_kept_run_is_reproduced_by_its_command_with_todays_conf(tmp_path: Path) -> None:
    # A change to conf/ that alters a finished run's recipe must be recorded (SETTINGS_ADDED_SINCE for a new
    # setting); the report then prints the overrides that undo it.
    folders = sorted(path.parent for path in EVIDENCE.rglob(RUN_CONFIG))
    assert folders
    for folder in folders:
        run = load_run(folder)
        _reproduced(run.settings, run_overrides(run), tmp_path)
