"""Frames lost before they reach the node, estimated from the camera's stamps.

A frame that the middleware drops (a best-effort sample missing a fragment, a full socket
buffer) never reaches a callback, so the node cannot count it directly. The camera's
header stamps can: a camera publishes at a steady period, so a gap of about ``k`` periods
between consecutive received stamps means ``k - 1`` frames were lost on the way.

The period is the median of the recent gaps, which stays right while fewer than half of
the frames are lost (beyond that the estimate is a lower bound). Gaps that are not a
stream's steady cadence are not counted: a stamp that does not advance (duplicate, time
jump back: a new stream) and a gap longer than ``max_gap_periods`` periods (a paused
camera or bag).
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


def frames_missing(gap_ns: int, period_ns: float, max_gap_periods: float = 50.0) -> int:
    """Frames missing in a gap between two consecutive received stamps.

    Args:
        gap_ns: the later stamp minus the earlier one, nanoseconds.
        period_ns: the camera's period (the median gap), nanoseconds; > 0.
        max_gap_periods: longer gaps count as a pause, not as loss.

    Returns:
        ``round(gap / period) - 1``, at least 0; 0 for a gap <= 0 or a pause.
    """
    if period_ns <= 0 or gap_ns <= 0:
        return 0
    periods = gap_ns / period_ns
    if periods > max_gap_periods:
        return 0
    return max(0, round(periods) - 1)


class InputLossEstimator:
    """Running estimate of the frames lost before arrival (thread-safe).

    Args:
        window: gaps kept for the median period.
        min_gaps: gaps needed before any gap is judged (the first ones wait for them).
        max_gap_periods: see :func:`frames_missing`.
    """

    def __init__(self, window: int = 101, min_gaps: int = 5,
                 max_gap_periods: float = 50.0) -> None:
        self._lock = threading.Lock()
        self._gaps: deque[int] = deque(maxlen=max(3, int(window)))
        self._pending: list[int] = []  # gaps seen before min_gaps were known
        self._min_gaps = max(1, int(min_gaps))
        self._max_gap_periods = float(max_gap_periods)
        self._last: int | None = None
        self._lost = 0

    def add(self, stamp_ns: int) -> None:
        """One received frame's header stamp (in arrival order)."""
        with self._lock:
            last, self._last = self._last, int(stamp_ns)
            if last is None:
                return
            gap = int(stamp_ns) - last
            if gap <= 0:  # duplicate or a jump back (a new stream): not the cadence
                return
            if len(self._gaps) < self._min_gaps:
                self._gaps.append(gap)
                self._pending.append(gap)
                if len(self._gaps) == self._min_gaps:
                    period = self._period()
                    self._lost += sum(self._missing(g, period) for g in self._pending)
                    self._pending.clear()
                return
            self._lost += self._missing(gap, self._period())
            self._gaps.append(gap)

    def _period(self) -> float:
        return float(np.median(np.fromiter(self._gaps, np.int64, len(self._gaps))))

    def _missing(self, gap: int, period: float) -> int:
        return frames_missing(gap, period, self._max_gap_periods)

    @property
    def lost(self) -> int:
        """Frames estimated lost so far."""
        with self._lock:
            return self._lost

    @property
    def period_ms(self) -> float | None:
        """The camera's period (median gap) in milliseconds, or None before enough gaps."""
        with self._lock:
            return self._period() / 1e6 if len(self._gaps) >= self._min_gaps else None
