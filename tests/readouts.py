"""Regression readouts as test parameters: the shipped checkpoint's runs in the default test run, the earlier
checkpoints' with the slow tests (`make test-full`)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

SHIPPED_READOUT = "soft_argmax_s16"  # tests/test_export.py checks it against the shipped checkpoint's config


def shipped_readout_by_default(readouts: Iterable[str]) -> list:
    """`readouts` as pytest params, every one but the shipped checkpoint's marked slow."""
    return [pytest.param(readout, marks=[] if readout == SHIPPED_READOUT else [pytest.mark.slow])
            for readout in readouts]
