"""Learning-rate schedules that size themselves to the phase they run in.

Each phase stage is its own fit with its own length, so a schedule receives the stage's epoch count from
the module (`total_epochs`) instead of a number fixed in config that the next stage would get wrong.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def cosine(optimizer: Optimizer, total_epochs: int, warmup_epochs: int = 0, final_ratio: float = 0.01) -> LambdaLR:
    """Linear warm-up, then cosine decay from the base learning rate to `final_ratio` of it at the last epoch."""
    if total_epochs < 1 or not 0 <= warmup_epochs < total_epochs:
        raise ValueError(f"need 0 <= warmup_epochs < total_epochs, got {warmup_epochs} and {total_epochs}")

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1) / (warmup_epochs + 1)
        progress = (epoch - warmup_epochs) / max(1, total_epochs - warmup_epochs - 1)
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return LambdaLR(optimizer, factor)
