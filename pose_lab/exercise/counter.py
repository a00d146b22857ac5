"""Online repetition counting on an exercise's primary angle.

The counter follows the angle's turning points with hysteresis (a zigzag): a move away from the rest
position starts a rep once it exceeds a threshold, and the rep completes once the angle has come back by
``return_fraction`` of the way. The threshold is relative to the person's own range of motion, the median
of their last accepted reps times ``relative_range``, and never below the absolute floor ``min_range``: a
diagonal camera that makes every angle look shallow still counts, while a small knee bend after deep
squats does not.

``direction`` says which way a rep goes: ``flex_first`` (squat, push-up, curl: the angle is high at rest,
falls to the turning point and rises back) or ``extend_first`` (jumping jack: low at rest, high at the
turning point). Internally the signal is flipped so that rest is always its high side; ``Rep.top_angle``
is the angle at rest and ``Rep.bottom_angle`` the angle at the turning point.

Phases, per frame:

- ``unknown``: no rest position observed yet (start of the video, after :meth:`RepCounter.reset`, after a
  gap longer than ``max_gap``). A rest position is observed once the angle rises by the threshold into it
  or stays still (within half the threshold) for ``rest_time``, in frames that pass the exercise's posture
  gate. So a cycle already under way when the video starts is never counted.
- ``top``: at rest, waiting for the next move away. The rest level is the highest value of the last
  ``max_duration`` seconds held over ``_REST_SAMPLES`` consecutive measurements in the posture.
- ``down``: moving away from rest, or holding at the turning point (a long hold is fine).
- ``up``: on the way back; the rep completes, and is counted, when the return covers ``return_fraction``
  on ``_REST_SAMPLES`` measurements in a row (a one-frame outlier ends no rep).

A completed cycle is counted only when it also passes the rep-level checks: its frames mostly passed the
exercise's posture gate (``min_gate_fraction``), it lasted at least ``min_duration`` seconds, its movement
(the time away from rest minus the hold at the turning point) took at most ``max_duration`` seconds, and
``scipy.signal.find_peaks`` finds the turning point in the rep's window with a prominence of at least
``max(min_prominence, relative_prominence * the person's range of motion)``, and the caller's ``check``
(given the rep, it returns why it is not the exercise, or '') accepts it. Rejected cycles are kept in
:attr:`RepCounter.rejected` with the reason. A cycle unfinished when the video ends is dropped.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.signal import find_peaks

from pose_lab.errors import PoseLabError
from pose_lab.exercise.records import Rep

DIRECTIONS: tuple[str, ...] = ("flex_first", "extend_first")
PHASES: tuple[str, ...] = ("unknown", "top", "down", "up")

# A rep starts at the last frame within this fraction of its range from the rest extreme, and its hold at
# the turning point is the time within this fraction of the turning extreme.
_EDGE_FRACTION = 0.1
# Past this fraction of the way back the phase reads "up" rather than "down".
_UP_FRACTION = 0.2
# A rest level, and a rep's return to it, is a value held over this many consecutive measurements: a one- or
# two-frame outlier on the rest side sets no rest level (which no rep would come back to) and ends no rep.
_REST_SAMPLES = 3


class CounterStep(NamedTuple):
    """What the counter says after one frame."""

    phase: str  # one of PHASES
    count: int  # reps counted so far, this frame included
    completed: Rep | None  # the rep counted at this frame, if any


class _Sample(NamedTuple):
    index: int
    time: float
    value: float  # the primary angle, negated for extend_first so that rest is the high side
    gate: bool
    # The lowest value of this measurement and the _REST_SAMPLES - 1 before it, -inf if any of them failed the
    # posture gate: the level this sample holds as a rest position.
    held: float


class RepCounter:
    """Counts repetitions of one exercise from its primary angle, frame by frame (see the module docstring)."""

    def __init__(
        self,
        direction: str = "flex_first",
        min_range: float = 25.0,
        relative_range: float = 0.4,
        return_fraction: float = 0.75,
        min_prominence: float = 20.0,
        relative_prominence: float = 0.3,
        min_duration: float = 0.4,
        max_duration: float = 8.0,
        rest_time: float = 0.2,
        min_gate_fraction: float = 0.5,
        max_gap: float = 0.5,
        rom_history: int = 5,
        check: Callable[[Rep], str] | None = None,
    ) -> None:
        if direction not in DIRECTIONS:
            raise PoseLabError(f"unknown rep direction {direction!r}; use one of: {', '.join(DIRECTIONS)}")
        if not 0 < return_fraction <= 1:
            raise PoseLabError(f"return_fraction must be in (0, 1], got {return_fraction}")
        if min_range <= 0 or min_prominence < 0 or relative_range < 0 or relative_prominence < 0:
            raise PoseLabError("min_range must be > 0; min_prominence, relative_range and relative_prominence >= 0")
        if not 0 <= min_duration < max_duration:
            raise PoseLabError(f"need 0 <= min_duration < max_duration, got {min_duration} and {max_duration}")
        if rest_time <= 0 or max_gap <= 0 or rom_history < 1 or not 0 <= min_gate_fraction <= 1:
            raise PoseLabError("need rest_time > 0, max_gap > 0, rom_history >= 1 and min_gate_fraction in [0, 1]")
        self.direction = direction
        self.min_range = min_range
        self.relative_range = relative_range
        self.return_fraction = return_fraction
        self.min_prominence = min_prominence
        self.relative_prominence = relative_prominence
        self.min_duration = min_duration
        self.max_duration = max_duration
        self.rest_time = rest_time
        self.min_gate_fraction = min_gate_fraction
        self.max_gap = max_gap
        self.rom_history = rom_history
        self.check = check
        self._sign = 1.0 if direction == "flex_first" else -1.0
        self.reps: list[Rep] = []
        self.rejected: list[tuple[Rep, str]] = []
        self._last_time: float | None = None
        self.reset()

    # -- public API ---------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop the cycle in progress and wait for a new rest position (scene cut, person lost)."""
        self._state = "unknown"
        self._window: list[_Sample] = []  # unknown: recent samples; top: since the oldest candidate; down: the rep
        self._low = math.inf  # lowest value since the reset (unknown state only)
        self._top = math.nan  # the rest level the rep in progress left (down state only)
        self._recent: deque[float] = deque(maxlen=_REST_SAMPLES)  # the last values, -inf where the gate failed

    @property
    def count(self) -> int:
        return len(self.reps)

    @property
    def window_start(self) -> int | None:
        """Earliest frame index a future rep can include (callers may forget older frames); None if any."""
        return self._window[0].index if self._window else None

    def update(self, index: int, time: float, angle: float, gate: bool = True) -> CounterStep:
        """Feed one frame: its index, time (s), primary angle (deg, NaN when unmeasured) and posture gate."""
        if self._last_time is not None and time - self._last_time > self.max_gap:
            self.reset()
        if not math.isfinite(angle):
            return CounterStep(self._state, self.count, None)
        self._last_time = time
        value = self._sign * angle
        self._recent.append(value if gate else -math.inf)
        held = min(self._recent) if len(self._recent) == _REST_SAMPLES else -math.inf
        sample = _Sample(index, time, value, bool(gate), held)
        self._window.append(sample)
        completed = {"unknown": self._in_unknown, "top": self._in_top, "down": self._in_down}[self._state](sample)
        return CounterStep(self._phase(sample), self.count, completed)

    def finish(self) -> list[Rep]:
        """End of the video: drop an unfinished cycle and return every counted rep."""
        self.reset()
        return list(self.reps)

    # -- the zigzag -----------------------------------------------------------------------------------------
    def person_range(self) -> float | None:
        """The person's range of motion (deg): median of their last ``rom_history`` counted reps."""
        recent = [rep.range_of_motion for rep in self.reps[-self.rom_history :]]
        return float(np.median(recent)) if recent else None

    def threshold(self) -> float:
        """Degrees the angle must move to start (or to establish) a rep."""
        rom = self.person_range()
        return self.min_range if rom is None else max(self.min_range, self.relative_range * rom)

    def _phase(self, sample: _Sample) -> str:
        if self._state != "down":
            return self._state
        bottom = min(s.value for s in self._window)
        return "up" if sample.value - bottom >= _UP_FRACTION * (self._top - bottom) else "down"

    def _in_unknown(self, sample: _Sample) -> None:
        self._low = min(self._low, sample.value)
        threshold = self.threshold()
        if sample.gate and sample.value >= self._low + threshold:  # rose into a rest position
            self._state, self._window = "top", [sample]
            return
        recent = [s for s in self._window if s.time >= sample.time - self.rest_time]
        spans_rest = sample.time - self._window[0].time >= self.rest_time
        values = [s.value for s in recent]
        still = all(s.gate for s in recent) and max(values) - min(values) < threshold / 2
        if spans_rest and still:  # at rest long enough
            self._state, self._window = "top", recent
        else:
            self._window = recent
        return

    def _in_top(self, sample: _Sample) -> None:
        # The rest level is the highest value of the last max_duration seconds that was held for
        # _REST_SAMPLES measurements: a slow drift (a moving camera) moves the reference along instead of
        # turning into a rep. Only frames in the exercise's posture set it: a garbled pose (blur under a
        # title) would otherwise set a rest level no rep returns to. The rep's top, range of motion and return
        # target are that held level, not the raw value of the frame it starts from (which may be an outlier).
        self._window = [s for s in self._window if s.time >= sample.time - self.max_duration]
        top_at = max(range(len(self._window)), key=lambda i: self._window[i].held)
        top = self._window[top_at].held
        if sample.value <= top - self.threshold():
            self._state, self._window, self._top = "down", self._window[top_at:], top

    def _in_down(self, sample: _Sample) -> Rep | None:
        top = self._top
        bottom = min(s.value for s in self._window)
        returned = min(s.value for s in self._window[-_REST_SAMPLES:])
        if len(self._window) <= _REST_SAMPLES or returned < bottom + self.return_fraction * (top - bottom):
            return None
        rep, reason = self._judge(self._window, top)
        self._state, self._window = "top", [sample]
        if reason:
            self.rejected.append((rep, reason))
            return None
        self.reps.append(rep)
        return rep

    def _judge(self, window: list[_Sample], top: float) -> tuple[Rep, str]:
        """The rep this window (which left the rest level `top`) makes, and why it does not count ('' when it
        does)."""
        values = np.array([s.value for s in window])
        times = np.array([s.time for s in window])
        bottom_at = int(np.argmin(values))
        bottom = values[bottom_at]
        rom = top - bottom
        near_top = values[: bottom_at + 1] >= top - _EDGE_FRACTION * rom
        start_at = int(np.flatnonzero(near_top)[-1])
        near_bottom = np.flatnonzero(values <= bottom + _EDGE_FRACTION * rom)
        movement = (times[near_bottom[0]] - times[start_at]) + (times[-1] - times[near_bottom[-1]])
        rep = Rep(
            number=self.count + 1,
            start=window[start_at].index,
            bottom=window[bottom_at].index,
            end=window[-1].index,
            start_time=float(times[start_at]),
            end_time=float(times[-1]),
            range_of_motion=float(rom),
            top_angle=float(self._sign * top),
            bottom_angle=float(self._sign * bottom),
        )
        person = self.person_range()
        prominence = max(self.min_prominence, self.relative_prominence * person if person else 0.0)
        cycle = values[start_at:]
        _, found = find_peaks(-cycle, prominence=prominence)
        gate = np.mean([s.gate for s in window[start_at:]])
        if rep.duration < self.min_duration:
            return rep, f"too short: {rep.duration:.2f} s < {self.min_duration} s"
        if movement > self.max_duration:
            return rep, f"too slow: moved for {movement:.1f} s > {self.max_duration} s"
        if gate < self.min_gate_fraction:
            return rep, f"posture gate passed on {gate:.0%} of frames < {self.min_gate_fraction:.0%}"
        if len(found["prominences"]) == 0:
            return rep, f"no turning point with prominence >= {prominence:.1f} deg"
        return rep, self.check(rep) if self.check else ""
