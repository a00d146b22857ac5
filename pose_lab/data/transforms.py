"""Training augmentation on letterboxed inputs, built with albumentations from config switches.

BlazePose (report appendix B.1) trains with scale, rotation and translation jitter and with occlusion
boxes filled with random colour; the report doubles LSP by horizontal flips (§3.2.1). albumentations
2.0.8 mirrors x but keeps joint order, so after a flip the left/right partners are swapped here, and
joints hidden under an occlusion box are marked invisible so the visibility head learns occlusion.
Every sample's draws come from NumPy's global generator, so a run's seed fixes its augmentation.
"""

from __future__ import annotations

import albumentations as A
import numpy as np

from pose_lab import skeleton


class PoseAugment:
    """(image HxWx3 uint8, keypoints (K,2), visible (K,) bool) -> the same, augmented.

    Each augmentation is off at 0 / False: rotation is the max angle in degrees either way, scale the zoom
    range 1 ± scale, shift the max translation as a fraction of the input, occlusion the probability of
    1-3 random-colour boxes.
    """

    def __init__(self, flip: bool = True, rotation: float = 30.0, scale: float = 0.25, shift: float = 0.1,
                 color: bool = True, occlusion: float = 0.5) -> None:
        steps: list[A.BasicTransform] = []
        if flip:
            steps.append(A.HorizontalFlip(p=0.5))
        if rotation or scale or shift:
            steps.append(
                A.Affine(rotate=(-rotation, rotation), scale=(1 - scale, 1 + scale),
                         translate_percent=(-shift, shift), border_mode=0, fill=0, p=1.0)
            )
        if color:
            steps.append(A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, p=0.8))
        if occlusion:
            steps.append(A.CoarseDropout(num_holes_range=(1, 3), hole_height_range=(0.1, 0.3),
                                         hole_width_range=(0.1, 0.3), fill="random_uniform", p=occlusion))
        self._pipeline = A.Compose(
            steps,
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
            save_applied_params=True,
        )
        self._partners = np.asarray(skeleton.FLIP_PARTNERS)

    def __call__(self, image: np.ndarray, keypoints: np.ndarray, visible: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # albumentations draws from its own generator, which seed_everything and Lightning's per-worker seeding
        # never touch: without this, runs of one seed differ and dataloader workers repeat each other's draws.
        self._pipeline.set_random_seed(int(np.random.randint(2**31)))
        out = self._pipeline(image=image, keypoints=keypoints)
        points = np.asarray(out["keypoints"], dtype=np.float32).reshape(-1, 2)
        visible = visible.copy()
        for name, params in out["applied_transforms"]:
            if name == "HorizontalFlip":
                points, visible = points[self._partners], visible[self._partners]
            elif name == "CoarseDropout":
                visible &= ~_inside_any_box(points, params["holes"])
        return out["image"], points, visible


def _inside_any_box(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(K,2) points, (M,4) boxes x1,y1,x2,y2 -> (K,) True where a point is under a box."""
    if len(boxes) == 0:
        return np.zeros(len(points), dtype=bool)
    x, y = points[:, 0:1], points[:, 1:2]
    boxes = np.asarray(boxes)
    hit = (x >= boxes[:, 0]) & (x < boxes[:, 2]) & (y >= boxes[:, 1]) & (y < boxes[:, 3])
    return hit.any(axis=1)
