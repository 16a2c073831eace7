"""What the streaming reconstructor emits per frame."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class ResultFlag(str, enum.Enum):
    """Notes on a :class:`FrameResult` (compare equal to their string values)."""

    #: reconstructed from a window still padded with the stream's first frame
    WARMUP = "warmup"
    #: the pose solve failed; the previous pose was kept
    POSE_DEGENERATE = "pose_degenerate"

    def __str__(self) -> str:
        return self.value


@dataclass
class FrameResult:
    """Reconstruction of one input frame, in the stream's world frame (first frame's camera).

    Attributes:
        stamp_ns: the input frame's stamp, nanoseconds (outputs are stamped with it).
        rgb: ``(H, W, 3)`` uint8, the frame as processed (RGB order).
        depth: ``(H, W)`` float32 metres along the optical z axis; NaN where invalid.
        K: ``(3, 3)`` float64 intrinsics in pixels of ``depth``'s size.
        T_world_cam: ``(4, 4)`` float64 camera-to-world (optical axes: x right, y down,
            z forward).
        confidence: ``(H, W)`` float32 in [0, 1].
        points: ``(M, 3)`` float32 metres in the camera optical frame (strided and
            confidence-filtered; may be empty).
        colors: ``(M, 3)`` uint8 RGB of ``points``.
        pose_ok: False when the pose solve was degenerate and the last pose was kept.
        flags: :class:`ResultFlag` notes for diagnostics (``"warmup"``, ``"pose_degenerate"``).
    """

    stamp_ns: int
    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray
    confidence: np.ndarray
    points: np.ndarray
    colors: np.ndarray
    pose_ok: bool = True
    flags: tuple[ResultFlag, ...] = field(default_factory=tuple)

    @property
    def height(self) -> int:
        return int(self.depth.shape[0])

    @property
    def width(self) -> int:
        return int(self.depth.shape[1])
