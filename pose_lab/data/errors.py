"""The exception type for data problems a user can fix (wrong root, malformed joints.mat, bad images)."""

from __future__ import annotations

from pose_lab.errors import PoseLabError


class LSPDataError(PoseLabError):
    """A user-fixable problem with the LSP data; the message names the path and how to fix it."""
