import numpy as np
import pytest
import torch

from pose_lab.codecs.heatmap import GaussianHeatmap
from pose_lab.codecs.regression import RegressionLabel


@pytest.mark.parametrize("input_size, stride", [(256, 2), (192, 2), (64, 4)])
def test_encode_decode_round_trip_within_a_pixel(input_size: int, stride: int) -> None:
    codec = GaussianHeatmap(input_size=input_size, sigma=2.0, stride=stride)
    rng = np.random.default_rng(0)
    points = rng.uniform(4, input_size - 5, size=(14, 2)).astype(np.float32)
    maps = codec.encode(points, np.ones(14))
    assert maps.shape == (14, input_size // stride, input_size // stride)
    decoded, scores = codec.decode(torch.from_numpy(maps)[None])
    error = (decoded[0].numpy() - points)
    assert np.abs(error).max() <= 1.0 * stride / 2 + 1e-6
    assert np.linalg.norm(error, axis=1).max() < 1.0 if stride == 2 else True
    assert torch.all(scores > 0.8)


def test_peak_is_on_the_keypoint_and_zero_weight_gives_empty_map() -> None:
    codec = GaussianHeatmap(input_size=64, sigma=1.5)
    # Input pixel 21 is heatmap pixel (21 + 0.5) / 2 - 0.5 = 10.25 -> peak at column 10.
    maps = codec.encode(np.array([[21.0, 41.0], [5.0, 5.0]]), np.array([1.0, 0.0]))
    row, col = np.unravel_index(maps[0].argmax(), maps[0].shape)
    assert (col, row) == (10, 20)
    assert maps[0].max() == pytest.approx(np.exp(-(2 * 0.25**2) / (2 * 1.5**2)), rel=1e-5)
    assert maps[1].sum() == 0


def test_quarter_shift_moves_toward_the_higher_neighbour() -> None:
    codec = GaussianHeatmap(input_size=16, sigma=1.0)
    maps = torch.zeros(1, 1, 8, 8)
    maps[0, 0, 4, 4] = 1.0
    maps[0, 0, 4, 5] = 0.5  # right neighbour higher than left -> x + 0.25
    maps[0, 0, 3, 4] = 0.5  # upper neighbour higher than lower -> y - 0.25
    points, _ = codec.decode(maps)
    assert points[0, 0].tolist() == pytest.approx(codec.to_input_coords(torch.tensor([4.25, 3.75])).tolist())


def test_a_neighbour_outside_the_map_repeats_the_edge_pixel() -> None:
    codec = GaussianHeatmap(input_size=16, sigma=1.0)
    maps = torch.zeros(1, 2, 8, 8)
    maps[0, 0, 0, 7] = 1.0  # top-right corner, with a neighbour inside below it
    maps[0, 0, 1, 7] = 0.5
    maps[0, 1, 7, 0] = 1.0  # bottom-left corner, with a neighbour inside to its right
    maps[0, 1, 7, 1] = 0.5
    points, scores = codec.decode(maps)
    # The pixel outside (the peak's own value) beats the one inside: the shift points out of the map.
    expected = codec.to_input_coords(torch.tensor([[7.25, -0.25], [-0.25, 7.25]]))
    torch.testing.assert_close(points[0], expected)
    assert scores[0].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("sigma", [2.0, 3.0])
def test_dark_finds_a_gaussians_centre_below_a_tenth_of_a_heatmap_pixel(sigma: float) -> None:
    codec = GaussianHeatmap(input_size=192, sigma=sigma, refine="dark")
    points = np.random.default_rng(1).uniform(8, 184, size=(14, 2)).astype(np.float32)
    maps = torch.from_numpy(codec.encode(points, np.ones(14)))[None]
    dark, _ = codec.decode(maps)
    quarter, _ = codec.with_refine("quarter").decode(maps)
    dark_error = np.abs(dark[0].numpy() - points).max()
    assert dark_error < 0.1 * codec.stride
    assert dark_error < np.abs(quarter[0].numpy() - points).max() / 4


def test_dark_falls_back_to_the_quarter_shift_where_the_argmax_is_no_peak() -> None:
    codec = GaussianHeatmap(input_size=16, sigma=1.0, refine="dark")
    maps = torch.full((1, 1, 8, 8), 0.1)
    maps[0, 0, 4, :] = 1.0  # a ridge: flat along x, so the log-Hessian is singular there
    maps[0, 0, 3, 4] = 0.5
    points, _ = codec.decode(maps)
    quarter, _ = codec.with_refine("quarter").decode(maps)
    torch.testing.assert_close(points, quarter)


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError, match="divisible"):
        GaussianHeatmap(input_size=255, stride=2)
    with pytest.raises(ValueError, match="sigma"):
        GaussianHeatmap(input_size=256, sigma=0)
    with pytest.raises(ValueError, match="refine"):
        GaussianHeatmap(input_size=256, refine="soft-argmax")


def test_regression_label_round_trip() -> None:
    codec = RegressionLabel(input_size=192)
    points = np.array([[0.0, 191.0], [96.0, 48.0]], dtype=np.float32)
    encoded = codec.encode(points)
    assert encoded.max() <= 1.0 and encoded.min() >= 0.0
    assert codec.decode(torch.from_numpy(encoded)).numpy() == pytest.approx(points)
