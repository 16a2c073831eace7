"""Rate-limited logging: the first message of a kind, then at most one per period."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

#: Minimum seconds between two log lines of the same kind (the first is always logged).
LOG_PERIOD_S = 10.0


class RateLimitedLog:
    """Log each kind of message the first time, then at most once per ``period_s``,
    saying how many were suppressed in between."""

    def __init__(self, logger: logging.Logger, period_s: float = LOG_PERIOD_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._period = period_s
        self._clock = clock  # seconds
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, level: int, key: str, msg: str, *args: Any,
                 exc_info: bool | BaseException | None = False) -> bool:
        """Log ``msg % args`` under ``key`` unless throttled; True when it was logged
        (``exc_info``: as :meth:`logging.Logger.log`'s, e.g. an exception: its traceback)."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._period:
                self._suppressed[key] += 1
                return False
            self._last[key] = now
            skipped = self._suppressed.pop(key, 0)
        if skipped:
            msg += f" ({skipped} similar message(s) suppressed)"
        self._log.log(level, msg, *args, exc_info=exc_info)
        return True
