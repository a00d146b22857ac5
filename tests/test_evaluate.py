"""evaluate on a smoke-trained checkpoint: printed table, metrics.json, predictions anyone can re-score."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from pose_lab.checkpoint import (DEFAULT_CHECKPOINT, CheckpointError, checkpoint_fingerprint, checkpoint_path,
                                 load_module, load_weights, slim)
from pose_lab.data.errors import LSPDataError
from pose_lab.evaluate import evaluate, heatmap_levels
from pose_lab.metrics import inversion_hits, pck

CONF = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.fixture
def trained(smoke_pretrain: dict, smoke_checkpoint: Path) -> dict:
    """The session's smoke pretrain, its checkpoint this test's own copy."""
    return {**smoke_pretrain, "best_checkpoint": str(smoke_checkpoint)}


def _eval_cfg(ckpt: str, root: Path, out: Path, split: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"ckpt={ckpt}", f"data.root={root}", f"data.split={split}",
                                             "data.eval_batch_size=3"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg


def test_evaluate_writes_scores_that_match_its_predictions(trained, tiny_lsp_root, tmp_path, capsys) -> None:
    split = "{train: [1, 8], val: [9, 12], test: [13, 16]}"
    evaluate(_eval_cfg(trained["best_checkpoint"], tiny_lsp_root, tmp_path / "eval", split))
    printed = capsys.readouterr().out
    assert "head_top" in printed and "mean" in printed and "joint heatmaps: mean peak" in printed
    assert "l/r inversions" in printed
    written = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert written["num_images"] == 4 and written["subset"] == "test"
    assert 0 < written["seconds"] and f"scored 4 images in {written['seconds']:.0f} s" in printed
    numbers = np.load(tmp_path / "eval/image_numbers.npy")
    assert numbers.tolist() == [13, 14, 15, 16]
    from scipy.io import loadmat

    truth = np.transpose(loadmat(tiny_lsp_root / "joints.mat")["joints"][:2], (2, 1, 0))[numbers - 1]
    for output in ("regression", "heatmap"):
        predictions = np.load(tmp_path / f"eval/predictions_{output}.npy")
        assert predictions.shape == (4, 14, 3)
        assert np.all((predictions[..., 2] >= 0) & (predictions[..., 2] <= 1))
        rescored = 100 * pck(torch.from_numpy(predictions[..., :2]), torch.from_numpy(truth), "head", 0.5).item()
        assert written["scores"][output]["pckh@0.5"]["mean"] == pytest.approx(rescored)
        inverted = inversion_hits(torch.from_numpy(predictions[..., :2]), torch.from_numpy(truth), "head", 0.5)
        assert written["scores"][output]["pckh@0.5"]["left_right_inversions"] == pytest.approx(
            100 * inverted.double().mean().item())
    levels = written["joint_heatmaps"]
    assert 0 <= levels["median"] <= levels["peak"] <= 1
    # The training loop's own test metric agrees with evaluate on the same checkpoint and images.
    assert 100 * trained["test"]["test/pckh@0.5_heatmap"] == pytest.approx(
        written["scores"]["heatmap"]["pckh@0.5"]["mean"], abs=1e-4)


def test_heatmap_levels_tell_a_peak_from_a_raised_background() -> None:
    peaked = torch.full((1, 2, 8, 8), 0.01)
    peaked[0, :, 3, 4] = 0.9
    raised = torch.full((1, 2, 8, 8), 0.5)
    raised[0, :, 3, 4] = 0.6
    for maps, peak, median in ((peaked, 0.9, 0.01), (raised, 0.6, 0.5)):
        levels = heatmap_levels(maps)
        assert levels["peak"].shape == levels["median"].shape == (1, 2)
        assert torch.allclose(levels["peak"], torch.tensor(peak))
        assert torch.allclose(levels["median"], torch.tensor(median))


def test_slim_checkpoint_is_smaller_and_predicts_the_same(trained, tmp_path) -> None:
    source = Path(trained["best_checkpoint"])
    target = slim(source, tmp_path / "slim.pt", metrics={"note": "test"})
    assert target.stat().st_size < 0.5 * source.stat().st_size
    full, _ = load_module(source)
    small, config = load_module(target)
    assert config.data.input_size == 64
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = full(images), small(images)
    assert torch.allclose(a.coords, b.coords, atol=2e-2) and torch.allclose(a.heatmaps, b.heatmaps, atol=2e-2)


def test_bad_checkpoints_raise_clear_errors(trained, tmp_path, train_cfg) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_module(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointError, match="not a pose_lab checkpoint"):
        load_module(tmp_path / "foreign.ckpt")
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_module(tmp_path / "garbage.ckpt")
    checkpoint = torch.load(trained["best_checkpoint"], weights_only=False)
    checkpoint["pose_lab"]["version"] = "99.0.0"
    torch.save(checkpoint, tmp_path / "future.ckpt")
    with pytest.raises(CheckpointError, match="incompatible"):
        load_module(tmp_path / "future.ckpt")
    from hydra.utils import instantiate

    wider = instantiate(train_cfg("model.net.decoder_channels=32").model)
    with pytest.raises(CheckpointError, match="different network"):
        load_weights(wider, trained["best_checkpoint"])


def test_flip_test_evaluation_averages_with_the_mirror_image(trained, tiny_lsp_root, tmp_path) -> None:
    split = "{train: [1, 8], val: [9, 12], test: [13, 16]}"
    plain = evaluate(_eval_cfg(trained["best_checkpoint"], tiny_lsp_root, tmp_path / "plain", split))
    cfg = _eval_cfg(trained["best_checkpoint"], tiny_lsp_root, tmp_path / "flip", split)
    cfg.flip_test = True
    flipped = evaluate(cfg)
    assert flipped["flip_test"] and not plain["flip_test"]
    assert not np.allclose(np.load(tmp_path / "flip/predictions_regression.npy"),
                           np.load(tmp_path / "plain/predictions_regression.npy"))


def test_heatmap_refine_changes_only_the_heatmap_keypoints(trained, tiny_lsp_root, tmp_path) -> None:
    split = "{train: [1, 8], val: [9, 12], test: [13, 16]}"
    runs = {}
    for refine in ("quarter", "dark"):
        cfg = _eval_cfg(trained["best_checkpoint"], tiny_lsp_root, tmp_path / refine, split)
        cfg.heatmap_refine = refine
        assert evaluate(cfg)["heatmap_refine"] == refine
        runs[refine] = {output: np.load(tmp_path / refine / f"predictions_{output}.npy")
                        for output in ("regression", "heatmap")}
    np.testing.assert_array_equal(runs["dark"]["regression"], runs["quarter"]["regression"])
    assert not np.allclose(runs["dark"]["heatmap"], runs["quarter"]["heatmap"])
    # Both refine the same argmax pixel, by at most 0.5 and 0.25 heatmap pixels: 0.75 heatmap pixels of 2 input
    # pixels apart, times the letterbox scale (fixture images of at most 200 pixels, input 64).
    assert np.abs(runs["dark"]["heatmap"][..., :2] - runs["quarter"]["heatmap"][..., :2]).max() <= 0.75 * 2 * 200 / 64


def test_no_ckpt_means_the_shipped_checkpoint(tiny_lsp_root, tmp_path) -> None:
    assert checkpoint_path(None) == checkpoint_path("") == DEFAULT_CHECKPOINT
    assert checkpoint_path(tmp_path / "mine.pt") == tmp_path / "mine.pt"
    cfg = _eval_cfg("null", tiny_lsp_root, tmp_path / "out", "{train: [1, 8], val: [9, 12], test: [13, 16]}")
    assert cfg.ckpt is None  # `make demo` passes ckpt=null
    written = evaluate(cfg)
    assert written["checkpoint"] == str(DEFAULT_CHECKPOINT) and written["num_images"] == 4
    assert written["checkpoint_sha256"] == checkpoint_fingerprint(DEFAULT_CHECKPOINT)
    assert cfg.ckpt is None  # the caller's config is left as given


def test_a_subset_the_split_lacks_is_named_with_the_subsets_it_has(trained, tiny_lsp_root, tmp_path) -> None:
    cfg = _eval_cfg(trained["best_checkpoint"], tiny_lsp_root, tmp_path / "eval", "{train: [1, 12], test: [13, 16]}")
    cfg.subset = "val"
    with pytest.raises(LSPDataError, match="has no val subset; its subsets are: train, test"):
        evaluate(cfg)
