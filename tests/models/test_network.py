"""BlazePoseNet (report §3.1, §4): shapes, branch partition, stop-gradients, inference path, variants."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pose_lab.models.blocks.blaze import BlazeBlock
from pose_lab.models.blocks.soft_argmax import cell_coordinates
from pose_lab.models.blocks.separable import SeparableConv
from pose_lab.models.blocks.upsample import make_upsample
from pose_lab.models.network import REGRESSION_READOUTS, BlazePoseNet, PoseOutput
from pose_lab.skeleton import NUM_JOINTS

GROUPS = ("backbone", "heatmap_branch", "regression_branch")
ALL_ATTENTION = {"conv3": "cbam", "conv5": "cbam", "conv11": "cbam"}


class DummyBridge(nn.Module):
    """Stands in for the ViT bridge: (B, 24, S/2, S/2) → (B, 48, S/4, S/4)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(24, 48, 1)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.proj(x))


def _inputs(size: int, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def _check_shapes(out: PoseOutput, batch: int, size: int, channels: int = NUM_JOINTS) -> None:
    assert isinstance(out, PoseOutput)
    assert out.heatmaps.shape == (batch, channels, size // 2, size // 2)
    assert out.coords.shape == (batch, NUM_JOINTS, 2)
    assert out.visibility.shape == (batch, NUM_JOINTS, 1)
    assert ((out.visibility >= 0) & (out.visibility <= 1)).all()


def test_output_shapes_at_256() -> None:
    net = BlazePoseNet().eval()
    with torch.no_grad():
        _check_shapes(net(_inputs(256, batch=1)), batch=1, size=256)


@pytest.mark.parametrize("size", [192, 128, 64])
def test_output_shapes_at_other_sizes(size: int) -> None:
    net = BlazePoseNet(input_size=size).eval()
    with torch.no_grad():
        _check_shapes(net(_inputs(size)), batch=2, size=size)


@pytest.mark.parametrize("size", [100, 0, 48])
def test_input_size_must_be_multiple_of_32(size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        BlazePoseNet(input_size=size)


def test_input_of_wrong_size_is_rejected() -> None:
    net = BlazePoseNet(input_size=64)
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        net(_inputs(128))


@pytest.mark.parametrize(
    "kwargs", [{}, {"attention": ALL_ATTENTION, "bridge": DummyBridge(), "regression_tap": "conv10"}]
)
def test_every_parameter_in_exactly_one_group(kwargs: dict) -> None:
    net = BlazePoseNet(input_size=64, **kwargs)
    owners: dict[int, list[str]] = {}
    for group in GROUPS:
        for p in getattr(net, group).parameters():
            owners.setdefault(id(p), []).append(group)
    assert all(len(groups) == 1 for groups in owners.values())
    assert set(owners) == {id(p) for p in net.parameters()}


def test_attention_and_bridge_belong_to_heatmap_branch() -> None:
    bridge = DummyBridge()
    net = BlazePoseNet(input_size=64, attention=ALL_ATTENTION, bridge=bridge)
    heatmap_params = {id(p) for p in net.heatmap_branch.parameters()}
    assert {id(p) for p in bridge.parameters()} <= heatmap_params
    attn = [m for m in net.heatmap_branch.modules() if type(m).__name__ == "CbamModule"]
    assert len(attn) == 3
    assert {id(p) for m in attn for p in m.parameters()} <= heatmap_params


def _grads(module: nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in module.parameters()]


@pytest.mark.parametrize("readout", REGRESSION_READOUTS)
@pytest.mark.parametrize("tap", ["conv9", "conv10"])
def test_regression_loss_does_not_reach_backbone_or_heatmap_branch(tap: str, readout: str) -> None:
    net = BlazePoseNet(input_size=64, regression_tap=tap, bridge=DummyBridge(), regression_readout=readout).train()
    out = net(_inputs(64))
    (out.coords.square().mean() + out.visibility.mean()).backward()
    assert all(g is None for g in _grads(net.backbone) + _grads(net.heatmap_branch))
    assert all(g is not None for g in _grads(net.regression_branch))


@pytest.mark.parametrize("tap", ["conv9", "conv10"])
def test_heatmap_loss_does_not_reach_regression_branch(tap: str) -> None:
    net = BlazePoseNet(input_size=64, regression_tap=tap).train()
    net(_inputs(64)).heatmaps.mean().backward()
    assert all(g is None for g in _grads(net.regression_branch))
    assert all(g is not None for g in _grads(net.backbone))


@pytest.mark.parametrize("tap, skipped", [("conv9", ["conv10", "conv11"]), ("conv10", ["conv11"])])
def test_forward_regression_matches_forward_and_skips_heatmap_tail(tap: str, skipped: list[str]) -> None:
    net = BlazePoseNet(input_size=64, regression_tap=tap, bridge=DummyBridge()).eval()
    branch = net.heatmap_branch
    tail = {"conv10": branch.decoder["conv10"], "conv11": branch.conv11}
    called: list[str] = []
    for name, module in tail.items():
        module.register_forward_hook(lambda *_, name=name: called.append(name))
    x = _inputs(64)
    with torch.no_grad():
        full = net(x)
        called.clear()
        coords, visibility = net.forward_regression(x)
    assert not set(called) & set(skipped)
    torch.testing.assert_close(coords, full.coords, rtol=0, atol=0)
    torch.testing.assert_close(visibility, full.visibility, rtol=0, atol=0)


def test_forward_heatmaps_matches_forward_and_skips_the_regression_branch() -> None:
    net = BlazePoseNet(input_size=64).eval()
    called: list[str] = []
    net.regression_branch.register_forward_hook(lambda *_: called.append("regression_branch"))
    x = _inputs(64)
    with torch.no_grad():
        full = net(x)
        called.clear()
        heatmaps = net.forward_heatmaps(x)
    assert called == []
    torch.testing.assert_close(heatmaps, full.heatmaps, rtol=0, atol=0)


@pytest.mark.parametrize("branches", [{"heatmaps": False}, {"regression": False}])
def test_forward_leaves_out_a_branch_and_keeps_the_other_outputs(branches: dict[str, bool]) -> None:
    net = BlazePoseNet(input_size=64).eval()
    called: list[str] = []
    net.regression_branch.register_forward_hook(lambda *_: called.append("regression_branch"))
    net.heatmap_branch.decoder["conv10"].register_forward_hook(lambda *_: called.append("conv10"))
    x = _inputs(64)
    with torch.no_grad():
        full = net(x)
        called.clear()
        partial = net(x, **branches)
    if branches == {"heatmaps": False}:
        assert partial.heatmaps is None and called == ["regression_branch"]  # the conv9 tap: no conv10
        torch.testing.assert_close(partial.coords, full.coords, rtol=0, atol=0)
        torch.testing.assert_close(partial.visibility, full.visibility, rtol=0, atol=0)
    else:
        assert partial.coords is None and partial.visibility is None and called == ["conv10"]
        torch.testing.assert_close(partial.heatmaps, full.heatmaps, rtol=0, atol=0)
    with pytest.raises(ValueError, match="at least one"):
        net(x, heatmaps=False, regression=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"upsample": "transpose"},
        {"regression_tap": "conv10"},
        {"heatmap_activation": "tanh"},
        {"extra_heatmaps": NUM_JOINTS},
        {"attention": ALL_ATTENTION},
        {"bridge": DummyBridge()},
        {
            "upsample": "transpose",
            "regression_tap": "conv10",
            "extra_heatmaps": NUM_JOINTS,
            "attention": ALL_ATTENTION,
            "bridge": DummyBridge(),
        },
    ],
    ids=["transpose", "conv10_tap", "tanh", "extra_heatmaps", "cbam", "bridge", "all"],
)
def test_variants_forward_and_backward(kwargs: dict) -> None:
    net = BlazePoseNet(input_size=64, **kwargs).train()
    out = net(_inputs(64))
    _check_shapes(out, batch=2, size=64, channels=NUM_JOINTS + kwargs.get("extra_heatmaps", 0))
    (out.heatmaps.mean() + out.coords.mean() + out.visibility.mean()).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_tanh_heatmaps_span_minus_one_to_one() -> None:
    net = BlazePoseNet(input_size=64, heatmap_activation="tanh")
    with torch.no_grad():
        net.heatmap_branch.heatmap_conv.weight.mul_(1e3)  # saturate so the range is actually exercised
        heatmaps = net(_inputs(64)).heatmaps
    assert heatmaps.min() >= -1 and heatmaps.max() <= 1
    assert heatmaps.min() < -0.9 and heatmaps.max() > 0.9


def test_bridge_output_is_added_at_conv9() -> None:
    bridge = DummyBridge()
    net = BlazePoseNet(input_size=64, bridge=bridge).eval()
    x = _inputs(64)
    with torch.no_grad():
        before = net(x).heatmaps
        bridge.proj.bias.add_(1.0)
        after = net(x).heatmaps
    assert not torch.allclose(before, after)


def test_bridge_of_wrong_shape_is_rejected() -> None:
    net = BlazePoseNet(input_size=64, bridge=nn.Conv2d(24, 48, 1))  # forgets to downsample to S/4
    with pytest.raises(ValueError, match="bridge output"):
        net(_inputs(64))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"upsample": "nearest"}, "bilinear, transpose"),
        ({"regression_tap": "conv8"}, "conv10, conv9"),
        ({"heatmap_activation": "relu"}, "sigmoid, tanh"),
        ({"attention": {"conv7": "cbam"}}, "conv3, conv4, conv5, conv6, conv11"),
        ({"attention": {"conv3": "no_such_attention"}}, "not a timm attention name"),
        ({"encoder_channels": (48, 96, 192)}, "need 4 entries"),
        ({"regression_inputs": ["offsets"]}, "coords, heatmaps"),
        ({"regression_readout": "linear"}, "dense, soft_argmax"),
    ],
)
def test_bad_names_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BlazePoseNet(input_size=64, **kwargs)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_initial_sigmoid_heatmaps_start_near_prior(mode: str) -> None:
    net = BlazePoseNet(input_size=64).train(mode == "train")
    with torch.no_grad():
        heatmaps = net(_inputs(64)).heatmaps
    assert heatmaps.mean().item() == pytest.approx(0.01, abs=0.002)
    assert heatmaps.max().item() < 0.02


def test_extra_heatmaps_start_at_their_own_prior_and_the_joints_at_theirs() -> None:
    net = BlazePoseNet(input_size=64, extra_heatmaps=NUM_JOINTS, extra_heatmap_prior=0.99).eval()
    with torch.no_grad():
        heatmaps = net(_inputs(64)).heatmaps
    assert heatmaps[:, :NUM_JOINTS].mean().item() == pytest.approx(0.01, abs=0.002)
    assert heatmaps[:, NUM_JOINTS:].mean().item() == pytest.approx(0.99, abs=0.002)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"extra_heatmap_prior": 0.99},  # no extra maps to start
        {"extra_heatmaps": NUM_JOINTS, "extra_heatmap_prior": 1.0},  # not a probability a sigmoid reaches
        {"extra_heatmaps": NUM_JOINTS, "extra_heatmap_prior": 0.5, "heatmap_activation": "tanh"},
    ],
)
def test_extra_heatmap_prior_needs_sigmoid_extra_maps(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="extra_heatmap_prior needs"):
        BlazePoseNet(input_size=64, **kwargs)


def test_blaze_block_handles_odd_sizes_and_narrowing() -> None:
    x = torch.randn(2, 8, 7, 5)
    assert BlazeBlock(8, 16, num_units=2)(x).shape == (2, 16, 4, 3)
    assert BlazeBlock(8, 4)(x).shape == (2, 4, 4, 3)


def test_blaze_block_widening_shortcut_is_zero_padded_max_pool() -> None:
    block = BlazeBlock(2, 4).eval()
    for p in block.down.parameters():
        nn.init.zeros_(p)  # kill the conv path: the output is then relu(shortcut)
    x = torch.randn(1, 2, 4, 4)
    y = block(x)
    expected = torch.relu(nn.functional.max_pool2d(x, 2))
    torch.testing.assert_close(y[:, :2], expected)
    assert (y[:, 2:] == 0).all()


def test_residual_separable_conv_needs_matching_shapes() -> None:
    with pytest.raises(ValueError, match="residual"):
        SeparableConv(8, 16, residual=True)
    with pytest.raises(ValueError, match="residual"):
        SeparableConv(8, 8, stride=2, residual=True)


@pytest.mark.parametrize("kind", ["bilinear", "transpose"])
def test_upsample_doubles_resolution(kind: str) -> None:
    assert make_upsample(kind, 6)(torch.randn(2, 6, 3, 4)).shape == (2, 6, 6, 8)


@pytest.mark.parametrize("readout", REGRESSION_READOUTS)
def test_regression_heads_start_at_the_frame_centre_with_even_visibility(readout: str) -> None:
    # Default-initialised heads start far outside [0, 1] and saturate visibility; training then stalls.
    out = BlazePoseNet(input_size=64, regression_readout=readout).train()(_inputs(64))
    assert torch.allclose(out.coords, torch.full_like(out.coords, 0.5))
    assert torch.allclose(out.visibility, torch.full_like(out.visibility, 0.5))


@pytest.mark.parametrize("tap", ["conv9", "conv10"])
def test_regression_branch_reading_the_heatmaps_runs_the_head_and_stays_behind_stop_gradients(tap: str) -> None:
    net = BlazePoseNet(input_size=64, regression_tap=tap, regression_inputs=["coords", "heatmaps"]).train()
    out = net(_inputs(64))
    (out.coords.square().mean() + out.visibility.mean()).backward()
    assert all(g is None for g in _grads(net.backbone) + _grads(net.heatmap_branch))
    assert all(g is not None for g in _grads(net.regression_branch))

    net.eval()
    nn.init.normal_(net.regression_branch.readout.coords.weight)  # zero at start: every image at the frame centre
    called: list[str] = []
    net.heatmap_branch.conv11.register_forward_hook(lambda *_: called.append("conv11"))
    x = _inputs(64)
    with torch.no_grad():
        full = net(x)
        called.clear()
        coords, _ = net.forward_regression(x)
        heatmaps_changed = net.regression_branch(
            net._features(x, until="conv10"), torch.zeros_like(full.heatmaps))[0]
    assert called == ["conv11"]  # the regression path needs the heatmap head now
    torch.testing.assert_close(coords, full.coords, rtol=0, atol=0)
    assert not torch.allclose(heatmaps_changed, coords)  # the coordinates depend on the heatmaps they read
    with pytest.raises(ValueError, match="reads the heatmaps"):
        net.regression_branch(net._features(x, until="conv10"))


@pytest.mark.parametrize("readout", REGRESSION_READOUTS)
def test_weights_saved_before_the_readout_was_a_module_load_into_it(readout: str) -> None:
    trained = BlazePoseNet(input_size=64, regression_readout=readout).eval()
    for parameter in trained.regression_branch.readout.parameters():
        nn.init.normal_(parameter)
    state = trained.state_dict()
    old_layout = {key.replace("regression_branch.readout.", "regression_branch."): value
                  for key, value in state.items()}
    assert old_layout.keys() != state.keys()
    loaded = BlazePoseNet(input_size=64, regression_readout=readout).eval()
    loaded.load_state_dict(old_layout)  # strict: every key placed
    x = _inputs(64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_regression(x), trained.forward_regression(x), rtol=0, atol=0)


def test_coordinate_maps_give_each_cell_centre_as_a_fraction_of_the_frame() -> None:
    maps = cell_coordinates(torch.zeros(2, 5, 4, 8))
    assert maps.shape == (2, 2, 4, 8)
    torch.testing.assert_close(maps[1, 0, 3], (torch.arange(8) + 0.5) / 8)  # x along the width, every row
    torch.testing.assert_close(maps[0, 1, :, 5], (torch.arange(4) + 0.5) / 4)  # y down the height


class _FixedMaps(nn.Module):
    """Stands in for the soft-argmax head's 1×1 conv: the same logit and offset maps for every input."""

    def __init__(self, maps: torch.Tensor) -> None:
        super().__init__()
        self.fixed = maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fixed.expand(x.shape[0], -1, -1, -1)


def test_soft_argmax_gives_the_peak_cells_position_plus_its_offset_in_cells() -> None:
    net = BlazePoseNet(input_size=64, regression_readout="soft_argmax").eval()  # last stage: 2×2 cells
    maps = torch.zeros(1, NUM_JOINTS * 3, 2, 2)
    maps[0, 0, 1, 0] = 50.0  # joint 0: row 1, column 0
    maps[0, 1, 1, 0], maps[0, 2, 1, 0] = -0.5, 0.25  # its offsets there: half a cell left, a quarter down
    maps[0, 3, 0, 1] = 50.0  # joint 1: row 0, column 1, offset half a cell right: the frame's right edge
    maps[0, 4, 0, 1] = 0.5
    net.regression_branch.readout.maps = _FixedMaps(maps)
    with torch.no_grad():
        coords, _ = net.forward_regression(_inputs(64))
    torch.testing.assert_close(coords[:, 0], torch.tensor([[0.0, 0.875]] * 2))
    torch.testing.assert_close(coords[:, 1], torch.tensor([[1.0, 0.25]] * 2))
    torch.testing.assert_close(coords[:, 2], torch.tensor([[0.5, 0.5]] * 2))  # flat logits: the grid's mean


def test_soft_argmax_s16_reads_a_grid_of_half_the_cell_width() -> None:
    net = BlazePoseNet(input_size=64, regression_readout="soft_argmax_s16").eval()  # S/16: 4×4 cells
    maps = torch.zeros(1, NUM_JOINTS * 3, 4, 4)
    maps[0, 0, 3, 1] = 50.0  # joint 0: row 3, column 1, centre (0.375, 0.875)
    maps[0, 1, 3, 1] = 0.5  # half a cell right: an eighth of the frame
    net.regression_branch.readout.maps = _FixedMaps(maps)
    with torch.no_grad():
        coords, _ = net.forward_regression(_inputs(64))
    torch.testing.assert_close(coords[:, 0], torch.tensor([[0.5, 0.875]] * 2))
    torch.testing.assert_close(coords[:, 1], torch.tensor([[0.5, 0.5]] * 2))
