"""Named train/val/test split protocols of LSP, as 1-based inclusive ranges of image numbers.

- `standard`: the literature's protocol, images 1001–2000 as the test set; the first 1000 (LSP's training
  half) are cut into train 1–900 and val 901–1000, so model selection never sees test images.
- `standard_trainval`: the same test set, trained on all of LSP's training half (1–1000), as the literature
  trains; with no val subset there is no model selection, so a stage's checkpoint is its final epoch. For a
  recipe already chosen on `standard`.
- `seed`: the report's 60/20/20 split in index order (train 1–1200, val 1201–1600, test 1601–2000).

A split may also be given as a mapping subset → (first, last), which is how tests run on a tiny fixture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pose_lab.data.errors import LSPDataError

SPLIT_PROTOCOLS: dict[str, dict[str, tuple[int, int]]] = {
    "standard": {"train": (1, 900), "val": (901, 1000), "test": (1001, 2000)},
    "standard_trainval": {"train": (1, 1000), "test": (1001, 2000)},
    "seed": {"train": (1, 1200), "val": (1201, 1600), "test": (1601, 2000)},
}


def _ranges(split: str | Mapping[str, Sequence[int]]) -> tuple[str, dict[str, tuple[int, int]]]:
    """The split's name for messages and its validated subset ranges."""
    if isinstance(split, str):
        if split not in SPLIT_PROTOCOLS:
            raise LSPDataError(f"unknown split protocol {split!r}; known protocols: {', '.join(SPLIT_PROTOCOLS)}")
        return f"protocol {split!r}", SPLIT_PROTOCOLS[split]

    if not isinstance(split, Mapping):
        raise LSPDataError(f"a split is a protocol name or a mapping subset -> [first, last], got {split!r}")
    name = f"custom split {({k: list(v) for k, v in split.items()})}"
    ranges: dict[str, tuple[int, int]] = {}
    for subset, bounds in split.items():
        values = list(bounds)
        # bool is an int subclass, but True/False as an image number is always a config mistake.
        if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            raise LSPDataError(f"{name}: subset {subset!r} must be [first, last] image numbers, got {values}")
        first, last = int(values[0]), int(values[1])
        if not 1 <= first <= last:
            raise LSPDataError(f"{name}: subset {subset!r} needs 1 <= first <= last, got [{first}, {last}]")
        ranges[str(subset)] = (first, last)

    ordered = sorted(ranges.items(), key=lambda item: item[1])
    for (name_a, (_, last_a)), (name_b, (first_b, _)) in zip(ordered, ordered[1:]):
        if first_b <= last_a:
            raise LSPDataError(f"{name}: subsets {name_a!r} and {name_b!r} overlap; each image may be in one subset")
    return name, ranges


def split_subsets(split: str | Mapping[str, Sequence[int]]) -> tuple[str, ...]:
    """The subsets `split` defines (a split without `val` trains without validation)."""
    return tuple(_ranges(split)[1])


def split_numbers(split: str | Mapping[str, Sequence[int]], subset: str, num_images: int) -> np.ndarray:
    """1-based image numbers of `subset` under `split` (a protocol name or a subset → (first, last) mapping)."""
    name, ranges = _ranges(split)
    if subset not in ranges:
        raise LSPDataError(f"{name} has no subset {subset!r}; its subsets are: {', '.join(ranges)}")
    needed = max(last for _, last in ranges.values())
    if needed > num_images:
        raise LSPDataError(
            f"{name} needs {needed} images but the data root has {num_images}; "
            "point data.root at the full LSP (2000 images) or choose a split that fits"
        )
    first, last = ranges[subset]
    return np.arange(first, last + 1, dtype=np.int64)
