"""``use_camera_info``: images paired with their CameraInfo, and what to do without one.

The transport delivers each image twice: paired with its CameraInfo (synchroniser) and
unpaired (every image as it arrives), in either order. While pairs come, the unpaired copy
only waits for its pair (or is ignored: its pair came first); after ``timeout_s`` without
any pair the unpaired images go on with the predicted intrinsics (said once, counted) until
pairs arrive again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from unihoi_ros.pipeline.outcome import DropReason
from unihoi_ros.ros import messages as M
from unihoi_ros.ros.ratelog import RateLimitedLog

log = logging.getLogger("unihoi_ros.node")

#: Images waiting for their pair at most (older ones are dropped and counted).
MAX_AWAITING = 20


class CameraInfoPairing:
    """State machine of paired and unpaired images (thread-safe).

    Args:
        timeout_s: seconds without any pair before images go on without camera_info.
        deliver: ``deliver(image, info_or_None)`` for every image to process.
        info_topic: resolved CameraInfo topic (for the log line).
        count: ``count(key, n)`` for events (``camera_info_timeouts``,
            ``frames_without_camera_info``).
        drop: ``drop(reason, n)`` for images whose pair never came.
        ratelog: rate-limited logger.
    """

    def __init__(self, timeout_s: float, deliver: Callable[[Any, Any | None], None],
                 info_topic: str, count: Callable[[str, int], None],
                 drop: Callable[[DropReason, int], None], ratelog: RateLimitedLog) -> None:
        self.timeout_s = timeout_s
        self._deliver, self._count, self._drop = deliver, count, drop
        self._info_topic = info_topic
        self._ratelog = ratelog
        self._lock = threading.Lock()
        self._start_mono = time.monotonic()
        self._last_pair_mono: float | None = None
        self._awaiting: OrderedDict[int, None] = OrderedDict()
        self._fallback_stamps: deque[int] = deque(maxlen=64)
        self._paired_stamps: deque[int] = deque(maxlen=64)  # delivered with their pair
        self.fallback = False

    def start(self) -> None:
        """The timeout counts from now (the node starts listening)."""
        self._start_mono = time.monotonic()

    def on_pair(self, msg: Any, info: Any) -> None:
        """An image paired with its CameraInfo (synchroniser callback)."""
        now = time.monotonic()
        stamp = M.stamp_to_ns(msg.header.stamp)
        with self._lock:
            self._last_pair_mono = now
            self._awaiting.pop(stamp, None)
            was_fallback, self.fallback = self.fallback, False
            taken = stamp in self._fallback_stamps
            if not taken:
                self._paired_stamps.append(stamp)
        if was_fallback:
            log.info("camera_info is arriving again: using its intrinsics")
        if not taken:
            self._deliver(msg, info)

    def on_unpaired(self, msg: Any) -> None:
        """Every image (paired or not): after ``timeout_s`` without any pair, deliver it
        without camera_info."""
        now = time.monotonic()
        stamp = M.stamp_to_ns(msg.header.stamp)
        with self._lock:
            if stamp in self._paired_stamps:  # the synchroniser was first: nothing to wait for
                return
        ref = self._last_pair_mono if self._last_pair_mono is not None else self._start_mono
        if now - ref <= self.timeout_s:
            with self._lock:  # wait for its pair; forget (and count) it if none comes
                self._awaiting[stamp] = None
                evicted = 0
                while len(self._awaiting) > MAX_AWAITING:
                    self._awaiting.popitem(last=False)
                    evicted += 1
            if evicted:
                self._drop(DropReason.NO_CAMERA_INFO_PAIR, evicted)
            return
        with self._lock:
            entering = not self.fallback
            self.fallback = True
            self._fallback_stamps.append(stamp)
            self._awaiting.clear()
        if entering:
            self._count("camera_info_timeouts", 1)
        self._ratelog(
            logging.WARNING, "camera_info_timeout",
            "no camera_info on %s paired with the images for %.1f s: going on with the "
            "predicted intrinsics", self._info_topic, self.timeout_s,
        )
        self._count("frames_without_camera_info", 1)
        self._deliver(msg, None)
