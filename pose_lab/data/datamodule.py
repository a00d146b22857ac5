"""LSPDataModule: LSP decoded once into memory, split by a named protocol, served as letterboxed batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from pose_lab.codecs.heatmap import GaussianHeatmap
from pose_lab.codecs.regression import RegressionLabel
from pose_lab.data.dataset import IMAGENET_MEAN, IMAGENET_STD, LSPPoseDataset
from pose_lab.data.lsp import load_lsp
from pose_lab.data.errors import LSPDataError
from pose_lab.data.splits import split_numbers, split_subsets
from pose_lab.data.transforms import PoseAugment

SUBSETS = ("train", "val", "test")


class LSPDataModule(L.LightningDataModule):
    def __init__(
        self,
        input_size: int,
        heatmap_codec: GaussianHeatmap,
        regression_codec: RegressionLabel,
        root: str | Path | None = None,
        split: str | Mapping[str, Sequence[int]] = "standard",
        convention: str = "lsp",
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        augment: PoseAugment | None = None,
    ) -> None:
        super().__init__()
        if not input_size == heatmap_codec.input_size == regression_codec.input_size:
            raise ValueError(
                f"data.input_size {input_size}, heatmap codec input_size {heatmap_codec.input_size} and "
                f"regression codec input_size {regression_codec.input_size} differ: the codecs must take "
                "theirs from data.input_size"
            )
        self.heatmap_codec = heatmap_codec
        self.regression_codec = regression_codec
        self.root = root
        self.split = split
        self.convention = convention
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.mean, self.std = mean, std
        self.augment = augment
        self.datasets: dict[str, LSPPoseDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:  # decoded once per process, reused by every stage of a two-phase run
            return
        annotations, images = load_lsp(self.root, convention=self.convention)
        defined = split_subsets(self.split)
        for subset in [subset for subset in SUBSETS if subset in defined]:
            numbers = split_numbers(self.split, subset, num_images=len(annotations))
            rows = np.asarray(numbers) - 1
            self.datasets[subset] = LSPPoseDataset(
                images=[images[i] for i in rows],
                keypoints=annotations.keypoints[rows],
                visible=annotations.visible[rows],
                numbers=numbers,
                heatmap_codec=self.heatmap_codec,
                regression_codec=self.regression_codec,
                mean=self.mean,
                std=self.std,
                augment=self.augment if subset == "train" else None,
            )

    def dataloader(self, subset: str, shuffle: bool = False) -> DataLoader:
        if subset not in SUBSETS:
            raise ValueError(f"unknown subset {subset!r}; choose one of {SUBSETS}")
        if subset not in self.datasets:
            raise LSPDataError(f"split {self.split!r} has no {subset} subset; its subsets are: "
                               f"{', '.join(self.datasets)}")
        dataset = self.datasets[subset]
        batch_size = self.batch_size if shuffle else self.eval_batch_size
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            # A last batch of one image would break BatchNorm in training.
            drop_last=shuffle and len(dataset) > batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test", shuffle=False)
