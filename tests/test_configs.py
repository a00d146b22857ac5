"""Every config option composes with train.yaml; every model option trains a step on the tiny LSP fixture."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from timm.layers.cbam import CbamModule
from torch import nn

from pose_lab.checkpoint import DEFAULT_CHECKPOINT, checkpoint_config, load_module
from pose_lab.compose import compose_config, flatten
from pose_lab.losses import NegativeHeatmapBCE, NegativeHeatmapDiff, mirror_penalty, mirror_suppression
from pose_lab.models.blocks.vit_bridge import ViTBridge
from pose_lab.module import PoseLitModule
from pose_lab.rerun import SETTINGS_ADDED_SINCE

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
# Single-run recipes (ablation is a multirun sweep over the models, composed in test_sweeps).
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml") if p.stem != "ablation")
# The other groups train.yaml chooses from (hydra/ is Hydra's own config, composed in every test anyway);
# groups of other entry points (e.g. bench, exercise) do not compose with train.yaml.
TRAIN_GROUPS = [
    group
    for entry in OmegaConf.load(CONF / "train.yaml").defaults
    if not isinstance(entry, str)
    for group in entry
    if group not in ("model", "hydra")
]
OTHER_OPTIONS = [(group, p.stem) for group in TRAIN_GROUPS for p in sorted((CONF / group).glob("*.yaml"))]


def _has(module: nn.Module, kind: type[nn.Module]) -> bool:
    return any(isinstance(m, kind) for m in module.modules())


def _cbam_as_reported(module: nn.Module) -> bool:
    """Channel reduction 16 and a 7×7 spatial conv (report §4.3.2)."""
    channels = module.channel.fc1.in_channels
    return module.channel.fc1.out_channels == channels // 16 and module.spatial.conv.conv.kernel_size == (7, 7)


# What each report variant (§4) must have built, checked on the instantiated PoseLitModule.
VARIANTS: dict[str, Callable[[PoseLitModule], bool]] = {
    "arch_mod": lambda m: m.net.regression_tap == "conv10"
    and "conv_mod" in m.net.regression_branch.stages
    and _has(m.net.heatmap_branch.decoder, nn.ConvTranspose2d),
    "neg_heatmap_diff": lambda m: isinstance(m.net.heatmap_branch.activation, nn.Tanh)
    and isinstance(m.loss.heatmap, NegativeHeatmapDiff),
    "neg_heatmap": lambda m: m.net.heatmap_branch.heatmap_conv.out_channels == 2 * m.net.num_joints
    and isinstance(m.loss.heatmap, NegativeHeatmapBCE) and m.loss.heatmap.mean_over == "region"
    and m.loss.heatmap.acts_on == "joints",
    "neg_heatmap_mean_all": lambda m: m.net.heatmap_branch.heatmap_conv.out_channels == 2 * m.net.num_joints
    and isinstance(m.loss.heatmap, NegativeHeatmapBCE) and m.loss.heatmap.penalty is mirror_penalty
    and m.loss.heatmap.mean_over == "all",
    "neg_heatmap_extra_maps": lambda m: m.net.heatmap_branch.heatmap_conv.out_channels == 2 * m.net.num_joints
    and isinstance(m.loss.heatmap, NegativeHeatmapBCE) and m.loss.heatmap.acts_on == "extra_maps"
    and torch.sigmoid(m.net.heatmap_branch.heatmap_conv.bias[m.net.num_joints :]).sub(0.99).abs().max() < 1e-6,
    "neg_heatmap_suppress": lambda m: m.net.heatmap_branch.heatmap_conv.out_channels == 2 * m.net.num_joints
    and isinstance(m.loss.heatmap, NegativeHeatmapBCE) and m.loss.heatmap.penalty is mirror_suppression,
    "vit": lambda m: isinstance(m.net.heatmap_branch.bridge, ViTBridge)
    and _has(m.net.heatmap_branch.bridge.patch_embed, nn.Linear)
    and isinstance(m.net.heatmap_branch.bridge.upsample, nn.Upsample),
    "vit2": lambda m: isinstance(m.net.heatmap_branch.bridge, ViTBridge)
    and _has(m.net.heatmap_branch.bridge.patch_embed, nn.Conv2d)
    and isinstance(m.net.heatmap_branch.bridge.upsample, nn.ConvTranspose2d),
    "cbam": lambda m: set(m.net.heatmap_branch.attention) == {"conv3", "conv5", "conv11"}
    and all(isinstance(a, CbamModule) and _cbam_as_reported(a) for a in m.net.heatmap_branch.attention.values()),
}


def test_the_report_variants_are_all_there() -> None:
    assert {"base", *VARIANTS} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_model_option_trains_one_step(train_cfg, name: str) -> None:
    cfg = train_cfg(f"model={name}")
    torch.manual_seed(0)
    module: PoseLitModule = instantiate(cfg.model)
    assert VARIANTS.get(name, lambda m: True)(module), f"model={name} does not build its report variant"
    dm = instantiate(cfg.data)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    size, joints = cfg.data.input_size, cfg.model.net.num_joints
    batch_size = len(batch["image"])

    output = module(batch["image"])
    assert output.heatmaps.shape == (
        batch_size, joints + cfg.model.net.extra_heatmaps, size // 2, size // 2
    )
    assert output.coords.shape == (batch_size, joints, 2)
    assert output.visibility.shape == (batch_size, joints, 1)
    terms = module.loss(output, batch)
    assert torch.isfinite(terms["total"])
    terms["total"].backward()

    heatmap_grads = {n: p.grad for n, p in module.net.heatmap_branch.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in heatmap_grads.values()), [
        n for n, g in heatmap_grads.items() if g is None
    ]
    assert module.net.heatmap_branch.heatmap_conv.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in module.net.backbone.parameters())
    if module.net.heatmap_branch.bridge is not None:
        assert any(p.grad.abs().sum() > 0 for p in module.net.heatmap_branch.bridge.parameters())


@pytest.mark.parametrize(("group", "option"), OTHER_OPTIONS)
def test_other_option_composes(train_cfg, group: str, option: str) -> None:
    cfg = train_cfg(f"{group}={option}")
    # Resolves every interpolation; ??? values (e.g. phase.init_from) are for the user to give.
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    assert cfg.model.net.num_joints == 14


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_stages_each_name_what_they_train(train_cfg, name: str) -> None:
    stages = train_cfg(f"experiment={name}").phase.stages
    assert stages, f"experiment={name} has no phase stage"
    for stage_name, stage in stages.items():
        assert stage.get("train") and stage.epochs > 0, f"experiment={name}: stage {stage_name} is incomplete"


# Each recipe derived from lsp192_sigma3_l1_150 (the base-width checkpoint's): the settings it changes, as
# (value there, value in the derived recipe).
LONGER_REGRESSION = {"phase.stages.regression.epochs": (40, 120)}
WIDER_NETWORK = {
    "model.net.stem_channels": (24, 32),
    "model.net.encoder_channels": ([48, 96, 192, 288], [64, 128, 256, 384]),
    "model.net.decoder_channels": (48, 64),
}
DERIVED_CHANGES = {
    "lsp192_sigma3_l1_150_reg120": LONGER_REGRESSION,
    "lsp192_sigma3_l1_150_wide": WIDER_NETWORK,
    "lsp192_sigma3_l1_150_wide_reg120": WIDER_NETWORK | LONGER_REGRESSION,
    "lsp192_sigma3_l1_150_wide_softargmax": WIDER_NETWORK | LONGER_REGRESSION
    | {"model.net.regression_readout": ("dense", "soft_argmax")},
    "lsp192_sigma3_l1_150_wide_softargmax_s16": WIDER_NETWORK | LONGER_REGRESSION
    | {"model.net.regression_readout": ("dense", "soft_argmax_s16")},
}


@pytest.mark.parametrize("name", sorted(DERIVED_CHANGES))
def test_derived_recipe_changes_only_its_own_settings(train_cfg, name: str) -> None:
    parent = flatten(OmegaConf.to_container(train_cfg("experiment=lsp192_sigma3_l1_150")))
    derived = flatten(OmegaConf.to_container(train_cfg(f"experiment={name}")))
    for key, values in DERIVED_CHANGES[name].items():
        assert (parent[key], derived[key]) == values, key
        derived[key] = parent[key]
    assert derived == parent


def test_make_train_runs_the_recipe_of_the_shipped_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSE_LAB_LSP_ROOT", str(tmp_path))
    makefile = (CONF.parent / "Makefile").read_text()
    recipe = re.search(r"^train:.*\n\t.*?(experiment=\S+)", makefile, re.MULTILINE).group(1)
    _, shipped = load_module(DEFAULT_CHECKPOINT)
    today = checkpoint_config(compose_config("train", [recipe, "seed=1"]))
    # A setting added after the checkpoint was trained: it trained as SETTINGS_ADDED_SINCE says runs without it did.
    trained = OmegaConf.to_container(shipped)
    added = {key: then for key, then in SETTINGS_ADDED_SINCE.items() if key in flatten(today)}
    for key, then in added.items():
        *parents, name = key.split(".")
        node = trained
        for parent in parents:
            node = node[parent]
        node.setdefault(name, then)
    assert today == trained, f"`make train` runs {recipe}"
