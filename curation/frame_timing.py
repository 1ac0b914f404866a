"""Presentation order and times of decoded frames, from their timestamps (no PyAV here).

A decoder hands frames over with the timestamps their packets carried. Usually these
increase, but MPEG-4 Part 2 AVIs with packed B-frames (DivX/Xvid) and some remuxes deliver
them out of order (1, 2, 3, 5, 4, ...). `PresentationOrder` puts frames back in order with a
small reorder buffer keyed on the timestamps and keeps every frame: a frame's index is its
ordinal in presentation order and its time in seconds comes from its own timestamp, never
from index / average rate (wrong for variable-frame-rate video, e.g. phone footage).

`TimeGrid` sub-samples by time (about `rate` frames per second of the video, whatever its
frame rate does), and `hold_ticks` says how many ticks of a constant output rate a frame
covers when a clip is resampled onto a constant rate.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# Frames held back to restore presentation order: packed B-frames displace a frame by one or
# two places. A frame that arrives later than this (`late`) doubles the depth, up to the cap.
REORDER_DEPTH = 8
MAX_REORDER_DEPTH = 64


@dataclass(frozen=True, slots=True)
class TimedFrame(Generic[T]):
    """One frame in presentation order.

    Attributes:
        index: presentation ordinal (0, 1, 2, ... with no gaps).
        time_s: presentation time from the timestamp, relative to the first frame.
        duration_s: time until the next frame; for the last frame, the interval before it.
        payload: what the caller pushed (a decoded frame).
    """

    index: int
    time_s: float
    duration_s: float
    payload: T


@dataclass(order=True)
class _Pending:
    key: int
    seq: int
    payload: Any = field(compare=False)


class PresentationOrder(Generic[T]):
    """Reorder decoded frames by timestamp; every pushed frame comes out exactly once.

    Args:
        time_base: seconds per timestamp tick.
        nominal_rate: frames per second to assume for a frame that has no timestamp at all
            (it is placed one nominal interval after the previous one) and for the duration
            of a video's only frame.
        depth: frames held back before the earliest one is released.
    """

    def __init__(self, time_base: Fraction, nominal_rate: Fraction, depth: int = REORDER_DEPTH) -> None:
        self.time_base = Fraction(time_base)
        self.nominal_rate = Fraction(nominal_rate)
        self.depth = depth
        self.late = 0  # frames that arrived after a later frame had been released
        self._heap: list[_Pending] = []
        self._seq = 0
        self._origin: int | None = None
        self._last_key: int | None = None  # last pushed key, to place frames without one
        self._released_key: int | None = None
        self._released: tuple[int, float, Any] | None = None  # held until its successor's time is known
        self._count = 0
        self._last_interval: float | None = None
        ticks = self.nominal_rate and 1 / (self.nominal_rate * self.time_base)
        self._ticks_per_frame = max(1, int(round(ticks))) if ticks else 1

    def _seconds(self, key: int) -> float:
        return float((key - (self._origin or 0)) * self.time_base)

    def push(self, pts: int | None, payload: T) -> list[TimedFrame[T]]:
        """Add a decoded frame; returns the frames now known to be next in presentation order.

        Args:
            pts: the frame's timestamp (the packet's dts when the decoder gave no pts), or None.
        """
        if pts is None:
            pts = 0 if self._last_key is None else self._last_key + self._ticks_per_frame
        self._last_key = pts
        if self._released_key is not None and pts < self._released_key:
            # Too late to put in its place: shown right after the last released frame, and
            # the buffer deepens so that the rest of the stream fits.
            self.late += 1
            self.depth = min(MAX_REORDER_DEPTH, self.depth * 2)
            pts = self._released_key
        heapq.heappush(self._heap, _Pending(pts, self._seq, payload))
        self._seq += 1
        out: list[TimedFrame[T]] = []
        while len(self._heap) > self.depth:
            out.extend(self._release())
        return out

    def flush(self) -> list[TimedFrame[T]]:
        """Release everything held (end of stream)."""
        out: list[TimedFrame[T]] = []
        while self._heap:
            out.extend(self._release())
        if self._released is not None:
            index, time_s, payload = self._released
            if self._last_interval is not None:
                duration = self._last_interval
            else:
                duration = float(1 / self.nominal_rate) if self.nominal_rate else 0.0
            out.append(TimedFrame(index, time_s, duration, payload))
            self._released = None
        return out

    def _release(self) -> list[TimedFrame[T]]:
        item = heapq.heappop(self._heap)
        if self._origin is None:
            self._origin = item.key
        self._released_key = item.key
        time_s = self._seconds(item.key)
        out: list[TimedFrame[T]] = []
        if self._released is not None:
            index, prev_time, payload = self._released
            self._last_interval = time_s - prev_time
            out.append(TimedFrame(index, prev_time, self._last_interval, payload))
        self._released = (self._count, time_s, item.payload)
        self._count += 1
        return out


class TimeGrid:
    """Keep about `rate` frames per second of video time (all frames when `rate` is None).

    The first frame is kept; then the first frame at or after each multiple of 1 / rate.
    `tolerance_s` absorbs timestamp rounding (a 30 fps video in a millisecond time base
    puts frame 10 at 0.333 s, not 1/3 s).
    """

    def __init__(self, rate: float | None, tolerance_s: float = 0.0) -> None:
        self.period = 1.0 / rate if rate else None
        self.tolerance_s = tolerance_s
        self._next: float | None = None

    def keep(self, time_s: float) -> bool:
        if self.period is None:
            return True
        if self._next is None:
            self._next = time_s + self.period
            return True
        if time_s + self.tolerance_s < self._next:
            return False
        self._next += self.period * max(1, math.floor((time_s - self._next) / self.period) + 1)
        return True


def hold_ticks(start_s: float, rate: float, ticks_done: int, next_time_s: float) -> int:
    """Ticks of a constant-rate clip starting at `start_s` that still show the current frame,
    given that the next source frame starts at `next_time_s`.

    Tick k (shown at start_s + k / rate) shows the latest source frame that starts less than
    half a tick after it: the source frame nearest in time, the earlier one on a tie. A
    source at the output rate maps one to one, a slower one repeats frames, a faster one
    skips some.
    """
    # largest k with start_s + (k + 0.5) / rate <= next_time_s (a tie stays with this frame)
    last = math.floor((next_time_s - start_s) * rate - 0.5 + 1e-6)
    return max(0, last + 1 - ticks_done)


def clip_ticks(span_s: float, rate: float) -> int:
    """Frames of a constant-rate clip covering `span_s` seconds (at least one)."""
    return max(1, int(round(span_s * rate)))
