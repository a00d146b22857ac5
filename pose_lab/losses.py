"""Training losses of the report (§3.2.2): BCE on heatmaps, a coordinate loss, BCE on visibility.

`PoseLoss` weighs the three terms and returns them by name for logging. The heatmap and coordinate terms
are modules injected from config, so loss variants (the negative-heatmap losses of §4.2, L1 coordinates)
are new small modules, not edits here. Losses run in fp32 even under autocast: BCE on probabilities is
not autocast-safe.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pose_lab.models.network import PoseOutput


class HeatmapBCE(nn.Module):
    """Mean binary cross-entropy between predicted (B,K,h,w) probabilities and Gaussian targets."""

    def forward(self, predicted: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(predicted.float(), target.float())


class CoordinateLoss(nn.Module):
    """MSE (the report's) or L1 on normalised (B,K,2) coordinates, over joints whose weight is 1."""

    def __init__(self, kind: str = "mse") -> None:
        super().__init__()
        if kind not in ("mse", "l1"):
            raise ValueError(f"coordinate loss kind must be 'mse' or 'l1', got {kind!r}")
        self.kind = kind

    def forward(self, predicted: Tensor, target: Tensor, weight: Tensor) -> Tensor:
        error = predicted.float() - target.float()
        per_value = error.pow(2) if self.kind == "mse" else error.abs()
        mask = weight.float().unsqueeze(-1).expand_as(per_value)
        return (per_value * mask).sum() / mask.sum().clamp(min=1.0)


class PoseLoss(nn.Module):
    def __init__(
        self,
        heatmap: nn.Module,
        coordinate: nn.Module,
        heatmap_weight: float = 1.0,
        coordinate_weight: float = 1.0,
        visibility_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.heatmap = heatmap
        self.coordinate = coordinate
        self.weights = {"heatmap": heatmap_weight, "coordinate": coordinate_weight, "visibility": visibility_weight}

    def forward(self, output: PoseOutput, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named terms plus their weighted sum under 'total'."""
        with torch.autocast(device_type=output.coords.device.type, enabled=False):
            return self._terms(output, batch)

    def _terms(self, output: PoseOutput, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        terms = {
            "heatmap": self.heatmap(output.heatmaps, batch["heatmaps"]),
            "coordinate": self.coordinate(output.coords, batch["coords"], batch["weight"]),
            "visibility": F.binary_cross_entropy(output.visibility.float().squeeze(-1), batch["visibility"].float()),
        }
        terms["total"] = torch.stack([self.weights[name] * value for name, value in terms.items()]).sum()
        return terms
