"""A :class:`FrameResult` at a reduced resolution, for compact recordings (numpy, OpenCV).

``unihoi process`` stores the full-resolution depth and confidence as PNG files
(:mod:`unihoi_ros.io.run_layout`); its rosbag2 carries the same frames for viewing at
most ``max_side`` pixels on the longer side (an integer divisor of the frame size), with a
sparse point cloud from the full-resolution depth. The reduced images keep OpenCV's
area-resize pixel convention, so their K is :func:`unihoi_ros.geometry.camera.
scale_intrinsics` of the frame's (``c' = (c + 0.5) s - 0.5``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from unihoi_ros.geometry.camera import scale_intrinsics
from unihoi_ros.pipeline.points import colored_points
from unihoi_ros.pipeline.results import FrameResult

__all__ = ["downscale_depth", "downscale_factor", "downscaled_result"]


def downscale_factor(height: int, width: int, max_side: int | None) -> int:
    """The smallest integer ``s`` with ``max(height, width) / s <= max_side`` (1 when
    ``max_side`` is None or 0: full resolution)."""
    if not max_side:
        return 1
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1 (or 0 / None: full resolution), got {max_side}")
    return max(1, math.ceil(max(height, width) / max_side))


def _area(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(img, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)


def downscale_depth(depth: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Area mean of the valid depth in each output pixel.

    Args:
        depth: ``(H, W)`` metres; NaN, ``inf`` and values <= 0 are invalid.
        hw: output ``(height, width)``.

    Returns:
        ``(h, w)`` float32 metres; NaN where under half of the pixel's area is valid.
    """
    d = np.asarray(depth, np.float32)
    valid = np.isfinite(d) & (d > 0)
    total = _area(np.where(valid, d, np.float32(0)), hw)
    weight = _area(valid.astype(np.float32), hw)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weight
    out[~(weight >= 0.5)] = np.nan
    return out.astype(np.float32)


def downscaled_result(result: FrameResult, max_side: int | None, point_stride: int = 8,
                      min_point_confidence: float = 0.5) -> FrameResult:
    """``result`` with rgb, depth, confidence and K at most ``max_side`` on the longer side.

    Args:
        result: a full-resolution frame.
        max_side: longest side of the reduced images, pixels (see :func:`downscale_factor`).
        point_stride: the cloud keeps every ``point_stride``-th pixel of the *reduced*
            image in each direction, taken from the full-resolution depth (exact points:
            no averaging); so about ``(h / point_stride) * (w / point_stride)`` points.
        min_point_confidence: points with lower confidence are left out.

    Returns:
        A new :class:`FrameResult`: same stamp, pose, ``pose_ok`` and flags; ``rgb``
        (area), ``depth`` (:func:`downscale_depth`), ``confidence`` (area) and ``K``
        (:func:`~unihoi_ros.geometry.camera.scale_intrinsics`) at the reduced size;
        ``points`` / ``colors`` in the optical frame.
    """
    h, w = result.depth.shape
    s = downscale_factor(h, w, max_side)
    hw = (max(1, round(h / s)), max(1, round(w / s)))
    points, colors = colored_points(result.depth, np.asarray(result.K), result.rgb,
                                    result.confidence, point_stride * s, min_point_confidence)
    if hw == (h, w):
        return dataclasses.replace(result, points=points, colors=colors)
    return dataclasses.replace(
        result, rgb=_area(np.ascontiguousarray(result.rgb), hw),
        depth=downscale_depth(result.depth, hw),
        confidence=_area(np.asarray(result.confidence, np.float32), hw),
        K=scale_intrinsics(result.K, (h, w), hw), points=points, colors=colors)
