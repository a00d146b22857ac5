"""Normalize: the one input normalisation of training and inference."""

import pickle

import numpy as np
import pytest
import torch

from pose_lab.data.dataset import IMAGENET_MEAN, IMAGENET_STD, Normalize


def reference(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).double() / 255
    return ((pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)).float()


@pytest.mark.parametrize("shape", [(192, 192, 3), (37, 81, 3), (1, 1, 3)])
def test_matches_the_formula_per_channel(shape: tuple[int, int, int]) -> None:
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)  # distinct per channel: a swapped channel would show
    out = Normalize(mean, std)(image)
    assert out.shape == (3, shape[0], shape[1]) and out.dtype == torch.float32 and out.is_contiguous()
    torch.testing.assert_close(out, reference(image, mean, std), atol=1e-5, rtol=0)


def test_reads_a_strided_view_and_survives_pickling() -> None:
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)[::2, 1::2]
    normalize = pickle.loads(pickle.dumps(Normalize()))  # spawned DataLoader workers pickle the dataset
    torch.testing.assert_close(normalize(image), reference(image, IMAGENET_MEAN, IMAGENET_STD), atol=1e-5, rtol=0)
