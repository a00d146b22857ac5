"""A run folder's recorded recipe (its config and the overrides it was started with), what that command composes
with today's conf/, and the overrides that bring it back to the run's own config: defaults change and settings are
added after runs are made, and a command that RESULTS.md lists must still reproduce its run, or say that it cannot.

`python -m pose_lab.rerun RUN_DIR` prints the command that reproduces a run today."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from pose_lab.compose import compose_config, flatten, written_settings
from pose_lab.errors import PoseLabError, exit_on_user_error
from pose_lab.paths import RUN_CONFIG, RUN_OVERRIDES

# Settings added to conf/ after runs were made without them, each with the value that does what those runs did:
# a run whose config lacks one behaved as this value.
SETTINGS_ADDED_SINCE: dict[str, Any] = {
    "codec.heatmap.refine": "quarter",  # the quarter-pixel step was the only refinement before DARK's was added
    "model.net.extra_heatmap_prior": None,  # before it, the extra maps started at the joints' prior
    "phase.stages.pretrain.lr": None,  # before a stage could have its own, both used model.optimizer.lr
    "phase.stages.regression.lr": None,
    "model.loss.coordinate.occluded_weight": 1.0,  # before it, occluded joints counted as visible ones
    "model.net.regression_inputs": [],  # before it, the regression branch read its tap alone
    "phase.init_groups": None,  # before it, phase.init_from gave every weight
    "model.net.regression_readout": "dense",  # before it, the regression branch had BlazePose's dense head
}
# Where a run was made (dotted-key prefixes: its folders, its copy of the data, its resume): a rerun elsewhere need
# not bring them back.
RUN_LOCATION: tuple[str, ...] = ("resume", "paths.", "data.root")
# Strings that may go unquoted in an override, if the grammar reads them back as strings ("1e-3" is a float).
_PLAIN = re.compile(r"[\w./:@-]+")
_OVERRIDES = OverridesParser.create()


@dataclass(frozen=True)
class Rerun:
    """A run's recorded overrides checked against today's conf/."""

    corrections: list[str]  # overrides to add to the recorded ones so that they compose the run's config
    irreparable: list[str]  # settings no override brings back: why, one per setting
    error: str | None = None  # why the recorded overrides no longer compose at all

    @property
    def exact(self) -> bool:
        """True when the recorded overrides plus `corrections` compose the run's config."""
        return self.error is None and not self.irreparable

    @property
    def reasons(self) -> list[str]:
        """Why the run's config cannot be composed exactly today (empty when it can)."""
        return [self.error] if self.error else self.irreparable


def subtree(settings: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The flattened `settings` under `prefix`, keys relative to it."""
    return {key[len(prefix) + 1:]: value for key, value in settings.items() if key.startswith(f"{prefix}.")}


def completed_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A run's flattened settings with each setting of SETTINGS_ADDED_SINCE that it lacks set to what runs without
    it did, where the setting's parent is there, and in every subtree holding the same settings as that parent (a
    copy that an interpolation such as data.heatmap_codec: ${codec.heatmap} saved resolved): the run as it
    trained, comparable with runs made since."""
    completed = dict(settings)
    prefixes = {key.rpartition(".")[0] for key in settings}
    for key, then in SETTINGS_ADDED_SINCE.items():
        parent, _, leaf = key.rpartition(".")
        if key in settings or parent not in prefixes:
            continue
        content = subtree(settings, parent)
        for prefix in (other for other in prefixes if other == parent or subtree(settings, other) == content):
            completed.setdefault(f"{prefix}.{leaf}", then)
    return completed


def read_yaml(path: Path, kind: type[DictConfig | ListConfig] = DictConfig) -> Any:
    """A YAML file written by pose_lab.train or Hydra, as a DictConfig (or ListConfig)."""
    try:
        loaded = OmegaConf.load(path)
    except (OSError, YAMLError, OmegaConfBaseException) as error:
        raise PoseLabError(f"{path}: cannot read it as YAML ({error}); delete or fix that run folder") from error
    if not isinstance(loaded, kind):
        raise PoseLabError(f"{path}: expected a {'mapping' if kind is DictConfig else 'list'}; "
                           "delete or fix that run folder")
    return loaded


def run_overrides(folder: Path) -> list[str] | None:
    """The overrides the run in `folder` was started with (its RUN_OVERRIDES; runs written before it:
    .hydra/overrides.yaml, which a resume rewrites), or None when not recorded."""
    for path in (folder / RUN_OVERRIDES, folder / ".hydra" / "overrides.yaml"):
        if path.is_file():
            return [str(o) for o in OmegaConf.to_container(read_yaml(path, ListConfig), resolve=False)]
    return None


def run_settings(folder: Path) -> dict[str, Any]:
    """The config the run in `folder` was made with (its RUN_CONFIG), flattened to dotted keys."""
    return written_settings(read_yaml(folder / RUN_CONFIG))


def override_value(value: Any) -> str:
    """`value` in Hydra's override syntax (null, numbers, booleans, lists, quoted strings where needed)."""
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and _OVERRIDES.parse_override(f"key={value}").value() == value:
            return value
        # The grammar reads a backslash as an escape only in a run of them before a quote (or the closing one).
        escaped = re.sub(r'(\\+)(?="|$)', lambda run: run.group(1) * 2, value).replace('"', '\\"')
        return f'"{escaped}"'
    return json.dumps(value)


def read_override_value(text: str) -> Any:
    """An override's value as Hydra reads it (the inverse of override_value); text the grammar cannot read as one
    value (an unquoted comma, as older RESULTS.md commands wrote labels) is taken as it stands."""
    try:
        value = _OVERRIDES.parse_override(f"key={text}").value()
    except HydraException:
        return text
    return value if isinstance(value, (str, int, float, bool, list, dict, type(None))) else text


@contextmanager
def _hydra_config_of(config: DictConfig) -> Iterator[None]:
    """Let `${hydra:...}` interpolations of `config` read its own hydra node, then give the running app's back."""
    instance = HydraConfig.instance()
    previous = instance.cfg
    instance.set_config(config)
    try:
        yield
    finally:
        instance.cfg = previous


def composed_settings(overrides: Sequence[str], output_dir: Path) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The settings `python -m pose_lab.train *overrides` composes today, resolved and flattened as the run's
    config is saved (in `output_dir`), and the keys that copy another setting (interpolations such as
    `data.heatmap_codec: ${codec.heatmap}`: what is under them follows from the setting they copy)."""
    config = compose_config("train", overrides, with_hydra=True)
    with open_dict(config):
        config.hydra.runtime.output_dir = str(output_dir)
    with _hydra_config_of(config):
        with open_dict(config):
            del config["hydra"]
        resolved = flatten(OmegaConf.to_container(config, resolve=True))
        copies = tuple(key for key, value in written_settings(config).items()
                       if isinstance(value, str) and "${" in value)
    return resolved, copies


def check_rerun(settings: dict[str, Any], overrides: Sequence[str], output_dir: Path,
                ignored: tuple[str, ...] = RUN_LOCATION) -> Rerun:
    """How `overrides` (a run's recorded command) composed today differs from `settings` (the run's saved config,
    flattened), leaving out settings whose keys start with one of `ignored`."""
    try:
        today, copies = composed_settings(overrides, output_dir)
    except (HydraException, OmegaConfBaseException) as error:
        return Rerun([], [], f"{type(error).__name__}: {str(error).splitlines()[0]}")

    def compared(key: str) -> bool:
        return not key.startswith(ignored) and not any(key == copy or key.startswith(f"{copy}.") for copy in copies)

    corrections, irreparable = [], []
    for key in sorted(filter(compared, set(today) | set(settings))):
        if key not in today:
            irreparable.append(f"{key}={override_value(settings[key])}: today's conf/ has no such setting")
            continue
        if key in settings:
            then = settings[key]
        elif key in SETTINGS_ADDED_SINCE:
            then = SETTINGS_ADDED_SINCE[key]
        else:
            irreparable.append(f"{key} (today {override_value(today[key])}) is missing from the run's config, and "
                               "pose_lab.rerun.SETTINGS_ADDED_SINCE does not say what runs without it did")
            continue
        if json.dumps(then, sort_keys=True) != json.dumps(today[key], sort_keys=True):
            corrections.append(f"{key}={override_value(then)}")
    return Rerun(corrections, irreparable)


def rerun_command(folder: Path) -> str:
    """The command that composes the config of the run in `folder` with today's conf/ (its seed included)."""
    if not (folder / RUN_CONFIG).is_file():
        raise PoseLabError(f"{folder}: no {RUN_CONFIG} there; pass the folder of a run made by pose_lab.train "
                           "(e.g. outputs/train/runs/NAME)")
    overrides = run_overrides(folder)
    if overrides is None:
        raise PoseLabError(f"{folder}: the command it was started with is not recorded (no {RUN_OVERRIDES} or "
                           ".hydra/overrides.yaml)")
    rerun = check_rerun(run_settings(folder), overrides, folder)
    if not rerun.exact:
        raise PoseLabError(f"{folder}: today's conf/ cannot compose this run's config: " + "; ".join(rerun.reasons))
    return shlex.join(["python", "-m", "pose_lab.train", *overrides, *rerun.corrections])


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print the command that reproduces a pose_lab.train run's config "
                                                 "with today's conf/ (its recorded overrides, plus any that undo "
                                                 "defaults changed since).")
    parser.add_argument("run", type=Path, help="a run folder made by pose_lab.train (holding run_config.yaml)")
    print(rerun_command(parser.parse_args(argv).run))


if __name__ == "__main__":
    main(sys.argv[1:])
