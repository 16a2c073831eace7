"""Fixed-length history of recent frames, each with what was computed for it once."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class FrameSlot:
    """One buffered frame.

    Attributes:
        stamp_ns: input stamp.
        rgb: ``(H, W, 3)`` uint8, preprocessed.
        features: cached encoder output (backend-specific, computed once).
        flow_bwd: ``(H, W, 2)`` float32 pixels to the previous frame in the stream (zeros
            for the first frame of a stream).
        known_K: ``(3, 3)`` intrinsics of the preprocessed frame given by the caller (a
            calibrated camera), or None to use the network's.
        build_points: whether this frame's result gets its coloured point cloud.
        geometry_rgb: ``(H', W', 3)`` uint8, the frame at the past-only refinement's
            triangulation size (``past_refinement`` only, until the frame is refined;
            None otherwise).
        depth, K, T_world_cam, confidence: the emitted reconstruction, once the frame was
            the newest of a window (``None`` before); depth is the network's metric depth
            as predicted, read with the published K (times the focal ratio when the
            caller's K or the stream K replaced the network's; rescaled to earlier windows
            only with ``window_scale_chain`` > 0; refined with ``past_refinement``).
    """

    stamp_ns: int
    rgb: np.ndarray
    features: Any
    flow_bwd: np.ndarray
    known_K: np.ndarray | None = None
    build_points: bool = True
    geometry_rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    K: np.ndarray | None = None
    T_world_cam: np.ndarray | None = None
    confidence: np.ndarray | None = None

    @property
    def reconstructed(self) -> bool:
        return self.T_world_cam is not None


class RingBuffer:
    """The last ``capacity`` frame slots, oldest first."""

    def __init__(self, capacity: int) -> None:
        self._slots: deque[FrameSlot] = deque(maxlen=capacity)

    def append(self, slot: FrameSlot) -> None:
        self._slots.append(slot)

    def clear(self) -> None:
        self._slots.clear()

    def __len__(self) -> int:
        return len(self._slots)

    def __getitem__(self, i: int) -> FrameSlot:
        return self._slots[i]

    @property
    def last(self) -> FrameSlot | None:
        return self._slots[-1] if self._slots else None

    def window(self, size: int) -> list[FrameSlot]:
        """The newest ``size`` slots, oldest first; during warm-up the first is repeated."""
        slots = list(self._slots)[-size:]
        return [slots[0]] * (size - len(slots)) + slots
