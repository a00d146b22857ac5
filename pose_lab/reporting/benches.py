"""bench.json of `python -m pose_lab.bench`: reading and checking it, its records per variant for the variant
tables, and the report's sections on it: runtimes side by side, the comparison with MediaPipe, the bench machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pose_lab.errors import PoseLabError
from pose_lab.reporting.markdown import PCK_TITLES, heading, markdown_table
from pose_lab.reporting.runs import Group, VariantRow, load_json, split_label
from pose_lab.runtime import runtime_label

INFERENCE_PATHS: tuple[str, ...] = ("full", "regression")  # bench.json record paths
BENCH_RECORD_KEYS = frozenset({"variant", "path", "backend", "input_size", "params", "gflops", "cpu", "cuda"})
# What the MediaPipe section reads from bench.json's peer_comparison, and from each of its sides.
PEER_COMPARISON_KEYS = frozenset({"checkpoint", "split", "images", "image_numbers", "timed", "missing_pose",
                                  "pose_lab", "peer"})
PEER_SIDE_KEYS = frozenset({"median_ms", "p90_ms", "pck"})


def read_bench(path: Path, key: str = "bench") -> dict[str, Any]:
    """bench.json given as report setting `key`, checked for what the report reads."""
    if not path.is_file():
        raise PoseLabError(f"{key}={path}: no such file; run `python -m pose_lab.bench` (make bench) and pass "
                           f"its bench.json, or {key}=null")
    bench = load_json(path, "pass the bench.json written by `python -m pose_lab.bench`")
    if not isinstance(bench, dict) or not isinstance(bench.get("records"), list) \
            or not isinstance(bench.get("machine"), dict):
        raise PoseLabError(f"{key}={path}: not a pose_lab.bench file (needs 'machine' and a 'records' list)")
    for index, record in enumerate(bench["records"]):
        missing = BENCH_RECORD_KEYS - set(record) if isinstance(record, dict) else BENCH_RECORD_KEYS
        if missing:
            raise PoseLabError(f"{key}={path}: records[{index}] lacks {', '.join(sorted(missing))}; "
                               "re-run `python -m pose_lab.bench`")
    if "peer_comparison" in bench:
        check_peer_comparison(bench["peer_comparison"], path)
    return bench


def load_bench(path: Path | None, backend: str) -> dict[str, Any] | None:
    """bench.json, checked for what the report reads, with only the records of `backend` (bench.json holds
    one record per variant, path and backend); None when no bench is given."""
    if path is None:
        return None
    bench = read_bench(path)
    found = backends(bench)
    if backend not in found:
        raise PoseLabError(f"bench={path}: no records for backend={backend}; it has {', '.join(found) or 'none'}")
    return {**bench, "backend": backend}


def check_peer_comparison(comparison: Any, path: Path) -> None:
    """Raise a PoseLabError naming what bench.json's peer_comparison lacks for the MediaPipe section."""
    def lacking(part: Any, keys: frozenset[str], prefix: str = "") -> list[str]:
        return [prefix + key for key in sorted(keys - (set(part) if isinstance(part, dict) else set()))]

    missing = lacking(comparison, PEER_COMPARISON_KEYS)
    if not missing:
        missing = lacking(comparison["peer"], PEER_SIDE_KEYS | {"name"}, "peer.")
        for index, side in enumerate(comparison["pose_lab"]):
            missing += lacking(side, PEER_SIDE_KEYS | {"backend", "ratio_to_peer"}, f"pose_lab[{index}].")
    if missing:
        raise PoseLabError(f"bench={path}: peer_comparison lacks {', '.join(missing)}; re-run "
                           "`python -m pose_lab.bench ckpt=PATH peer_python=PYTHON`")


def backends(bench: dict[str, Any]) -> list[str]:
    """The runtimes bench.json timed, in a fixed order."""
    return sorted({str(record["backend"]) for record in bench["records"]})


def table_layout(bench: dict[str, Any]) -> bool | None:
    """The memory format (channels_last) of the torch records that the variant tables show: the bench's only one,
    or channels-last, the format pose_lab trains and predicts in, when it timed both."""
    formats = {record.get("channels_last") for record in bench["records"]} - {None}
    return (True in formats) if formats else None


def bench_records(bench: dict[str, Any] | None, variant: str, input_size: int,
                  backend: str | None = None) -> dict[str, dict[str, Any]]:
    """The bench records of `variant` at `input_size` for `backend` (default: the report's) in the table's memory
    format, by inference path (empty when not benched)."""
    if bench is None:
        return {}
    backend = backend or bench["backend"]
    layout = table_layout(bench)
    return {record["path"]: record for record in bench["records"]
            if record["variant"] == variant and record["input_size"] == input_size and record["backend"] == backend
            and record.get("channels_last") in (None, layout)}


def pair(records: dict[str, dict[str, Any]], cell: Callable[[dict[str, Any]], str]) -> str:
    """`full / regression` values of one bench column."""
    return " / ".join(cell(records[path]) if path in records else "n/a" for path in INFERENCE_PATHS)


def latency(section: dict[str, Any]) -> str:
    """A bench timing's median ms, or n/a where it was skipped."""
    return "n/a" if section.get("skipped") else f"{section['median_ms']:.1f}"


def runtime_table(bench: dict[str, Any], summary: dict[Group, list[VariantRow]]) -> list[str]:
    """CPU batch-1 latency of every runtime bench.json timed, per variant at the runs' input size, with each
    runtime's speed-up over the first (torch eager) on the regression path; empty with a single runtime."""
    runtimes = backends(bench)
    if len(runtimes) < 2:
        return []
    reference = runtimes[0] if "torch" not in runtimes else "torch"
    others = [runtime for runtime in runtimes if runtime != reference]
    header = ["variant", "input", *(f"{runtime} CPU ms (full / reg)" for runtime in [reference, *others]),
              *(f"{reference} ÷ {runtime} (reg)" for runtime in others)]
    body, shown = [], set()
    for (_, size, _), rows in summary.items():
        for row in rows:
            records = {runtime: bench_records(bench, row.variant, size, runtime) for runtime in runtimes}
            if not any(records.values()) or (row.variant, size) in shown:
                continue
            shown.add((row.variant, size))
            ratios = []
            for runtime in others:
                ours, theirs = records[reference].get("regression"), records[runtime].get("regression")
                usable = ours and theirs and not ours["cpu"].get("skipped") and not theirs["cpu"].get("skipped")
                ratios.append(f"{ours['cpu']['median_ms'] / theirs['cpu']['median_ms']:.2f}×" if usable else "n/a")
            body.append([f"`{row.variant}`", str(size),
                         *(pair(records[runtime], lambda r: latency(r["cpu"])) for runtime in [reference, *others]),
                         *ratios])
    if not body:
        return []
    return ["", "## Inference runtimes", "",
            f"The same exported inference paths timed in every runtime of `{bench.get('command')}`, side by side "
            "in that one run (batch 1, CPU, median ms); the ratio is how many times faster than "
            f"{reference} each runtime runs the regression path.", "", *markdown_table(header, body)]


def peer_section(bench: dict[str, Any], path: str, label: str | None = None) -> list[str]:
    """RESULTS.md's section on bench.json's peer_comparison: pose_lab's checkpoint and MediaPipe on the same LSP
    test images, time per image, pose_lab's time as a ratio of MediaPipe's, and both PCKs."""
    comparison = bench["peer_comparison"]
    peer = comparison["peer"]
    first, last = comparison["image_numbers"]

    def cells(side: dict[str, Any]) -> list[str]:
        return [f"{side['median_ms']:.2f}", f"{side['p90_ms']:.2f}",
                *(f"{side['pck'][protocol]['mean']:.1f}" for protocol in PCK_TITLES)]

    header = ["side", "backend", "median ms / image", "p90 ms / image", *PCK_TITLES.values(), "time ÷ MediaPipe's"]
    default = comparison.get("predict_default")  # bench.json files written before it have no mark

    def backend(side: dict[str, Any]) -> str:
        return f"{side['backend']} (`predict`'s default)" if side["backend"] == default else side["backend"]

    body = [[f"pose_lab `{Path(comparison['checkpoint']).name}`", backend(side), *cells(side),
             f"**{side['ratio_to_peer']:.3f}×**"] for side in comparison["pose_lab"]]
    body.append([peer["name"], "—", *cells(peer), "1×"])
    machine = bench.get("machine", {})
    version = f" {peer['version']}" if peer.get("version") else ""
    rounds = comparison.get("rounds", 1)  # bench.json files written before rounds timed each side in one pass
    interleaved = (f" in {rounds} interleaved rounds (round r: images r, r + {rounds}, …; every side in each "
                   "round, the order of the sides flipped every other round)") if rounds > 1 else ""
    return ["", heading("Speed and accuracy against MediaPipe on LSP", label), "",
            f"`{comparison['checkpoint']}` and MediaPipe{version} on the same {comparison['images']} "
            f"LSP test images (im{first:04d}–im{last:04d}, split `{split_label(comparison['split'])}`), "
            f"each image alone (batch 1), side by side in one run{interleaved}. pose_lab's time per image: "
            f"{comparison['timed']['pose_lab']}. MediaPipe's: {comparison['timed']['peer']} (in its own virtual "
            "environment). PCK over all 14 joints in original pixels, scored by pose_lab against joints.mat; "
            f"{comparison['missing_pose']} (MediaPipe found a pose in {peer.get('images_with_pose', 'n/a')} of "
            f"{comparison['images']} images). The last column is pose_lab's median time over MediaPipe's.", "",
            *markdown_table(header, body), "",
            f"Made by `{bench.get('command')}` on {bench.get('date')} ({path}); CPU {machine.get('cpu')} "
            f"({machine.get('cpu_count')} cores), pose_lab threads "
            f"{', '.join(str(side.get('threads')) for side in comparison['pose_lab'])}."]


def runtimes_section(bench: dict[str, Any], path: str, label: str | None = None) -> list[str]:
    """RESULTS.md's table of inference runtimes and memory formats (`python -m pose_lab.bench
    backend=[torch,torch-compile,onnxruntime] channels_last=[false,true]`): per network and input size, the CPU
    batch-1 latency of every path in each runtime, timed side by side in one run, against the first (the control)."""
    groups: dict[tuple[str, int], dict[str, dict[str, dict[str, Any]]]] = {}
    for record in bench["records"]:
        side = runtime_label(record)
        groups.setdefault((record["variant"], record["input_size"]), {}).setdefault(side, {})[record["path"]] = record
    settings = bench.get("settings", {})
    lines = ["", heading("Inference runtimes: one change at a time", label), "",
             f"`{bench.get('command')}` ({path}, {bench.get('date')}): every inference path of each network in "
             "each runtime and memory format, timed side by side in that one run at batch 1 on the CPU, median ms "
             f"of {settings.get('iters')} calls after {settings.get('warmup')} warm-up calls (torch.compile "
             f"compiles during warm-up, with backend `{settings.get('compile_backend', 'inductor')}`); in brackets "
             "how many times faster than the first row, the control. NCHW / NHWC: the torch network's and input's "
             "memory format (NHWC = channels_last); ONNX Runtime runs the exported path on NCHW input. "
             f"{cpu_line(bench)}, torch {bench['machine'].get('torch')}."]
    for (variant, size), sides in groups.items():
        paths = list(dict.fromkeys(path for records in sides.values() for path in records))
        control = next(iter(sides.values()))

        def cell(records: dict[str, dict[str, Any]], path: str) -> str:
            ours, reference = records.get(path), control.get(path)
            if ours is None or ours["cpu"].get("skipped"):
                return "n/a"
            if reference is None or reference["cpu"].get("skipped"):
                return f"{ours['cpu']['median_ms']:.2f}"
            return f"{ours['cpu']['median_ms']:.2f} ({reference['cpu']['median_ms'] / ours['cpu']['median_ms']:.2f}×)"

        body = [[side, *(cell(records, path) for path in paths)] for side, records in sides.items()]
        lines += ["", f"`{variant}`, input {size} px:", "",
                  *markdown_table(["runtime", *(f"{path} CPU ms" for path in paths)], body)]
    return lines


def cpu_line(bench: dict[str, Any]) -> str:
    """The bench CPU and torch's threads, as recorded in bench.json."""
    machine, settings = bench["machine"], bench.get("settings", {})
    return (f"CPU: {machine.get('cpu')} ({machine.get('cpu_count')} cores), torch threads "
            f"{settings.get('threads_used', machine.get('threads'))}")


def machine_lines(bench: dict[str, Any]) -> list[str]:
    """The bench machine and settings, as recorded in bench.json."""
    machine, settings = bench["machine"], bench.get("settings", {})
    return [
        f"- {cpu_line(bench)}",
        f"- GPU: {machine.get('cuda') or 'none'}"
        + (f" (CUDA {machine['cuda_version']})" if machine.get("cuda_version") else ""),
        f"- torch {machine.get('torch')}, Python {machine.get('python')}, {machine.get('platform')}",
        f"- bench settings: warmup {settings.get('warmup')}, iters {settings.get('iters')}, channels_last "
        f"{settings.get('channels_last')}, batch 1; date {bench.get('date')}; command `{bench.get('command')}`",
    ]


def gpu_reason(bench: dict[str, Any]) -> str | None:
    """Why bench.json has no GPU timings (the reasons of its skipped records), or None when none was skipped."""
    reasons = {r["cuda"].get("reason") for r in bench["records"] if r["cuda"].get("skipped")}
    return "; ".join(sorted(str(reason) for reason in reasons)) or None
