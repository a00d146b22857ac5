"""rerun: a run's recorded command checked against today's conf/, and the overrides that bring back its config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from pose_lab.paths import RUN_CONFIG, RUN_OVERRIDES
from pose_lab.report import report
from pose_lab.reporting.runs import load_run
from pose_lab.rerun import (RUN_LOCATION, SETTINGS_ADDED_SINCE, check_rerun, completed_settings, composed_settings,
                             main, override_value, read_override_value, rerun_command, run_overrides)

EVIDENCE = Path(__file__).resolve().parents[1] / "results" / "evidence" / "train"
OVERRIDES = ["model=neg_heatmap_extra_maps", "data.split=seed", "seed=3"]


def _settings(tmp_path: Path, overrides: list[str] = OVERRIDES) -> dict[str, Any]:
    return composed_settings(overrides, tmp_path)[0]


def _reproduced(settings: dict[str, Any], overrides: list[str], tmp_path: Path) -> None:
    """The recorded overrides plus the corrections compose `settings` again."""
    rerun = check_rerun(settings, overrides, tmp_path)
    assert rerun.exact
    if not rerun.corrections:  # check_rerun has compared the overrides' composed config with `settings` already
        return
    again, copies = composed_settings(overrides + rerun.corrections, tmp_path)
    for key in settings.keys() | again.keys():
        if not key.startswith((*RUN_LOCATION, *copies)):
            assert again.get(key) == settings.get(key, SETTINGS_ADDED_SINCE.get(key)), key


def _save_run(run: Path, settings_without: str) -> None:
    """A run folder as pose_lab.train leaves it, made when `settings_without` was not yet a setting."""
    run.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.create()
    for key, value in _settings(run).items():
        if key != settings_without:
            OmegaConf.update(config, key, value, force_add=True)
    OmegaConf.save(config, run / RUN_CONFIG)
    (run / RUN_OVERRIDES).write_text(yaml.safe_dump(OVERRIDES))


def test_a_run_made_with_todays_conf_needs_nothing(tmp_path: Path) -> None:
    rerun = check_rerun(_settings(tmp_path), OVERRIDES, tmp_path)
    assert rerun.exact and rerun.corrections == []


def test_a_default_changed_since_the_run_becomes_an_override(tmp_path: Path) -> None:
    settings = {**_settings(tmp_path), "model.net.stem_channels": 16, "model.optimizer.weight_decay": 0.5}
    rerun = check_rerun(settings, OVERRIDES, tmp_path)
    assert rerun.corrections == ["model.net.stem_channels=16", "model.optimizer.weight_decay=0.5"]
    _reproduced(settings, OVERRIDES, tmp_path)


def test_a_setting_added_since_the_run_is_set_to_what_runs_without_it_did(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings["model.net.extra_heatmap_prior"] == 0.99  # conf/model/neg_heatmap_extra_maps.yaml today
    del settings["model.net.extra_heatmap_prior"]
    assert check_rerun(settings, OVERRIDES, tmp_path).corrections == \
        ["model.net.extra_heatmap_prior=null"]
    _reproduced(settings, OVERRIDES, tmp_path)


def test_what_no_override_brings_back_is_named(tmp_path: Path) -> None:
    settings = {**_settings(tmp_path), "model.net.retired_setting": 3}
    del settings["trainer.log_every_n_steps"]
    rerun = check_rerun(settings, OVERRIDES, tmp_path)
    assert not rerun.exact
    assert [reason.split(" ")[0] for reason in rerun.irreparable] == ["model.net.retired_setting=3:",
                                                                       "trainer.log_every_n_steps"]
    gone = check_rerun(settings, ["model=retired_variant"], tmp_path)
    assert not gone.exact and "retired_variant" in gone.error


def test_where_the_run_was_made_is_not_compared_but_its_seed_is(tmp_path: Path) -> None:
    settings = {**_settings(tmp_path), "data.root": "/elsewhere/lsp", "paths.output_dir": "/elsewhere/run"}
    assert check_rerun(settings, OVERRIDES, tmp_path).corrections == []
    assert check_rerun({**settings, "seed": 7}, OVERRIDES, tmp_path).corrections == ["seed=7"]


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
    run, lost = tmp_path / "runs" / "old_prior", tmp_path / "runs" / "unrecorded_setting"
    _save_run(run, settings_without="model.net.extra_heatmap_prior")
    _save_run(lost, settings_without="trainer.log_every_n_steps")
    cfg = OmegaConf.create({"sweep": str(tmp_path / "runs"), "bench": None, "backend": "torch",
                            "output": str(tmp_path / "RESULTS.md"), "plot": str(tmp_path / "plot.png"),
                            "latency_path": "regression", "exercise_bench": None, "peer_bench": None,
                            "levers": None, "evaluations": None, "runtimes": None, "merge": False,
                            "label": None})
    markdown = Path(report(cfg)["output"]).read_text()
    assert (f"`python -m pose_lab.train {' '.join(OVERRIDES)}` (run `{run}`); needs "
            "`model.net.extra_heatmap_prior=null` added to compose its config with today's conf/") in markdown
    assert (f"(run `{lost}`); cannot be composed exactly with today's conf/: trainer.log_every_n_steps (today 10) "
            "is missing") in markdown


def test_the_command_line_prints_the_command_that_reproduces_a_run(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _save_run(tmp_path / "run", settings_without="model.net.extra_heatmap_prior")
    main([str(tmp_path / "run")])
    printed = capsys.readouterr().out.strip()
    assert printed == rerun_command(tmp_path / "run") == \
        f"python -m pose_lab.train {' '.join(OVERRIDES)} model.net.extra_heatmap_prior=null"


def test_the_command_line_names_what_is_wrong_with_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_status:
        main([str(tmp_path)])
    assert exit_status.value.code == 2 and "no run_config.yaml there" in capsys.readouterr().err
    _save_run(tmp_path / "run", settings_without="trainer.log_every_n_steps")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "run")])
    assert "cannot compose this run's config: trainer.log_every_n_steps" in capsys.readouterr().err


@pytest.mark.skipif(not EVIDENCE.is_dir(), reason="no results/evidence in this checkout")
def test_every_kept_run_is_reproduced_by_its_command_with_todays_conf(tmp_path: Path) -> None:
    # A change to conf/ that alters a finished run's recipe must be recorded (SETTINGS_ADDED_SINCE for a new
    # setting); the report then prints the overrides that undo it.
    folders = sorted(path.parent for path in EVIDENCE.rglob(RUN_CONFIG))
    assert folders
    for folder in folders:
        run = load_run(folder)
        _reproduced(run.settings, run_overrides(run.folder), tmp_path)


def test_a_run_made_before_a_setting_existed_is_completed_with_what_it_did() -> None:
    heatmap = {"sigma": 3.0, "stride": 2}
    settings = {**{f"codec.heatmap.{key}": value for key, value in heatmap.items()},
                **{f"data.heatmap_codec.{key}": value for key, value in heatmap.items()},  # a resolved copy
                "model.loss.coordinate.kind": "l1", "model.loss.coordinate.occluded_weight": 0.5,
                "phase.stages.regression.epochs": 120}
    completed = completed_settings(settings)
    assert completed["codec.heatmap.refine"] == completed["data.heatmap_codec.refine"] == \
        SETTINGS_ADDED_SINCE["codec.heatmap.refine"]
    assert completed["model.loss.coordinate.occluded_weight"] == 0.5  # recorded: kept
    assert completed["phase.stages.regression.lr"] is None
    assert not any(key.startswith("phase.stages.pretrain") for key in completed)  # a stage the run did not have
    assert completed_settings(completed) == completed
