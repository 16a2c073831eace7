"""Counters and per-stage timings of the stream (reported by ``stats()`` and diagnostics)."""

from __future__ import annotations

import time
from collections import Counter, deque
from contextlib import contextmanager

import numpy as np


class StreamStats:
    """Frame counts, drops by reason and recent per-stage durations (seconds)."""

    def __init__(self, timing_window: int = 1000) -> None:
        self._window = timing_window
        self.counts: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self._timings: dict[str, deque[float]] = {}

    @contextmanager
    def time(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.record(stage, time.perf_counter() - t0)

    def record(self, stage: str, seconds: float) -> None:
        self._timings.setdefault(stage, deque(maxlen=self._window)).append(seconds)

    def drop(self, reason: str) -> None:
        self.drops[str(reason)] += 1  # plain strings (enum members print as their value)

    def summary(self) -> dict:
        """Counts, drops and per-stage ``{count, mean_ms, median_ms, p95_ms}``."""
        stages = {}
        for stage, values in self._timings.items():
            ms = np.asarray(values) * 1e3
            stages[stage] = {
                "count": int(ms.size),
                "mean_ms": float(ms.mean()),
                "median_ms": float(np.median(ms)),
                "p95_ms": float(np.percentile(ms, 95)),
            }
        return {"counts": dict(self.counts), "drops": dict(self.drops), "stages_ms": stages}
