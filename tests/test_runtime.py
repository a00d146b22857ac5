"""runtime: the torch backend compiled with torch.compile answers as the eager one.

Slow: inductor compiles C++ kernels for the whole path from a cold cache, as on CI (75 s in one default run
beside a training run). The default run still traces the compiled path (test_bench.py, compile_backend=eager);
the shipped inference path is ONNX Runtime, not torch.compile."""

from __future__ import annotations

import pytest
import torch

from pose_lab.bench import build_variant
from pose_lab.runtime import PATHS, torch_infer


@pytest.mark.slow
def test_compiled_regression_path_answers_as_the_eager_path() -> None:
    net = build_variant("base", 64)
    x = torch.randn(1, 3, 64, 64)
    eager = torch_infer(net, "regression")(x)
    compiled = torch_infer(net, "regression", compile_backend="inductor")(x)
    assert len(compiled) == len(eager) == len(PATHS["regression"](net, x))
    for ours, reference in zip(compiled, eager, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4)
