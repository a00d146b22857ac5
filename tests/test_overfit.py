"""The base model can memorise 8 images: both outputs reach PCKh@0.5 >= 0.9 on them after the two phases.

Slow: 240 training steps, about half a minute on a 2-core CPU; the default run trains through pose_lab.train's
smoke runs."""

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from pose_lab.metrics import pck
from pose_lab.phases import TrainOnly


def _fit(module: L.LightningModule, loader, groups: list[str], steps: int) -> None:
    trainer = L.Trainer(
        accelerator="cpu", max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.callbacks.append(TrainOnly(groups))
    trainer.fit(module, train_dataloaders=loader)


@pytest.mark.slow
def test_base_model_overfits_eight_images(train_cfg) -> None:
    cfg = train_cfg("data.input_size=64", "data.batch_size=8", "model.optimizer.lr=3e-3")
    L.seed_everything(0)
    datamodule = instantiate(cfg.data, augment=None)
    datamodule.setup()
    loader = datamodule.dataloader("train", shuffle=True)
    assert len(loader.dataset) == 8
    module = instantiate(cfg.model)
    _fit(module, loader, ["backbone", "heatmap_branch"], steps=60)
    _fit(module, loader, ["regression_branch"], steps=180)
    module.eval()
    batch = next(iter(datamodule.dataloader("train")))
    with torch.no_grad():
        predictions = module.decode(module(batch["image"]), batch["to_original"])
    for output in ("heatmap", "regression"):
        score = pck(predictions[output], batch["keypoints"], "head", 0.5).item()
        assert score >= 0.9, f"{output} output reached only PCKh@0.5 = {score:.2f} on its 8 training images"
