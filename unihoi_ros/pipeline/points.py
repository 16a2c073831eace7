"""Coloured point clouds from a depth map (numpy: this runs per frame on the host)."""

from __future__ import annotations

import numpy as np

from unihoi_ros.geometry.camera import unproject_pixels


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
    uv = np.stack([cols * stride, rows * stride], axis=-1).astype(np.float32)
    points = unproject_pixels(uv, z, K.astype(np.float32))
    colors = rgb[::stride, ::stride][rows, cols]
    return points, np.ascontiguousarray(colors)
