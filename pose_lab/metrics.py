"""PCK (Percentage of Correct Keypoints) for 2D pose on LSP.

A predicted joint is *correct* when its Euclidean distance to the ground truth is at most
``alpha * L``, where ``L`` is a per-image reference length measured between two **ground-truth**
joints (never the predicted ones). The normaliser joint pairs are named in one place,
:data:`pose_lab.skeleton.NORMALISER_JOINTS`:

- ``"head"``  (neck -> head_top): **PCKh@0.5**, ``alpha = 0.5`` of the head size. This is the report's
  headline metric and the one checkpoints are selected on.
- ``"torso"`` (left_shoulder -> right_hip): **PCK@0.2**, ``alpha = 0.2`` of the torso diagonal, the
  protocol of the LSP literature.

:data:`PCK_PROTOCOLS` maps these names (``"pckh@0.5"``, ``"pck@0.2"``) to ``(normaliser, alpha)`` so that
train/evaluate/report code names metrics the same way; :func:`make_pck` builds a metric from a name.

Conventions (shapes use N images, K joints):

- Coordinates are ``(N, K, 2)`` ``(x, y)`` in **original image pixels** (undo letterboxing first).
- A distance exactly on the threshold (``d == alpha * L``) counts as **correct** (``<=``).
- A NaN or infinite prediction counts as **wrong**: it stays in the denominator, it is never dropped.
- The ground truth must be finite and its reference length non-zero; otherwise a ``ValueError`` names
  the offending sample indices (no silent dropping, no fallback to a predicted size).
- All K joints of every image are evaluated (LSP annotates occluded joints too; there is no mask).

Pooled vs per-joint: :meth:`PCK.compute` returns the **pooled** accuracy, total hits / total evaluated
joints over all images and joints; :meth:`PCK.per_joint` returns the ``(K,)`` accuracy of each joint.
Because every joint is evaluated on every image, each joint has the same count and the pooled value
equals the mean of the per-joint values. (With masking the two would differ; mmpose reports the
latter, pose_lab the former.)

The maths is the pure function :func:`pck_hits`; :class:`PCK` only sums per-joint hit and sample
counts, with ``dist_reduce_fx="sum"``, so the result is exact under DDP.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import Metric

from pose_lab import skeleton

__all__ = ["PCK", "PCK_PROTOCOLS", "inversion_hits", "make_pck", "pck", "pck_hits"]

# Protocol name -> (normaliser, alpha). The names are the ones logged and reported.
PCK_PROTOCOLS: dict[str, tuple[str, float]] = {
    "pckh@0.5": ("head", 0.5),
    "pck@0.2": ("torso", 0.2),
}


def _check_normaliser(normaliser: str) -> tuple[int, int]:
    try:
        return skeleton.NORMALISER_JOINTS[normaliser]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in skeleton.NORMALISER_JOINTS)
        raise ValueError(f"unknown PCK normaliser {normaliser!r}; valid normalisers are: {valid}") from None


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"PCK alpha must be a finite number > 0, got {alpha}")
    return alpha


def _compute_dtype(device: torch.device) -> torch.dtype:
    # float64 keeps threshold comparisons exact for pixel-sized numbers; MPS has no float64.
    return torch.float32 if device.type == "mps" else torch.float64


def pck_hits(pred: Tensor, target: Tensor, normaliser: str, alpha: float) -> Tensor:
    """Per-joint correctness mask for PCK.

    Args:
        pred: ``(N, K, 2)`` predicted ``(x, y)`` in original image pixels; may contain NaN/inf.
        target: ``(N, K, 2)`` ground-truth ``(x, y)`` in original image pixels; must be finite.
        normaliser: key of :data:`pose_lab.skeleton.NORMALISER_JOINTS` (``"head"`` or ``"torso"``).
        alpha: threshold as a fraction of the reference length, ``> 0``.

    Returns:
        ``(N, K)`` bool tensor on ``pred.device``: ``True`` where
        ``||pred - target|| <= alpha * ||target[:, a] - target[:, b]||`` with ``(a, b)`` the normaliser
        joints. Exactly on the threshold counts as correct; non-finite predictions are ``False``.

    Raises:
        ValueError: unknown normaliser, non-positive alpha, shapes that differ or are not ``(N, K, 2)``,
            too few joints for the normaliser, non-finite ground truth, or a zero reference length
            (the message lists the sample indices).
    """
    a, b = _check_normaliser(normaliser)
    alpha = _check_alpha(alpha)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {tuple(pred.shape)} and target {tuple(target.shape)}"
        )
    if pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"pred and target must be (N, K, 2), got {tuple(pred.shape)}")
    if pred.shape[1] <= max(a, b):
        raise ValueError(
            f"normaliser {normaliser!r} uses joints {a} and {b}, but the input has only {pred.shape[1]} joints"
        )

    dtype = _compute_dtype(pred.device)
    pred = pred.to(dtype)
    target = target.to(device=pred.device, dtype=dtype)

    bad_gt = ~torch.isfinite(target).flatten(1).all(dim=1)
    if bad_gt.any():
        idx = torch.nonzero(bad_gt).flatten().tolist()
        raise ValueError(f"ground truth has non-finite coordinates in samples {idx}")

    ref = torch.linalg.vector_norm(target[:, a] - target[:, b], dim=-1)  # (N,)
    bad_ref = ref <= 0
    if bad_ref.any():
        idx = torch.nonzero(bad_ref).flatten().tolist()
        names = f"{skeleton.JOINT_NAMES[a]}-{skeleton.JOINT_NAMES[b]}"
        raise ValueError(f"zero {normaliser} reference length ({names}) in the ground truth of samples {idx}")

    dist = torch.linalg.vector_norm(pred - target, dim=-1)  # (N, K); NaN/inf for non-finite predictions
    finite = torch.isfinite(pred).all(dim=-1)
    return finite & (dist <= alpha * ref[:, None])


def inversion_hits(pred: Tensor, target: Tensor, normaliser: str, alpha: float) -> Tensor:
    """``(N, K)`` bool: the left/right inversions (Ronchi & Perona 2017's error class), joints that miss their own
    ground truth but would be correct on their mirror partner's (a left knee on the right knee). Joints without a
    partner (neck, head top) are never inversions. Arguments and errors as :func:`pck_hits`."""
    partners = list(skeleton.FLIP_PARTNERS)
    own = pck_hits(pred, target, normaliser, alpha)
    # The predictions are permuted, not the ground truth, so each image keeps its reference length (mirroring
    # the torso diagonal gives the other diagonal). Column j: joint j's prediction against its partner's truth.
    mirrored = pck_hits(pred[:, partners], target, normaliser, alpha)[:, partners]
    sided = torch.tensor([partner != joint for joint, partner in enumerate(partners)], device=own.device)
    return ~own & mirrored & sided


def pck(pred: Tensor, target: Tensor, normaliser: str, alpha: float) -> Tensor:
    """Pooled PCK of one batch: the fraction of correct joints over all ``N * K`` joints (float64 scalar)."""
    return pck_hits(pred, target, normaliser, alpha).to(torch.float64).mean()


class PCK(Metric):
    """PCK accumulated over batches; sums per-joint hit and sample counts.

    Args:
        normaliser: ``"head"`` (PCKh) or ``"torso"``; see :data:`pose_lab.skeleton.NORMALISER_JOINTS`.
        alpha: threshold as a fraction of the reference length, ``> 0``.
        num_joints: K; every update must have this many joints.

    States (both ``(K,)`` int64, summed across processes): ``hits`` correct predictions per joint,
    ``total`` evaluated predictions per joint. :meth:`compute` is the pooled accuracy, which equals
    the mean of :meth:`per_joint` because every joint is evaluated on every image. Both return NaN
    (with torchmetrics' warning for ``compute``) before any update.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    hits: Tensor
    total: Tensor

    def __init__(
        self,
        normaliser: str = "head",
        alpha: float = 0.5,
        num_joints: int = skeleton.NUM_JOINTS,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _check_normaliser(normaliser)
        self.normaliser = normaliser
        self.alpha = _check_alpha(alpha)
        if int(num_joints) != num_joints or num_joints <= 0:
            raise ValueError(f"num_joints must be a positive integer, got {num_joints}")
        self.num_joints = int(num_joints)
        self.add_state("hits", default=torch.zeros(self.num_joints, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros(self.num_joints, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch: ``pred``, ``target`` are ``(N, K, 2)`` in original image pixels."""
        if pred.ndim == 3 and pred.shape[1] != self.num_joints:
            raise ValueError(f"{type(self).__name__} expects {self.num_joints} joints, got pred {tuple(pred.shape)}")
        hits = pck_hits(pred, target, self.normaliser, self.alpha)
        self.hits += hits.sum(dim=0).to(device=self.hits.device, dtype=torch.long)
        self.total += hits.shape[0]

    def compute(self) -> Tensor:
        """Pooled accuracy: total hits / total evaluated joints (float32 scalar, for logging)."""
        return (self.hits.sum().double() / self.total.sum().double()).float()

    def per_joint(self) -> Tensor:
        """``(K,)`` accuracy of each joint, in :data:`pose_lab.skeleton.JOINT_NAMES` order (float32).

        Synchronised across processes like :meth:`compute`.
        """
        if self._is_synced:  # already inside a sync (e.g. called from a synced compute)
            return self._per_joint()
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=self._should_unsync
        ):
            return self._per_joint()

    def _per_joint(self) -> Tensor:
        return (self.hits.double() / self.total.double()).float()

    def extra_repr(self) -> str:
        return f"normaliser={self.normaliser!r}, alpha={self.alpha}, num_joints={self.num_joints}"


def make_pck(name: str, **kwargs) -> PCK:
    """Build the :class:`PCK` of a named protocol from :data:`PCK_PROTOCOLS`, e.g. ``make_pck("pckh@0.5")``."""
    try:
        normaliser, alpha = PCK_PROTOCOLS[name]
    except KeyError:
        valid = ", ".join(repr(n) for n in PCK_PROTOCOLS)
        raise ValueError(f"unknown PCK protocol {name!r}; valid protocols are: {valid}") from None
    return PCK(normaliser=normaliser, alpha=alpha, **kwargs)
