"""Shared logic of backends that run the exported window graph (ONNX Runtime, TensorRT).

The exported graph is the whole window network (``unihoi export``): inputs
``frames (1, F, 3, H, W)`` float32 in [0, 1] and ``flows_bwd (1, F-1, 2, H, W)`` pixels;
outputs ``depth (1, F, H, W)``, ``K (1, 3, 3)``, ``confidence (1, F-1, H, W)`` (a graph
exported with ``decode_last = n``: the last n frames and their n-1 pairs). It cannot
take cached encoder outputs, so ``encode`` only converts the frame once and the encoder
runs inside every window call (F encoder passes per window).

An any-size graph (:func:`unihoi_ros.model.export.export_any_size_onnx`) takes frames of
any size that maps to its encoder input, plus the antialiased resampling matrices from the
frames to that input (:func:`resize_inputs`, made once per size on the host).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from unihoi_ros.backends.base import WindowPrediction
from unihoi_ros.model.export import ANY_SIZE_INPUTS

INPUTS = ("frames", "flows_bwd")
OUTPUTS = ("depth", "K", "confidence")
__all__ = ["ANY_SIZE_INPUTS", "INPUTS", "OUTPUTS"]


@lru_cache(maxsize=16)
def resize_inputs(height: int, width: int, net_height: int,
                  net_width: int) -> dict[str, np.ndarray]:
    """An any-size graph's ``resize_y (hh, H)`` and ``resize_x (ww, W)`` float32 inputs
    for ``height x width`` frames and the encoder input ``net_height x net_width``
    (antialiased bilinear, PyTorch's weights: :func:`~unihoi_ros.model.resample.
    resize_matrix`). Cached: a stream has one size."""
    from unihoi_ros.model.resample import resize_matrix

    ry = resize_matrix(height, net_height, antialias=True).numpy()
    rx = resize_matrix(width, net_width, antialias=True).numpy()
    return {"resize_y": np.ascontiguousarray(ry, np.float32),
            "resize_x": np.ascontiguousarray(rx, np.float32)}


def any_size_problem(network_input_shape, net_size: tuple[int, int],
                     size: tuple[int, int]) -> str | None:
    """Why an any-size graph for the encoder input ``net_size (hh, ww)`` cannot take
    ``size (H, W)`` frames (None: it can). ``network_input_shape``: the model's
    ``(H, W) -> (hh, ww)`` rule. The graph was traced on enlargements from the encoder's
    resolution, so frames must be at least that large."""
    h, w = int(size[0]), int(size[1])
    hh, ww = (int(v) for v in net_size)
    if tuple(network_input_shape(h, w)) != (hh, ww):
        return (f"{w}x{h} frames map to the encoder input {network_input_shape(h, w)[1]}x"
                f"{network_input_shape(h, w)[0]}, the graph's is {ww}x{hh}")
    if h < hh or w < ww:
        return f"{w}x{h} frames are smaller than the encoder input {ww}x{hh}"
    return None


def frame_tensor(rgb: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float32 in [0, 1] from ``(H, W, 3)`` uint8."""
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


def window_inputs(features: Sequence[np.ndarray], flows_bwd: np.ndarray) -> dict[str, np.ndarray]:
    """Graph inputs from cached frame tensors and ``(F-1, H, W, 2)`` flows."""
    frames = np.stack(features)[None]
    flows = np.ascontiguousarray(flows_bwd.transpose(0, 3, 1, 2), dtype=np.float32)[None]
    return {"frames": frames, "flows_bwd": flows}


def to_prediction(depth: np.ndarray, K: np.ndarray, confidence: np.ndarray,
                  num_frames: int) -> WindowPrediction:
    """The prediction of a window of ``num_frames`` from the graph's outputs (which may
    hold only the last frames: ``first_frame`` says where they start)."""
    return WindowPrediction(depth=np.asarray(depth[0], np.float32),
                            K=np.asarray(K[0], np.float64),
                            confidence=np.asarray(confidence[0], np.float32),
                            first_frame=int(num_frames) - int(depth.shape[1]))


def check_size(expected: tuple[int, int], rgb: np.ndarray, what: str) -> None:
    if tuple(rgb.shape[:2]) != tuple(expected):
        raise ValueError(f"{what} was built for {expected[1]}x{expected[0]} frames, got "
                         f"{rgb.shape[1]}x{rgb.shape[0]}: set process_size to the export size "
                         "or export/build for this size")
