"""Coloured point clouds from a depth map (numpy: this runs per frame on the host)."""

from __future__ import annotations

import numpy as np


def unproject_pixels(u: np.ndarray, v: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``(N, 3)`` camera points (optical frame) of pixels ``(u, v)`` (column, row; centres at
    integers) with z-depth ``z`` (metres), ``K`` ``(3, 3)`` pixels; dtype follows ``z``."""
    x = (u - K[0, 2]) / K[0, 0] * z
    y = (v - K[1, 2]) / K[1, 1] * z
    return np.stack([x, y, z], axis=-1)


def colored_points(
    depth: np.ndarray,
    K: np.ndarray,
    rgb: np.ndarray,
    confidence: np.ndarray | None = None,
    stride: int = 1,
    min_confidence: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame points of every ``stride``-th pixel with valid depth and enough confidence.

    Args:
        depth: ``(H, W)`` metres (z-depth); non-finite or <= 0 is skipped.
        K: ``(3, 3)`` pixels.
        rgb: ``(H, W, 3)`` uint8.
        confidence: ``(H, W)`` in [0, 1] or None (keep all).
        stride: pixel step in both directions.
        min_confidence: points with confidence below this are dropped.

    Returns:
        ``points (M, 3)`` float32 metres in the optical frame, ``colors (M, 3)`` uint8 RGB.
    """
    d = depth[::stride, ::stride]
    keep = np.isfinite(d) & (d > 0)
    if confidence is not None:
        keep &= confidence[::stride, ::stride] >= min_confidence
    rows, cols = np.nonzero(keep)
    z = d[rows, cols].astype(np.float32)
    points = unproject_pixels((cols * stride).astype(np.float32),
                              (rows * stride).astype(np.float32), z, K.astype(np.float32))
    colors = rgb[::stride, ::stride][rows, cols]
    return points, np.ascontiguousarray(colors)
