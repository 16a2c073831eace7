"""The left-right mirrored camera: one rule for images, flows, pixel points and K.

A mirrored video is the video of the mirrored world: rigid motions stay rigid and depth
stays depth, so a network's depth of the mirrored frames, mirrored back, is another
estimate of the same depth. Training uses it to double the layouts a recording shows
(:func:`unihoi_ros.train.augment.horizontal_flip`); inference uses it to average the two
estimates (:class:`unihoi_ros.backends.mirror.MirrorAveragedBackend`).

Pixel centres sit at integer coordinates (:mod:`unihoi_ros.geometry.camera`), so column
``u`` of an image ``width`` pixels wide maps to ``width - 1 - u``. Every function takes a
numpy array or a torch tensor and returns the same kind (pure, no copies shared with the
input).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unihoi_ros.geometry.camera import _is_tensor, _stack_last

#: A numpy array or a torch tensor.
Array = Any


def mirror_image(image: Array, axis: int = -1) -> Array:
    """``image`` reversed along its width axis ``axis`` (``-1`` for ``(..., H, W)``,
    ``-2`` for ``(..., H, W, C)``)."""
    if _is_tensor(image):
        return image.flip(axis)
    return np.ascontiguousarray(np.flip(image, axis))


def mirror_flow(flow: Array) -> Array:
    """``(..., H, W, 2)`` flow in pixels ``(du, dv)`` of the mirrored frames: the field
    reversed along W and ``du`` negated."""
    f = mirror_image(flow, -2)
    return _stack_last([-f[..., 0], f[..., 1]], f)


def mirror_points(uv: Array, width: int) -> Array:
    """``(..., 2)`` pixel coordinates ``(u, v)`` in the mirrored image: ``u -> width - 1 -
    u`` (NaN stays NaN)."""
    return _stack_last([(width - 1) - uv[..., 0], uv[..., 1]], uv)


def mirror_intrinsics(K: Array, width: int) -> Array:
    """``(..., 3, 3)`` intrinsics of the mirrored image of ``width`` pixels: ``cx -> width
    - 1 - cx`` (and the skew negated, as the x axis is), the rest unchanged."""
    out = K.clone() if _is_tensor(K) else np.array(K, copy=True)
    out[..., 0, 2] = (width - 1) - K[..., 0, 2]
    out[..., 0, 1] = -K[..., 0, 1]
    return out
