"""User-fixable errors and how entry points report them.

Code that meets a problem the user can fix (a wrong data root, a malformed joints.mat, a foreign
checkpoint, a run folder that cannot be resumed) raises a `PoseLabError` naming the path and what to do.
Entry points print that message alone and exit non-zero: a traceback from deep inside scipy or torch
helps nobody fix a typo in a path. Finished work is never touched on the way out.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf.errors import MissingMandatoryValue

T = TypeVar("T")


class PoseLabError(Exception):
    """A problem with the user's input; the message says what is wrong and how to fix it."""


def exit_on_user_error(entry_point: Callable[..., T]) -> Callable[..., T]:
    """Wrap a command's main: user errors become one line on stderr and exit status 2."""

    @functools.wraps(entry_point)
    def wrapper(*args, **kwargs) -> T:
        try:
            return entry_point(*args, **kwargs)
        except MissingMandatoryValue as error:
            print(f"error: a required setting is missing: {error.full_key} (pass it as {error.full_key}=...)",
                  file=sys.stderr)
        except PoseLabError as error:
            print(f"error: {error}", file=sys.stderr)
        sys.exit(2)

    return wrapper
