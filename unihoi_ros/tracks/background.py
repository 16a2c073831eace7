"""The point tracker on a thread of its own (:class:`BackgroundTracker`), for offline runs.

``unihoi process`` reconstructs frame t+1 while frame t is tracked: the tracker's time is
mostly OpenCV's DIS flow, which releases the GIL, as ONNX Runtime's inference does, so on
two cores the two overlap. Results go in (:meth:`BackgroundTracker.add`) in stream order
and come out the same way, each with its :class:`~unihoi_ros.tracks.TrackSet`, handed to a
``sink`` on the tracker's thread (e.g. the tracks recorder and the run writer, whose own
bounded queue then slows the tracker down: back-pressure, nothing dropped). The tracks are
exactly those of calling :meth:`PointTracker.update` in order on one thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from unihoi_ros.errors import UnihoiError

__all__ = ["BackgroundTracker", "TrackingError"]


class TrackingError(UnihoiError, RuntimeError):
    """Tracking a frame (or handing it to the sink) failed; names the frame."""


class BackgroundTracker:
    """Runs ``tracker.update(result, flow_bwd)`` for each result on a background thread and
    calls ``sink(result, track_set)`` there, in order.

    Args:
        tracker: a :class:`~unihoi_ros.tracks.PointTracker` (anything with its ``update``).
        sink: called with each result and its tracks, on the tracker's thread.
        queue_size: results waiting at most; :meth:`add` blocks while it is full.

    Attributes:
        done: results tracked and handed to the sink. After a failure nothing more is
            tracked (the tracks would skip a frame).
    """

    def __init__(self, tracker: Any, sink: Callable[[Any, Any], None],
                 queue_size: int = 4) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.tracker, self.sink, self.queue_size = tracker, sink, queue_size
        self.done = 0
        self._failure: tuple[int, BaseException] | None = None
        self._added = 0
        self._pending: deque[Future] = deque()
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            1, thread_name_prefix="unihoi-tracker")

    def add(self, result, flow_bwd=None) -> None:
        """Queue one result (stream order) and its ``flow_bwd`` (see
        :meth:`PointTracker.update`); blocks while ``queue_size`` results wait.

        Raises:
            TrackingError: an earlier frame failed.
            RuntimeError: closed.
        """
        if self._pool is None:
            raise RuntimeError("background tracker is closed")
        self._raise_if_failed()
        while len(self._pending) >= self.queue_size:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._track, self._added, result, flow_bwd))
        self._added += 1

    def _track(self, index: int, result, flow_bwd) -> None:
        """On the tracker's thread; a failure is kept for the producer."""
        if self._failure is not None:
            return
        try:
            self.sink(result, self.tracker.update(result, flow_bwd))
            self.done = index + 1
        except BaseException as exc:
            self._failure = (index, exc)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            index, exc = self._failure
            raise TrackingError(f"tracking frame {index} failed: {type(exc).__name__}: "
                                f"{exc}") from exc

    def close(self, raise_error: bool = True) -> int:
        """Track every queued result and join the thread (idempotent); returns
        :attr:`done`. ``raise_error``: raise a failure (False: leave it to the caller's
        exception on its way out)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
            self._pending.clear()
        if raise_error:
            self._raise_if_failed()
        return self.done
