"""Mirror averaging: the network run on each window and on its mirror image, averaged.

A mirrored video is the video of the mirrored world (:mod:`unihoi_ros.geometry.mirror`),
so the network's depth, confidence and K of the mirrored window, mirrored back, are a
second estimate of the same quantities, whose mistakes differ from the first's wherever
the network is not mirror-symmetric. :class:`MirrorAveragedBackend` wraps any backend and
returns

- depth: the geometric mean of the two (one scale error of each counts the same, above
  or below; measured better than the arithmetic mean on poses, bench/RESULTS.md);
- confidence: the arithmetic mean;
- K: the mean of the two intrinsics, the mirrored one's ``cx`` mirrored back.

It costs twice the network per frame (both encodings are cached; the reconstructor's
``encoder_passes`` count frames, not these passes; the ONNX router sees two windows per
window, so it also specialises the first window's graph). Off by default
(``StreamSettings.mirror_average``, node parameter ``mirror_average``, ``unihoi process
--mirror-average``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.geometry.mirror import mirror_flow, mirror_image, mirror_intrinsics


def average_with_mirrored(direct: WindowPrediction, mirrored: WindowPrediction
                          ) -> WindowPrediction:
    """The average of a window's prediction and its mirror image's (module docstring).

    Args:
        direct: the prediction of the window as it is: depth ``(n, H, W)`` metres of the
            window's frames ``first_frame..``, confidence ``(n-1, H, W)``, K ``(3, 3)``
            pixels.
        mirrored: the prediction of the window mirrored left-right, in the mirrored
            image's pixels. It may decode more or fewer of the window's last frames (a
            backend that switches paths between the two calls, as the ONNX router does
            when a graph becomes ready): both are cut to the frames they share.

    Returns:
        A :class:`WindowPrediction` in the direct image's pixels of the frames both
        decoded: float32 depth and confidence, float64 K.

    Raises:
        ValueError: the two predictions' image sizes differ, or they share no frame.
    """
    first = max(direct.first_frame, mirrored.first_frame)
    direct, mirrored = _from_frame(direct, first), _from_frame(mirrored, first)
    if (direct.depth.shape != mirrored.depth.shape
            or direct.confidence.shape != mirrored.confidence.shape or not len(direct.depth)):
        raise ValueError(
            f"mirror averaging: the window's prediction (depth {direct.depth.shape}) and its "
            f"mirror's (depth {mirrored.depth.shape}) do not match")
    width = direct.depth.shape[-1]
    depth = np.sqrt(direct.depth.astype(np.float64) * mirror_image(mirrored.depth))
    confidence = 0.5 * (direct.confidence + mirror_image(mirrored.confidence))
    K = 0.5 * (np.asarray(direct.K, np.float64)
               + mirror_intrinsics(np.asarray(mirrored.K, np.float64), width))
    return WindowPrediction(depth=depth.astype(np.float32),
                            confidence=confidence.astype(np.float32), K=K,
                            first_frame=direct.first_frame)


def _from_frame(prediction: WindowPrediction, first: int) -> WindowPrediction:
    """``prediction`` restricted to the window's frames ``first..`` (``first`` >= its own
    first frame; confidence row k belongs to depth row k + 1)."""
    cut = first - prediction.first_frame
    if cut == 0:
        return prediction
    return WindowPrediction(depth=prediction.depth[cut:], K=prediction.K,
                            confidence=prediction.confidence[cut:], first_frame=first)


class MirrorAveragedBackend(Backend):
    """Any backend, run on each frame and its mirror image (module docstring).

    Args:
        inner: the backend that runs the network (its capabilities pass through).
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    name = property(lambda self: f"{self.inner.name}+mirror")
    device = property(lambda self: self.inner.device)
    num_frames = property(lambda self: self.inner.num_frames)
    input_size = property(lambda self: self.inner.input_size)
    decodes_last = property(lambda self: self.inner.decodes_last)
    model = property(lambda self: self.inner.model)

    @property
    def background(self) -> bool:
        return self.inner.background

    @background.setter
    def background(self, value: bool) -> None:
        self.inner.background = value

    def encode(self, rgb: np.ndarray) -> tuple[Any, Any]:
        """Encoder features of ``rgb`` ``(H, W, 3)`` uint8 and of its mirror image."""
        return self.inner.encode(rgb), self.inner.encode(mirror_image(rgb, -2))

    def infer_window(self, features: Sequence[tuple[Any, Any]], rgbs: Sequence[np.ndarray],
                     flows_bwd: np.ndarray, decode_last: int | None = None
                     ) -> WindowPrediction:
        """The window's prediction averaged with its mirror's (:func:`average_with_mirrored`;
        arguments as :meth:`Backend.infer_window`)."""
        direct = self.inner.infer_window([f[0] for f in features], rgbs, flows_bwd,
                                         decode_last)
        mirrored = self.inner.infer_window([f[1] for f in features],
                                           [mirror_image(r, -2) for r in rgbs],
                                           mirror_flow(np.asarray(flows_bwd)), decode_last)
        return average_with_mirrored(direct, mirrored)

    def prepare(self, size: tuple[int, int], decode_last: int | None = None) -> bool:
        return self.inner.prepare(size, decode_last)

    def describe(self) -> str:
        return self.inner.describe()  # the name says "+mirror" already

    def recent_sizes(self) -> list[tuple[int, int]]:
        return self.inner.recent_sizes()

    def common_sizes(self) -> list[tuple[int, int]]:
        return self.inner.common_sizes()
