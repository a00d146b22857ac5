"""Shared fixtures: a tiny synthetic LSP folder (built once per session) and the real LSP when present."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from fixtures import make_tiny_lsp
from onnx_memo import memoized_export
from pose_lab.data.errors import LSPDataError
from pose_lab.data.lsp import ROOT_ENV_VAR, resolve_root

# The shared datasets folder sits next to the repository checkout (…/main and …/shared).
DEFAULT_LSP_ROOT = Path(__file__).resolve().parents[1].parent / "shared/datasets/lsp"
DEFAULT_EXERCISE_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared/datasets/exercise_videos"
EXERCISE_VIDEOS_ENV_VAR = "POSE_LAB_EXERCISE_VIDEOS"


@pytest.fixture(scope="session", autouse=True)
def replayed_onnx_exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """torch.onnx.export writes each distinct export once per session (onnx_memo): about ten seconds each."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.onnx, "export", memoized_export(torch.onnx.export, tmp_path_factory.mktemp("onnx")))
        yield


@pytest.fixture(scope="session")
def tiny_lsp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 synthetic LSP images + joints.mat, shared by the whole session: copy it before changing anything."""
    return make_tiny_lsp(tmp_path_factory.mktemp("tiny_lsp"), num_images=16)


@pytest.fixture(scope="session")
def tiny_lsp_factory() -> Callable[..., Path]:
    """`make_tiny_lsp(root, num_images=16, seed=0, convention="lsp")` for tests that need their own copy."""
    return make_tiny_lsp


@pytest.fixture(scope="session")
def lsp_root() -> Path:
    """The real LSP root from $POSE_LAB_LSP_ROOT or ../shared/datasets/lsp; skips the test when absent."""
    candidate = os.environ.get(ROOT_ENV_VAR) or DEFAULT_LSP_ROOT
    try:
        return resolve_root(candidate)
    except LSPDataError as err:
        pytest.skip(f"real LSP not found: set {ROOT_ENV_VAR}=/path/to/lsp ({err})")


TINY_SPLIT = {"train": [1, 8], "val": [9, 12], "test": [13, 16]}
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_smoke_train(lsp_root: Path, output_dir: Path, *overrides: str) -> DictConfig:
    """The real train.yaml composed with trainer=smoke on a tiny LSP folder, writing into `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                "trainer=smoke",
                f"data.root={lsp_root}",
                f"data.split={{train: {TINY_SPLIT['train']}, val: {TINY_SPLIT['val']}, "
                f"test: {TINY_SPLIT['test']}}}",
                "data.input_size=64",
                "data.batch_size=4",
                "data.eval_batch_size=4",
                *overrides,
            ],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg.hydra
    return cfg


@pytest.fixture
def train_cfg(tiny_lsp_root: Path, tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """compose_smoke_train on the tiny fixture, writing into tmp_path: a function taking extra overrides, so each
    test states only what it changes."""
    yield lambda *overrides: compose_smoke_train(tiny_lsp_root, tmp_path / "run", *overrides)
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def smoke_pretrain(tiny_lsp_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """pose_lab.train's result for the smoke pretrain of the base model on the tiny fixture, trained once per
    session: tests read its checkpoint through `smoke_checkpoint`, their own copy."""
    from pose_lab.train import train

    result = train(compose_smoke_train(tiny_lsp_root, tmp_path_factory.mktemp("smoke_pretrain"), "phase=pretrain"))
    GlobalHydra.instance().clear()
    return result


@pytest.fixture
def smoke_checkpoint(smoke_pretrain: dict[str, Any], tmp_path: Path) -> Path:
    """This test's copy of the session's smoke-pretrained checkpoint, alone in its folder: what a test writes
    beside it (ONNX copies) or does to it (a rename, a rewrite) stays its own."""
    source = Path(smoke_pretrain["best_checkpoint"])
    folder = tmp_path / "smoke_checkpoint"
    folder.mkdir()
    return Path(shutil.copy2(source, folder / source.name))


@pytest.fixture(scope="session")
def exercise_videos() -> Path:
    """The real exercise clips from $POSE_LAB_EXERCISE_VIDEOS or ../shared/datasets/exercise_videos; skips the
    test when absent."""
    folder = Path(os.environ.get(EXERCISE_VIDEOS_ENV_VAR) or DEFAULT_EXERCISE_VIDEOS)
    if not (folder / "README.md").is_file():
        pytest.skip(f"exercise videos not found at {folder} (set {EXERCISE_VIDEOS_ENV_VAR})")
    return folder
