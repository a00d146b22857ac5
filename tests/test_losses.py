import math

import pytest
import torch

from pose_lab.losses import CoordinateLoss, HeatmapBCE, PoseLoss
from pose_lab.models.network import PoseOutput


def test_heatmap_bce_matches_hand_computation() -> None:
    predicted = torch.tensor([[[[0.9, 0.2]]]])
    target = torch.tensor([[[[1.0, 0.0]]]])
    expected = -(math.log(0.9) + math.log(0.8)) / 2
    assert HeatmapBCE()(predicted, target).item() == pytest.approx(expected, rel=1e-6)


def test_coordinate_loss_ignores_joints_outside_the_frame() -> None:
    predicted = torch.tensor([[[0.5, 0.5], [0.0, 0.0]]])
    target = torch.tensor([[[0.3, 0.5], [1.0, 1.0]]])
    weight = torch.tensor([[1.0, 0.0]])
    assert CoordinateLoss("mse")(predicted, target, weight).item() == pytest.approx(0.2**2 / 2)
    assert CoordinateLoss("l1")(predicted, target, weight).item() == pytest.approx(0.2 / 2)
    with pytest.raises(ValueError, match="mse"):
        CoordinateLoss("huber")


def test_coordinate_loss_weighs_occluded_joints_by_occluded_weight() -> None:
    predicted = torch.tensor([[[0.5, 0.5], [0.0, 0.0]]])
    target = torch.tensor([[[0.3, 0.5], [0.0, 0.4]]])
    weight, visibility = torch.ones(1, 2), torch.tensor([[1.0, 0.0]])  # the second joint occluded
    alike = CoordinateLoss("l1")(predicted, target, weight, visibility).item()
    assert alike == pytest.approx((0.2 + 0.4) / 4)
    assert CoordinateLoss("l1", occluded_weight=0.5)(predicted, target, weight, visibility).item() == \
        pytest.approx((0.2 + 0.5 * 0.4) / (2 + 2 * 0.5))
    assert CoordinateLoss("l1", occluded_weight=0.0)(predicted, target, weight, visibility).item() == \
        pytest.approx(0.2 / 2)
    with pytest.raises(ValueError, match="occluded_weight"):
        CoordinateLoss("l1", occluded_weight=2.0)


def test_pose_loss_weighs_named_terms() -> None:
    output = PoseOutput(
        heatmaps=torch.full((1, 2, 2, 2), 0.5),
        coords=torch.tensor([[[0.5, 0.5], [0.5, 0.5]]]),
        visibility=torch.tensor([[[0.5], [0.5]]]),
    )
    batch = {
        "heatmaps": torch.zeros(1, 2, 2, 2),
        "coords": torch.tensor([[[0.5, 0.7], [0.5, 0.5]]]),
        "weight": torch.ones(1, 2),
        "visibility": torch.tensor([[1.0, 0.0]]),
    }
    loss = PoseLoss(HeatmapBCE(), CoordinateLoss(), heatmap_weight=2.0, coordinate_weight=10.0, visibility_weight=0.5)
    terms = loss(output, batch)
    assert terms["heatmap"].item() == pytest.approx(math.log(2))
    assert terms["coordinate"].item() == pytest.approx(0.04 / 4)
    assert terms["visibility"].item() == pytest.approx(math.log(2))
    assert terms["total"].item() == pytest.approx(2 * math.log(2) + 10 * 0.01 + 0.5 * math.log(2))


def test_pose_loss_scores_only_the_outputs_present() -> None:
    batch = {
        "heatmaps": torch.zeros(1, 2, 2, 2),
        "coords": torch.tensor([[[0.5, 0.7], [0.5, 0.5]]]),
        "weight": torch.ones(1, 2),
        "visibility": torch.tensor([[1.0, 0.0]]),
    }
    loss = PoseLoss(HeatmapBCE(), CoordinateLoss(), heatmap_weight=2.0)
    heatmaps_only = loss(PoseOutput(torch.full((1, 2, 2, 2), 0.5), None, None), batch)
    assert set(heatmaps_only) == {"heatmap", "total"}
    assert heatmaps_only["total"].item() == pytest.approx(2 * math.log(2))
    with pytest.raises(ValueError, match="at least one output"):
        loss(PoseOutput(None, None, None), batch)
