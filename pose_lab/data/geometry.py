"""Letterbox geometry: place a whole image in a square input without distortion, and map points both ways.

No ground truth is used to place the input (the report resizes whole images; we keep the aspect ratio and
pad instead of stretching), so the same transform serves training, evaluation and inference. The 2×3
affine follows OpenCV's convention (pixel centres at integer coordinates): the image's extent
[-0.5, W-0.5] maps onto the scaled, centred extent inside [-0.5, S-0.5].
"""

from __future__ import annotations

from typing import TypeVar

import cv2
import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def rotation_matrix(degrees: float) -> np.ndarray:
    """(2,2) float64 rotation by `degrees`, clockwise on screen (image y points down)."""
    angle = np.deg2rad(degrees)
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def region_matrix(x0: float, y0: float, side: float, size: int, rotation: float = 0.0) -> np.ndarray:
    """(2,3) float64 affine from original pixels to a size×size input showing the square region whose top-left
    pixel edge is at (x0, y0) and whose sides are `side` pixels long (parts outside the image are padding),
    turned by `rotation` degrees about its centre (clockwise on screen: image y points down)."""
    if side <= 0:
        raise ValueError(f"region side must be positive, got {side}")
    scale = size / side
    linear = scale * rotation_matrix(rotation)
    # Pixel centres at integer coordinates: the region's centre is half a pixel inside its edges.
    centre = np.array([x0 + side / 2 - 0.5, y0 + side / 2 - 0.5])
    offset = (size / 2 - 0.5) - linear @ centre
    return np.concatenate([linear, offset[:, None]], axis=1)


def letterbox_region(width: int, height: int) -> tuple[float, float, float]:
    """The square region (x0, y0, side) a letterbox shows: the whole image, centred."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    side = max(width, height)
    return (width - side) / 2, (height - side) / 2, side


def letterbox_matrix(width: int, height: int, size: int) -> np.ndarray:
    """(2,3) float64 affine from original pixels to a size×size letterboxed input."""
    return region_matrix(*letterbox_region(width, height), size)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2,3) affine, or of a stack (...,2,3)."""
    linear = matrix[..., :2]
    inverse_linear = np.linalg.inv(linear)
    offset = -np.einsum("...ij,...j->...i", inverse_linear, matrix[..., 2])
    return np.concatenate([inverse_linear, offset[..., None]], axis=-1)


def apply_affine(points: ArrayT, matrix: ArrayT) -> ArrayT:
    """points (...,K,2) mapped by a (2,3) affine, or per sample by (...,2,3); numpy arrays or torch tensors."""
    return points @ matrix[..., :2].swapaxes(-1, -2) + matrix[..., None, :, 2]


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """HxWx3 image -> (size×size×3 letterboxed image, (2,3) affine from original to input pixels)."""
    height, width = image.shape[:2]
    matrix = letterbox_matrix(width, height, size)
    warped = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return warped, matrix
