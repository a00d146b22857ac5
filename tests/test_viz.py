"""Drawing: skeleton colours by side, hollow low-visibility joints, heatmap overlay and grid."""

from __future__ import annotations

import numpy as np
import pytest

from pose_lab import skeleton, viz

SIZE = 200


def _pose() -> np.ndarray:
    """(K,2) a spread-out upright figure inside a SIZE×SIZE image, by joint name."""
    places = {
        "head_top": (100, 15), "neck": (100, 45),
        "right_shoulder": (70, 55), "left_shoulder": (130, 55),
        "right_elbow": (50, 90), "left_elbow": (150, 90),
        "right_wrist": (40, 125), "left_wrist": (160, 125),
        "right_hip": (80, 120), "left_hip": (120, 120),
        "right_knee": (75, 155), "left_knee": (125, 155),
        "right_ankle": (70, 190), "left_ankle": (130, 190),
    }
    return np.array([places[name] for name in skeleton.JOINT_NAMES], dtype=np.float32)


def _black() -> np.ndarray:
    return np.zeros((SIZE, SIZE, 3), np.uint8)


def test_draw_skeleton_returns_a_drawn_copy() -> None:
    image = _black()
    drawn = viz.draw_skeleton(image, _pose())
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert not image.any(), "the input image was modified"
    assert drawn.any()


def test_left_limb_has_the_left_colour() -> None:
    knee, ankle = _pose()[[skeleton.joint_index("left_knee"), skeleton.joint_index("left_ankle")]]
    middle = np.round((knee + ankle) / 2).astype(int)
    drawn = viz.draw_skeleton(_black(), _pose(), thickness=5)
    assert tuple(drawn[middle[1], middle[0]]) == viz.SIDE_COLOURS["left"]
    right = np.round(_pose()[[skeleton.joint_index("right_knee"), skeleton.joint_index("right_ankle")]].mean(0))
    assert tuple(drawn[int(right[1]), int(right[0])]) == viz.SIDE_COLOURS["right"]


def test_low_visibility_joint_is_drawn_hollow() -> None:
    visibility = np.ones(skeleton.NUM_JOINTS, np.float32)
    hidden, shown = skeleton.joint_index("left_wrist"), skeleton.joint_index("right_wrist")
    visibility[hidden] = 0.1
    drawn = viz.draw_skeleton(_black(), _pose(), visibility, threshold=0.5, radius=6)
    x, y = _pose()[shown].astype(int)
    assert tuple(drawn[y, x]) == viz.SIDE_COLOURS["right"], "a visible joint is a filled disc"
    x, y = _pose()[hidden].astype(int)
    assert not drawn[y, x].any(), "an occluded joint is a ring: its centre shows the image"
    assert drawn[y, x + 6].any(), "…with the ring drawn around it"


def test_non_finite_keypoints_are_skipped() -> None:
    points = _pose()
    points[skeleton.joint_index("head_top")] = np.nan
    drawn = viz.draw_skeleton(_black(), points)
    assert drawn.shape == (SIZE, SIZE, 3)


def test_draw_skeleton_rejects_a_float_image() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        viz.draw_skeleton(np.zeros((SIZE, SIZE, 3), np.float32), _pose())


def test_overlay_heatmap_colours_only_where_the_map_is_high() -> None:
    image = np.full((64, 64, 3), 100, np.uint8)
    heatmap = np.zeros((32, 32), np.float32)
    heatmap[8:12, 8:12] = 1.0
    overlay = viz.overlay_heatmap(image, heatmap)
    assert overlay.shape == image.shape and overlay.dtype == np.uint8
    assert (overlay[60, 60] == 100).all()
    assert (overlay[20, 20] != 100).any()
    assert (image == 100).all()


def test_heatmap_grid_has_one_axis_per_joint() -> None:
    heatmaps = np.random.default_rng(0).random((skeleton.NUM_JOINTS, 24, 24)).astype(np.float32)
    figure = viz.heatmap_grid(heatmaps, title="test")
    assert len(figure.axes) == skeleton.NUM_JOINTS
    assert [ax.get_title().split("\n")[0] for ax in figure.axes] == list(skeleton.JOINT_NAMES)
    assert len(viz.heatmap_grid(heatmaps[:5], skeleton.JOINT_NAMES[:5], columns=3).axes) == 5
