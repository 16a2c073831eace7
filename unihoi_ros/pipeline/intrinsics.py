"""One camera matrix per stream from the network's per-window estimates.

A camera's intrinsics do not change within a stream (no zoom), but the network predicts K
afresh in every window, a few per cent apart (the bundled model's K follows the image
content, so it moves within a clip as the view changes). :class:`StreamIntrinsics` keeps
the running median of the per-window estimates; with
``ReconstructorConfig.stream_intrinsics`` (on by default; measured gains in its docstring)
the reconstructor publishes it as the stream's K and reads the network's depth with it
(depth x known / predicted focal length, as for a camera_info K:
:func:`unihoi_ros.geometry.camera.focal_ratio`), so the depth of every frame is on the same
focal length, and the published ``CameraInfo`` does not jitter.
"""

from __future__ import annotations

from collections import deque

import numpy as np

#: Window estimates the running median keeps (40 s at 15 Hz with stride 1).
DEFAULT_HISTORY = 600


class StreamIntrinsics:
    """Running element-wise median of ``(3, 3)`` K estimates (pixels).

    Args:
        history: how many of the latest estimates the median covers.
    """

    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        self._estimates: deque[np.ndarray] = deque(maxlen=history)

    def __len__(self) -> int:
        return len(self._estimates)

    def clear(self) -> None:
        """Forget the estimates (a new stream, possibly a new camera)."""
        self._estimates.clear()

    def update(self, K: np.ndarray) -> np.ndarray:
        """Add one window's ``K (3, 3)`` and return the stream's K: the element-wise median
        of the kept estimates (fx, fy, cx, cy each; ``(3, 3)`` float64 pixels)."""
        self._estimates.append(np.asarray(K, np.float64).reshape(3, 3))
        return np.median(np.stack(self._estimates), axis=0)
