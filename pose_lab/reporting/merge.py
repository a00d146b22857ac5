"""`merge=true`: an existing RESULTS.md updated by a new report, section by section; the closing lists (failed
runs, commands) gain the new lines."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from pose_lab.rerun import read_override_value

# Sections that an update merges line by line instead of replacing: their lists accumulate every input's lines.
MERGED_SECTIONS: tuple[str, ...] = ("Missing or failed runs", "How these numbers were made")
# What "Missing or failed runs" says when nothing is missing: an update that has no problem to add keeps the old.
NOTHING_MISSING = "None: every run folder has its"


def split_sections(markdown: str) -> tuple[list[str], dict[str, list[str]]]:
    """The lines before the first `## ` heading, and each `## ` section's lines by title (in order)."""
    preamble: list[str] = []
    sections: dict[str, list[str]] = {}
    current = preamble
    for line in markdown.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:], [])
        else:
            current.append(line)
    return preamble, sections


def _blocks(lines: list[str]) -> dict[str, list[str]]:
    """A closing section's lines as blocks: each line that is not a list item heads the list items after it
    ("Report:" and its commands); list items before any heading fall under ""."""
    blocks: dict[str, list[str]] = {}
    head = ""
    for line in lines:
        if not line.strip():
            continue
        if line.startswith("- "):
            blocks.setdefault(head, []).append(line)
        else:
            head = line
            blocks.setdefault(head, [])
    return blocks


def _merged_lines(old: list[str], new: list[str]) -> list[str]:
    """Old's blocks (see _blocks) with new's list items added to the block of the same heading, and new's
    other blocks after them."""
    blocks = _blocks(old)
    for head, items in _blocks(new).items():
        blocks[head] = blocks.get(head, []) + [item for item in items if item not in blocks.get(head, [])]
    lines = [""]
    for head, items in blocks.items():
        lines += [*([head] if head else []), *([""] if head and items else []), *items, ""]
    return lines


# The preamble's line naming the sweeps merged in after the report was made.
MERGED_PREFIX = "Merged into this report since (`merge=true`): "
MERGED_SUFFIX = "; each merged table gives its own training budget, and the last section lists every command."


# The inputs of a report command; a list value (sweep=[A,B]) names several folders.
REPORT_INPUTS: tuple[str, ...] = ("sweep", "levers", "bench", "peer_bench", "exercise_bench", "evaluations",
                                  "runtimes")
REPORT_PREFIX = "- `python -m pose_lab.report "


def _report_inputs(line: str) -> tuple[str | None, dict[str, set[str]]] | None:
    """A closing-list line's report command as (label, {input: folders}), or None for other lines."""
    if not line.startswith(REPORT_PREFIX):
        return None
    words = dict(word.split("=", 1) for word in shlex.split(line[len("- `"):].rstrip("`")) if "=" in word)
    inputs = {}
    for key in REPORT_INPUTS:
        value = words.get(key, "null")
        if value != "null":
            inputs[key] = set(value.strip("[]").split(",")) if value.startswith("[") else {value}
    label = words.get("label")
    return (None if label is None else str(read_override_value(label))), inputs


def _superseded(old_line: str, new_commands: Sequence[tuple[str | None, dict[str, set[str]]]]) -> bool:
    """Whether a new report command (as _report_inputs gives it) of the same label reads every input old_line's
    command read: it then remakes all the sections that command made, so old_line would only repeat part of it."""
    old = _report_inputs(old_line)
    if old is None:
        return False
    label, inputs = old
    # A command whose inputs are not known here is kept: nothing shows that a new one remakes its sections.
    return bool(inputs) and any(new_label == label and all(folders <= new_inputs.get(key, set()) for key, folders in inputs.items())
               for new_label, new_inputs in new_commands)


def merge_report(old: str, new: str, sweep_dirs: Sequence[Path] = ()) -> str:
    """`old` RESULTS.md updated by `new`: every section of `new` replaces the one of the same title in `old`, or
    comes before old's closing sections when `old` has none; the closing sections (MERGED_SECTIONS) keep old's
    lines and gain new's, less old report commands that a new one supersedes (_superseded). The preamble stays
    old's, with a line naming the merged sweep folders it lacks."""
    preamble, sections = split_sections(old)
    unnamed = [f"`{folder}`" for folder in sweep_dirs if f"`{folder}`" not in "\n".join(preamble)]
    if unnamed:
        merged = next((index for index, line in enumerate(preamble) if line.startswith(MERGED_PREFIX)), None)
        if merged is None:
            while preamble and not preamble[-1].strip():
                preamble = preamble[:-1]
            preamble += ["", MERGED_PREFIX + ", ".join(unnamed) + MERGED_SUFFIX, ""]
        else:
            named = preamble[merged][len(MERGED_PREFIX):-len(MERGED_SUFFIX)]
            preamble[merged] = MERGED_PREFIX + ", ".join([named, *unnamed]) + MERGED_SUFFIX
    _, updates = split_sections(new)
    closing = {title: sections.pop(title) for title in MERGED_SECTIONS if title in sections}
    for title, lines in updates.items():
        if title not in MERGED_SECTIONS:
            sections[title] = lines
    for title in MERGED_SECTIONS:
        old_lines, new_lines = closing.get(title, []), updates.get(title, [])
        if title == "Missing or failed runs":  # "None: ..." only while neither side lists a problem
            if any(line.startswith(NOTHING_MISSING) for line in new_lines):
                new_lines = [] if old_lines else new_lines
            elif new_lines:
                old_lines = [line for line in old_lines if not line.startswith(NOTHING_MISSING)]
        else:
            new_commands = [command for command in map(_report_inputs, new_lines) if command is not None]
            old_lines = [line for line in old_lines if not _superseded(line, new_commands)]
        closing[title] = _merged_lines(old_lines, new_lines)
    body = [line for title, lines in {**sections, **closing}.items() for line in (f"## {title}", *lines)]
    return "\n".join([*preamble, *body]).rstrip("\n") + "\n"
