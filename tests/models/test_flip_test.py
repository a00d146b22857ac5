"""FlipAveraged: the averaged answer is exactly mirror-equivariant, on every path and with mirror-joint maps."""

from __future__ import annotations

import pytest
import torch

from pose_lab.models.flip_test import FlipAveraged
from pose_lab.models.network import BlazePoseNet
from pose_lab.skeleton import FLIP_PARTNERS, NUM_JOINTS

SIZE = 64


def _net(extra_heatmaps: int = 0) -> BlazePoseNet:
    torch.manual_seed(0)
    return BlazePoseNet(num_joints=NUM_JOINTS, input_size=SIZE, extra_heatmaps=extra_heatmaps).eval()


@pytest.mark.parametrize("extra_heatmaps", [0, NUM_JOINTS])
def test_mirror_image_gives_the_mirrored_answer(extra_heatmaps: int) -> None:
    flip = FlipAveraged(_net(extra_heatmaps)).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        plain, mirrored = flip(x), flip(x.flip(-1))
    partners = list(FLIP_PARTNERS)
    order = partners + [NUM_JOINTS + p for p in partners] if extra_heatmaps else partners
    torch.testing.assert_close(mirrored.heatmaps, plain.heatmaps.flip(-1)[:, order], atol=1e-5, rtol=1e-4)
    # Pixel x on the mirror image is S - 1 - x here: in normalised units (S - 1) / S - x.
    expected_x = (SIZE - 1) / SIZE - plain.coords[:, partners, 0]
    torch.testing.assert_close(mirrored.coords[..., 0], expected_x, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mirrored.coords[..., 1], plain.coords[:, partners, 1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mirrored.visibility, plain.visibility[:, partners], atol=1e-5, rtol=1e-4)


def test_regression_path_matches_the_full_path_and_averages_two_views() -> None:
    net = _net()
    flip = FlipAveraged(net).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        coords, visibility = flip.forward_regression(x)
        full = flip(x)
        single = net(x)
    torch.testing.assert_close(coords, full.coords)
    torch.testing.assert_close(visibility, full.visibility)
    assert not torch.allclose(coords, single.coords)  # the mirror view changed the answer


@pytest.mark.parametrize("extra_heatmaps", [0, NUM_JOINTS])
def test_heatmap_path_matches_the_full_path_and_averages_two_views(extra_heatmaps: int) -> None:
    net = _net(extra_heatmaps)
    flip = FlipAveraged(net).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        heatmaps = flip.forward_heatmaps(x)
        full = flip(x)
        single = net.forward_heatmaps(x)
    torch.testing.assert_close(heatmaps, full.heatmaps)
    assert not torch.allclose(heatmaps, single)


def test_unknown_heatmap_count_is_refused() -> None:
    with pytest.raises(ValueError, match="14 or 28 heatmaps, the network gives 17"):
        FlipAveraged(_net(extra_heatmaps=3))(torch.randn(1, 3, SIZE, SIZE))
