"""ViTBridge (report §4.3.1): shapes at two input sizes, learned positional embedding, embedding kinds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pose_lab.models.blocks.vit_bridge import ViTBridge

KINDS = [("dense", "bilinear"), ("conv", "transpose")]  # the report's ViT and ViT2


def _bridge(size: int, patch_embed: str = "dense", upsample: str = "bilinear", **kwargs) -> ViTBridge:
    kwargs = {"width": 32, "depth": 1, **kwargs}
    return ViTBridge(24, 48, size, patch_embed=patch_embed, upsample=upsample, **kwargs)


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize(("patch_embed", "upsample"), KINDS)
def test_maps_backbone_output_to_the_conv9_level(size: int, patch_embed: str, upsample: str) -> None:
    bridge = _bridge(size, patch_embed, upsample)
    out = bridge(torch.randn(2, 24, size // 2, size // 2))
    assert out.shape == (2, 48, size // 4, size // 4)
    out.sum().backward()
    assert bridge.pos_embed.grad is not None and bridge.pos_embed.grad.abs().sum() > 0


@pytest.mark.parametrize("size", [64, 256])
def test_positional_embedding_is_learned_and_sized_by_the_grid(size: int) -> None:
    bridge = _bridge(size)
    assert isinstance(bridge.pos_embed, nn.Parameter)
    assert any(p is bridge.pos_embed for p in bridge.parameters())
    assert bridge.pos_embed.shape == (1, 8 * 8, 32)
    assert _bridge(size, grid=4).pos_embed.shape == (1, 4 * 4, 32)


def test_patch_embedding_and_upsampling_kinds_differ() -> None:
    dense, conv = _bridge(64, *KINDS[0]), _bridge(64, *KINDS[1])
    assert any(isinstance(m, nn.Linear) for m in dense.patch_embed.modules())
    assert not any(isinstance(m, nn.Conv2d) for m in dense.patch_embed.modules())
    assert any(isinstance(m, nn.Conv2d) for m in conv.patch_embed.modules())
    assert not any(isinstance(m, nn.Linear) for m in conv.patch_embed.modules())
    assert isinstance(dense.upsample, nn.Upsample)
    assert isinstance(conv.upsample, nn.ConvTranspose2d)


@pytest.mark.parametrize("patch_embed", ["dense", "conv"])
def test_tokens_return_to_the_place_of_their_patch(patch_embed: str) -> None:
    """Without blocks (no token mixing) and with the local transposed-conv upsampling, a change inside one
    patch changes only that patch's output cells: patchify and unpatchify agree on the token order."""
    bridge = _bridge(64, patch_embed, "transpose", depth=0).eval()
    x = torch.zeros(1, 24, 32, 32)
    y = x.clone()
    y[0, 0, 0:4, 4:8] = 1.0  # pools to S/4 rows 0:2, cols 2:4: the patch in grid row 0, column 1
    changed = (bridge(y) - bridge(x)).abs().sum(1)[0] > 1e-6  # (S/4, S/4)
    expected = torch.zeros_like(changed)
    expected[0:2, 2:4] = True
    assert changed[expected].any() and not changed[~expected].any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patch_embed": "linear"}, "patch_embed"),
        ({"upsample": "nearest"}, "upsample"),
        ({"grid": 5}, "grid"),
        ({"num_heads": 3}, "num_heads"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _bridge(64, **kwargs)
