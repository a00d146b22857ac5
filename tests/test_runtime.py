"""runtime: the torch backend compiled with torch.compile answers as the eager one."""

from __future__ import annotations

import pytest
import torch

from pose_lab.bench import build_variant
from pose_lab.runtime import PATHS, torch_infer


@pytest.mark.parametrize("path", ["regression"])
def test_compiled_path_answers_as_the_eager_path(path: str) -> None:
    net = build_variant("base", 64)
    x = torch.randn(1, 3, 64, 64)
    eager = torch_infer(net, path)(x)
    compiled = torch_infer(net, path, compile_backend="inductor")(x)
    assert len(compiled) == len(eager) == len(PATHS[path](net, x))
    for ours, reference in zip(compiled, eager, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4)
