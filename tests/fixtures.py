"""A tiny synthetic LSP folder that tests everywhere can build in milliseconds and a small CNN can overfit.

Each image shows one stick figure on a plain, slightly noisy background: limbs are thick grey lines and every
visible joint is a filled disc in its own saturated colour (left and right partners differ), so joint
locations are recoverable from pixels alone. About 10% of joints are marked occluded; their discs are not
drawn, as an occluded joint would not be seen, but their limbs are, so the location stays inferable.
Coordinates are float (x, y) with pixel centres at integers (OpenCV's convention), and discs are drawn with
sub-pixel precision at exactly those coordinates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import scipy.io

from pose_lab.skeleton import JOINT_NAMES, LIMBS, NUM_JOINTS

_SIZE_RANGE = (100, 200)  # image width and height in pixels, drawn independently
_FIGURE_HEIGHT = 0.7  # fraction of the image height the figure's bounding box spans
_OCCLUDED_FRACTION = 0.1
_SUBPIXEL_BITS = 4  # cv2 drawing `shift`: coordinates in 1/16 pixel
_IMAGE_DIGITS = {"lsp": 4, "lspet": 5}

# One hue per joint, evenly around the colour wheel, at full saturation so discs stand out from the grey scene.
_JOINT_COLOURS_RGB = [
    tuple(int(c) for c in cv2.cvtColor(np.uint8([[[round(180 * j / NUM_JOINTS), 255, 255]]]), cv2.COLOR_HSV2RGB)[0, 0])
    for j in range(NUM_JOINTS)
]


def _direction(angle: float, side: float) -> np.ndarray:
    """Unit vector `angle` radians away from straight down, turned outward to `side` (-1 image left, +1 right)."""
    return np.array([side * np.sin(angle), np.cos(angle)])


def _random_pose(rng: np.random.Generator) -> np.ndarray:
    """(K, 2) joints of a facing-the-camera figure in figure units (head top near y=0, ankles near y=1)."""
    pose = {}
    pose["neck"] = np.array([0.0, 0.17])
    pose["head_top"] = pose["neck"] - 0.17 * _direction(rng.uniform(-0.3, 0.3), 1.0)
    # The figure faces the camera, so its right side appears on the image's left (side -1).
    for side_name, side in (("right", -1.0), ("left", 1.0)):
        shoulder = pose["neck"] + np.array([side * 0.11, 0.03])
        upper_arm = rng.uniform(-0.4, 2.6)  # from hanging down to raised overhead
        elbow = shoulder + 0.16 * _direction(upper_arm, side)
        wrist = elbow + 0.15 * _direction(upper_arm + rng.uniform(-1.0, 1.0), side)
        hip = np.array([side * 0.08, 0.52])
        upper_leg = rng.uniform(-0.15, 0.5)
        knee = hip + 0.24 * _direction(upper_leg, side)
        ankle = knee + 0.24 * _direction(upper_leg + rng.uniform(-0.4, 0.4), side)
        for part, point in (("shoulder", shoulder), ("elbow", elbow), ("wrist", wrist),
                            ("hip", hip), ("knee", knee), ("ankle", ankle)):
            pose[f"{side_name}_{part}"] = point
    joints = np.stack([pose[name] for name in JOINT_NAMES])
    return joints + rng.normal(0.0, 0.01, size=joints.shape)


def _place(pose: np.ndarray, width: int, height: int, margin: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate the figure slightly, scale it to ~70% of the image height (less if too wide), and shift it inside."""
    angle = rng.uniform(-0.25, 0.25)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pose = (pose - pose.mean(axis=0)) @ rotation.T
    extent = pose.max(axis=0) - pose.min(axis=0)
    scale = min(_FIGURE_HEIGHT * height / extent[1], (width - 2 * margin) / extent[0])
    pose = pose * scale
    low = margin - pose.min(axis=0)
    high = np.array([width - 1, height - 1]) - margin - pose.max(axis=0)
    return pose + rng.uniform(low, np.maximum(low, high))


def _draw(pose: np.ndarray, visible: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 image of the figure."""
    grey = rng.uniform(40, 215)
    background = np.clip(grey + rng.uniform(-20, 20, size=3), 0, 255)
    image = np.clip(background + rng.normal(0, 4, size=(height, width, 3)), 0, 255).astype(np.uint8)
    # Limbs far from the background's brightness so they read as a figure, not as part of the scene.
    limb_grey = grey - 100 if grey > 127 else grey + 100
    limb_colour = (int(limb_grey),) * 3
    figure_height = np.ptp(pose[:, 1])
    thickness = max(2, round(0.04 * figure_height))
    radius = max(2.5, 0.035 * figure_height)

    fixed = np.round(pose * (1 << _SUBPIXEL_BITS)).astype(int)
    for a, b in LIMBS:
        cv2.line(image, tuple(fixed[a]), tuple(fixed[b]), limb_colour, thickness, cv2.LINE_AA, _SUBPIXEL_BITS)
    for j in np.flatnonzero(visible):
        cv2.circle(image, tuple(fixed[j]), round(radius * (1 << _SUBPIXEL_BITS)), _JOINT_COLOURS_RGB[j],
                   -1, cv2.LINE_AA, _SUBPIXEL_BITS)
    return image


def make_tiny_lsp(
    root: Path, num_images: int = 16, seed: int = 0, convention: Literal["lsp", "lspet"] = "lsp"
) -> Path:
    """Write images/im0001.jpg … and joints.mat of `num_images` synthetic people into `root`; returns `root`.

    convention "lsp" writes joints as 3×14×N with flag 1 = occluded and 4-digit names; "lspet" writes
    14×3×N with flag 1 = visible and 5-digit names, as the two real releases do.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    keypoints = np.zeros((num_images, NUM_JOINTS, 2))
    visible = rng.random((num_images, NUM_JOINTS)) >= _OCCLUDED_FRACTION
    for i in range(num_images):
        width, height = rng.integers(_SIZE_RANGE[0], _SIZE_RANGE[1] + 1, size=2)
        if width == height:  # keep every image non-square so width/height mix-ups show in tests
            width += 1
        margin = 0.05 * height
        keypoints[i] = _place(_random_pose(rng), int(width), int(height), margin, rng)
        image = _draw(keypoints[i], visible[i], int(width), int(height), rng)
        name = f"im{i + 1:0{_IMAGE_DIGITS[convention]}d}.jpg"
        cv2.imwrite(str(root / "images" / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    # Stored as the rounded 1/16-pixel positions the discs were drawn at, so pixels and labels agree exactly.
    keypoints = np.round(keypoints * (1 << _SUBPIXEL_BITS)) / (1 << _SUBPIXEL_BITS)

    if convention == "lsp":
        joints = np.concatenate([keypoints, (~visible)[..., None]], axis=2).transpose(2, 1, 0)
    else:
        joints = np.concatenate([keypoints, visible[..., None]], axis=2).transpose(1, 2, 0)
    scipy.io.savemat(root / "joints.mat", {"joints": joints.astype(np.float64)})
    return root

