"""PoseEstimator: keypoints in original image pixels for RGB images of any size, from a checkpoint.

`PoseEstimator.from_checkpoint(path).predict(images)` letterboxes each image to the checkpoint's input size as
the data pipeline does (:func:`pose_lab.data.geometry.letterbox`, :class:`pose_lab.data.dataset.Normalize`),
runs the batch through one inference path of :data:`pose_lab.runtime.PATHS` (the regression branch alone,
BlazePose's fast path; the heatmaps alone, keypoints decoded from them; or both) and maps the keypoints back
through each image's inverse letterbox affine. The network runs in
PyTorch or, from a file written by :mod:`pose_lab.export`, in ONNX Runtime (both built by :mod:`pose_lab.runtime`).

Images much larger than the input (more than `AREA_SHRINK` times) are first area-averaged down with
cv2.INTER_AREA: a single bilinear warp would skip most of their pixels and alias. The resize is composed into
the affine, so keypoints still come back in the original pixels.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor

from pose_lab.checkpoint import load_module
from pose_lab.codecs.heatmap import GaussianHeatmap
from pose_lab.codecs.regression import RegressionLabel
from pose_lab.data.dataset import IMAGENET_MEAN, IMAGENET_STD, Normalize
from pose_lab.data.geometry import apply_affine, invert_affine, letterbox_region, region_matrix
from pose_lab.errors import PoseLabError
from pose_lab.models.flip_test import FlipAveraged
from pose_lab.models.network import joint_maps
from pose_lab.module import PoseLitModule
from pose_lab.region import Region
from pose_lab.runtime import OUTPUTS, PATHS, Infer, onnx_infer, onnx_session, session_path, torch_infer

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")
# Shrink factor beyond which an image is area-averaged down before the letterbox warp.
AREA_SHRINK = 2.0

# ONNX metadata entry written by pose_lab.export: whether the graph averages over the mirror image.
FLIP_METADATA_KEY = "pose_lab.flip_test"


class Prediction(NamedTuple):
    """The pose in one image; K joints in :data:`pose_lab.skeleton.JOINT_NAMES` order, float32 arrays."""

    # (K,2) x, y in original image pixels: the regression output, or the heatmap-decoded joints on the heatmap path
    keypoints: np.ndarray
    # (K,) the visibility output: the probability that each joint is visible; None on the heatmap path, which
    # leaves out the regression branch that computes it
    visibility: np.ndarray | None
    heatmaps: np.ndarray | None = None  # (K,h,w) over the letterboxed input (h = w = S/2); with return_heatmaps
    # (K,2) heatmap-decoded, original pixels: with return_heatmaps or on the heatmap path
    heatmap_keypoints: np.ndarray | None = None
    heatmap_scores: np.ndarray | None = None  # (K,) peak of each joint's heatmap (near 0: no joint found); ditto

    @property
    def confidence(self) -> np.ndarray:
        """(K,) how sure the path that made `keypoints` is of each joint: the visibility output, or on the
        heatmap path, each heatmap's peak."""
        return self.heatmap_scores if self.visibility is None else self.visibility


def normalization(config: DictConfig) -> tuple[list[float], list[float]]:
    """Mean and std a checkpoint's network reads its input with: its data config's, else the data defaults."""
    return list(config.data.get("mean", IMAGENET_MEAN)), list(config.data.get("std", IMAGENET_STD))


def as_rgb(image: np.ndarray, index: int = 0) -> np.ndarray:
    """One image as (H,W,3) uint8 RGB: grayscale (H,W) or (H,W,1) is repeated, RGBA's alpha dropped.

    Raises a PoseLabError naming image `index` for anything else: other dtypes (convert to uint8 first, e.g.
    `(image * 255).round().astype(np.uint8)` for floats in [0, 1]), other shapes, an empty image.
    """
    if not isinstance(image, np.ndarray):
        raise PoseLabError(f"image {index}: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise PoseLabError(
            f"image {index}: expected uint8 pixels (0-255), got {image.dtype}; convert it first, "
            "e.g. (image * 255).round().astype(np.uint8) for floats in [0, 1]"
        )
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise PoseLabError(f"image {index}: expected (H,W), (H,W,1), (H,W,3) RGB or (H,W,4) RGBA, got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise PoseLabError(f"image {index} is empty: {image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[..., :3]


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The (2,3) affine applying `inner` then `outer`."""
    return np.concatenate([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]], axis=1)


def prepare(image: np.ndarray, size: int, normalize: Normalize,
            region: Region | None = None) -> tuple[Tensor, np.ndarray]:
    """(H,W,3) uint8 RGB -> (3,S,S) network input and the (2,3) affine from input back to original pixels.

    The input shows `region` (a Region, or a plain (x0, y0, side[, rotation]) tuple): a square of the image in
    pixels, possibly turned, padded where it leaves the image; None letterboxes the whole image.
    """
    height, width = image.shape[:2]
    region = Region(*letterbox_region(width, height)) if region is None else Region(*region)
    to_input = region_matrix(region.x0, region.y0, region.side, size, region.rotation)
    scale = size / region.side
    source, source_to_input = image, to_input
    # The image pixels the input shows: the bounding box of the (turned) square.
    corners = apply_affine(np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]]),
                           invert_affine(to_input))
    (x_low, y_low), (x_high, y_high) = corners.min(axis=0), corners.max(axis=0)
    left, top = max(0, int(np.floor(x_low + 0.5))), max(0, int(np.floor(y_low + 0.5)))
    right, bottom = min(width, int(np.ceil(x_high + 0.5))), min(height, int(np.ceil(y_high + 0.5)))
    if scale * AREA_SHRINK < 1 and right > left and bottom > top:
        # Area-average only the part of the image the region shows, then warp that small copy.
        crop = image[top:bottom, left:right]
        small_width, small_height = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
        sx, sy = small_width / crop.shape[1], small_height / crop.shape[0]
        # cv2.resize maps pixel centres: x' = (x - left + 0.5) * sx - 0.5, the letterbox's convention.
        to_small = np.array([[sx, 0.0, (0.5 - left) * sx - 0.5], [0.0, sy, (0.5 - top) * sy - 0.5]])
        source = cv2.resize(crop, (small_width, small_height), interpolation=cv2.INTER_AREA)
        source_to_input = _compose(to_input, invert_affine(to_small))
    boxed = cv2.warpAffine(source, source_to_input, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    return normalize(boxed), invert_affine(to_input)


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with `threads` torch intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _image_list(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """A (B,H,W,C) array is a batch; any other array is one image."""
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    return list(images)


class PoseEstimator:
    """Predict poses with one network, given as `infer` callables per inference path.

    Args:
        infer: callables from :mod:`pose_lab.runtime` per inference path (at least one of PATHS).
        inference_path: the path `predict` runs when no heatmaps are asked for (one of `infer`); None:
            regression when given, else the first.
        input_size: S, the square input the network reads.
        heatmap_codec, regression_codec: the checkpoint's codecs, to decode the outputs to input pixels.
        mean, std: the input normalisation (RGB, in [0, 1] units).
        device: where input batches go (the torch backend's device; "cpu" for ONNX Runtime).
        memory_format: of input batches (channels_last for a channels_last torch network).
        single_threaded_torch: run the pre- and post-processing with one torch thread, for a network that runs
            in another runtime: idle torch worker threads spin for a while after each parallel op and would
            take the cores that runtime's threads need (on 2 cores this more than doubled the time per image).
    """

    def __init__(
        self,
        infer: Mapping[str, Infer],
        input_size: int,
        heatmap_codec: GaussianHeatmap,
        regression_codec: RegressionLabel,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        device: str | torch.device = "cpu",
        memory_format: torch.memory_format = torch.contiguous_format,
        single_threaded_torch: bool = False,
        inference_path: str | None = None,
    ) -> None:
        unknown = sorted(set(infer) - set(PATHS))
        if not infer or unknown:
            raise ValueError(f"infer needs callables for paths among {list(PATHS)}, got {list(infer)}")
        if inference_path is None:
            inference_path = "regression" if "regression" in infer else next(iter(infer))
        if inference_path not in infer:
            raise PoseLabError(f"inference_path={inference_path!r} is not among this estimator's paths "
                               f"({', '.join(infer)})")
        self.infer = dict(infer)
        self.inference_path = inference_path
        self.input_size = input_size
        self.heatmap_codec = heatmap_codec
        self.regression_codec = regression_codec
        self.normalize = Normalize(mean, std)
        self.device = torch.device(device)
        self.memory_format = memory_format
        self.single_threaded_torch = single_threaded_torch

    @classmethod
    def from_checkpoint(cls, path: str | Path, **options: Any) -> PoseEstimator:
        """An estimator for a checkpoint (any variant: the network is rebuilt from the config inside it); `options`
        are :meth:`from_module`'s. Raises CheckpointError for an unusable checkpoint."""
        return cls.from_module(*load_module(path), path, **options)

    @classmethod
    def from_module(
        cls,
        module: PoseLitModule,
        config: DictConfig,
        path: str | Path,
        device: str | torch.device = "cpu",
        backend: str = "torch",
        onnx_path: str | Path | None = None,
        threads: int = 2,
        flip_test: bool = False,
        inference_path: str = "regression",
    ) -> PoseEstimator:
        """An estimator for a checkpoint already read by :func:`pose_lab.checkpoint.load_module`, so that several
        estimators of one checkpoint read it once; `path` names the checkpoint in errors.

        backend="torch" runs the checkpoint's network on `device`; backend="onnxruntime" runs `onnx_path`, a file
        written by `python -m pose_lab.export` from this checkpoint, on the CPU with `threads` intra-op threads.
        flip_test averages each answer with the mirror image's (torch; for ONNX, export with flip_test=true).
        `inference_path` is the path of the torch backend (ONNX Runtime runs the path the file was exported with).
        Raises PoseLabError for a bad backend or ONNX file.
        """
        if backend not in BACKENDS:
            raise PoseLabError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        size = config.data.input_size
        mean, std = normalization(config)
        codecs = {"heatmap_codec": module.heatmap_codec, "regression_codec": module.regression_codec}
        if backend == "torch":
            net = (FlipAveraged(module.net) if flip_test else module.net).to(device)
            memory_format = torch.channels_last if module.channels_last else torch.contiguous_format
            infer = {name: torch_infer(net, name) for name in PATHS}
            return cls(infer, size, **codecs, mean=mean, std=std, device=device, memory_format=memory_format,
                       inference_path=inference_path)
        if onnx_path is None:
            raise PoseLabError(
                "backend=onnxruntime needs the ONNX file of this checkpoint (onnx_path); write it with "
                f"`python -m pose_lab.export ckpt={path}`"
            )
        if torch.device(device).type != "cpu":
            raise PoseLabError(f"backend=onnxruntime runs on the CPU only, got device={device}; pass backend=torch to "
                               f"run on {device}")
        session = onnx_session(onnx_path, threads)
        exported_flip = session.get_modelmeta().custom_metadata_map.get(FLIP_METADATA_KEY, "false") == "true"
        if exported_flip != flip_test:
            raise PoseLabError(
                f"{onnx_path} was exported with flip_test={str(exported_flip).lower()}, but flip_test="
                f"{str(flip_test).lower()} was asked for: export again with `python -m pose_lab.export "
                f"ckpt={path} flip_test={str(flip_test).lower()}`"
            )
        exported_shape = session.get_inputs()[0].shape
        if list(exported_shape[1:]) != [3, size, size]:
            raise PoseLabError(
                f"{onnx_path} takes inputs {exported_shape}, but {path} is a {size}x{size} network: "
                "export this checkpoint again"
            )
        return cls({session_path(session): onnx_infer(session)}, size, **codecs, mean=mean, std=std,
                   single_threaded_torch=True)

    def _path(self, return_heatmaps: bool) -> str:
        if not return_heatmaps or "heatmaps" in OUTPUTS[self.inference_path]:
            return self.inference_path
        if "full" not in self.infer:
            raise PoseLabError("heatmaps need the heatmap or full path: export the checkpoint with path=heatmap "
                               "or path=full")
        return "full"

    def predict(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        return_heatmaps: bool = False,
        batch_size: int = 16,
        regions: Sequence[Region | None] | None = None,
    ) -> list[Prediction]:
        """Poses for RGB uint8 images of any size, one Prediction per image in input order.

        Args:
            images: one (H,W,3) image, a (B,H,W,3) array, or a sequence of images of different sizes;
                grayscale and RGBA images are converted (see :func:`as_rgb`).
            return_heatmaps: also return the heatmaps and heatmap-decoded keypoints (runs the full path when the
                estimator's path has no heatmaps).
            batch_size: images per network call.
            regions: per image, the Region (a square in its pixels, possibly turned) to show the network (a
                tracked person), or None to letterbox the whole image; keypoints still come back in the image's
                pixels.
        """
        if batch_size < 1:
            raise PoseLabError(f"batch_size must be >= 1, got {batch_size}")
        images = [as_rgb(image, index) for index, image in enumerate(_image_list(images))]
        regions = [None] * len(images) if regions is None else list(regions)
        if len(regions) != len(images):
            raise PoseLabError(f"got {len(regions)} regions for {len(images)} images; give one per image (or None)")
        path = self._path(return_heatmaps)
        predictions: list[Prediction] = []
        with torch_threads(1) if self.single_threaded_torch else nullcontext():
            for start in range(0, len(images), batch_size):
                chunk = slice(start, start + batch_size)
                inputs, to_original = zip(*(prepare(image, self.input_size, self.normalize, region)
                                            for image, region in zip(images[chunk], regions[chunk], strict=True)))
                batch = torch.stack(inputs).to(self.device, memory_format=self.memory_format)
                outputs = dict(zip(OUTPUTS[path], self.infer[path](batch)))
                predictions.extend(self._decode(outputs, np.stack(to_original), return_heatmaps))
        return predictions

    def _decode(self, outputs: dict[str, Tensor], to_original: np.ndarray, heatmaps: bool) -> list[Prediction]:
        """Network outputs of a batch -> Predictions; to_original is (B,2,3)."""
        regression = "coords" in outputs
        count = len(to_original)
        maps = heatmap_keypoints = scores = [None] * count
        if "heatmaps" in outputs and (heatmaps or not regression):
            decoded_maps = joint_maps(outputs["heatmaps"]).float().cpu()
            points, found = self.heatmap_codec.decode(decoded_maps)
            heatmap_keypoints = apply_affine(points.numpy().astype(np.float64), to_original).astype(np.float32)
            scores = found.numpy()
            if heatmaps:
                maps = decoded_maps.numpy()
        if regression:
            coords = self.regression_codec.decode(outputs["coords"].float()).cpu().numpy()
            keypoints = apply_affine(coords.astype(np.float64), to_original).astype(np.float32)
            visibility = outputs["visibility"].float().cpu().numpy()[..., 0]
        else:
            keypoints, visibility = heatmap_keypoints, [None] * count
        return [Prediction(*pose) for pose in zip(keypoints, visibility, maps, heatmap_keypoints, scores, strict=True)]
