"""Rates, latencies and jitter of the node's stream per diagnostics period."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np


class PeriodStats:
    """Rates, latencies and jitter since the previous :meth:`take` (thread-safe)."""

    #: Samples kept per period at most (bounded memory when nobody reads diagnostics).
    MAX_SAMPLES = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._t0 = time.monotonic_ns()
        self._received = 0
        self._pub_times: deque[int] = deque(maxlen=self.MAX_SAMPLES)
        self._latencies: deque[float] = deque(maxlen=self.MAX_SAMPLES)
        self._ages: deque[float] = deque(maxlen=self.MAX_SAMPLES)
        self._last_missed = 0

    def received(self, now_ns: int) -> None:
        with self._lock:
            self._received += 1

    def published(self, now_ns: int, latency_ms: float | None, age_ms: float) -> None:
        with self._lock:
            self._pub_times.append(now_ns)
            if latency_ms is not None:
                self._latencies.append(latency_ms)
            self._ages.append(age_ms)

    def take(self) -> dict[str, Any]:
        now = time.monotonic_ns()
        with self._lock:
            dt = max((now - self._t0) / 1e9, 1e-9)
            received, pubs = self._received, np.asarray(self._pub_times, np.float64) / 1e6
            lat, ages = list(self._latencies), list(self._ages)
            self._t0, self._received = now, 0
            for samples in (self._pub_times, self._latencies, self._ages):
                samples.clear()
        jitter = np.abs(np.diff(np.diff(pubs))) if pubs.size > 2 else np.zeros(0)
        return {
            "input_fps": received / dt,
            "output_fps": pubs.size / dt,
            "mean_latency_ms": float(np.mean(lat)) if lat else 0.0,
            "max_latency_ms": float(np.max(lat)) if lat else 0.0,
            "mean_age_ms": float(np.mean(ages)) if ages else 0.0,
            "mean_jitter_ms": float(jitter.mean()) if jitter.size else 0.0,
            "max_jitter_ms": float(jitter.max()) if jitter.size else 0.0,
        }

    def new_missed(self, total: int) -> int:
        """Missed frames since the previous call, given the running total."""
        with self._lock:
            new, self._last_missed = total - self._last_missed, total
        return new
