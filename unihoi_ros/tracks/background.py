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

import queue
import threading
from collections.abc import Callable
from typing import Any

from unihoi_ros.errors import UnihoiError

__all__ = ["BackgroundTracker", "TrackingError"]

_STOP = object()


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
        done: results tracked and handed to the sink.
    """

    def __init__(self, tracker: Any, sink: Callable[[Any, Any], None],
                 queue_size: int = 4) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.tracker, self.sink = tracker, sink
        self.done = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._error_frame: int | None = None
        self._added = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="unihoi-tracker", daemon=True)
        self._thread.start()

    def add(self, result, flow_bwd=None) -> None:
        """Queue one result (stream order) and its ``flow_bwd`` (see
        :meth:`PointTracker.update`); blocks while ``queue_size`` results wait.

        Raises:
            TrackingError: an earlier frame failed (the thread stopped).
            RuntimeError: closed.
        """
        if self._closed:
            raise RuntimeError("background tracker is closed")
        self._raise_if_failed()
        item = (self._added, result, flow_bwd)
        self._added += 1
        while True:  # wake up now and then: a thread that died must not block us forever
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise TrackingError(f"tracking frame {self._error_frame} failed: "
                                f"{type(self._error).__name__}: {self._error}") from self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue  # drain what is queued after a failure
            index, result, flow_bwd = item
            try:
                self.sink(result, self.tracker.update(result, flow_bwd))
                self.done = index + 1
            except BaseException as exc:  # reported to the producer at add() / close()
                self._error, self._error_frame = exc, index

    def close(self, raise_error: bool = True) -> int:
        """Track every queued result and join the thread (idempotent); returns
        :attr:`done`. ``raise_error``: raise a failure (False: leave it to the caller's
        exception on its way out)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
        if raise_error:
            self._raise_if_failed()
        return self.done
