"""The person tracker: when a pose counts as found, and the region it sets for the next frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from test_pipeline import HEIGHT, WIDTH, squat_pose

from pose_lab import skeleton
from pose_lab.data.lsp import JOINTS_FILE, load_images, read_joints
from pose_lab.data.splits import split_numbers
from pose_lab.data.geometry import apply_affine, region_matrix, rotation_matrix
from pose_lab.exercise.tracking import PersonTracker, TrackingSettings, body_extent

CONF = Path(__file__).resolve().parents[2] / "conf" / "exercise_video.yaml"
ALL = np.ones(skeleton.NUM_JOINTS, bool)


def _tracker(**settings: object) -> PersonTracker:
    """A tracker with conf/exercise_video.yaml's tracking settings, margin 0.25 unless given."""
    return PersonTracker(TrackingSettings(**{**OmegaConf.load(CONF).tracking, "margin": 0.25, **settings}))


def _turned(pose: np.ndarray, degrees: float, about: tuple[float, float] = (160.0, 120.0)) -> np.ndarray:
    """The pose turned by `degrees` about a point (clockwise on screen)."""
    return ((pose - about) @ rotation_matrix(degrees).T + about).astype(np.float32)


def _region_centre(tracker: PersonTracker) -> np.ndarray:
    x0, y0, side, _ = tracker.region
    return np.array([x0 + side / 2, y0 + side / 2])


def test_a_pose_is_accepted_with_enough_found_joints_spread_out() -> None:
    tracker = _tracker()
    pose = squat_pose(170.0)
    assert tracker.accepts(pose, ALL, (WIDTH, HEIGHT))
    tracker.follow(pose, ALL)
    collapsed = np.repeat(pose[:1], 14, axis=0) + np.random.default_rng(0).normal(0, 1, (14, 2))
    assert not tracker.accepts(collapsed, ALL, (WIDTH, HEIGHT)) and tracker.region is None
    assert tracker.accepts(pose, np.arange(14) < 8, (WIDTH, HEIGHT))
    tracker.follow(pose, ALL)
    assert not tracker.accepts(pose, np.arange(14) < 7, (WIDTH, HEIGHT)) and tracker.region is None


def test_the_region_is_the_body_square_grown_by_the_margin() -> None:
    tracker = _tracker()
    pose = squat_pose(170.0)
    tracker.follow(pose, ALL)
    centre, extent = body_extent(pose, ALL)
    assert tracker.region.side == pytest.approx(1.5 * extent)
    assert _region_centre(tracker) == pytest.approx(centre)
    assert extent >= float(np.ptp(pose, axis=0).max())


def test_the_body_circle_keeps_joints_the_network_missed_in_the_region() -> None:
    """Standing, ankles not found (say, put on a nearby object): the circle about the hips through the head
    still reaches the feet, so the next region shows them and the network can find them again."""
    tracker = _tracker(margin=OmegaConf.load(CONF).tracking.margin)
    pose = squat_pose(175.0)
    found = ALL.copy()
    ankles = [skeleton.joint_index("left_ankle"), skeleton.joint_index("right_ankle")]
    found[ankles] = False
    tracker.follow(pose, found)
    x0, y0, side, _ = tracker.region
    feet = pose[ankles]
    assert (feet[:, 1] <= y0 + side + 1.0).all(), "the feet fell out of the next region"


@pytest.mark.parametrize(("tilt", "turn"), [(0.0, 0.0), (20.0, 0.0), (-90.0, 90.0), (90.0, 270.0), (180.0, 90.0)])
def test_a_lying_body_is_turned_upright_by_quarter_turns(tilt: float, turn: float) -> None:
    """A plank (head to one side) is turned a quarter so the head is above the hips in the network's input; a
    small lean is left alone. Upside down is reached one quarter at a time, never in one step."""
    tracker = _tracker(turn_frames=1)
    pose = _turned(squat_pose(175.0), tilt)
    tracker.follow(pose, ALL)
    assert tracker.region.rotation == turn
    matrix = region_matrix(tracker.region.x0, tracker.region.y0, tracker.region.side, 192, tracker.region.rotation)
    shown = apply_affine(pose.astype(np.float64), matrix)
    inside = (shown >= -0.5) & (shown <= 191.5)
    assert inside.all(), "a joint fell outside the turned region"
    if turn in (0.0, (-tilt) % 360):
        head, hips = shown[skeleton.joint_index("head_top")], shown[[2, 3]].mean(axis=0)
        assert head[1] < hips[1] - 30, "the head is not above the hips in the input"


def test_the_quarter_turn_has_hysteresis() -> None:
    tracker = _tracker(turn_frames=1)
    standing = squat_pose(175.0)
    tracker.follow(_turned(standing, -55.0), ALL)  # past halfway, not past the hysteresis
    assert tracker.region.rotation == 0.0
    tracker.follow(_turned(standing, -72.0), ALL)
    assert tracker.region.rotation == 90.0
    tracker.follow(_turned(standing, -40.0), ALL)  # back within 45 + 15 degrees of the quarter turn
    assert tracker.region.rotation == 90.0


def test_the_region_turns_only_for_a_tilt_that_lasts_turn_frames() -> None:
    """A wrong pose that looks lying down for a few frames (on the real goblet squat a checkpoint once put the
    ankles above the knees at the bottom) leaves a tracked region upright; a plank held for turn_frames frames
    turns it. Votes for the other direction, or an upright frame, start the count again."""
    tracker = _tracker(turn_frames=4)
    standing, lying = squat_pose(175.0), _turned(squat_pose(175.0), -90.0)
    for pose in [standing, lying, lying, lying, standing, lying, lying, lying]:
        tracker.follow(pose, ALL)
        assert tracker.region.rotation == 0.0
    tracker.follow(lying, ALL)
    assert tracker.region.rotation == 90.0
    upside_down = _turned(squat_pose(175.0), 180.0)
    # From the turned region, standing asks for a turn back and upside down for a turn on: never 4 alike.
    for pose in [standing, standing, standing, upside_down, standing, standing, standing]:
        tracker.follow(pose, ALL)
        assert tracker.region.rotation == 90.0
    tracker.reset()  # back to the whole frame: no tracked turn to keep, so a lying pose found there turns at once
    tracker.follow(lying, ALL)
    assert tracker.region.rotation == 90.0


def test_upright_off_never_turns() -> None:
    tracker = _tracker(upright=False)
    tracker.follow(_turned(squat_pose(175.0), -90.0), ALL)
    assert tracker.region.rotation == 0.0


def test_the_margin_frames_a_person_as_lsp_training_images_do(lsp_root: Path) -> None:
    """conf/exercise_video.yaml's tracking.margin makes a tracked person fill the network's input as LSP's
    training images fill it: the body extent over the image's longer side, at the median."""
    joints = read_joints(lsp_root / JOINTS_FILE)
    numbers = split_numbers("standard", "train", len(joints))
    images = load_images(lsp_root, numbers)
    fill = [body_extent(joints.keypoints[number - 1], ALL)[1] / max(image.shape[:2])
            for number, image in zip(numbers, images, strict=True)]
    margin = OmegaConf.load(CONF).tracking.margin
    assert 1 / (1 + 2 * margin) == pytest.approx(float(np.median(fill)), abs=0.02)


def test_a_body_that_shrinks_to_part_of_itself_is_lost() -> None:
    """A region that followed a wrong pose onto the legs sees only legs, and their pose fits it: the body's
    size against its recent size breaks that loop (the real goblet squat once stayed locked for five seconds).
    A squat's own change of size, spread over frames, is followed."""
    tracker = _tracker(min_size_ratio=0.5, size_memory_frames=5)
    standing = squat_pose(175.0)
    for _ in range(5):
        assert tracker.accepts(standing, ALL, (WIDTH, HEIGHT))
        tracker.follow(standing, ALL)
    for angle in np.linspace(175.0, 80.0, 20):  # down into a deep squat over 20 frames
        assert tracker.accepts(squat_pose(float(angle)), ALL, (WIDTH, HEIGHT))
        tracker.follow(squat_pose(float(angle)), ALL)
    centre = standing.mean(axis=0)
    legs_only = (centre + 0.3 * (standing - centre)).astype(np.float32)  # the same joints crammed in a third
    assert not tracker.accepts(legs_only, ALL, (WIDTH, HEIGHT)) and tracker.region is None
    assert tracker.accepts(legs_only, ALL, (WIDTH, HEIGHT)), "after the reset the whole frame decides anew"
