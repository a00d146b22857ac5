"""Tests for pose_lab.metrics: hand-computed PCK cases, errors, accumulation, a numpy reference and DDP."""

from __future__ import annotations

import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pose_lab import skeleton
from pose_lab.metrics import PCK, PCK_PROTOCOLS, inversion_hits, make_pck, pck, pck_hits

K = skeleton.NUM_JOINTS
J = skeleton.joint_index
NECK, HEAD_TOP = J("neck"), J("head_top")
L_SHOULDER, R_HIP = J("left_shoulder"), J("right_hip")


def _base_pose(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, K, 2) distinct integer-pixel joints per image (no normaliser set)."""
    k = torch.arange(K, dtype=dtype)
    pose = torch.stack([100 + 10 * k, 200 + 7 * k], dim=-1)
    return pose.expand(n, K, 2).clone() + 1000 * torch.arange(n, dtype=dtype)[:, None, None]


def _head_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two images, head sizes 10 px and 20 px, alpha 0.5 -> thresholds 5 px and 10 px."""
    target = _base_pose(2)
    target[0, NECK] = torch.tensor([50.0, 50.0])
    target[0, HEAD_TOP] = torch.tensor([50.0, 40.0])  # |(0, -10)| = 10
    target[1, NECK] = torch.tensor([0.0, 0.0])
    target[1, HEAD_TOP] = torch.tensor([12.0, 16.0])  # |(12, 16)| = 20
    pred = target.clone()
    expected = torch.ones(2, K, dtype=torch.bool)
    # image 0: threshold 5
    pred[0, J("right_ankle")] += torch.tensor([4.9, 0.0])  # inside
    pred[0, J("right_knee")] += torch.tensor([5.0, 0.0])  # exactly on the threshold: correct
    pred[0, J("right_hip")] += torch.tensor([5.1, 0.0])  # outside
    expected[0, J("right_hip")] = False
    pred[0, J("left_hip")] += torch.tensor([3.0, -4.0])  # |.| = 5 exactly: correct
    pred[0, J("left_knee")] += torch.tensor([0.0, -5.1])  # outside
    expected[0, J("left_knee")] = False
    # image 1: threshold 10
    pred[1, J("right_ankle")] += torch.tensor([9.9, 0.0])
    pred[1, J("right_knee")] += torch.tensor([6.0, 8.0])  # 10 exactly: correct
    pred[1, J("right_hip")] += torch.tensor([10.1, 0.0])
    expected[1, J("right_hip")] = False
    pred[1, J("left_ankle")] = torch.tensor([math.nan, 0.0])  # NaN: wrong, not dropped
    expected[1, J("left_ankle")] = False
    pred[1, J("right_wrist")] = torch.tensor([math.inf, -math.inf])  # inf: wrong
    expected[1, J("right_wrist")] = False
    pred[1, J("left_wrist")] = target[1, J("left_wrist")] + torch.tensor([math.nan, math.nan])
    expected[1, J("left_wrist")] = False
    return pred, target, expected


# ----------------------------------------------------------------------------- pure function


def test_head_hand_computed() -> None:
    pred, target, expected = _head_case()
    hits = pck_hits(pred, target, "head", 0.5)
    assert hits.dtype == torch.bool and hits.shape == (2, K)
    assert torch.equal(hits, expected)
    # 2 wrong in image 0, 4 wrong in image 1, out of 28
    assert pck(pred, target, "head", 0.5).item() == pytest.approx(22 / 28)


def test_alpha_scales_threshold() -> None:
    pred, target, _ = _head_case()
    hits = pck_hits(pred, target, "head", 0.25)  # thresholds 2.5 px and 5 px
    assert not hits[0, J("right_ankle")]  # 4.9 > 2.5
    assert not hits[1, J("right_ankle")]  # 9.9 > 5
    assert hits[0, J("left_shoulder")]  # exact prediction


def test_torso_hand_computed() -> None:
    target = _base_pose(1)
    target[0, L_SHOULDER] = torch.tensor([0.0, 0.0])
    target[0, R_HIP] = torch.tensor([30.0, 40.0])  # torso 50 px, alpha 0.2 -> 10 px
    pred = target.clone()
    pred[0, J("right_ankle")] += torch.tensor([9.9, 0.0])
    pred[0, J("right_knee")] += torch.tensor([-6.0, 8.0])  # 10 exactly: correct
    pred[0, J("left_elbow")] += torch.tensor([0.0, 10.1])
    hits = pck_hits(pred, target, "torso", 0.2)
    expected = torch.ones(1, K, dtype=torch.bool)
    expected[0, J("left_elbow")] = False
    assert torch.equal(hits, expected)
    # the head normaliser of this pose is different, so the answer must change
    head = torch.linalg.vector_norm(target[0, NECK] - target[0, HEAD_TOP]).item()
    assert head != 50.0
    assert not torch.equal(pck_hits(pred, target, "head", 0.2), hits)


def test_reference_length_comes_from_ground_truth() -> None:
    pred, target, expected = _head_case()
    # A wildly wrong predicted head must not change the threshold of the other joints.
    pred[0, NECK] = torch.tensor([-500.0, -500.0])
    pred[0, HEAD_TOP] = torch.tensor([500.0, 500.0])
    expected[0, NECK] = expected[0, HEAD_TOP] = False
    assert torch.equal(pck_hits(pred, target, "head", 0.5), expected)


def test_all_nan_predictions_are_all_wrong() -> None:
    _, target, _ = _head_case()
    pred = torch.full_like(target, math.nan)
    assert not pck_hits(pred, target, "head", 0.5).any()
    assert pck(pred, target, "head", 0.5).item() == 0.0


def test_zero_head_size_raises_with_sample_index() -> None:
    pred, target, _ = _head_case()
    target = torch.cat([target, target[:1]])  # 3 images
    target[1, HEAD_TOP] = target[1, NECK]
    with pytest.raises(ValueError, match=r"zero head reference length.*\[1\]"):
        pck_hits(pred[[0, 1, 0]], target, "head", 0.5)


def test_zero_torso_raises() -> None:
    target = _base_pose(2)
    target[:, R_HIP] = target[:, L_SHOULDER]
    with pytest.raises(ValueError, match=r"zero torso reference length.*\[0, 1\]"):
        pck_hits(target.clone(), target, "torso", 0.2)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_ground_truth_raises(bad: float) -> None:
    pred, target, _ = _head_case()
    target[1, HEAD_TOP, 0] = bad
    with pytest.raises(ValueError, match=r"non-finite.*\[1\]"):
        pck_hits(pred, target, "head", 0.5)


def test_shape_mismatch_raises_with_both_shapes() -> None:
    pred, target, _ = _head_case()
    with pytest.raises(ValueError, match=r"\(2, 13, 2\).*\(2, 14, 2\)"):
        pck_hits(pred[:, :13], target, "head", 0.5)
    with pytest.raises(ValueError, match=r"\(2, 14, 2\).*\(1, 14, 2\)"):
        pck_hits(pred, target[:1], "head", 0.5)


def test_wrong_rank_or_too_few_joints_raises() -> None:
    pred, target, _ = _head_case()
    with pytest.raises(ValueError, match=r"\(N, K, 2\)"):
        pck_hits(pred[..., :1], target[..., :1], "head", 0.5)
    with pytest.raises(ValueError, match="only 5 joints"):
        pck_hits(pred[:, :5], target[:, :5], "head", 0.5)


def test_unknown_normaliser_lists_valid_ones() -> None:
    pred, target, _ = _head_case()
    with pytest.raises(ValueError, match=r"'bbox'.*'head'.*'torso'"):
        pck_hits(pred, target, "bbox", 0.5)
    with pytest.raises(ValueError, match="'head'"):
        PCK(normaliser="Head")


@pytest.mark.parametrize("alpha", [0.0, -0.5, math.nan, math.inf])
def test_bad_alpha_raises(alpha: float) -> None:
    pred, target, _ = _head_case()
    with pytest.raises(ValueError, match="alpha"):
        pck_hits(pred, target, "head", alpha)
    with pytest.raises(ValueError, match="alpha"):
        PCK(alpha=alpha)


# ----------------------------------------------------------------------------- numpy reference


def _numpy_pck_hits(pred: np.ndarray, target: np.ndarray, a: int, b: int, alpha: float) -> np.ndarray:
    """Independent loop implementation in float64."""
    n, k, _ = pred.shape
    out = np.zeros((n, k), dtype=bool)
    for i in range(n):
        ref = math.hypot(float(target[i, a, 0] - target[i, b, 0]), float(target[i, a, 1] - target[i, b, 1]))
        for j in range(k):
            px, py = float(pred[i, j, 0]), float(pred[i, j, 1])
            if not (math.isfinite(px) and math.isfinite(py)):
                continue
            d = math.hypot(px - float(target[i, j, 0]), py - float(target[i, j, 1]))
            out[i, j] = d <= alpha * ref
    return out


def _random_batch(n: int, seed: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, K, 2, generator=g, dtype=torch.float64) * torch.tensor([640.0, 480.0], dtype=torch.float64)
    # head size 10..60 px in a random direction so both normalisers are non-degenerate
    angle = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    size = 10 + 50 * torch.rand(n, generator=g, dtype=torch.float64)
    target[:, HEAD_TOP] = target[:, NECK] + size[:, None] * torch.stack([angle.cos(), angle.sin()], -1)
    noise = torch.randn(n, K, 2, generator=g, dtype=torch.float64) * size[:, None, None] * 0.35
    pred = target + noise
    nan_mask = torch.rand(n, K, generator=g) < 0.05
    pred[nan_mask] = math.nan
    return pred.to(dtype), target.to(dtype)


@pytest.mark.parametrize("protocol", sorted(PCK_PROTOCOLS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_numpy_reference(protocol: str, dtype: torch.dtype) -> None:
    normaliser, alpha = PCK_PROTOCOLS[protocol]
    a, b = skeleton.NORMALISER_JOINTS[normaliser]
    pred, target = _random_batch(200, seed=7, dtype=dtype)
    hits = pck_hits(pred, target, normaliser, alpha)
    ref = _numpy_pck_hits(pred.double().numpy(), target.double().numpy(), a, b, alpha)
    assert 0.1 < ref.mean() < 0.95, "random data should give a mix of hits and misses"
    np.testing.assert_array_equal(hits.numpy(), ref)

    metric = make_pck(protocol)
    for chunk in range(0, 200, 64):
        metric.update(pred[chunk : chunk + 64], target[chunk : chunk + 64])
    np.testing.assert_allclose(metric.per_joint().numpy(), ref.mean(axis=0), rtol=1e-6)
    assert metric.compute().item() == pytest.approx(ref.mean(), rel=1e-6)


# ----------------------------------------------------------------------------- Metric


def test_metric_hand_computed_per_joint_and_pooled() -> None:
    pred, target, expected = _head_case()
    metric = PCK("head", 0.5)
    metric.update(pred, target)
    assert metric.hits.dtype == torch.long and metric.total.dtype == torch.long
    assert metric.total.tolist() == [2] * K
    per_joint = metric.per_joint()
    assert per_joint.shape == (K,)
    want = torch.ones(K)
    want[J("right_hip")] = 0.0  # wrong in both images
    for name in ("left_knee", "left_ankle", "right_wrist", "left_wrist"):
        want[J(name)] = 0.5
    torch.testing.assert_close(per_joint, want)
    pooled = metric.compute()
    assert pooled.item() == pytest.approx(22 / 28)
    # no masking: pooled equals the mean of per-joint accuracies
    assert pooled.item() == pytest.approx(per_joint.mean().item())
    assert metric.hits.sum().item() == int(expected.sum())


def test_metric_several_updates_equal_one_big_update() -> None:
    pred, target = _random_batch(50, seed=3)
    whole = PCK("head", 0.5)
    whole.update(pred, target)
    parts = PCK("head", 0.5)
    for lo, hi in [(0, 1), (1, 17), (17, 18), (18, 50)]:
        parts.update(pred[lo:hi], target[lo:hi])
    assert torch.equal(parts.hits, whole.hits) and torch.equal(parts.total, whole.total)
    assert parts.compute().item() == whole.compute().item()
    assert torch.equal(parts.per_joint(), whole.per_joint())


def test_metric_forward_reset_and_attributes() -> None:
    pred, target, _ = _head_case()
    metric = PCK()
    assert metric.higher_is_better is True
    assert metric.full_state_update is False
    assert metric.is_differentiable is False
    batch_value = metric(pred[:1], target[:1])  # forward: this batch's value, and accumulates
    assert batch_value.item() == pytest.approx(12 / 14)
    metric(pred[1:], target[1:])
    assert metric.compute().item() == pytest.approx(22 / 28)
    metric.reset()
    assert metric.total.sum().item() == 0 and metric.hits.sum().item() == 0
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(metric.compute().item())


def test_metric_rejects_wrong_joint_count() -> None:
    pred, target, _ = _head_case()
    metric = PCK(num_joints=K)
    with pytest.raises(ValueError, match=f"expects {K} joints"):
        metric.update(torch.cat([pred, pred[:, :1]], 1), torch.cat([target, target[:, :1]], 1))
    with pytest.raises(ValueError, match="num_joints"):
        PCK(num_joints=0)


def test_make_pck_protocols() -> None:
    assert PCK_PROTOCOLS == {"pckh@0.5": ("head", 0.5), "pck@0.2": ("torso", 0.2)}
    m = make_pck("pckh@0.5")
    assert (m.normaliser, m.alpha) == ("head", 0.5)
    m = make_pck("pck@0.2")
    assert (m.normaliser, m.alpha) == ("torso", 0.2)
    with pytest.raises(ValueError, match=r"'pckh@0.2'.*'pckh@0.5'.*'pck@0.2'"):
        make_pck("pckh@0.2")


def test_metric_dtypes() -> None:
    pred, target, _ = _head_case()
    want = pck_hits(pred, target, "head", 0.5)
    dtypes = [(torch.float64, torch.float64), (torch.float16, torch.float32), (torch.float32, torch.float64)]
    for p_dtype, t_dtype in dtypes:
        hits = pck_hits(pred.to(p_dtype), target.to(t_dtype), "head", 0.5)
        if p_dtype != torch.float16:  # float16 rounds 104.9 etc.; only check it runs and counts NaN wrong
            assert torch.equal(hits, want), (p_dtype, t_dtype)
        assert not hits[1, J("left_ankle")]
    metric = PCK().double()  # dtype conversion of the module must not break integer counts
    metric.update(pred.double(), target.double())
    assert metric.hits.dtype == torch.long
    assert metric.compute().item() == pytest.approx(22 / 28)
    target_int = target.round().to(torch.int64)
    assert pck_hits(target_int.double(), target_int, "head", 0.5).all()


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_metric_on_device(device: str) -> None:
    pred, target, expected = _head_case()
    metric = PCK().to(device)
    metric.update(pred.to(device, torch.float64), target.to(device, torch.float64))
    assert metric.hits.device.type == device
    assert metric.compute().item() == pytest.approx(22 / 28)
    assert torch.equal(pck_hits(pred.to(device), target.to(device), "head", 0.5).cpu(), expected)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_on_random_data() -> None:
    pred, target = _random_batch(300, seed=11, dtype=torch.float32)
    cpu = pck_hits(pred, target, "torso", 0.2)
    gpu = pck_hits(pred.cuda(), target.cuda(), "torso", 0.2)
    assert torch.equal(gpu.cpu(), cpu)


# ----------------------------------------------------------------------------- DDP


def test_ddp_simulated_state_sum_equals_whole() -> None:
    pred, target = _random_batch(37, seed=5)
    whole = PCK("torso", 0.2)
    whole.update(pred, target)
    ranks = [PCK("torso", 0.2), PCK("torso", 0.2)]
    ranks[0].update(pred[:20], target[:20])  # uneven shards, as DistributedSampler tails can be
    ranks[1].update(pred[20:], target[20:])
    # every state is reduced by summation, so the summed states are the whole-dataset states
    summed = {name: ranks[0].metric_state[name] + ranks[1].metric_state[name] for name in ("hits", "total")}
    assert torch.equal(summed["hits"], whole.hits) and torch.equal(summed["total"], whole.total)
    ranks[0].merge_state(ranks[1])
    assert ranks[0].compute().item() == whole.compute().item()
    assert torch.equal(ranks[0].per_joint(), whole.per_joint())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        pred, target = _random_batch(37, seed=5)
        lo, hi = (0, 20) if rank == 0 else (20, 37)
        metric = PCK("head", 0.5)
        for s in range(lo, hi, 6):
            metric.update(pred[s : min(s + 6, hi)], target[s : min(s + 6, hi)])
        local_total = metric.total.clone()
        pooled = metric.compute()
        per_joint = metric.per_joint()
        assert torch.equal(metric.total, local_total), "local state must be restored after sync"
        torch.save({"pooled": pooled, "per_joint": per_joint}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_gloo(tmp_path) -> None:
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    pred, target = _random_batch(37, seed=5)
    whole = PCK("head", 0.5)
    whole.update(pred, target)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got["pooled"].item() == whole.compute().item()
        assert torch.equal(got["per_joint"], whole.per_joint())


@pytest.mark.parametrize("normaliser, alpha", [("head", 0.5), ("torso", 0.2)])
def test_inversions_are_misses_that_land_on_the_mirror_partner(normaliser: str, alpha: float) -> None:
    target = _base_pose(2) * 10  # joints 70-100 px apart
    pred = target.clone()
    l_knee, r_knee, l_wrist = J("left_knee"), J("right_knee"), J("left_wrist")
    pred[0, [l_knee, r_knee]] = target[0, [r_knee, l_knee]]  # a full swap: both knees inverted
    pred[1, l_knee] = target[1, r_knee]  # both knees on the right knee: only the left is inverted
    pred[1, NECK] = target[1, HEAD_TOP]  # a miss of a joint without a partner is no inversion
    pred[1, l_wrist] = target[1, l_wrist] + 1000  # a miss far from everything neither
    inverted = inversion_hits(pred, target, normaliser, alpha)
    expected = torch.zeros(2, K, dtype=torch.bool)
    expected[0, [l_knee, r_knee]] = True
    expected[1, l_knee] = True
    assert torch.equal(inverted, expected)
    assert not (inverted & pck_hits(pred, target, normaliser, alpha)).any()  # an inversion is always a miss
