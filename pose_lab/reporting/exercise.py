"""The exercise analytics section: exercise_bench.json of `python -m pose_lab.exercise.bench`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pose_lab.errors import PoseLabError
from pose_lab.reporting.markdown import heading, markdown_table
from pose_lab.reporting.runs import load_json


def load_exercise_bench(path: Path) -> dict[str, Any]:
    """exercise_bench.json of `python -m pose_lab.exercise.bench`, checked for what the report reads."""
    if not path.is_file():
        raise PoseLabError(f"exercise_bench={path}: no such file; run `python -m pose_lab.exercise.bench` and pass "
                           "its exercise_bench.json, or exercise_bench=null")
    bench = load_json(path, "pass the exercise_bench.json written by `python -m pose_lab.exercise.bench`")
    if not isinstance(bench, dict) or not isinstance(bench.get("clips"), list) or "overall" not in bench:
        raise PoseLabError(f"exercise_bench={path}: not a pose_lab.exercise.bench file (needs 'clips' and "
                           "'overall')")
    return bench


def _perturbation(run: dict[str, Any]) -> str:
    """A perturbed pass by its one change: "start +2" (frames skipped) or "×0.75" (frames resized)."""
    return f"start +{run['start_frame']}" if run["start_frame"] else f"×{run['scale']:g}"


def exercise_section(bench: dict[str, Any], path: str, label: str | None = None) -> list[str]:
    """RESULTS.md's exercise analytics section: counts against the hand counts and frames/s, side by side."""
    def count(side: dict[str, Any] | None) -> str:
        if side is None:
            return "n/a"
        return f"{side['reps']} {'✓' if side['exact'] else ('~' if side['acceptable'] else '✗')}"

    def speed(side: dict[str, Any] | None) -> str:
        return "n/a" if side is None else f"{side['fps']:.1f}"

    def at_turns(turns: dict[str, Any] | None) -> str:
        return "n/a" if turns is None else f"{turns['matched']} of {turns['noted']} (+{turns['elsewhere']})"

    def agreement(clip: dict[str, Any]) -> str:
        value = clip.get("keypoint_agreement_with_peer")
        return "n/a" if value is None else f"{100 * value:.1f}%"

    def perturbed(clip: dict[str, Any]) -> str:
        passes = clip.get("pose_lab_perturbed") or []
        wrong = [f"{_perturbation(run)}: {run['reps']}" for run in passes if not run["exact"]]
        return "n/a" if not passes else (f"{len(passes) - len(wrong)} of {len(passes)} exact"
                                         + (f" ({', '.join(wrong)})" if wrong else ""))

    header = ["clip", "exercise", "hand count (+ partial)", "pose_lab reps", "pose_lab reps at noted turns",
              "pose_lab counts when perturbed", "peer reps", "pose_lab counter on peer keypoints",
              "keypoints within 0.2 torso of peer's", "pose_lab frames/s", "peer frames/s"]
    body = [[f"`{clip['clip']}`", clip["exercise"], f"{clip['expected']['reps']} (+{clip['expected']['partial']})",
             count(clip["pose_lab"]), at_turns(clip["pose_lab"].get("turns")), perturbed(clip),
             count(clip["peer"]),
             str(clip.get("pose_lab_counter_on_peer_keypoints", "n/a"))
             + (f" ({at_turns(clip['pose_lab_counter_on_peer_keypoints_turns'])} at noted turns)"
                if "pose_lab_counter_on_peer_keypoints_turns" in clip else ""),
             agreement(clip), speed(clip["pose_lab"]), speed(clip["peer"])] for clip in bench["clips"]]
    overall = bench["overall"]
    ours, theirs = overall.get("pose_lab"), overall.get("peer")
    lines = ["", heading("Exercise analytics on real clips", label), "",
             "Repetitions counted on the real clips against their hand counts (✓ exact, ~ within the partial reps, "
             "✗ wrong), and end-to-end frames/s (decode → keypoints → smoothing → angles → counting; median of "
             f"{bench['repeats']} passes per clip, the two sides alternating), side by side in one run. Peer: "
             f"{bench.get('peer') or 'not run'}. `pose_lab reps at noted turns`: of the turning points the clips' "
             "README notes by frame (squat and push-up bottoms, curl tops), how many a counted rep turns at, and in "
             "brackets how many counted reps turn elsewhere: a right count made of wrong reps shows here. "
             "`pose_lab counts when perturbed`: pose_lab's count again with the clip started a few frames late, "
             "or every frame resized, one change per pass, and the counts that were not exact: a trim or another "
             "camera makes such changes, so an exact count that one of them breaks was luck. "
             "`pose_lab counter on peer keypoints` runs pose_lab's counting on "
             "the peer's keypoints instead of pose_lab's network: it separates counting errors from keypoint "
             "errors. `keypoints within 0.2 torso of peer's` is PCK@0.2 of pose_lab's smoothed keypoints with the "
             "peer's standing in for the truth (the peer's visible limb joints, frames where it found the torso; "
             "frames where pose_lab found nobody count as misses): how far apart the two keypoint streams are.",
             "", *markdown_table(header, body)]
    if ours:
        lines += ["", f"Overall: pose_lab {ours['fps']:.1f} frames/s, {ours['exact_clips']} of {ours['clips']} clips "
                      "counted exactly"
                  + (f"; peer {theirs['fps']:.1f} frames/s, {theirs['exact_clips']} of {theirs['clips']} exact; "
                     f"pose_lab runs at **{overall['speed_ratio']:.2f}×** the peer's speed." if theirs else ".")]
    stability = overall.get("pose_lab_perturbed")
    if stability and stability["passes"]:
        lines += ["", f"Perturbed passes: {stability['exact']} of {stability['passes']} counted exactly."]
    # Only clips whose peer keypoints were counted can tell keypoint errors from counting errors.
    missed = [clip for clip in bench["clips"]
              if not clip["pose_lab"]["exact"] and clip.get("pose_lab_counter_on_peer_keypoints") is not None]
    diagnosed = [clip for clip in missed if clip["pose_lab_counter_on_peer_keypoints"] == clip["expected"]["reps"]]
    if missed and len(diagnosed) == len(missed):
        lines += ["", f"On each of the {len(missed)} clip(s) pose_lab miscounts, its own counter counts the peer's "
                      "keypoints exactly: the keypoints are what fails, not the counting. The fix is a keypoint model "
                      "that holds up on exercise video (the accuracy push of issue 9: longer training, scale "
                      "augmentation for people far from the camera), with the counting left as it is."]
    elif missed:
        lines += ["", "Clips where pose_lab's counter is also wrong on the peer's keypoints: "
                      + ", ".join(f"`{clip['clip']}`" for clip in missed if clip not in diagnosed) + "."]
    pipeline = bench.get("pipeline", {})
    machine = bench.get("machine", {})
    lines += ["", f"Made by `{bench.get('command')}` on {bench.get('date')} ({path}): pose_lab backend "
                  f"{pipeline.get('backend')}, checkpoint `{pipeline.get('checkpoint', 'not recorded')}`, "
                  f"{pipeline.get('keypoints')} keypoints, {pipeline.get('threads')} "
                  f"threads; CPU {machine.get('cpu')} ({machine.get('cpu_count')} cores)."]
    return lines
