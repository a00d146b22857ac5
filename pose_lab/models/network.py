"""BlazePoseNet: the report's BlazePose adaptation to K joints, with its experiment variants as arguments.

Base model: report §3.1, Figure 3 (after BlazePose, Bazarevsky et al. 2020, Figure 4) — a backbone
(Conv_1, Conv_2_1, Conv_2_2), a heatmap branch (BlazeBlock encoder Conv_3..Conv_6, U-Net decoder
Conv_7..Conv_10, heatmap head Conv_11) and a regression branch (Conv_12..Conv_17) fed through stop-gradients.
Variants, each one argument: `regression_tap="conv10"` with Conv_MOD and `upsample="transpose"` (§4.1),
`heatmap_activation="tanh"` and `extra_heatmaps` (§4.2 attempts 1 and 2), `bridge` for the ViT modules
(§4.3.1) and `attention` placements for CBAM (§4.3.2).

Feature maps are named after the figure's layers ("conv2" = backbone output, "conv3".."conv6" encoder,
"conv7".."conv10" decoder levels); the regression tap, the bridge and attention placements refer to them.
At input size S: conv2 and conv10 are S/2, conv3 and conv9 S/4, conv4 and conv8 S/8, conv5 and conv7 S/16,
conv6 S/32.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from timm.layers import create_attn
from torch import Tensor, nn

from pose_lab.models.blocks.blaze import BlazeBlock
from pose_lab.models.blocks.dense_readout import DenseReadout
from pose_lab.models.blocks.separable import SeparableConv
from pose_lab.models.blocks.soft_argmax import SoftArgmaxReadout, cell_coordinates
from pose_lab.models.blocks.upsample import make_upsample
from pose_lab.skeleton import NUM_JOINTS

ENCODER_STAGES: tuple[str, ...] = ("conv3", "conv4", "conv5", "conv6")
DECODER_LEVELS: tuple[str, ...] = ("conv7", "conv8", "conv9", "conv10")
# The feature each decoder level adds as its U-Net skip (Conv_7b..Conv_10b inputs).
DECODER_SKIPS: tuple[str, ...] = ("conv5", "conv4", "conv3", "conv2")
# Regression stages mirror the encoder stage for stage (same stride, width and depth) and add that
# stage's output as their skip; a tap at S/2 needs the extra Conv_MOD stage mirroring Conv_3 (§4.1).
REGRESSION_STAGES: tuple[str, ...] = ("conv_mod", "conv12", "conv13", "conv14")
REGRESSION_TAPS: dict[str, int] = {"conv10": 0, "conv9": 1}  # tap → first mirrored encoder stage
# Maps the regression branch may read beside its tap (stop-gradient like it): "coords", each cell's x and y on the
# [0, 1] scale of the coordinate targets, which zero-padded convolutions otherwise only infer from the borders
# (CoordConv, Liu et al. 2018); "heatmaps", the heatmap head's output pooled to the tap's size, which costs the
# regression path the decoder tail and head that it skips otherwise.
REGRESSION_INPUTS: tuple[str, ...] = ("coords", "heatmaps")
# How the regression branch turns its stages into coordinates: "dense", BlazePose's Conv_15 blocks down to 2×2,
# flattened into linear heads (blocks/dense_readout.py); "soft_argmax", a soft-argmax on the S/32 grid
# (blocks/soft_argmax.py); "soft_argmax_s16", the same on the S/16 grid, reading the S/16 stage beside the S/32
# stage's output upsampled: cells half as wide for the joints' finer placement, with the coarser stage's wider view.
# The soft-argmax readouts' grids: how many of the last regression stages each reads, at the finest one's size.
SOFT_ARGMAX_STAGES: dict[str, int] = {"soft_argmax": 1, "soft_argmax_s16": 2}
REGRESSION_READOUTS: tuple[str, ...] = ("dense", *SOFT_ARGMAX_STAGES)
BRIDGE_LEVEL = "conv9"
# "conv11" is the S/2 feature map between Conv_11's separable conv and its 1×1 heatmap conv.
ATTENTION_PLACEMENTS: tuple[str, ...] = (*ENCODER_STAGES, "conv11")

# Heatmap targets are ~99% background, so the head starts predicting background everywhere:
# sigmoid(bias) = 0.01 is the focal-loss prior init (Lin et al. 2017, §4.1), which spares BCE a long
# first phase of pushing every pixel down. Tanh targets (§4.2 attempt 1) have background 0.
_HEATMAP_PRIOR = 0.01
HEATMAP_ACTIVATIONS: dict[str, tuple[type[nn.Module], float]] = {
    "sigmoid": (nn.Sigmoid, math.log(_HEATMAP_PRIOR / (1 - _HEATMAP_PRIOR))),
    "tanh": (nn.Tanh, 0.0),
}


class PoseOutput(NamedTuple):
    """The three outputs of report §3.1.4; a branch left out of the forward pass gives None for its outputs."""

    heatmaps: Tensor | None  # (B, K + extra_heatmaps, S/2, S/2), after the heatmap activation
    coords: Tensor | None  # (B, K, 2) x, y; trained against coordinates normalised to [0, 1] of the input frame
    visibility: Tensor | None  # (B, K, 1) probability that the joint is visible

    @property
    def joint_heatmaps(self) -> Tensor:
        """The K joints' maps, without the extra maps (§4.2) that follow them; needs both branches' outputs."""
        return joint_maps(self.heatmaps, self.coords.shape[1])


def joint_maps(heatmaps: Tensor, num_joints: int = NUM_JOINTS) -> Tensor:
    """The joints' maps of a heatmap output (B, K + extra_heatmaps, h, w): the extra maps (§4.2) that follow them
    are not joints, and decoding them would give keypoints of no joint."""
    return heatmaps[:, :num_joints]


# The parameter groups (phases.PARAMETER_GROUPS) whose training each forward switch serves: the backbone learns
# from the heatmaps alone, since the regression branch reads it through stop-gradients.
TRAINED_BY: dict[str, tuple[str, ...]] = {"heatmaps": ("backbone", "heatmap_branch"),
                                          "regression": ("regression_branch",)}


def _attention(kind: str, channels: int, placement: str) -> nn.Module:
    """A timm attention module by name (e.g. "cbam"), with the placement in the error message."""
    try:
        module = create_attn(kind, channels)
    except AssertionError:  # timm's get_attn rejects unknown names with an assert
        module = None
    if module is None:
        raise ValueError(f"attention[{placement!r}] = {kind!r} is not a timm attention name (e.g. 'cbam', 'se')")
    return module


class _DecoderLevel(nn.Module):
    """One U-Net level: up(Conv_Na(x)) + Conv_Nb(skip); (B, C_in, h, w), (B, C_skip, 2h, 2w) → (B, C, 2h, 2w)."""

    def __init__(self, in_channels: int, skip_channels: int, channels: int, upsample: str) -> None:
        super().__init__()
        self.conv_a = SeparableConv(in_channels, channels)
        self.up = make_upsample(upsample, channels)
        self.conv_b = SeparableConv(skip_channels, channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.up(self.conv_a(x)) + self.conv_b(skip)


class _RegressionStage(nn.Module):
    """Conv_Na BlazeBlock(x) + Conv_Nb(skip); (B, C_in, h, w), (B, C, h/2, w/2) → (B, C, h/2, w/2)."""

    def __init__(self, in_channels: int, channels: int, num_units: int) -> None:
        super().__init__()
        self.conv_a = BlazeBlock(in_channels, channels, num_units)
        self.conv_b = SeparableConv(channels, channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv_a(x) + self.conv_b(skip)


class HeatmapBranch(nn.Module):
    """Conv_3..Conv_6 encoder, Conv_7..Conv_10 decoder, Conv_11 head, plus optional attention and bridge."""

    def __init__(
        self,
        num_heatmaps: int,
        stem_channels: int,
        encoder_channels: Sequence[int],
        encoder_units: Sequence[int],
        decoder_channels: int,
        upsample: str,
        activation: str,
        attention: Mapping[str, str],
        bridge: nn.Module | None,
    ) -> None:
        super().__init__()
        if activation not in HEATMAP_ACTIVATIONS:
            raise ValueError(
                f"unknown heatmap_activation {activation!r}; valid: {', '.join(HEATMAP_ACTIVATIONS)}"
            )
        unknown = sorted(set(attention) - set(ATTENTION_PLACEMENTS))
        if unknown:
            raise ValueError(
                f"unknown attention placement(s) {unknown}; valid placements: {', '.join(ATTENTION_PLACEMENTS)}"
            )

        in_channels = (stem_channels, *encoder_channels[:-1])
        self.encoder = nn.ModuleDict(
            {
                name: BlazeBlock(c_in, c_out, units)
                for name, c_in, c_out, units in zip(ENCODER_STAGES, in_channels, encoder_channels, encoder_units)
            }
        )
        channels_of = {"conv2": stem_channels, **dict(zip(ENCODER_STAGES, encoder_channels))}
        level_inputs = (encoder_channels[-1],) + (decoder_channels,) * (len(DECODER_LEVELS) - 1)
        self.decoder = nn.ModuleDict(
            {
                level: _DecoderLevel(c_in, channels_of[skip], decoder_channels, upsample)
                for level, skip, c_in in zip(DECODER_LEVELS, DECODER_SKIPS, level_inputs)
            }
        )
        self.bridge = bridge
        self.conv11 = SeparableConv(decoder_channels, decoder_channels)
        self.heatmap_conv = nn.Conv2d(decoder_channels, num_heatmaps, 1)
        act_layer, bias = HEATMAP_ACTIVATIONS[activation]
        self.activation = act_layer()
        # Small weights so the bias prior, not feature noise, sets the initial output.
        nn.init.normal_(self.heatmap_conv.weight, std=0.01)
        nn.init.constant_(self.heatmap_conv.bias, bias)

        channels_of["conv11"] = decoder_channels
        self.attention = nn.ModuleDict(
            {place: _attention(kind, channels_of[place], place) for place, kind in attention.items()}
        )

    def _attend(self, placement: str, x: Tensor) -> Tensor:
        return self.attention[placement](x) if placement in self.attention else x

    def encode(self, stem: Tensor) -> dict[str, Tensor]:
        """Backbone output (B, C, S/2, S/2) → {"conv2": it, "conv3".."conv6": encoder features}."""
        features = {"conv2": stem}
        x = stem
        for name, stage in self.encoder.items():
            x = self._attend(name, stage(x))
            features[name] = x
        return features

    def decode(self, features: Mapping[str, Tensor], until: str) -> dict[str, Tensor]:
        """Add decoder levels "conv7".. up to and including `until` to the encoder features."""
        features = dict(features)
        x = features[ENCODER_STAGES[-1]]
        for level, skip in zip(DECODER_LEVELS, DECODER_SKIPS):
            x = self.decoder[level](x, features[skip])
            if level == BRIDGE_LEVEL and self.bridge is not None:
                bridged = self.bridge(features["conv2"])
                if bridged.shape != x.shape:
                    raise ValueError(
                        f"bridge output {tuple(bridged.shape)} must match the {level} features {tuple(x.shape)}"
                    )
                x = x + bridged
            features[level] = x
            if level == until:
                break
        return features

    def head(self, features: Mapping[str, Tensor]) -> Tensor:
        """Conv_11 on the "conv10" level → heatmaps (B, K + extra, S/2, S/2) after the activation."""
        x = self._attend("conv11", self.conv11(features[DECODER_LEVELS[-1]]))
        return self.activation(self.heatmap_conv(x))


# Checkpoints written before the readouts became modules of their own (the committed ones among them) hold the
# readout's weights directly under the branch: keys with these first names move under "readout." as they load.
_READOUT_WEIGHTS_OF_OLD = ("conv15", "norm", "coords", "maps", "visibility")


def _readout_weights_in_their_module(module: nn.Module, state_dict: dict[str, Tensor], prefix: str,
                                     *_: object) -> None:
    old = [key for key in state_dict
           if key.startswith(prefix) and key[len(prefix):].split(".", 1)[0] in _READOUT_WEIGHTS_OF_OLD]
    for key in old:
        state_dict[f"{prefix}readout.{key[len(prefix):]}"] = state_dict.pop(key)


class RegressionBranch(nn.Module):
    """Conv_MOD/Conv_12..Conv_14 encoder on stop-gradient features, then the readout of REGRESSION_READOUTS: dense
    (Conv_15, Conv_16 coordinates, Conv_17 visibility) or a soft-argmax on the grid of SOFT_ARGMAX_STAGES."""

    def __init__(
        self,
        num_joints: int,
        input_size: int,
        tap: str,
        tap_channels: int,
        encoder_channels: Sequence[int],
        encoder_units: Sequence[int],
        tail_units: int,
        inputs: Sequence[str] = (),
        heatmap_channels: int = 0,
        readout: str = "dense",
    ) -> None:
        super().__init__()
        if readout not in REGRESSION_READOUTS:
            raise ValueError(f"unknown regression_readout {readout!r}; valid: {', '.join(REGRESSION_READOUTS)}")
        if tap not in REGRESSION_TAPS:
            raise ValueError(f"unknown regression_tap {tap!r}; valid taps: {', '.join(REGRESSION_TAPS)}")
        unknown = sorted(set(inputs) - set(REGRESSION_INPUTS))
        if unknown:
            raise ValueError(f"unknown regression_inputs {unknown}; valid inputs: {', '.join(REGRESSION_INPUTS)}")
        self.tap = tap
        self.inputs = tuple(dict.fromkeys(inputs))
        first = REGRESSION_TAPS[tap]
        self.skips = ENCODER_STAGES[first:]
        added = {"coords": 2, "heatmaps": heatmap_channels}
        in_channels = (tap_channels + sum(added[name] for name in self.inputs), *encoder_channels[first:-1])
        self.stages = nn.ModuleDict(
            {
                name: _RegressionStage(c_in, c_out, units)
                for name, c_in, c_out, units in zip(
                    REGRESSION_STAGES[first:], in_channels, encoder_channels[first:], encoder_units[first:]
                )
            }
        )
        if readout == "dense":
            self.readout = DenseReadout(num_joints, encoder_channels[-1], input_size // 32, tail_units)
        else:
            self.readout = SoftArgmaxReadout(num_joints, encoder_channels[-SOFT_ARGMAX_STAGES[readout]:])
        self.register_load_state_dict_pre_hook(_readout_weights_in_their_module)

    def _tap(self, features: Mapping[str, Tensor], heatmaps: Tensor | None) -> Tensor:
        """The tap's features with the `inputs` maps appended as channels."""
        x = features[self.tap]
        maps = [x]
        for name in self.inputs:
            if name == "coords":
                maps.append(cell_coordinates(x))
            else:
                if heatmaps is None:
                    raise ValueError("this regression branch reads the heatmaps: pass the heatmap head's output")
                maps.append(nn.functional.avg_pool2d(heatmaps, heatmaps.shape[-1] // x.shape[-1]))
        return torch.cat(maps, dim=1)

    def forward(self, features: Mapping[str, Tensor], heatmaps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Named features (tap level and encoder stages), and the heatmaps where `inputs` has them → coords
        (B, K, 2), visibility (B, K, 1)."""
        # Stop-gradients (BlazePose §3): the regression loss must not reshape the heatmap features.
        x = self._tap(features, heatmaps).detach()
        outputs = []
        for stage, skip in zip(self.stages.values(), self.skips):
            x = stage(x, features[skip].detach())
            outputs = [*outputs, x][-self.readout.stages_read:]
        return self.readout(outputs)


class BlazePoseNet(nn.Module):
    """(B, 3, S, S) → PoseOutput; S = input_size, a multiple of 32.

    Parameters are split into `backbone`, `heatmap_branch` and `regression_branch` so training phases
    can freeze them by name (report §3.2). `encoder_units` are the residual units in Conv_3..Conv_6; the
    regression stages mirror them, and `regression_units` is the count in each of Conv_15's two blocks.
    `attention` maps placements ("conv3".."conv6", "conv11") to timm attention names, e.g. {"conv3": "cbam"}.
    `bridge` maps the backbone output (B, stem_channels, S/2, S/2) to (B, decoder_channels, S/4, S/4),
    added at the conv9 level; it belongs to the heatmap branch, the only branch it feeds with gradients.
    `regression_inputs` names maps the regression branch reads beside its tap (REGRESSION_INPUTS): an
    experiment of pose_lab's, not the report's; with "heatmaps" the regression path runs the whole heatmap branch.
    `regression_readout` (REGRESSION_READOUTS), pose_lab's too: "dense" is BlazePose's flatten-and-linear head.
    `extra_heatmap_prior` is the probability the `extra_heatmaps` (sigmoid) start at, where their loss wants
    another background than the joints' 0: the §4.2 reading that trains them towards 1 − H_j' needs ~0.99,
    which the head's bias cannot reach from 0.01 in a short run (Adam moves it about lr per step). None keeps
    the joints' prior.
    """

    def __init__(
        self,
        num_joints: int = NUM_JOINTS,
        input_size: int = 256,
        stem_channels: int = 24,
        encoder_channels: Sequence[int] = (48, 96, 192, 288),
        encoder_units: Sequence[int] = (3, 4, 5, 6),
        decoder_channels: int = 48,
        upsample: str = "bilinear",
        regression_tap: str = "conv9",
        regression_units: int = 7,
        heatmap_activation: str = "sigmoid",
        extra_heatmaps: int = 0,
        attention: Mapping[str, str] | None = None,
        bridge: nn.Module | None = None,
        extra_heatmap_prior: float | None = None,
        regression_inputs: Sequence[str] = (),
        regression_readout: str = "dense",
    ) -> None:
        super().__init__()
        if extra_heatmap_prior is not None and not (
            extra_heatmaps > 0 and heatmap_activation == "sigmoid" and 0 < extra_heatmap_prior < 1
        ):
            raise ValueError(
                "extra_heatmap_prior needs extra_heatmaps > 0, heatmap_activation=sigmoid and a probability in (0, 1); "
                f"got {extra_heatmap_prior} with extra_heatmaps={extra_heatmaps}, activation={heatmap_activation}"
            )
        if input_size <= 0 or input_size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32 (five stride-2 stages), got {input_size}")
        encoder_channels, encoder_units = tuple(encoder_channels), tuple(encoder_units)
        if not len(encoder_channels) == len(encoder_units) == len(ENCODER_STAGES):
            raise ValueError(
                f"encoder_channels and encoder_units need {len(ENCODER_STAGES)} entries (Conv_3..Conv_6), "
                f"got {encoder_channels} and {encoder_units}"
            )
        self.num_joints = num_joints
        self.input_size = input_size
        self.regression_tap = regression_tap

        self.backbone = nn.Sequential(
            OrderedDict(
                conv1=nn.Sequential(
                    nn.Conv2d(3, stem_channels, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(stem_channels),
                    nn.ReLU(),
                ),
                conv2_1=SeparableConv(stem_channels, stem_channels, residual=True),
                conv2_2=SeparableConv(stem_channels, stem_channels, residual=True),
            )
        )
        self.heatmap_branch = HeatmapBranch(
            num_heatmaps=num_joints + extra_heatmaps,
            stem_channels=stem_channels,
            encoder_channels=encoder_channels,
            encoder_units=encoder_units,
            decoder_channels=decoder_channels,
            upsample=upsample,
            activation=heatmap_activation,
            attention=dict(attention or {}),
            bridge=bridge,
        )
        if extra_heatmap_prior is not None:
            with torch.no_grad():
                self.heatmap_branch.heatmap_conv.bias[num_joints:] = math.log(
                    extra_heatmap_prior / (1 - extra_heatmap_prior)
                )
        self.regression_branch = RegressionBranch(
            num_joints=num_joints,
            input_size=input_size,
            tap=regression_tap,
            tap_channels=decoder_channels,
            encoder_channels=encoder_channels,
            encoder_units=encoder_units,
            tail_units=regression_units,
            inputs=regression_inputs,
            heatmap_channels=num_joints + extra_heatmaps,
            readout=regression_readout,
        )

    def _features(self, x: Tensor, until: str) -> dict[str, Tensor]:
        """Backbone, encoder and decoder up to level `until`, as named feature maps."""
        if x.shape[-3:] != (3, self.input_size, self.input_size):
            raise ValueError(f"expected input (B, 3, {self.input_size}, {self.input_size}), got {tuple(x.shape)}")
        return self.heatmap_branch.decode(self.heatmap_branch.encode(self.backbone(x)), until)

    def forward(self, x: Tensor, heatmaps: bool = True, regression: bool = True) -> PoseOutput:
        """(B, 3, S, S) → heatmaps, coords and visibility (training and analysis path).

        `heatmaps=False` or `regression=False` skips that branch's tail and leaves its outputs None: the inference
        paths below, and a training phase that freezes a branch (it has no use for the frozen branch's outputs).
        """
        if not (heatmaps or regression):
            raise ValueError("forward needs at least one of heatmaps=True or regression=True")
        needs_head = heatmaps or (regression and "heatmaps" in self.regression_branch.inputs)
        features = self._features(x, until=DECODER_LEVELS[-1] if needs_head else self.regression_tap)
        maps = self.heatmap_branch.head(features) if needs_head else None
        coords, visibility = self.regression_branch(features, maps) if regression else (None, None)
        return PoseOutput(maps if heatmaps else None, coords, visibility)

    def forward_regression(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, S, S) → coords (B, K, 2), visibility (B, K, 1), skipping the decoder past the tap and
        the heatmap head (unless the regression branch reads the heatmaps): BlazePose's inference path."""
        _, coords, visibility = self(x, heatmaps=False)
        return coords, visibility

    def forward_heatmaps(self, x: Tensor) -> Tensor:
        """(B, 3, S, S) → heatmaps (B, K + extra, S/2, S/2), skipping the regression branch: the inference path of
        the heatmap-decoded keypoints (the regression branch holds most of the weights and a large part of the
        compute, and its coordinates trail the heatmaps' on LSP)."""
        return self(x, regression=False).heatmaps
