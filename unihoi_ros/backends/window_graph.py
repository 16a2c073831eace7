"""Shared logic of backends that run the exported window graph (ONNX Runtime, TensorRT).

The exported graph is the whole window network (``unihoi export``): inputs
``frames (1, F, 3, H, W)`` float32 in [0, 1] and ``flows_bwd (1, F-1, 2, H, W)`` pixels;
outputs ``depth (1, F, H, W)``, ``K (1, 3, 3)``, ``confidence (1, F-1, H, W)`` (a graph
exported with ``decode_last = n``: the last n frames and their n-1 pairs). It cannot
take cached encoder outputs, so ``encode`` only converts the frame once and the encoder
runs inside every window call (F encoder passes per window).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unihoi_ros.backends.base import WindowPrediction

INPUTS = ("frames", "flows_bwd")
OUTPUTS = ("depth", "K", "confidence")


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
