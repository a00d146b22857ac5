"""PoseEstimator: keypoints back in original pixels, input handling, batching, heatmaps, ONNX Runtime backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import Tensor

from pose_lab.checkpoint import CheckpointError, load_module
from pose_lab.codecs.heatmap import GaussianHeatmap
from pose_lab.codecs.regression import RegressionLabel
from pose_lab.errors import PoseLabError
from pose_lab.export import export_onnx, onnx_metadata
from pose_lab.inference import PoseEstimator, Prediction
from pose_lab.models.flip_test import FlipAveraged
from pose_lab.skeleton import NUM_JOINTS
from pose_lab.train import train

SIZE = 64


def _images(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            for height, width in ((120, 80), (64, 64), (50, 210), (300, 299))]


def _spot_centroid(x: Tensor) -> tuple[Tensor, Tensor]:
    """A stand-in regression path whose output is known: every joint at the sub-pixel centroid of the
    brightness above the background in channel 0 (input pixels, pixel centres at integers)."""
    batch, _, size, _ = x.shape
    weights = x[:, 0] - x[:, 0].amin(dim=(1, 2), keepdim=True)
    grid = torch.arange(size, dtype=x.dtype)
    total = weights.sum(dim=(1, 2))
    centroid = torch.stack([(weights * grid).sum(dim=(1, 2)) / total,
                            (weights * grid[:, None]).sum(dim=(1, 2)) / total], dim=-1)
    coords = (centroid / size)[:, None].expand(batch, NUM_JOINTS, 2)  # the codec's [0, 1] of the input
    return coords, torch.full((batch, NUM_JOINTS, 1), 0.5)


def _blob_image(height: int, width: int, centre: tuple[float, float], sigma: float) -> np.ndarray:
    """Black (H,W,3) image with a Gaussian blob (peak 255) in the red channel, drawn within 4 sigma."""
    image = np.zeros((height, width, 3), np.uint8)
    cx, cy = centre
    x0, x1 = max(0, int(cx - 4 * sigma)), min(width, int(cx + 4 * sigma) + 1)
    y0, y1 = max(0, int(cy - 4 * sigma)), min(height, int(cy + 4 * sigma) + 1)
    xs, ys = np.arange(x0, x1) - cx, np.arange(y0, y1)[:, None] - cy
    image[y0:y1, x0:x1, 0] = np.round(255 * np.exp(-(xs**2 + ys**2) / (2 * sigma**2)))
    return image


@pytest.mark.parametrize(("height", "width"), [(120, 200), (300, 90), (64, 64), (6000, 8000)])
def test_keypoints_come_back_in_original_pixels(height: int, width: int) -> None:
    scale = SIZE / max(height, width)  # original -> input pixels
    centre = (0.37 * width + 0.3, 0.61 * height - 0.2)
    image = _blob_image(height, width, centre, sigma=3 / scale)  # 3 input pixels wide at any size
    estimator = PoseEstimator({"regression": _spot_centroid}, SIZE, GaussianHeatmap(SIZE), RegressionLabel(SIZE))
    [prediction] = estimator.predict(image)
    assert prediction.keypoints.shape == (NUM_JOINTS, 2) and prediction.visibility.shape == (NUM_JOINTS,)
    assert prediction.confidence is prediction.visibility  # the path that made the keypoints has the output
    error_input_pixels = np.abs(prediction.keypoints - centre).max() * scale
    assert error_input_pixels < 0.15, f"keypoints off by {error_input_pixels:.3f} input pixels"



@pytest.mark.parametrize(("region", "sigma_input"), [((300.0, 40.0, 160.0), 3.0), ((250.0, -60.0, 400.0), 3.0),
                                                     ((100.0, 0.0, 1200.0), 3.0), ((300.0, 40.0, 160.0, 90.0), 3.0),
                                                     ((250.0, -60.0, 400.0, 33.0), 3.0),
                                                     ((100.0, 0.0, 1200.0, -120.0), 3.0)])
def test_a_region_is_shown_and_keypoints_still_come_back_in_image_pixels(
        region: tuple[float, ...], sigma_input: float) -> None:
    """A tracked person's square, also one leaving the image (padding), one shrunk > AREA_SHRINK times, and
    each of them turned."""
    height, width = 720, 1280
    x0, y0, side = region[:3]
    scale = SIZE / side
    centre = (x0 + 0.4 * side + 0.3, max(y0, 0) + 0.55 * min(side, height - max(y0, 0)) - 0.2)
    image = _blob_image(height, width, centre, sigma=sigma_input / scale)
    estimator = PoseEstimator({"regression": _spot_centroid}, SIZE, GaussianHeatmap(SIZE), RegressionLabel(SIZE))
    [prediction] = estimator.predict(image, regions=[region])
    error_input_pixels = np.abs(prediction.keypoints - centre).max() * scale
    assert error_input_pixels < 0.15, f"keypoints off by {error_input_pixels:.3f} input pixels"
    with pytest.raises(PoseLabError, match="2 regions for 1 images"):
        estimator.predict(image, regions=[region, None])

def test_grayscale_and_rgba_are_converted_and_other_inputs_refused(smoke_checkpoint: Path) -> None:
    estimator = PoseEstimator.from_checkpoint(smoke_checkpoint)
    gray = _images()[0][..., 1]
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full_like(gray[..., None], 7)], axis=2)
    reference = estimator.predict(rgb)[0]
    for variant in (gray, gray[..., None], rgba):
        prediction = estimator.predict(variant)[0]
        np.testing.assert_allclose(prediction.keypoints, reference.keypoints, atol=1e-4)
        np.testing.assert_allclose(prediction.visibility, reference.visibility, atol=1e-6)
    with pytest.raises(PoseLabError, match="uint8"):
        estimator.predict(rgb.astype(np.float32) / 255)
    with pytest.raises(PoseLabError, match="empty"):
        estimator.predict(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(PoseLabError, match=r"image 1: expected \(H,W\)"):
        estimator.predict([rgb, np.zeros((8, 8, 2), np.uint8)])
    with pytest.raises(PoseLabError, match="batch_size"):
        estimator.predict(rgb, batch_size=0)
    assert estimator.predict([]) == []


def test_huge_image_is_predicted(smoke_checkpoint: Path) -> None:
    image = np.zeros((6000, 8000, 3), np.uint8)
    image[1000:5000, 3000:5000] = 200
    [prediction] = PoseEstimator.from_checkpoint(smoke_checkpoint).predict(image)
    assert np.isfinite(prediction.keypoints).all()
    # Keypoints are in the original frame: of the order of its 8000 px, not of the 64 px input.
    assert np.abs(prediction.keypoints).max() > 2 * SIZE


def test_batches_keep_the_input_order(smoke_checkpoint: Path) -> None:
    estimator = PoseEstimator.from_checkpoint(smoke_checkpoint)
    images = _images()
    one_by_one = [estimator.predict(image)[0] for image in images]
    batched = estimator.predict(images, batch_size=3)  # a full batch of 3, then 1
    assert len(batched) == len(images)
    for single, together in zip(one_by_one, batched):
        np.testing.assert_allclose(together.keypoints, single.keypoints, atol=1e-3)
        np.testing.assert_allclose(together.visibility, single.visibility, atol=1e-5)
    same_size = np.stack([images[1], images[1][::-1]])  # a (B,H,W,3) array is a batch
    stacked = estimator.predict(same_size)
    assert len(stacked) == 2
    np.testing.assert_allclose(stacked[0].keypoints, one_by_one[1].keypoints, atol=1e-3)


def test_heatmaps_on_request(smoke_checkpoint: Path) -> None:
    estimator = PoseEstimator.from_checkpoint(smoke_checkpoint)
    images = _images()[:2]
    plain = estimator.predict(images)
    assert plain[0].heatmaps is None and plain[0].heatmap_keypoints is None
    full = estimator.predict(images, return_heatmaps=True)
    for with_maps, without in zip(full, plain):
        assert isinstance(with_maps, Prediction)
        assert with_maps.heatmaps.shape == (NUM_JOINTS, SIZE // 2, SIZE // 2)
        assert with_maps.heatmap_keypoints.shape == (NUM_JOINTS, 2)
        np.testing.assert_allclose(with_maps.heatmap_scores, with_maps.heatmaps.reshape(NUM_JOINTS, -1).max(1))
        # The full path's regression output is the regression path's.
        np.testing.assert_allclose(with_maps.keypoints, without.keypoints, atol=1e-3)


def test_heatmap_path_answers_with_the_heatmap_keypoints(smoke_checkpoint: Path, tmp_path: Path) -> None:
    full = PoseEstimator.from_checkpoint(smoke_checkpoint).predict(_images(), return_heatmaps=True)
    module, config = load_module(smoke_checkpoint)
    file = tmp_path / "heatmap.onnx"
    export_onnx(module.net, "heatmap", file, onnx_metadata(config, "heatmap", smoke_checkpoint))
    estimators = {"torch": PoseEstimator.from_checkpoint(smoke_checkpoint, inference_path="heatmap"),
                  "onnxruntime": PoseEstimator.from_checkpoint(smoke_checkpoint, backend="onnxruntime", onnx_path=file)}
    for backend, estimator in estimators.items():
        assert estimator.inference_path == "heatmap", backend
        plain = estimator.predict(_images())
        with_maps = estimator.predict(_images(), return_heatmaps=True)
        for ours, maps, reference in zip(plain, with_maps, full, strict=True):
            assert ours.heatmaps is None
            np.testing.assert_allclose(ours.keypoints, ours.heatmap_keypoints)
            # No regression branch, so no visibility output: the heatmap peaks are the confidence.
            assert ours.visibility is None
            np.testing.assert_allclose(ours.confidence, ours.heatmap_scores)
            np.testing.assert_allclose(ours.heatmap_scores, reference.heatmap_scores, atol=1e-5)
            np.testing.assert_allclose(maps.heatmaps, reference.heatmaps, atol=1e-5)
            assert not np.allclose(ours.keypoints, reference.keypoints)  # not the regression output
    with pytest.raises(PoseLabError, match="inference_path='heatmaps' is not among this estimator's paths"):
        PoseEstimator.from_checkpoint(smoke_checkpoint, inference_path="heatmaps")


def test_another_variant_with_extra_heatmaps(train_cfg) -> None:
    checkpoint = train(train_cfg("phase=pretrain", "model=neg_heatmap"))["best_checkpoint"]
    [prediction] = PoseEstimator.from_checkpoint(checkpoint).predict(_images()[0], return_heatmaps=True)
    assert prediction.heatmaps.shape == (NUM_JOINTS, SIZE // 2, SIZE // 2)  # the negative maps are left out


def test_checkpoint_and_backend_errors(smoke_checkpoint: Path, tmp_path: Path) -> None:
    saved = torch.load(smoke_checkpoint, weights_only=False)
    saved["pose_lab"]["version"] = "99.0.0"
    torch.save(saved, tmp_path / "future.ckpt")
    with pytest.raises(CheckpointError, match="incompatible"):
        PoseEstimator.from_checkpoint(tmp_path / "future.ckpt")
    with pytest.raises(PoseLabError, match="unknown backend"):
        PoseEstimator.from_checkpoint(smoke_checkpoint, backend="tensorrt")
    with pytest.raises(PoseLabError, match="pose_lab.export"):
        PoseEstimator.from_checkpoint(smoke_checkpoint, backend="onnxruntime")
    with pytest.raises(PoseLabError, match="not found"):
        PoseEstimator.from_checkpoint(smoke_checkpoint, backend="onnxruntime", onnx_path=tmp_path / "missing.onnx")


def test_estimators_of_a_checkpoint_read_once_share_its_network(smoke_checkpoint: Path, tmp_path: Path) -> None:
    module, config = load_module(smoke_checkpoint)
    moved = smoke_checkpoint.rename(tmp_path / "moved.ckpt")  # from_module must not read the file again
    estimator = PoseEstimator.from_module(module, config, smoke_checkpoint, inference_path="heatmap")
    reference = PoseEstimator.from_checkpoint(moved, inference_path="heatmap")
    for ours, theirs in zip(estimator.predict(_images()), reference.predict(_images()), strict=True):
        np.testing.assert_allclose(ours.keypoints, theirs.keypoints)
    with pytest.raises(PoseLabError, match=f"ckpt={smoke_checkpoint}"):  # errors name the checkpoint given
        PoseEstimator.from_module(module, config, smoke_checkpoint, backend="onnxruntime")


def _dummy_onnx(file: Path, size: int, outputs: tuple[str, ...]) -> Path:
    """A model taking (batch,3,size,size) whose outputs are named `outputs` (constants: only names and shapes
    matter to the checks before anything runs)."""
    nodes = [helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.FLOAT, [1], [0.0]))
             for name in outputs]
    graph = helper.make_graph(
        nodes, "dummy", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), file)
    return file


def test_onnx_files_that_do_not_fit_the_checkpoint_are_refused(smoke_checkpoint: Path, tmp_path: Path) -> None:
    other_size = _dummy_onnx(tmp_path / "other_size.onnx", 2 * SIZE, ("coords", "visibility"))
    with pytest.raises(PoseLabError, match=f"{SIZE}x{SIZE} network"):
        PoseEstimator.from_checkpoint(smoke_checkpoint, backend="onnxruntime", onnx_path=other_size)
    foreign = _dummy_onnx(tmp_path / "foreign.onnx", SIZE, ("logits",))
    with pytest.raises(PoseLabError, match="not those of a pose_lab export"):
        PoseEstimator.from_checkpoint(smoke_checkpoint, backend="onnxruntime", onnx_path=foreign)
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    with pytest.raises(PoseLabError, match="cannot load"):
        PoseEstimator.from_checkpoint(smoke_checkpoint, backend="onnxruntime", onnx_path=tmp_path / "garbage.onnx")


def test_onnxruntime_backend_agrees_with_torch(smoke_checkpoint: Path, tmp_path: Path) -> None:
    module, _ = load_module(smoke_checkpoint)
    export_onnx(module.net, "full", tmp_path / "full.onnx")
    torch_estimator = PoseEstimator.from_checkpoint(smoke_checkpoint)
    onnx_estimator = PoseEstimator.from_checkpoint(smoke_checkpoint, backend="onnxruntime",
                                                   onnx_path=tmp_path / "full.onnx", threads=1)
    images = _images(seed=1)
    for heatmaps in (False, True):
        expected = torch_estimator.predict(images, return_heatmaps=heatmaps, batch_size=3)
        got = onnx_estimator.predict(images, return_heatmaps=heatmaps, batch_size=3)
        for ours, theirs in zip(expected, got):
            # Keypoints in original pixels: up to 300/64 times the input-pixel difference.
            np.testing.assert_allclose(theirs.keypoints, ours.keypoints, atol=1e-3)
            np.testing.assert_allclose(theirs.visibility, ours.visibility, atol=1e-5)
            if heatmaps:
                # Heatmap keypoints are compared through the maps: the argmax of a barely trained network's
                # near-flat maps can jump to another pixel on a 1e-7 difference.
                np.testing.assert_allclose(theirs.heatmaps, ours.heatmaps, atol=1e-5)


def test_flip_test_in_torch_and_in_an_exported_graph(smoke_checkpoint: Path, tmp_path: Path) -> None:
    module, config = load_module(smoke_checkpoint)
    file = tmp_path / "flip.onnx"
    export_onnx(FlipAveraged(module.net), "regression", file,
                onnx_metadata(config, "regression", smoke_checkpoint, flip_test=True))
    torch_flip = PoseEstimator.from_checkpoint(smoke_checkpoint, flip_test=True)
    onnx_flip = PoseEstimator.from_checkpoint(smoke_checkpoint, backend="onnxruntime", onnx_path=file, flip_test=True)
    plain = PoseEstimator.from_checkpoint(smoke_checkpoint)
    images = _images(seed=2)
    for ours, theirs, single in zip(torch_flip.predict(images), onnx_flip.predict(images), plain.predict(images)):
        np.testing.assert_allclose(theirs.keypoints, ours.keypoints, atol=1e-3)
        assert not np.allclose(ours.keypoints, single.keypoints, atol=1e-3)
    with pytest.raises(PoseLabError, match="exported with flip_test=true, but flip_test=false"):
        PoseEstimator.from_checkpoint(smoke_checkpoint, backend="onnxruntime", onnx_path=file)


def test_preprocessing_for_another_runtime_runs_on_one_torch_thread() -> None:
    seen = []

    def recording_infer(x: Tensor) -> tuple[Tensor, Tensor]:
        seen.append(torch.get_num_threads())
        return _spot_centroid(x)

    before = torch.get_num_threads()
    estimator = PoseEstimator({"regression": recording_infer}, SIZE, GaussianHeatmap(SIZE), RegressionLabel(SIZE),
                              single_threaded_torch=True)
    estimator.predict(_images())
    assert seen == [1] and torch.get_num_threads() == before
