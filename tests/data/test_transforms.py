import numpy as np

from pose_lab import skeleton
from pose_lab.data.transforms import PoseAugment


def _sample(size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
    points = rng.uniform(5, size - 6, size=(skeleton.NUM_JOINTS, 2)).astype(np.float32)
    visible = np.arange(skeleton.NUM_JOINTS) % 3 != 0
    return image, points, visible


def test_flip_mirrors_x_and_swaps_left_right() -> None:
    augment = PoseAugment(flip=True, rotation=0, scale=0, shift=0, color=False, occlusion=0)
    augment._pipeline.transforms[0].p = 1.0
    image, points, visible = _sample()
    out_image, out_points, out_visible = augment(image, points, visible)
    assert np.array_equal(out_image, image[:, ::-1])
    partners = np.asarray(skeleton.FLIP_PARTNERS)
    assert np.allclose(out_points[:, 0], 63 - points[partners, 0])
    assert np.allclose(out_points[:, 1], points[partners, 1])
    assert np.array_equal(out_visible, visible[partners])
    left_ankle, right_ankle = skeleton.joint_index("left_ankle"), skeleton.joint_index("right_ankle")
    assert np.allclose(out_points[left_ankle], [63 - points[right_ankle, 0], points[right_ankle, 1]])


def test_geometric_augmentation_moves_keypoints_with_the_image() -> None:
    augment = PoseAugment(flip=False, rotation=30, scale=0.2, shift=0.1, color=False, occlusion=0)
    image = np.zeros((96, 96, 3), dtype=np.uint8)
    point = np.array([[40.0, 50.0]] * skeleton.NUM_JOINTS, dtype=np.float32)
    image[48:53, 38:43] = 255  # a bright 5x5 blob centred on (40, 50)
    for seed in range(5):
        np.random.seed(seed)
        out_image, out_points, _ = augment(image, point, np.ones(skeleton.NUM_JOINTS, bool))
        ys, xs = np.nonzero(out_image[..., 0] > 127)
        assert np.hypot(xs.mean() - out_points[0, 0], ys.mean() - out_points[0, 1]) < 1.5


def test_occlusion_boxes_mark_covered_joints_invisible() -> None:
    augment = PoseAugment(flip=False, rotation=0, scale=0, shift=0, color=False, occlusion=1.0)
    image, points, _ = _sample()
    hidden_any = False
    for _ in range(20):
        out_image, out_points, out_visible = augment(image, points, np.ones(skeleton.NUM_JOINTS, bool))
        changed = np.any(out_image != image, axis=-1)
        covered = changed[out_points[:, 1].astype(int), out_points[:, 0].astype(int)]
        # A joint whose pixel was painted over is invisible; one left untouched stays visible.
        assert not np.any(covered & out_visible)
        hidden_any |= bool((~out_visible).any())
    assert hidden_any


def test_numpy_seed_fixes_the_draws_so_a_runs_seed_fixes_its_augmentation() -> None:
    augment = PoseAugment()
    image, points, visible = _sample()

    def draws(seed: int) -> list[np.ndarray]:
        np.random.seed(seed)
        return [augment(image, points, visible)[1] for _ in range(3)]

    first, again, other = draws(0), draws(0), draws(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])  # successive samples still differ
    assert not any(np.array_equal(a, b) for a, b in zip(first, other))
