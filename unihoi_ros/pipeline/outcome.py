"""What happened to one frame given to the stream: the results it produced, or why it was
dropped, and whether the stream was reset first (:meth:`Reconstructor.feed`).

The drop reasons are one set for the whole package: the reconstructor decides the stream
rules (shape, values, stamps); the node adds the transport-side ones (busy, queue full,
decoding, camera_info pairing, shutdown). ``/diagnostics`` reports each as
``# of Missed Frames (<value>)``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from unihoi_ros.pipeline.results import FrameResult

#: A stamp this much older than the previous one is a jump back in time (bag loop, clock
#: reset): the stream is reset instead of every later frame being dropped as out of order.
TIME_JUMP_NS = 1_000_000_000


class DropReason(str, enum.Enum):
    """Why a frame produced no result (values are the diagnostics keys)."""

    # decided by the reconstructor (stream rules)
    EMPTY = "empty"
    BAD_SHAPE = "bad_shape"
    NON_FINITE = "non_finite"
    DUPLICATE_STAMP = "duplicate_stamp"
    OUT_OF_ORDER = "out_of_order"
    INFERENCE_ERROR = "inference_error"
    # decided by the node (transport side)
    BUSY = "busy"
    QUEUE_FULL = "queue_full"
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    MALFORMED_IMAGE = "malformed_image"
    CORRUPT_COMPRESSED = "corrupt_compressed"
    NO_CAMERA_INFO_PAIR = "no_camera_info_pair"
    SHUTDOWN = "shutdown"

    def __str__(self) -> str:
        return self.value


class ResetReason(str, enum.Enum):
    """Why the stream started a new world frame before a frame."""

    RESOLUTION_CHANGE = "resolution_change"
    TIME_JUMP = "time_jump"
    INFERENCE_ERROR = "inference_error"

    def __str__(self) -> str:
        return self.value


@dataclass
class FeedOutcome:
    """The outcome of :meth:`Reconstructor.feed` for one frame.

    Attributes:
        results: every result this frame completed, oldest first (several with a window
            stride > 1; none when dropped or while a stride waits).
        dropped: why the frame itself gave nothing, or None.
        reset: why the stream was reset (before the frame, or after a failed window).
        message: a human-readable detail of the drop or reset ("" when none).
        error: the backend's failure behind an ``inference_error`` (its traceback is the
            cause's), else None.
    """

    results: list[FrameResult] = field(default_factory=list)
    dropped: DropReason | None = None
    reset: ResetReason | None = None
    message: str = ""
    error: BaseException | None = None
