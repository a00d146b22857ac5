"""Drawing for people: skeletons on images, heatmaps over images, and grids of per-joint heatmaps.

Used by the inspection notebook now and by predict/exercise overlays. Images are RGB uint8 (H,W,3) and are
never modified in place; keypoints are (K,2) (x, y) in the pixels of the image they are drawn on. Colours
follow the skeleton's sides (:func:`pose_lab.skeleton.joint_side`): left, right and centre each have one.
Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state), so callers outside a
notebook never leak open figures; in Jupyter a returned Figure displays as usual.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pose_lab import skeleton

RGB = tuple[int, int, int]

# Left blue, right orange, centre green: distinguishable with the common colour-vision deficiencies.
SIDE_COLOURS: dict[str, RGB] = {"left": (30, 144, 255), "right": (255, 127, 14), "center": (44, 200, 44)}


def _check_image(image_rgb: np.ndarray) -> None:
    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (H,W,3), got {image_rgb.dtype} {image_rgb.shape}")


def limb_side(a: int, b: int) -> str:
    """Side of the limb between joints a and b: theirs when they agree, else 'center' (hips, shoulders)."""
    side_a, side_b = skeleton.joint_side(a), skeleton.joint_side(b)
    return side_a if side_a == side_b else "center"


def _pixel(point: np.ndarray) -> tuple[int, int]:
    # OpenCV takes int32 pixels; a wild prediction far off the image must not overflow them.
    x, y = np.clip(point, -1e6, 1e6)
    return int(round(x)), int(round(y))


def draw_skeleton(
    image_rgb: np.ndarray,
    keypoints: np.ndarray,
    visibility: np.ndarray | None = None,
    threshold: float = 0.5,
    limbs: Sequence[tuple[int, int]] = skeleton.LIMBS,
    colours: dict[str, RGB] = SIDE_COLOURS,
    thickness: int | None = None,
    radius: int | None = None,
) -> np.ndarray:
    """Draw limbs and joints on a copy of an image.

    Args:
        image_rgb: (H,W,3) uint8 RGB image; left untouched.
        keypoints: (K,2) (x, y) in image pixels; joints with a non-finite coordinate are skipped.
        visibility: (K,) visibility probability, or None for all visible. A joint below `threshold` is drawn
            hollow (ring, image visible at its centre) and its limbs thin, so uncertain joints stand out.
        threshold: visibility below which a joint counts as occluded.
        limbs: (a, b) joint index pairs, by default :data:`pose_lab.skeleton.LIMBS`.
        colours: RGB colour per side ('left', 'right', 'center').
        thickness, radius: line width and joint radius in pixels; default scales with the image size.

    Returns:
        (H,W,3) uint8 RGB image with the skeleton drawn.
    """
    _check_image(image_rgb)
    points = np.asarray(keypoints, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"keypoints must be (K,2), got {points.shape}")
    num_joints = len(points)
    visible = np.ones(num_joints, bool) if visibility is None else np.asarray(visibility).reshape(-1) >= threshold
    if len(visible) != num_joints:
        raise ValueError(f"visibility has {len(visible)} entries for {num_joints} keypoints")
    scale = max(image_rgb.shape[:2])
    thickness = thickness or max(2, round(scale / 150))
    radius = radius or max(3, round(scale / 75))
    finite = np.isfinite(points).all(axis=1)
    canvas = np.ascontiguousarray(image_rgb).copy()

    for a, b in limbs:
        if a >= num_joints or b >= num_joints or not (finite[a] and finite[b]):
            continue
        width = thickness if visible[a] and visible[b] else max(1, thickness // 2)
        start, end = points[a], points[b]
        length = float(np.linalg.norm(end - start))
        if length <= 2 * radius and not (visible[a] and visible[b]):
            continue
        # A limb stops at the ring of an occluded joint, so the ring stays hollow.
        step = (end - start) / max(length, 1e-9) * radius
        start = start if visible[a] else start + step
        end = end if visible[b] else end - step
        cv2.line(canvas, _pixel(start), _pixel(end), colours[limb_side(a, b)], width, cv2.LINE_AA)
    for j in range(num_joints):
        if not finite[j]:
            continue
        colour = colours[skeleton.joint_side(j)]
        if visible[j]:
            cv2.circle(canvas, _pixel(points[j]), radius, colour, -1, cv2.LINE_AA)
            cv2.circle(canvas, _pixel(points[j]), radius, (255, 255, 255), 1, cv2.LINE_AA)
        else:
            cv2.circle(canvas, _pixel(points[j]), radius, colour, max(1, thickness // 2), cv2.LINE_AA)
    return canvas


def overlay_heatmap(
    image_rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.6, colormap: int = cv2.COLORMAP_JET
) -> np.ndarray:
    """Blend one heatmap over an image, more opaque where the map is high.

    Args:
        image_rgb: (H,W,3) uint8 RGB image the heatmap covers (for network heatmaps: the letterboxed input).
        heatmap: (h,w) map in [0, 1] (values outside are clipped, so negative evidence shows as nothing);
            resized to (H,W).
        alpha: opacity where the map is 1.

    Returns:
        (H,W,3) uint8 RGB image.
    """
    _check_image(image_rgb)
    height, width = image_rgb.shape[:2]
    values = cv2.resize(np.asarray(heatmap, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    values = np.clip(values, 0.0, 1.0)
    colour = cv2.cvtColor(cv2.applyColorMap((values * 255).astype(np.uint8), colormap), cv2.COLOR_BGR2RGB)
    weight = (alpha * values)[..., None]
    return np.round((1 - weight) * image_rgb + weight * colour).astype(np.uint8)


def plot_heatmaps(
    axes: Iterable[Axes],
    heatmaps: np.ndarray,
    names: Sequence[str] = skeleton.JOINT_NAMES,
    vmax: float = 1.0,
    cmap: str | None = None,
) -> None:
    """Show heatmaps (K,h,w) one per axis, titled with the joint name and the map's peak.

    Maps with negative values (tanh variants) use a diverging colormap over [-vmax, vmax], others
    [0, vmax], so a weak map looks weak instead of being stretched to full contrast.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    signed = bool((heatmaps < 0).any())
    vmin = -vmax if signed else 0.0
    cmap = cmap or ("RdBu_r" if signed else "magma")
    for ax, heatmap, name in zip(axes, heatmaps, names, strict=False):
        ax.imshow(heatmap, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{name}\npeak {heatmap.max():.2f}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])


def heatmap_grid(
    heatmaps: np.ndarray,
    names: Sequence[str] = skeleton.JOINT_NAMES,
    columns: int = 7,
    title: str | None = None,
    vmax: float = 1.0,
    cell_size: float = 1.6,
) -> Figure:
    """A figure with one axis per heatmap (K,h,w), `columns` per row; exactly K axes (no empty cells)."""
    heatmaps = np.asarray(heatmaps)
    if heatmaps.ndim != 3:
        raise ValueError(f"heatmaps must be (K,h,w), got {heatmaps.shape}")
    count = len(heatmaps)
    rows = -(-count // columns)
    figure = Figure(figsize=(cell_size * columns, (cell_size + 0.4) * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for ax in axes[count:]:
        ax.remove()
    plot_heatmaps(axes[:count], heatmaps, names, vmax=vmax)
    if title:
        figure.suptitle(title)
    return figure
