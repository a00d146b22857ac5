"""Negative-heatmap losses of report §4.2 against hand-computed values on tiny (B=1, K=14) maps."""

from __future__ import annotations

import math

import pytest
import torch

from pose_lab.losses import (
    NegativeHeatmapBCE,
    NegativeHeatmapDiff,
    difference_target,
    mirror_penalty,
    mirror_suppression,
    mirrored_heatmaps,
)
from pose_lab.skeleton import FLIP_PARTNERS, NUM_JOINTS, joint_index

RIGHT_ANKLE, LEFT_ANKLE, NECK = joint_index("right_ankle"), joint_index("left_ankle"), joint_index("neck")


def _ankles_and_neck(h: int = 2, w: int = 2) -> torch.Tensor:
    """(1, K, h, w) targets: right ankle peaks at pixel (0, 0), left ankle at (1, 1), neck at (0, 1)."""
    target = torch.zeros(1, NUM_JOINTS, h, w)
    target[0, RIGHT_ANKLE, 0, 0] = 1.0
    target[0, LEFT_ANKLE, 1, 1] = 1.0
    target[0, NECK, 0, 1] = 1.0
    return target


def _left_ankle_seen_at_the_right() -> tuple[torch.Tensor, torch.Tensor]:
    """Targets with ankle peaks 0.8 (right, (0, 0)) and 0.6 (left, (1, 1)), and joint predictions of 0.5
    everywhere but 0.9 for the left ankle at the right ankle's peak (requires grad)."""
    target = _ankles_and_neck()
    target[0, RIGHT_ANKLE, 0, 0] = 0.8
    target[0, LEFT_ANKLE, 1, 1] = 0.6
    predicted = torch.full((1, NUM_JOINTS, 2, 2), 0.5)
    predicted[0, LEFT_ANKLE, 0, 0] = 0.9
    return target, predicted.requires_grad_(True)


def test_mirrored_maps_come_from_the_skeleton_partners() -> None:
    target = torch.arange(NUM_JOINTS, dtype=torch.float32).view(1, NUM_JOINTS, 1, 1)
    mirrored = mirrored_heatmaps(target)
    assert mirrored.flatten().tolist() == [float(p) for p in FLIP_PARTNERS]
    assert mirrored[0, LEFT_ANKLE].item() == RIGHT_ANKLE  # left ankle's mirror is the right ankle
    assert mirrored[0, joint_index("right_wrist")].item() == joint_index("left_wrist")
    assert mirrored[0, NECK].item() == NECK
    with pytest.raises(ValueError, match="14"):
        mirrored_heatmaps(torch.zeros(1, 2, 2, 2))


def test_difference_target_is_joint_minus_mirror_and_keeps_self_mirrored_joints() -> None:
    a = difference_target(_ankles_and_neck())
    assert a[0, LEFT_ANKLE].tolist() == [[-1.0, 0.0], [0.0, 1.0]]  # −1 at the right ankle's peak
    assert a[0, RIGHT_ANKLE].tolist() == [[1.0, 0.0], [0.0, -1.0]]
    assert a[0, NECK].tolist() == [[0.0, 1.0], [0.0, 0.0]]  # not H − H = 0
    assert a[0, joint_index("head_top")].abs().sum() == 0


def test_difference_loss_is_smooth_l1_to_the_difference_target() -> None:
    # Zero prediction: errors of 1 at the two ankles' two peaks each and at the neck's peak, 0 elsewhere.
    predicted = torch.zeros(1, NUM_JOINTS, 2, 2)
    entries = NUM_JOINTS * 4
    assert NegativeHeatmapDiff(beta=1.0)(predicted, _ankles_and_neck()).item() == pytest.approx(5 * 0.5 / entries)
    # |error| = 1 > beta = 0.5: the linear branch |e| − beta/2.
    assert NegativeHeatmapDiff(beta=0.5)(predicted, _ankles_and_neck()).item() == pytest.approx(5 * 0.75 / entries)


def test_mirror_penalty_acts_on_the_joint_channel_at_its_mirror_only() -> None:
    target, predicted = _left_ankle_seen_at_the_right()
    penalty = mirror_penalty(predicted, target)
    # Two masked pixels: (left ankle, y = 0.8, ŷ = 0.9) and (right ankle, y = 0.6, ŷ = 0.5).
    left = -(0.8 * math.log(1 - 0.9) + 0.2 * math.log(0.9))
    right = -(0.6 * math.log(0.5) + 0.4 * math.log(0.5))
    assert penalty.item() == pytest.approx((left + right) / 2, rel=1e-5)
    penalty.backward()
    touched = predicted.grad[0].abs() > 0
    assert touched.sum() == 2  # the neck (its own mirror) and all other pixels are masked out
    assert touched[LEFT_ANKLE, 0, 0] and touched[RIGHT_ANKLE, 1, 1]
    assert predicted.grad[0, LEFT_ANKLE, 0, 0] > 0  # lowering Ĥ_j at the mirror's peak lowers the loss


def test_mirror_penalty_threshold_and_empty_mask() -> None:
    target = _ankles_and_neck()
    target[0, RIGHT_ANKLE, 0, 0] = 0.8
    target[0, LEFT_ANKLE, 1, 1] = 0.3
    predicted = torch.full((1, NUM_JOINTS, 2, 2), 0.5)
    # threshold 0.5 keeps only (left ankle, y = 0.8): at ŷ = 0.5 its BCE is log 2 whatever y is.
    assert mirror_penalty(predicted, target, threshold=0.5).item() == pytest.approx(math.log(2))
    assert mirror_penalty(predicted, torch.zeros_like(target)).item() == 0.0


def test_mirror_terms_mean_over_every_pixel_counts_the_unmasked_ones_as_zero() -> None:
    target, predicted = _left_ankle_seen_at_the_right()
    entries = NUM_JOINTS * 4
    # The same two masked pixels as above, summed and divided by all 56 entries instead of by 2.
    for term in (mirror_penalty, mirror_suppression):
        region, every = term(predicted, target), term(predicted, target, mean_over="all")
        weight = 2 if term is mirror_penalty else 0.8 + 0.6
        assert every.item() == pytest.approx(region.item() * weight / entries, rel=1e-5)
    with pytest.raises(ValueError, match="region, all"):
        mirror_penalty(predicted, target, mean_over="batch")
    with pytest.raises(ValueError, match="mean_over 'pixels'"):
        NegativeHeatmapBCE(mean_over="pixels")


def test_mean_over_all_settles_the_joint_map_at_one_half_far_from_both_joints() -> None:
    # One pixel where the mirror's tail is tiny (y ≈ 0) and the joint's own target is 0: the joint's BCE pulls
    # Ĥ_j to 0, the report's term to 1. Over all pixels the two weigh alike and meet at 1/2; over the region
    # (here one pixel of 56) the negative term outweighs the joint's BCE and drives Ĥ_j towards 1.
    target = torch.zeros(1, NUM_JOINTS, 2, 2)
    target[0, RIGHT_ANKLE, 0, 0] = 1e-6
    logits = torch.zeros(1, 2 * NUM_JOINTS, 2, 2, requires_grad=True)
    for mean_over, settles_above in (("all", False), ("region", True)):
        loss = NegativeHeatmapBCE(mean_over=mean_over)(torch.sigmoid(logits), target)
        (gradient,) = torch.autograd.grad(loss, logits)
        # Gradient descent raises the left ankle's logit at (0, 0) if and only if its gradient is negative.
        assert (gradient[0, LEFT_ANKLE, 0, 0] < 0).item() is settles_above
        if mean_over == "all":
            assert gradient[0, LEFT_ANKLE, 0, 0].item() == pytest.approx(0.0, abs=1e-6)


def test_acting_on_the_extra_maps_trains_them_towards_one_minus_the_mirror_and_spares_the_joints() -> None:
    target, _ = _left_ankle_seen_at_the_right()
    predicted = torch.full((1, 2 * NUM_JOINTS, 2, 2), 0.5)
    predicted[0, NUM_JOINTS + LEFT_ANKLE, 0, 0] = 0.2  # the extra map at the right ankle's peak (y = 0.8)
    predicted.requires_grad_(True)
    loss = NegativeHeatmapBCE(acts_on="extra_maps")(predicted, target)
    joint = torch.nn.functional.binary_cross_entropy(predicted[:, :NUM_JOINTS], target)
    # The report's L on the extra channels, ŷ = extra output: (left ankle, y = 0.8, ŷ = 0.2) is at its
    # minimum ŷ = 1 − y; (right ankle, y = 0.6, ŷ = 0.5) costs log 2.
    at_minimum = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))
    assert loss.item() == pytest.approx(joint.item() + (at_minimum + math.log(2)) / 2, rel=1e-5)
    loss.backward()
    extra_grad = predicted.grad[0, NUM_JOINTS:]
    assert extra_grad[LEFT_ANKLE, 0, 0].item() == pytest.approx(0.0, abs=1e-6)
    assert extra_grad[RIGHT_ANKLE, 1, 1] > 0  # y = 0.6: pushed down towards 0.4
    # The joint channels get exactly their plain BCE's gradient: nothing from the mirrors.
    (plain,) = torch.autograd.grad(
        torch.nn.functional.binary_cross_entropy(predicted[:, :NUM_JOINTS], target), predicted
    )
    assert torch.allclose(predicted.grad[0, :NUM_JOINTS], plain[0, :NUM_JOINTS])
    with pytest.raises(ValueError, match="acts_on=extra_maps use penalty=report"):
        NegativeHeatmapBCE(acts_on="extra_maps", penalty="suppress")
    with pytest.raises(ValueError, match="'joints' or 'extra_maps'"):
        NegativeHeatmapBCE(acts_on="mirror")


def test_negative_heatmap_bce_sums_joint_mirror_and_negative_terms() -> None:
    target = _ankles_and_neck()
    target[0, RIGHT_ANKLE, 0, 0] = 0.8
    predicted = torch.full((1, 2 * NUM_JOINTS, 2, 2), 0.5)
    predicted[0, LEFT_ANKLE, 0, 0] = 0.9
    predicted[0, NUM_JOINTS + LEFT_ANKLE, 0, 0] = 0.8  # the mirror channel predicts H_j' exactly there
    entries = NUM_JOINTS * 4
    log2 = math.log(2)
    # Joint channels: BCE at 0.5 is log 2 per entry, except (left ankle, (0, 0)) with y = 0 and ŷ = 0.9.
    joint = ((entries - 1) * log2 - math.log(0.1)) / entries
    # Mirror channels: log 2 per entry, except ŷ = y = 0.8 there, whose BCE is the entropy of 0.8.
    mirror = ((entries - 1) * log2 - (0.8 * math.log(0.8) + 0.2 * math.log(0.2))) / entries
    # Negative term: (left ankle, y = 0.8, ŷ = 0.9) and (right ankle, y = 1, ŷ = 0.5).
    negative = (-(0.8 * math.log(0.1) + 0.2 * math.log(0.9)) + log2) / 2
    loss = NegativeHeatmapBCE(negative_weight=0.5)(predicted, target)
    assert loss.item() == pytest.approx(joint + mirror + 0.5 * negative, rel=1e-5)
    with pytest.raises(ValueError, match="extra_heatmaps"):
        NegativeHeatmapBCE()(predicted[:, :NUM_JOINTS], target)


def test_mirror_suppression_only_lowers_the_joint_at_its_mirror() -> None:
    target, predicted = _left_ankle_seen_at_the_right()
    penalty = mirror_suppression(predicted, target)
    # Weights H_j'·(1 − H_j): 0.8 at (left ankle, (0, 0)) and 0.6 at (right ankle, (1, 1)); BCE(ŷ, 0) = −log(1 − ŷ).
    expected = (0.8 * -math.log(1 - 0.9) + 0.6 * -math.log(1 - 0.5)) / (0.8 + 0.6)
    assert penalty.item() == pytest.approx(expected, rel=1e-5)
    penalty.backward()
    touched = predicted.grad[0].abs() > 0
    assert touched.sum() == 2 and touched[LEFT_ANKLE, 0, 0] and touched[RIGHT_ANKLE, 1, 1]
    assert (predicted.grad[0][touched] > 0).all()  # every touched pixel is pushed down, none up


def test_mirror_suppression_spares_pixels_where_the_joint_itself_is() -> None:
    target = torch.zeros(1, NUM_JOINTS, 1, 1)
    target[0, RIGHT_ANKLE] = target[0, LEFT_ANKLE] = 1.0  # both ankles on one pixel
    predicted = torch.full((1, NUM_JOINTS, 1, 1), 0.9)
    assert mirror_suppression(predicted, target).item() == 0.0
    assert mirror_penalty(predicted, target).item() > 0.0  # the report's term fights the joint's own target there


def test_negative_heatmap_bce_takes_its_penalty_by_name() -> None:
    target = _ankles_and_neck()
    predicted = torch.full((1, 2 * NUM_JOINTS, 2, 2), 0.5)
    predicted[0, LEFT_ANKLE, 0, 0] = 0.9
    plain = NegativeHeatmapBCE(negative_weight=0.0)(predicted, target)
    suppressing = NegativeHeatmapBCE(negative_weight=1.0, penalty="suppress")(predicted, target)
    suppression = mirror_suppression(predicted[:, :NUM_JOINTS], target)
    assert suppressing.item() == pytest.approx(plain.item() + suppression.item())
    with pytest.raises(ValueError, match="suppress"):
        NegativeHeatmapBCE(penalty="mirror")
