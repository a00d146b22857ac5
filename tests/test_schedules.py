import math

import pytest
import torch

from pose_lab.schedules import cosine


def _rates(total: int, warmup: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = cosine(optimizer, total_epochs=total, warmup_epochs=warmup, final_ratio=0.01)
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_cosine_decays_from_base_to_final_ratio_over_the_stage() -> None:
    rates = _rates(total=5, warmup=0)
    assert rates[0] == pytest.approx(1.0)
    assert rates[2] == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert rates[-1] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_warmup_rises_linearly_then_decays() -> None:
    rates = _rates(total=6, warmup=2)
    assert rates[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert rates[-1] == pytest.approx(0.01)


def test_bad_lengths_raise() -> None:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match="warmup_epochs"):
        cosine(optimizer, total_epochs=3, warmup_epochs=3)
