"""ExerciseAnalysis end to end on synthetic keypoint streams, and every conf/exercise/*.yaml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from pose_lab import skeleton
from pose_lab.errors import PoseLabError
from pose_lab.exercise.analysis import ExerciseAnalysis
from pose_lab.exercise.counter import PHASES

CONF = Path(__file__).resolve().parents[2] / "conf/exercise"
FPS = 30.0


def side_squat(knee_angle: float, lean: float) -> np.ndarray:
    """(K, 2) side view: ankle fixed, shin and thigh 100 px, torso 120 px leaning ``lean`` degrees forward."""
    phi = np.radians((180 - knee_angle) / 2)
    at = {"ankle": np.array([300.0, 500.0])}
    at["knee"] = at["ankle"] + 100 * np.array([np.sin(phi), -np.cos(phi)])
    at["hip"] = at["knee"] + 100 * np.array([-np.sin(phi), -np.cos(phi)])
    at["shoulder"] = at["hip"] + 120 * np.array([np.sin(np.radians(lean)), -np.cos(np.radians(lean))])
    at["elbow"] = at["shoulder"] + [60.0, 10.0]
    at["wrist"] = at["elbow"] + [60.0, 0.0]
    keypoints = np.zeros((skeleton.NUM_JOINTS, 2))
    for joint, xy in at.items():
        for side in ("left", "right"):
            keypoints[skeleton.joint_index(f"{side}_{joint}")] = xy
    keypoints[skeleton.joint_index("neck")] = at["shoulder"] + [0.0, -15.0]
    keypoints[skeleton.joint_index("head_top")] = at["shoulder"] + [0.0, -45.0]
    return keypoints


def squat_session(bottoms: list[float], lean_at_bottom: float = 20.0) -> list[np.ndarray]:
    frames = [side_squat(175, 3)] * 30
    for bottom in bottoms:
        for s in np.linspace(0, 2 * np.pi, 60):
            depth = (1 - np.cos(s)) / 2
            frames.append(side_squat(175 - depth * (175 - bottom), 3 + depth * (lean_at_bottom - 3)))
        frames += [side_squat(175, 3)] * 15
    return frames


def visibility(near: str = "left") -> np.ndarray:
    vis = np.full(skeleton.NUM_JOINTS, 0.95)
    far = "right" if near == "left" else "left"
    for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        vis[skeleton.joint_index(f"{far}_{joint}")] = 0.7
    return vis


def analyse(cfg, frames: list[np.ndarray], resets: set[int] = frozenset()) -> tuple[ExerciseAnalysis, list]:
    analysis = ExerciseAnalysis(cfg, FPS)
    results = [analysis.update(i, i / FPS, kp, visibility(), reset=i in resets) for i, kp in enumerate(frames)]
    return analysis, results


def load(name: str):
    return OmegaConf.load(CONF / f"{name}.yaml")


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_exercise_config_builds_and_runs(path: Path) -> None:
    cfg = OmegaConf.load(path)
    analysis = ExerciseAnalysis(cfg, FPS)
    assert cfg.name == path.stem
    result = analysis.update(0, 0.0, side_squat(170, 5), visibility())
    assert result.phase in PHASES and result.reps == 0
    nobody = analysis.update(1, 1 / FPS, np.full((skeleton.NUM_JOINTS, 2), np.nan), visibility())
    assert np.isnan(nobody.primary_angle) and all(np.isnan(v) for v in nobody.angles.values())
    assert analysis.finish() == []


def test_squats_are_counted_with_feedback() -> None:
    analysis, results = analyse(load("squat"), squat_session([70, 130, 75], lean_at_bottom=60))
    reps = analysis.finish()
    assert len(reps) == 3 and results[-1].reps == 3
    assert [r.number for r in reps] == [1, 2, 3]
    assert sum(len(r.completed) for r in results) == 3
    assert reps[0].bottom_angle == pytest.approx(70, abs=2)
    assert any("deeper" in message for message in reps[1].feedback)  # 130 deg is not deep
    assert not any("deeper" in message for message in reps[0].feedback)
    assert all(any("torso leaned" in message for message in r.feedback) for r in reps)
    assert results[0].side == "left" and results[50].primary_angle < 170


def test_scene_cut_drops_the_rep_in_progress_and_nobody_frames_are_harmless() -> None:
    frames = squat_session([70, 70, 70])
    frames[200:210] = [np.full((skeleton.NUM_JOINTS, 2), np.nan)] * 10  # person lost after the third rep
    cut = 30 + 75 + 30  # in the middle of the second rep
    analysis, _ = analyse(load("squat"), frames, resets={cut})
    assert len(analysis.finish()) == 2


def test_a_knee_bend_without_the_hips_dropping_is_not_a_squat() -> None:
    frames = squat_session([70])
    standing = frames[0]
    lifted = []
    for keypoints in frames[30:90]:  # the near knee bends as much, with the hips up and the far leg standing
        moved = standing.copy()
        hip = skeleton.joint_index("left_hip")
        for joint in ("left_knee", "left_ankle"):
            moved[skeleton.joint_index(joint)] = keypoints[skeleton.joint_index(joint)] + standing[hip] - keypoints[hip]
        lifted.append(moved)
    analysis, _ = analyse(load("squat"), frames[:30] + lifted + frames[90:])
    assert analysis.finish() == []
    assert any("hip_drop" in why for _, why in analysis.counter.rejected)


def side_pushup(elbow_angle: float, body: float = 300.0, arm: float = 132.0) -> np.ndarray:
    """(K, 2) side view of a plank on the floor (y = 500): feet at x = 600, hands under the shoulders, upper arm
    and forearm ``arm / 2`` each bent to ``elbow_angle``, a straight body ``body`` px from ankle to shoulder
    (an adult's build: arm about 0.44 of that)."""
    height = arm * np.sin(np.radians(elbow_angle) / 2)  # of the shoulders above the hands
    ankle = np.array([600.0, 500.0])
    shoulder = ankle + [-np.sqrt(body**2 - height**2), -height]
    wrist = np.array([shoulder[0], 500.0])
    half = np.sqrt(max((arm / 2) ** 2 - (height / 2) ** 2, 0.0))
    elbow = (shoulder + wrist) / 2 + [half, 0.0]  # the elbow points back, towards the feet
    line = (shoulder - ankle) / body
    at = {"ankle": ankle, "knee": ankle + line * body / 4, "hip": ankle + line * body / 2, "shoulder": shoulder,
          "elbow": elbow, "wrist": wrist}
    keypoints = np.zeros((skeleton.NUM_JOINTS, 2))
    for joint, xy in at.items():
        for side in ("left", "right"):
            keypoints[skeleton.joint_index(f"{side}_{joint}")] = xy
    keypoints[skeleton.joint_index("neck")] = shoulder + line * 20
    keypoints[skeleton.joint_index("head_top")] = shoulder + line * 50
    return keypoints


def test_pushups_are_counted_on_the_body_lean_with_depth_feedback() -> None:
    frames = [side_pushup(178)] * 30
    for bottom in (105, 40, 60):  # a shallow one first: later, after deep ones, it would be too small to count
        frames += [side_pushup(178 - (1 - np.cos(s)) / 2 * (178 - bottom)) for s in np.linspace(0, 2 * np.pi, 45)]
        frames += [side_pushup(178)] * 10
    analysis, results = analyse(load("pushup"), frames)
    reps = analysis.finish()
    assert len(reps) == 3, analysis.counter.rejected
    assert all(result.gate for result in results)
    assert [any("go lower" in message for message in rep.feedback) for rep in reps] == [True, False, False]
    assert not any("hips" in message for rep in reps for message in rep.feedback)


def test_pushup_gate_rejects_upright_arm_bending_and_a_hip_hinge() -> None:
    frames = squat_session([])
    arm = []
    for s in np.linspace(0, 6 * np.pi, 240):  # three elbow bends while standing upright
        keypoints = side_squat(175, 3)
        elbow_angle = np.radians(170 - 50 * (1 - np.cos(s)))
        for side in ("left", "right"):
            elbow = keypoints[skeleton.joint_index(f"{side}_shoulder")] + [0.0, 60.0]
            keypoints[skeleton.joint_index(f"{side}_elbow")] = elbow
            keypoints[skeleton.joint_index(f"{side}_wrist")] = elbow + 60 * np.array(
                [np.sin(np.pi - elbow_angle), np.cos(np.pi - elbow_angle)])
        arm.append(keypoints)
    hinge = [side_squat(175, 3 + 87 * (1 - np.cos(s)) / 2) for s in np.linspace(0, 6 * np.pi, 240)]
    curl, results = analyse(load("bicep_curl"), frames + arm)
    assert len(curl.finish()) == 3 and min(r.primary_angle for r in results) < 80
    pushup, results = analyse(load("pushup"), frames + arm + hinge)
    assert max(r.angles["torso_lean"] for r in results) > 80  # the hinge turns the torso flat ...
    assert pushup.finish() == [] and not any(r.gate for r in results)  # ... but the body stays upright


def test_lunges_are_counted_on_the_knee_with_depth_feedback() -> None:
    # A side-view lunge seen from its front leg: the knee bends and the hips come down with it.
    analysis, _ = analyse(load("lunge"), squat_session([90, 125, 95], lean_at_bottom=10))
    reps = analysis.finish()
    assert len(reps) == 3 and reps[0].bottom_angle == pytest.approx(90, abs=2)
    assert [any("lunge deeper" in message for message in rep.feedback) for rep in reps] == [False, True, False]


def front_jack(arms: float) -> np.ndarray:
    """(K, 2) front view, torso upright, both arms raised `arms` degrees from hanging down (180 = overhead)."""
    keypoints = side_squat(175, 0)
    for side, outward in (("left", 1.0), ("right", -1.0)):
        shoulder = keypoints[skeleton.joint_index(f"{side}_shoulder")] + [outward * 40.0, 0.0]
        direction = np.array([outward * np.sin(np.radians(arms)), np.cos(np.radians(arms))])
        keypoints[skeleton.joint_index(f"{side}_shoulder")] = shoulder
        keypoints[skeleton.joint_index(f"{side}_hip")] += [outward * 25.0, 0.0]
        keypoints[skeleton.joint_index(f"{side}_elbow")] = shoulder + 60 * direction
        keypoints[skeleton.joint_index(f"{side}_wrist")] = shoulder + 120 * direction
    return keypoints


def test_jumping_jacks_are_counted_arms_up_first_with_height_feedback() -> None:
    frames = [front_jack(10)] * 30
    for top in (170, 175, 120, 172):  # the third jack's arms stop at shoulder height and a half
        frames += [front_jack(10 + (top - 10) * (1 - np.cos(s)) / 2) for s in np.linspace(0, 2 * np.pi, 24)]
        frames += [front_jack(10)] * 6
    analysis, results = analyse(load("jumping_jack"), frames)
    reps = analysis.finish()
    assert len(reps) == 4 and min(r.primary_angle for r in results) < 30  # arms down between jacks
    assert [any("arms higher" in message for message in rep.feedback) for rep in reps] == [False, False, True, False]


@pytest.mark.parametrize("change, message", [
    ({"primary_angle": "neck"}, "unknown angle 'neck'"),
    ({"counter": {"direction": "backwards"}}, "unknown rep direction"),
    ({"counter": {"min_rnage": 3}}, "counter settings"),
    ({"feedback": [{"metric": "wobble", "max": 1, "message": "x"}]}, "known metrics"),
    ({"gate": [{"angle": "torso", "max": 1}]}, "unknown angle 'torso'"),
    ({"rep_checks": [{"metric": "hip_drop"}]}, "min or a max"),
])
def test_config_mistakes_are_user_errors(change: dict, message: str) -> None:
    cfg = OmegaConf.merge(load("squat"), change)
    if "counter" in change:
        cfg.counter = change["counter"]
    with pytest.raises(PoseLabError, match=message):
        ExerciseAnalysis(cfg, FPS)


def test_the_analysis_and_its_outputs_import_without_torch() -> None:
    """An app that brings its own keypoints (a webcam loop with another model) uses the analysis and writes
    its records without paying for torch's import."""
    code = ("import sys, pose_lab.exercise.analysis, pose_lab.exercise.outputs; "
            "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
