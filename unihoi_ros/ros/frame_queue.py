"""Frames waiting for the node's inference worker (live: one pending slot; replay: FIFO)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass
class InputFrame:
    """One received input frame waiting for inference.

    Attributes:
        msg: the rosbags Image or CompressedImage.
        stamp_ns: its header stamp, nanoseconds.
        recv_ns: monotonic receive time, nanoseconds (latency reference).
        info: the paired CameraInfo, or None.
    """

    msg: Any
    stamp_ns: int
    recv_ns: int
    info: Any | None = None


class FrameQueue:
    """Frames waiting for the worker: one pending slot (live) or a bounded FIFO (replay).

    :meth:`put` returns the frame it displaced (a missed frame), if any. A frame taken with
    :meth:`get` counts as in flight until :meth:`done`, so :attr:`idle` has no gap between
    taking a frame and processing it.
    """

    def __init__(self, live: bool, capacity: int) -> None:
        self.live = live
        self._items: deque[InputFrame] = deque()
        self._capacity = 1 if live else max(1, int(capacity))
        self._cond = threading.Condition()
        self._closed = False
        self._in_flight = False

    def put(self, frame: InputFrame) -> InputFrame | None:
        with self._cond:
            dropped = None
            if len(self._items) >= self._capacity:
                dropped = self._items.popleft()  # live: the pending frame; replay: oldest
            self._items.append(frame)
            self._cond.notify()
            return dropped

    def get(self, timeout: float) -> InputFrame | None:
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if not self._items:
                return None
            self._in_flight = True
            return self._items.popleft()

    def done(self) -> None:
        """The frame from the last :meth:`get` is finished (published or dropped)."""
        with self._cond:
            self._in_flight = False

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in flight."""
        with self._cond:
            return not self._items and not self._in_flight

    def clear(self) -> int:
        with self._cond:
            n = len(self._items)
            self._items.clear()
            return n

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
