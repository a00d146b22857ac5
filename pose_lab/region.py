"""The square part of an image that the network is shown: a plain value shared by inference, tracking and the
exercise records, kept apart from them so that reading or writing a record never imports torch."""

from __future__ import annotations

from typing import NamedTuple


class Region(NamedTuple):
    """A square part of an image, in its pixels, that the network is shown (see pose_lab.inference.prepare):
    top-left pixel edge (x0, y0) and side, turned by `rotation` degrees about its centre so that a tilted person
    stands upright."""

    x0: float
    y0: float
    side: float
    rotation: float = 0.0
