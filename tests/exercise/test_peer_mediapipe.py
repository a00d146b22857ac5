"""The MediaPipe reference peer's pure helpers, loaded by path and checked without mediapipe installed.

The script runs in its own venv (.venv-peer), so it is loaded here from its file, not imported as part of
pose_lab; mediapipe is imported only inside its run function.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from pose_lab.skeleton import JOINT_NAMES

PEER_SCRIPT = Path(__file__).resolve().parents[2] / "pose_lab" / "exercise" / "peer_mediapipe.py"


def load_peer_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer_mediapipe_script", PEER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the defining module up in sys.modules while building the class.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


peer = load_peer_script()


def imported_modules(nodes: list[ast.stmt]) -> set[str]:
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module.split(".")[0])
    return names


def test_script_imports_nothing_of_pose_lab_and_mediapipe_only_lazily() -> None:
    tree = ast.parse(PEER_SCRIPT.read_text())
    everywhere = imported_modules(list(ast.walk(tree)))
    at_module_level = imported_modules(tree.body)
    assert not everywhere & {"torch", "pose_lab"}
    assert "mediapipe" in everywhere
    assert "mediapipe" not in at_module_level


def test_lsp_joint_order_is_pose_lab_skeleton() -> None:
    assert peer.LSP_JOINT_NAMES == JOINT_NAMES


def test_joint_angle_on_hand_computed_cases() -> None:
    vertex = np.array([1.0, 1.0])
    assert peer.joint_angle(np.array([2.0, 1.0]), vertex, np.array([1.0, 3.0])) == pytest.approx(90.0)
    assert peer.joint_angle(np.array([0.0, 0.0]), vertex, np.array([3.0, 3.0])) == pytest.approx(180.0)
    assert peer.joint_angle(np.array([2.0, 1.0]), vertex, np.array([0.0, 2.0])) == pytest.approx(135.0)


def test_squat_counter_counts_returns_to_the_top_only() -> None:
    rule = peer.EXERCISE_RULES["squat"]
    angles = np.array(
        [95, 120, 170]  # starts crouched: no rep until the top has been seen
        + [150, 110, 90, 70, 90, 130, 165]  # rep 1
        + [175, 120, 105, 120, 170]  # shallow dip above 100 deg: not a rep
        + [140, np.nan, 80, np.nan, 150, 161]  # rep 2 through frames without a pose
        + [99, 101, 99, 150, 159, 161]  # rep 3; jitter around a threshold counts once
        + [60, 80],  # ends at the bottom: not a rep
        dtype=np.float64,
    )
    assert peer.count_reps(angles, rule) == 3


def test_curl_counter_counts_when_the_arm_is_back_down() -> None:
    rule = peer.EXERCISE_RULES["bicep_curl"]
    counter = peer.FixedThresholdCounter(rule.extended_above, rule.flexed_below)
    counts = [counter.update(angle) for angle in (170, 90, 35, 30, 90, 165, 100, 38)]
    # The curl's top (35 deg) does not count; lowering the arm back past 160 does. The last curl is unfinished.
    assert counts == [0, 0, 0, 0, 0, 1, 1, 1]


def test_counter_rejects_thresholds_in_the_wrong_order() -> None:
    with pytest.raises(ValueError, match="flexed_below"):
        peer.FixedThresholdCounter(extended_above=90.0, flexed_below=160.0)


def fake_mediapipe_frame() -> tuple[np.ndarray, np.ndarray]:
    """33 distinct landmarks: landmark i at (i, 1000 + i), visibility i / 100; shoulders and ears placed by hand."""
    points = np.stack([np.arange(33.0), 1000.0 + np.arange(33.0)], axis=1)
    visibility = np.arange(33.0) / 100.0
    points[peer.landmark_index("left_shoulder")] = (40.0, 100.0)
    points[peer.landmark_index("right_shoulder")] = (60.0, 100.0)
    points[peer.landmark_index("left_ear")] = (48.0, 80.0)
    points[peer.landmark_index("right_ear")] = (52.0, 80.0)
    return points, visibility


def test_mediapipe_to_lsp_maps_limb_joints_by_name() -> None:
    points, visibility = fake_mediapipe_frame()
    keypoints, joint_visibility = peer.mediapipe_to_lsp(points, visibility)
    assert keypoints.shape == (14, 2) and joint_visibility.shape == (14,)
    for joint, name in enumerate(JOINT_NAMES):
        if name in ("neck", "head_top"):
            continue
        np.testing.assert_allclose(keypoints[joint], points[peer.landmark_index(name)])
        assert joint_visibility[joint] == pytest.approx(visibility[peer.landmark_index(name)])
    # Spot-check the person-centric sides against MediaPipe's numbering (right knee 26, left wrist 15).
    np.testing.assert_allclose(keypoints[JOINT_NAMES.index("right_knee")], (26.0, 1026.0))
    np.testing.assert_allclose(keypoints[JOINT_NAMES.index("left_wrist")], (15.0, 1015.0))


def test_mediapipe_to_lsp_derives_neck_and_head_top() -> None:
    points, visibility = fake_mediapipe_frame()
    keypoints, joint_visibility = peer.mediapipe_to_lsp(points, visibility)
    neck = JOINT_NAMES.index("neck")
    head_top = JOINT_NAMES.index("head_top")
    np.testing.assert_allclose(keypoints[neck], (50.0, 100.0))
    # Ears 20 px above the shoulders' midpoint -> head top a further 0.7 * 20 px up the same line.
    np.testing.assert_allclose(keypoints[head_top], (50.0, 80.0 - peer.HEAD_TOP_BEYOND_EARS * 20.0))
    shoulders = [peer.landmark_index("left_shoulder"), peer.landmark_index("right_shoulder")]
    assert joint_visibility[neck] == pytest.approx(visibility[shoulders].max())


def test_tutorial_angle_uses_the_better_seen_side() -> None:
    rule = peer.EXERCISE_RULES["squat"]
    points = np.zeros((33, 2))
    visibility = np.full(33, 0.2)
    # Left leg bent at 90 deg and well seen; right leg straight but barely seen.
    for name, xy in (("left_hip", (0, 0)), ("left_knee", (0, 10)), ("left_ankle", (10, 10))):
        points[peer.landmark_index(name)] = xy
        visibility[peer.landmark_index(name)] = 0.9
    for name, xy in (("right_hip", (0, 0)), ("right_knee", (0, 10)), ("right_ankle", (0, 20))):
        points[peer.landmark_index(name)] = xy
    assert peer.tutorial_angle(points, visibility, rule) == pytest.approx(90.0)


def test_missing_pose_is_nan_points_and_zero_visibility() -> None:
    points, visibility = peer.landmarks_as_arrays(None, 640, 480)
    assert points.shape == (33, 2) and np.isnan(points).all()
    assert visibility.shape == (33,) and not visibility.any()


def test_lsp_sequence_keeps_a_frame_without_pose_nan() -> None:
    found_points, found_visibility = fake_mediapipe_frame()
    missing_points, missing_visibility = peer.landmarks_as_arrays(None, 640, 480)
    keypoints, visibility = peer.lsp_sequence(np.stack([found_points, missing_points]),
                                              np.stack([found_visibility, missing_visibility]))
    assert keypoints.shape == (2, 14, 2) and visibility.shape == (2, 14) and keypoints.dtype == np.float32
    np.testing.assert_allclose(keypoints[0], peer.mediapipe_to_lsp(found_points, found_visibility)[0])
    assert np.isnan(keypoints[1]).all() and not visibility[1].any()


def test_image_list_skips_blank_lines_and_names_missing_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jpg", tmp_path / "b.jpg"
    first.touch()
    second.touch()
    listing = tmp_path / "list.txt"
    listing.write_text(f"{first}\n\n  {second}  \n")
    assert peer.read_image_list(listing) == [first, second]
    listing.write_text(f"{first}\n{tmp_path / 'gone.jpg'}\n")
    with pytest.raises(SystemExit, match="1 image.*gone.jpg"):
        peer.read_image_list(listing)
    listing.write_text("\n")
    with pytest.raises(SystemExit, match="lists no images"):
        peer.read_image_list(listing)


def test_timing_summary_on_hand_computed_times() -> None:
    summary = peer.timing_summary(np.array([10.0, 20.0, 30.0, 40.0, 100.0]))
    # p90 by linear interpolation: position 0.9 * 4 = 3.6 -> 40 + 0.6 * (100 - 40) = 76.
    assert summary == {"median_ms": 30.0, "p90_ms": pytest.approx(76.0), "mean_ms": 40.0}


def test_saved_image_keypoints_are_lsp_order_with_times(tmp_path: Path) -> None:
    points, visibility = fake_mediapipe_frame()
    missing_points, missing_visibility = peer.landmarks_as_arrays(None, 10, 10)
    out = tmp_path / "peer" / "out.npz"
    images = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    peer.save_image_keypoints(out, images, np.stack([points, missing_points]),
                              np.stack([visibility, missing_visibility]), np.array([12.5, 7.0]))
    stored = np.load(out)
    assert stored["keypoints"].shape == (2, 14, 2) and np.isnan(stored["keypoints"][1]).all()
    np.testing.assert_allclose(stored["keypoints"][0, JOINT_NAMES.index("right_knee")], (26.0, 1026.0))
    assert stored["milliseconds"].tolist() == [12.5, 7.0]
    assert stored["images"].tolist() == [str(image) for image in images]


@pytest.mark.parametrize("argv, message", [
    ([], "either a VIDEO or --images"),
    (["clip.mp4", "--images", "list.txt", "--output", "out.npz"], "either a VIDEO or --images"),
    (["clip.mp4"], "needs --exercise"),
    (["--images", "list.txt"], "needs --output"),
    (["--images", "list.txt", "--output", "out.npz", "--warmup-images", "-1"], "must be >= 0"),
])
def test_command_line_rejects_mixed_or_incomplete_modes(argv: list[str], message: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        peer.parse_args(argv)
    assert message in capsys.readouterr().err


def test_command_line_modes() -> None:
    video = peer.parse_args(["clip.mp4", "--exercise", "squat", "--warmup-frames", "3"])
    assert video.video == Path("clip.mp4") and video.images is None and video.warmup_frames == 3
    images = peer.parse_args(["--images", "list.txt", "--output", "out.npz", "--warmup-images", "2"])
    assert images.video is None and images.output == Path("out.npz") and images.warmup_images == 2
