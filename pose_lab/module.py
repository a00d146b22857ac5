"""PoseLitModule: one training/evaluation step = network -> loss -> decode both outputs -> PCK.

Everything is injected (network, loss, codecs, optimizer and scheduler partials) so variants are config.
Predictions are scored in original image pixels: decoded input-pixel keypoints are mapped back through
each sample's inverse letterbox affine before the metric sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from pose_lab.codecs.heatmap import GaussianHeatmap
from pose_lab.codecs.regression import RegressionLabel
from pose_lab.data.geometry import apply_affine
from pose_lab.evaluation_record import OUTPUTS
from pose_lab.metrics import PCK_PROTOCOLS, make_pck
from pose_lab.models.network import TRAINED_BY, PoseOutput


class PoseLitModule(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        heatmap_codec: GaussianHeatmap,
        regression_codec: RegressionLabel,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,  # called with optimizer= and total_epochs=
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.net = net
        self.loss = loss
        self.heatmap_codec = heatmap_codec
        self.regression_codec = regression_codec
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.channels_last = channels_last
        if channels_last:  # 1.6-2x faster convolutions on CPU (PLATFORM.md)
            self.net.to(memory_format=torch.channels_last)
        self.metrics = nn.ModuleDict(
            {
                self.metric_key(stage, protocol, output): make_pck(protocol)
                for stage in ("val", "test")
                for protocol in PCK_PROTOCOLS
                for output in OUTPUTS
            }
        )

    @staticmethod
    def metric_key(stage: str, protocol: str, output: str) -> str:
        """ModuleDict keys may not contain '.', so 'pckh@0.5' becomes 'pckh_05'."""
        return f"{stage}_{protocol}_{output}".replace("@", "_").replace(".", "")

    def forward(self, images: Tensor, **branches: bool) -> PoseOutput:
        """`branches`: the network's heatmaps= / regression= switches (all outputs when none is given)."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images, **branches)

    def trained_outputs(self) -> dict[str, bool]:
        """Which outputs the training phase can change: a branch whose parameters are all frozen
        (phases.TrainOnly) learns nothing from its loss, so training steps skip its forward pass."""
        return {output: any(p.requires_grad for group in groups for p in getattr(self.net, group).parameters())
                for output, groups in TRAINED_BY.items()}

    def decode(self, output: PoseOutput, to_original: Tensor) -> dict[str, Tensor]:
        """Both outputs as (B,K,2) keypoints in original pixels."""
        heatmap_points, _ = self.heatmap_codec.decode(output.joint_heatmaps.float())
        input_points = {"regression": self.regression_codec.decode(output.coords.float()), "heatmap": heatmap_points}
        return {name: apply_affine(points, to_original) for name, points in input_points.items()}

    def training_step(self, batch: dict[str, Tensor], batch_index: int) -> Tensor:
        terms = self.loss(self(batch["image"], **self.trained_outputs()), batch)
        self.log_dict({f"train/loss_{name}": value for name, value in terms.items()},
                      prog_bar=False, batch_size=len(batch["image"]))
        self.log("train/loss", terms["total"], prog_bar=True, batch_size=len(batch["image"]))
        return terms["total"]

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        output = self(batch["image"])
        terms = self.loss(output, batch)
        batch_size = len(batch["image"])
        self.log_dict({f"{stage}/loss_{name}": value for name, value in terms.items()}, batch_size=batch_size)
        predictions = self.decode(output, batch["to_original"])
        for protocol in PCK_PROTOCOLS:
            for output_name in OUTPUTS:
                metric = self.metrics[self.metric_key(stage, protocol, output_name)]
                metric.update(predictions[output_name], batch["keypoints"])
                self.log(f"{stage}/{protocol}_{output_name}", metric, prog_bar=protocol == "pckh@0.5",
                         batch_size=batch_size)

    def validation_step(self, batch: dict[str, Tensor], batch_index: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_index: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> Any:
        # Only what the phase callback left trainable; frozen groups get no optimizer state at all.
        trainable = [p for p in self.parameters() if p.requires_grad]
        if not trainable:
            raise RuntimeError("no trainable parameters: the phase froze every parameter group")
        optimizer = self.optimizer_factory(params=trainable)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer, total_epochs=self.trainer.max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
