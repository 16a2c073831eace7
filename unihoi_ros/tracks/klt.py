"""2D point tracking between two consecutive frames: OpenCV pyramidal Lucas-Kanade with a
forward-backward check."""

from __future__ import annotations

import cv2
import numpy as np


def grey(rgb: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 grey of an ``(H, W, 3)`` uint8 RGB image."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def lk_step(
    src: np.ndarray,
    dst: np.ndarray,
    uv: np.ndarray,
    window: int,
    levels: int,
    iterations: int,
    fb_max_px: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Move pixels ``uv`` ``(M, 2)`` of grey image ``src`` to grey image ``dst``.

    Returns ``(uv_dst (M, 2) float64, ok (M,) bool)``: ``ok`` is False where either LK pass
    failed or the backward pass from ``uv_dst`` lands farther than ``fb_max_px`` pixels
    from ``uv`` (occlusion, leaving the view, texture-less or ambiguous patches). Pixel
    centres at integers, as OpenCV's LK uses them.
    """
    m = uv.shape[0]
    if m == 0:
        return np.zeros((0, 2)), np.zeros(0, bool)
    p0 = np.ascontiguousarray(uv, np.float32).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, 0.01)
    kw = dict(winSize=(window, window), maxLevel=levels, criteria=crit)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(src, dst, p0, None, **kw)
    p0b, st2, _ = cv2.calcOpticalFlowPyrLK(dst, src, p1, None, **kw)
    fb = np.linalg.norm(p0b.reshape(-1, 2) - p0.reshape(-1, 2), axis=1)
    ok = (st1.reshape(-1) == 1) & (st2.reshape(-1) == 1) & (fb <= fb_max_px)
    ok &= np.all(np.isfinite(p1.reshape(-1, 2)), axis=1)
    return p1.reshape(-1, 2).astype(np.float64), ok
