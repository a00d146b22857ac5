"""The table of evaluation settings: `pose_lab.evaluate` run folders of one checkpoint, against the first: the
inference-time settings, and which images are scored (the training images against the test images: the fit)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from omegaconf import ListConfig, OmegaConf

from pose_lab.errors import PoseLabError
from pose_lab.evaluation_record import OUTPUTS
from pose_lab.paths import CONF_DIR, shown_path
from pose_lab.reporting.markdown import PCK_TITLES, heading, markdown_table
from pose_lab.reporting.runs import METRICS_FILE, load_json, split_label
from pose_lab.rerun import override_value, read_yaml

# metrics.json keys of `pose_lab.evaluate` that every evaluation in one table must share, besides the checkpoint
# (compared by content where recorded, see same_checkpoint).
EVALUATION_SHARED: tuple[str, ...] = ("split",)
# The settings a row may change from the control (the inference-time ones, and the images scored), with what each
# does, for the table's caption.
SETTING_NOTES: dict[str, str] = {
    "flip_test": "`flip_test=true` averages each image's answer with its mirror image's (twice the compute)",
    "heatmap_refine": "`heatmap_refine` replaces the checkpoint's sub-pixel step of heatmap decoding",
    "subset": "`subset=train` scores the images the checkpoint was trained on instead (as they are, without "
              "augmentation): its gap to the test row is what the network learned that does not carry to new "
              "people, and its distance from 100 % what it has not learned at all",
}
ROW_SETTINGS: tuple[str, ...] = tuple(SETTING_NOTES)
# The protocol whose misses the inversion columns count (evaluate records them for every protocol).
INVERSION_PROTOCOL = "pckh@0.5"


def evaluation_defaults() -> dict[str, Any]:
    """evaluate's row settings with their defaults in conf/evaluate.yaml: "as the checkpoint was trained", on
    the test images."""
    defaults = OmegaConf.load(CONF_DIR / "evaluate.yaml")
    return {key: defaults[key] for key in ROW_SETTINGS}


def same_checkpoint(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether two evaluations scored one checkpoint: by content fingerprint (the same file evaluated from two
    clones), or by path where an older evaluate recorded none."""
    key = "checkpoint_sha256" if "checkpoint_sha256" in first and "checkpoint_sha256" in second else "checkpoint"
    return bool(first[key] == second[key])


def _evaluation_command(folder: Path, checkpoint: str) -> str:
    """The evaluate command of a run folder, from Hydra's record of its overrides, naming the checkpoint it scored:
    `ckpt=null` (the default checkpoint) would rerun on whichever checkpoint is the default when it is read."""
    overrides = folder / ".hydra" / "overrides.yaml"
    if not overrides.is_file():
        return f"(run `{shown_path(folder)}`: its command was not recorded)"
    settings = [str(word) for word in read_yaml(overrides, ListConfig) if not str(word).startswith("ckpt=")]
    words = ["python", "-m", "pose_lab.evaluate", f"ckpt={shown_path(Path(checkpoint))}", *settings]
    return f"`{shlex.join(words)}` (run `{shown_path(folder)}`)"


def evaluations_section(folders: list[Path], label: str | None = None) -> list[str]:
    """RESULTS.md's table of evaluation settings (test-time flip, heatmap sub-pixel step, the images scored):
    `pose_lab.evaluate` run folders of one checkpoint on one split, the first the control, the others with their
    difference from it."""
    found = [(folder, load_json(folder / METRICS_FILE, "pass folders written by `python -m pose_lab.evaluate`"))
             for folder in folders]
    control = found[0][1]
    for folder, metrics in found:
        missing = [key for key in ("checkpoint", "num_images", *EVALUATION_SHARED, *ROW_SETTINGS, "scores")
                   if key not in metrics]
        if missing:
            raise PoseLabError(f"{folder / METRICS_FILE} lacks {', '.join(missing)}: is it an evaluate run's?")
        differing = [key for key in EVALUATION_SHARED if metrics[key] != control[key]]
        if not same_checkpoint(metrics, control):
            differing.insert(0, "checkpoint")
        if differing:
            raise PoseLabError(f"evaluations: {folder} differs from the control {folders[0]} in "
                               f"{', '.join(differing)}; one table compares settings on one checkpoint and split")
    columns = [(output, protocol) for protocol in PCK_TITLES for output in OUTPUTS]

    def cell(metrics: dict[str, Any], output: str, protocol: str) -> str:
        value = metrics["scores"][output][protocol]["mean"]
        shift = value - control["scores"][output][protocol]["mean"]
        return f"{value:.1f}" if metrics is control else f"{value:.1f} ({shift:+.1f})"

    defaults = evaluation_defaults()

    def setting(metrics: dict[str, Any]) -> str:
        changed = [f"`{key}={override_value(metrics[key])}`" for key, default in defaults.items()
                   if metrics[key] != default]
        images = f" ({metrics['num_images']} images)" if metrics["subset"] != control["subset"] else ""
        return (", ".join(changed) or "as trained") + images

    def seconds(metrics: dict[str, Any]) -> str:
        return f"{metrics['seconds']:.0f}" if "seconds" in metrics else "not recorded"

    def inversions(metrics: dict[str, Any], output: str) -> str:
        value = metrics["scores"][output][INVERSION_PROTOCOL].get("left_right_inversions")
        return "not recorded" if value is None else f"{value:.1f}"

    header = ["run", "setting", *(f"{output} {PCK_TITLES[protocol]}" for output, protocol in columns),
              *(f"{output} l/r inversions %" for output in OUTPUTS), "seconds"]
    body = [[f"`{folder.name}`", setting(metrics), *(cell(metrics, *column) for column in columns),
             *(inversions(metrics, output) for output in OUTPUTS), seconds(metrics)] for folder, metrics in found]
    notes = [note for key, note in SETTING_NOTES.items() if any(metrics[key] != defaults[key] for _, metrics in found)]
    fit = any(metrics["subset"] != control["subset"] for _, metrics in found)
    title = "Fit: one checkpoint on the images it was trained on and on new ones" if fit else \
        "Inference-time settings: one change at a time"
    return ["", heading(title, label), "",
            f"`python -m pose_lab.evaluate` of `{shown_path(Path(control['checkpoint']))}` on the "
            f"{control['num_images']} {control['subset']} images{' (other images where a row says so)' if fit else ''} "
            f"of split `{split_label(control['split'])}` "
            f"(all 14 joints, original pixels){', with the setting shown: ' if notes else ''}{'; '.join(notes)}. "
            "The same weights each time, so differences are the setting's alone; the first row is the control. "
            "`l/r inversions %`: the share of all joints that miss their own truth under PCKh@0.5 but would be "
            "correct on their mirror partner's (a left knee on the right knee): how much of the gap to 100 % "
            "left/right confusion is. `seconds`: the command's wall time, loading included.", "",
            *markdown_table(header, body),
            "", "Evaluations:", "",
            *(f"- {_evaluation_command(folder, metrics['checkpoint'])}" for folder, metrics in found)]
