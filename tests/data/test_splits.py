"""pose_lab.data.splits: named protocols, custom ranges, and the errors for impossible splits."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from pose_lab.data.errors import LSPDataError
from pose_lab.data.splits import SPLIT_PROTOCOLS, split_numbers, split_subsets

TINY = {"train": [1, 8], "val": [9, 12], "test": [13, 16]}


@pytest.mark.parametrize(
    ("protocol", "sizes", "test_first"), [("standard", (900, 100, 1000), 1001), ("seed", (1200, 400, 400), 1601)]
)
def test_protocols_partition_lsp(protocol: str, sizes: tuple[int, int, int], test_first: int) -> None:
    parts = [split_numbers(protocol, subset, 2000) for subset in ("train", "val", "test")]
    assert tuple(len(p) for p in parts) == sizes
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(1, 2001))
    assert parts[2][0] == test_first and parts[0].dtype == np.int64


def test_trainval_protocol_trains_on_the_standard_train_and_val_and_tests_the_same() -> None:
    np.testing.assert_array_equal(split_numbers("standard_trainval", "train", 2000), np.arange(1, 1001))
    np.testing.assert_array_equal(split_numbers("standard_trainval", "test", 2000), split_numbers("standard", "test",
                                                                                                2000))
    assert split_subsets("standard_trainval") == ("train", "test")
    with pytest.raises(LSPDataError, match="no subset 'val'"):
        split_numbers("standard_trainval", "val", 2000)


def test_custom_mapping_and_dictconfig() -> None:
    np.testing.assert_array_equal(split_numbers(TINY, "val", 16), [9, 10, 11, 12])
    np.testing.assert_array_equal(split_numbers(OmegaConf.create(TINY), "test", 16), np.arange(13, 17))


def test_unknown_protocol_lists_known_ones() -> None:
    with pytest.raises(LSPDataError, match="unknown split protocol 'paper'.*standard, standard_trainval, seed"):
        split_numbers("paper", "train", 2000)
    assert set(SPLIT_PROTOCOLS) == {"standard", "standard_trainval", "seed"}


def test_unknown_subset_lists_subsets() -> None:
    with pytest.raises(LSPDataError, match="no subset 'valid'.*train, val, test"):
        split_numbers("standard", "valid", 2000)


def test_protocol_larger_than_data_root() -> None:
    with pytest.raises(LSPDataError, match="protocol 'standard' needs 2000 images but the data root has 16"):
        split_numbers("standard", "train", 16)
    with pytest.raises(LSPDataError, match="needs 16 images but the data root has 12"):
        split_numbers(TINY, "train", 12)


@pytest.mark.parametrize(
    ("split", "match"),
    [
        ({"train": [1, 8], "val": [8, 12]}, "'train' and 'val' overlap"),
        ({"train": [5, 3]}, "1 <= first <= last"),
        ({"train": [0, 3]}, "1 <= first <= last"),
        ({"train": [1, 2, 3]}, r"must be \[first, last\]"),
        ({"train": [1.0, 3]}, r"must be \[first, last\]"),
        ([1, 8], "protocol name or a mapping"),
    ],
)
def test_bad_custom_splits(split: object, match: str) -> None:
    with pytest.raises(LSPDataError, match=match):
        split_numbers(split, "train", 16)  # type: ignore[arg-type]
