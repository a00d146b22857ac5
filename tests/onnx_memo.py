"""Replays an ONNX export that the test session has already made with identical inputs.

Many tests export the same tiny network (the seeded smoke checkpoint, or a seeded untrained one), and each dynamo
export takes about ten seconds on the 2-core CPU. The export is a function of the module (its class tree, plain
attributes, mode and weights) and of the call's arguments, so its file is written once per distinct call and
copied for every repeat. A test that replaces torch.onnx.export itself (the fallback test) still gets its own.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

PLAIN = (bool, int, float, str, type(None))


def _plain(value: Any) -> str | None:
    """A stable text for attribute values that steer a forward (modes, flags, sizes, chosen functions)."""
    if isinstance(value, PLAIN):
        return repr(value)
    if isinstance(value, (tuple, list)) and all(isinstance(item, PLAIN) for item in value):
        return repr(value)
    if isinstance(value, torch.Tensor):  # a constant kept outside the state dict
        return hashlib.sha256(value.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    if callable(value) and not isinstance(value, nn.Module):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__qualname__)}"
    return None


def module_fingerprint(module: nn.Module) -> str:
    """SHA-256 of the module's structure, plain attributes, train/eval mode and every parameter and buffer."""
    digest = hashlib.sha256()
    for name, sub in module.named_modules():
        digest.update(f"{name}:{type(sub).__module__}.{type(sub).__qualname__}".encode())
        for key, value in sorted(vars(sub).items()):
            text = None if key.startswith("_") else _plain(value)
            if text is not None:
                digest.update(f"{key}={text};".encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def memoized_export(export: Callable[..., Any], folder: Path) -> Callable[..., Any]:
    """torch.onnx.export, writing each distinct call's file once into `folder` and copying it for repeats."""

    def replay(module: nn.Module, args: tuple, f: str | Path, **kwargs: Any) -> Any:
        shapes = [tuple(arg.shape) if isinstance(arg, torch.Tensor) else repr(arg) for arg in args]
        key = hashlib.sha256(f"{module_fingerprint(module)}|{shapes}|{sorted(kwargs.items())!r}".encode())
        cached = folder / f"{key.hexdigest()}.onnx"
        if not cached.is_file():
            result = export(module, args, f, **kwargs)
            shutil.copyfile(f, cached)
            return result
        shutil.copyfile(cached, f)
        return None

    return replay
