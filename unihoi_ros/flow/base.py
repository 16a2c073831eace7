"""The correspondence-provider interface used by the streaming reconstructor."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FlowProvider(Protocol):
    """Dense backward optical flow between two consecutive frames.

    ``backward(curr, prev)`` returns ``(H, W, 2)`` float32 pixels: for each pixel ``(u, v)``
    of ``curr``, the offset ``(dx, dy)`` to where the same surface point is in ``prev``.
    Frames are ``(H, W, 3)`` uint8 RGB of equal size; ``stamps`` (ns) identify them for
    providers that look flow up instead of computing it.
    """

    name: str

    def backward(
        self, curr: np.ndarray, prev: np.ndarray, curr_stamp_ns: int, prev_stamp_ns: int
    ) -> np.ndarray: ...
