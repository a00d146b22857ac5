"""Training losses of the report (§3.2.2): BCE on heatmaps, a coordinate loss, BCE on visibility.

`PoseLoss` weighs the three terms and returns them by name for logging. The heatmap and coordinate terms
are modules injected from config, so loss variants (the negative-heatmap losses of §4.2, L1 coordinates)
are new small modules, not edits here. Losses run in fp32 even under autocast: BCE on probabilities is
not autocast-safe.

The negative-heatmap losses (§4.2) compare joint j with its mirrored joint j' = skeleton.FLIP_PARTNERS[j].
Neck and head top are their own mirrors (H_j' = H_j); both losses leave them out of the mirror term,
which for them would only cancel or fight the joint's own target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pose_lab.models.network import PoseOutput
from pose_lab.skeleton import FLIP_PARTNERS


class HeatmapBCE(nn.Module):
    """Mean binary cross-entropy between predicted (B,K,h,w) probabilities and Gaussian targets."""

    def forward(self, predicted: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(predicted.float(), target.float())


def mirrored_heatmaps(heatmaps: Tensor) -> Tensor:
    """(B, K, h, w) → (B, K, h, w) whose channel j is H_j', the map of j's mirrored joint."""
    if heatmaps.shape[1] != len(FLIP_PARTNERS):
        raise ValueError(f"mirrored heatmaps need the {len(FLIP_PARTNERS)} skeleton joints, got {heatmaps.shape[1]}")
    return heatmaps[:, list(FLIP_PARTNERS)]


def _has_mirror(device: torch.device) -> Tensor:
    """(1, K, 1, 1) True for joints with a distinct mirrored joint (False for neck and head top)."""
    flags = torch.tensor([partner != joint for joint, partner in enumerate(FLIP_PARTNERS)], device=device)
    return flags.view(1, -1, 1, 1)


def _mirror_region(mirrored: Tensor, threshold: float) -> Tensor:
    """(B, K, h, w) True where the mirrored joint's map H_j' exceeds threshold, for joints with a distinct mirror."""
    return (mirrored > threshold) & _has_mirror(mirrored.device)


def difference_target(heatmaps: Tensor) -> Tensor:
    """Report §4.2 attempt 1 target A = H_j − H_j' in [-1, 1]: (B, K, h, w) → (B, K, h, w).

    Self-mirrored joints keep A = H_j: H_j − H_j would be an empty map and they would never be learnt.
    """
    mirrored = mirrored_heatmaps(heatmaps)
    return heatmaps - torch.where(_has_mirror(heatmaps.device), mirrored, torch.zeros_like(mirrored))


# How a mirror term averages its weighted per-pixel losses: over the weight it puts on the pixels (the
# masked region), or over every pixel of the maps, the pixels outside the region counting as 0.
MEAN_OVER = ("region", "all")


def _check_mean_over(mean_over: str) -> None:
    if mean_over not in MEAN_OVER:
        raise ValueError(f"unknown mirror term mean_over {mean_over!r}; valid: {', '.join(MEAN_OVER)}")


def _weighted_mean(per_pixel: Tensor, weight: Tensor, mean_over: str) -> Tensor:
    _check_mean_over(mean_over)
    total = (per_pixel * weight).sum()
    if mean_over == "all":
        return total / per_pixel.numel()
    return total / weight.sum().clamp(min=1e-6)


def mirror_penalty(predicted: Tensor, target: Tensor, threshold: float = 0.0, mean_over: str = "region") -> Tensor:
    """Report §4.2 attempt 2 negative term: BCE(H_j', 1 − Ĥ_j) over pixels where H_j' > threshold.

    predicted Ĥ (B, K, h, w) probabilities (the joint maps, or the extra maps under NegativeHeatmapBCE's
    acts_on="extra_maps"), target H (B, K, h, w). Per pixel with y = H_j' and ŷ = Ĥ_j this is
    −[y·log(1 − ŷ) + (1 − y)·log ŷ], the report's L. Its minimum is at ŷ = 1 − y: Ĥ_j goes to 0 at the mirror's
    peak, but towards 1 where the mirror's Gaussian tail is small yet above threshold. The report's 1/N has two
    readings: N the masked pixels (`mean_over="region"`), which lets the term outweigh the joint's own BCE pixel for
    pixel, or N every pixel with the masked-out ones as 0 (`"all"`), which weighs the two alike per pixel, so that
    where y ≈ 0 they settle Ĥ_j at 1/2 rather than at 1. Pixels of self-mirrored joints are left out. Zero when no
    pixel qualifies (e.g. every mirrored joint unlabelled).
    """
    mirrored = mirrored_heatmaps(target.float())
    mask = _mirror_region(mirrored, threshold)
    per_pixel = F.binary_cross_entropy(1.0 - predicted.float(), mirrored, reduction="none")
    return _weighted_mean(per_pixel, mask.float(), mean_over)


def mirror_suppression(
    predicted: Tensor, target: Tensor, threshold: float = 0.0, mean_over: str = "region"
) -> Tensor:
    """A negative term that cannot push Ĥ_j up: BCE(Ĥ_j, 0) = −log(1 − Ĥ_j), weighted by H_j'·(1 − H_j).

    predicted Ĥ (B, K, h, w) probabilities of the joints, target H (B, K, h, w). The weight is largest at the
    mirrored joint's peak and vanishes where joint j's own target is high (crossed ankles, say), so the term
    only lowers joint j's confidence at its mirror, the error the report's §4.2 sets out to remove, and never
    fights the joint's own BCE. Pixels with H_j' ≤ threshold and self-mirrored joints are left out; the mean
    is over the weights (`mean_over="region"`) or over every pixel (`"all"`). Zero when no pixel qualifies.
    """
    target = target.float()
    mirrored = mirrored_heatmaps(target)
    weight = mirrored * (1.0 - target) * _mirror_region(mirrored, threshold)
    per_pixel = F.binary_cross_entropy(predicted.float(), torch.zeros_like(mirrored), reduction="none")
    return _weighted_mean(per_pixel, weight, mean_over)


# NegativeHeatmapBCE's `penalty` choices: the report's term as written, and the suppression-only term.
MIRROR_PENALTIES = {"report": mirror_penalty, "suppress": mirror_suppression}


class NegativeHeatmapDiff(nn.Module):
    """Report §4.2 attempt 1: smooth L1 between tanh heatmaps (B, K, h, w) and A = H_j − H_j'.

    Smooth L1 with `beta` equals Huber with delta = beta, divided by beta: at beta = 1 (the default) it is
    also the report's Huber loss.
    """

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, predicted: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(predicted.float(), difference_target(target.float()), beta=self.beta)


class NegativeHeatmapBCE(nn.Module):
    """Report §4.2 attempt 2: K extra sigmoid maps for the mirrored joints and a masked negative term.

    predicted (B, 2K, h, w): channels :K are the joints Ĥ_j, channels K: the extra maps (net.extra_heatmaps = K);
    target (B, K, h, w) = H. The joint channels always get plain BCE against H_j. The report's formula leaves
    open which output its ŷ is, so `acts_on` picks:
    - "joints": its "equivalent to BCE(H_j', 1 − Ĥ_j)" names the joint's own prediction. The extra channels
      learn H_j' with plain BCE, and `mirror_penalty` adds BCE(H_j', 1 − Ĥ_j) where H_j' > threshold (0 in the
      report), weighted by `negative_weight` and averaged as `mean_over` says.
    - "extra_maps": ŷ is the extra output, the loss the report gives for it: the extra channels learn 1 − H_j' where
      H_j' > threshold (neck and head top, their own mirrors, get no loss there), and the joint maps see the mirrors
      only through the features they share, as the report's own explanation of its lower score supposes ("an
      additional output might have confused the model").
    `penalty="suppress"` (on the joints only) swaps the term for `mirror_suppression`: the report's term is
    smallest at Ĥ_j = 1 − H_j', so on the joints it pulls their maps towards 1 wherever the mirror's Gaussian
    is small.
    """

    def __init__(
        self,
        negative_weight: float = 1.0,
        threshold: float = 0.0,
        penalty: str = "report",
        mean_over: str = "region",
        acts_on: str = "joints",
    ) -> None:
        super().__init__()
        if penalty not in MIRROR_PENALTIES:
            raise ValueError(f"unknown mirror penalty {penalty!r}; valid: {', '.join(MIRROR_PENALTIES)}")
        if acts_on not in ("joints", "extra_maps"):
            raise ValueError(f"the negative term acts_on 'joints' or 'extra_maps', got {acts_on!r}")
        if acts_on == "extra_maps" and penalty != "report":
            raise ValueError(f"penalty {penalty!r} lowers joint maps; with acts_on=extra_maps use penalty=report")
        _check_mean_over(mean_over)
        self.mean_over = mean_over
        self.negative_weight = negative_weight
        self.threshold = threshold
        self.penalty = MIRROR_PENALTIES[penalty]
        self.acts_on = acts_on

    def forward(self, predicted: Tensor, target: Tensor) -> Tensor:
        joints = target.shape[1]
        if predicted.shape[1] != 2 * joints:
            raise ValueError(
                f"NegativeHeatmapBCE needs {2 * joints} heatmaps (net.extra_heatmaps = {joints}), "
                f"got {predicted.shape[1]}"
            )
        predicted, target = predicted.float(), target.float()
        main, extra = predicted[:, :joints], predicted[:, joints:]
        joint_loss = F.binary_cross_entropy(main, target)
        if self.acts_on == "extra_maps":
            return joint_loss + self.negative_weight * self.penalty(extra, target, self.threshold, self.mean_over)
        return (
            joint_loss
            + F.binary_cross_entropy(extra, mirrored_heatmaps(target))
            + self.negative_weight * self.penalty(main, target, self.threshold, self.mean_over)
        )


class CoordinateLoss(nn.Module):
    """MSE (the report's) or L1 on normalised (B,K,2) coordinates, over joints whose weight is 1; an occluded
    joint (visibility 0; LSP still marks where it is) counts `occluded_weight` times a visible one, as a
    visibility-weighted loss (1: no difference, 0: visible joints only)."""

    def __init__(self, kind: str = "mse", occluded_weight: float = 1.0) -> None:
        super().__init__()
        if kind not in ("mse", "l1"):
            raise ValueError(f"coordinate loss kind must be 'mse' or 'l1', got {kind!r}")
        if not 0.0 <= occluded_weight <= 1.0:
            raise ValueError(f"occluded_weight must lie in [0, 1], got {occluded_weight}")
        self.kind = kind
        self.occluded_weight = occluded_weight

    def forward(self, predicted: Tensor, target: Tensor, weight: Tensor,
                visibility: Tensor | None = None) -> Tensor:
        error = predicted.float() - target.float()
        per_value = error.pow(2) if self.kind == "mse" else error.abs()
        joint_weight = weight.float()
        if visibility is not None and self.occluded_weight != 1.0:
            visible = visibility.float()
            joint_weight = joint_weight * (visible + self.occluded_weight * (1.0 - visible))
        mask = joint_weight.unsqueeze(-1).expand_as(per_value)
        return (per_value * mask).sum() / mask.sum().clamp(min=1e-6)


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
        """Named terms of the outputs present (a branch left out of the forward pass gives None) plus their
        weighted sum under 'total'."""
        present = [value for value in output if value is not None]
        if not present:
            raise ValueError("PoseLoss needs at least one output, got none")
        with torch.autocast(device_type=present[0].device.type, enabled=False):
            return self._terms(output, batch)

    def _terms(self, output: PoseOutput, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        terms = {}
        if output.heatmaps is not None:
            terms["heatmap"] = self.heatmap(output.heatmaps, batch["heatmaps"])
        if output.coords is not None:
            terms["coordinate"] = self.coordinate(output.coords, batch["coords"], batch["weight"],
                                                  batch.get("visibility"))
        if output.visibility is not None:
            terms["visibility"] = F.binary_cross_entropy(
                output.visibility.float().squeeze(-1), batch["visibility"].float()
            )
        terms["total"] = torch.stack([self.weights[name] * value for name, value in terms.items()]).sum()
        return terms
