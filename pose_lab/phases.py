"""Training phases as a Lightning callback that freezes named parameter groups (report §3.2.2-§3.2.3).

Phase `pretrain` trains backbone + heatmap branch with the regression branch frozen; phase `regression`
trains the regression branch with everything else frozen. Freezing happens in `setup`, before
`configure_optimizers`, so frozen parameters never enter the optimizer. Frozen groups are also put in
eval() at every training epoch start: `requires_grad=False` alone leaves BatchNorm updating its running
statistics in train mode (Lightning's own BaseFinetuning has that gap).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
from torch import nn

from pose_lab.models.network import TRAINED_BY

PARAMETER_GROUPS: tuple[str, ...] = tuple(group for groups in TRAINED_BY.values() for group in groups)


def valid_groups(groups: Sequence[str]) -> bool:
    """Whether `groups` is a non-empty subset of PARAMETER_GROUPS (a phase's groups, or those taken from
    phase.init_from)."""
    return bool(groups) and set(groups) <= set(PARAMETER_GROUPS)


class TrainOnly(L.Callback):
    """Train only the named groups of `pl_module.net`; freeze the others, BatchNorm statistics included."""

    def __init__(self, groups: Sequence[str]) -> None:
        if not valid_groups(groups):
            raise ValueError(f"phase groups must be a non-empty subset of {PARAMETER_GROUPS}, got {list(groups)}")
        self.groups = tuple(groups)

    def frozen_groups(self, net: nn.Module) -> list[nn.Module]:
        return [getattr(net, name) for name in PARAMETER_GROUPS if name not in self.groups]

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for name in PARAMETER_GROUPS:
            getattr(pl_module.net, name).requires_grad_(name in self.groups)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for group in self.frozen_groups(pl_module.net):
            group.eval()
