import numpy as np
import pytest
import torch

from pose_lab.data.geometry import apply_affine, invert_affine, letterbox, letterbox_matrix


@pytest.mark.parametrize("width, height", [(120, 200), (200, 90), (64, 64)])
def test_letterbox_round_trip_and_aspect(width: int, height: int) -> None:
    matrix = letterbox_matrix(width, height, 256)
    assert matrix[0, 0] == matrix[1, 1]  # aspect kept
    points = np.random.default_rng(1).uniform(0, [width - 1, height - 1], size=(14, 2))
    back = apply_affine(apply_affine(points, matrix), invert_affine(matrix))
    assert np.abs(back - points).max() < 1e-9
    # The image's outer edges land on the input's edges along the long side, centred on the short side.
    corners = apply_affine(np.array([[-0.5, -0.5], [width - 0.5, height - 0.5]]), matrix)
    long_axis = 0 if width >= height else 1
    assert corners[:, long_axis] == pytest.approx([-0.5, 255.5])
    short = corners[:, 1 - long_axis]
    assert (short[0] + 0.5) == pytest.approx(255.5 - short[1])


def test_letterbox_places_a_marked_pixel_where_the_affine_says() -> None:
    image = np.zeros((100, 50, 3), dtype=np.uint8)
    image[70, 30] = 255
    warped, matrix = letterbox(image, 200)
    assert warped.shape == (200, 200, 3)
    y, x = np.unravel_index(warped[..., 0].argmax(), warped.shape[:2])
    expected = apply_affine(np.array([[30.0, 70.0]]), matrix)[0]
    assert np.hypot(x - expected[0], y - expected[1]) <= 1.0


def test_apply_affine_batches_per_sample_in_torch() -> None:
    matrices = torch.tensor([[[2.0, 0, 1], [0, 2, 3]], [[1.0, 0, -5], [0, 1, 0]]])
    points = torch.tensor([[[1.0, 1.0]], [[10.0, 4.0]]])
    assert apply_affine(points, matrices).tolist() == [[[3.0, 5.0]], [[5.0, 4.0]]]


def test_bad_size_raises() -> None:
    with pytest.raises(ValueError, match="positive"):
        letterbox_matrix(0, 10, 256)
