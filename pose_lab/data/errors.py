"""The one exception type for data problems a user can fix (wrong root, malformed joints.mat, bad images).

Code that meets such a problem raises `LSPDataError` with the offending path and what to do about it, so
entry points can show the message as is instead of a traceback from deep inside scipy or OpenCV.
"""

from __future__ import annotations


class LSPDataError(Exception):
    """A user-fixable problem with the LSP data; the message names the path and how to fix it."""
