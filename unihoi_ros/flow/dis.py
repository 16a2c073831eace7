"""OpenCV DIS optical flow (Kroeger et al. 2016): the default, CPU-only provider."""

from __future__ import annotations

import cv2
import numpy as np

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class DISFlow:
    """Dense inverse search flow on grey images, computed from the newer to the older frame.

    Args:
        preset: ``"ultrafast"``, ``"fast"`` or ``"medium"`` (OpenCV's speed/quality presets).
        variational_refinement: keep OpenCV's variational refinement step (smoother, slower).
        max_side: compute the flow on frames downscaled so their longer side is at most
            this (then upsample and rescale the vectors): poses need ~1000 samples, not
            full-resolution flow, and DIS cost grows with the pixel count. None: full size.
    """

    name = "dis"

    def __init__(self, preset: str = "medium", variational_refinement: bool = True,
                 max_side: int | None = None) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; choose from {sorted(PRESETS)}")
        self.preset = preset
        self.max_side = max_side
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        if not variational_refinement:
            self._dis.setVariationalRefinementIterations(0)

    def backward(
        self, curr: np.ndarray, prev: np.ndarray, curr_stamp_ns: int = 0, prev_stamp_ns: int = 0
    ) -> np.ndarray:
        """``(H, W, 2)`` float32 pixels from ``curr`` to ``prev`` (see :class:`FlowProvider`)."""
        g_curr = cv2.cvtColor(np.ascontiguousarray(curr), cv2.COLOR_RGB2GRAY)
        g_prev = cv2.cvtColor(np.ascontiguousarray(prev), cv2.COLOR_RGB2GRAY)
        h, w = g_curr.shape
        scale = 1.0
        if self.max_side and max(h, w) > self.max_side:
            scale = max(h, w) / self.max_side
            size = (max(1, round(w / scale)), max(1, round(h / scale)))
            g_curr = cv2.resize(g_curr, size, interpolation=cv2.INTER_AREA)
            g_prev = cv2.resize(g_prev, size, interpolation=cv2.INTER_AREA)
        # calc(I0, I1) returns f with I0(x) ≈ I1(x + f(x)): exactly the backward flow of curr.
        flow = self._dis.calc(g_curr, g_prev, None)
        if scale != 1.0:
            sx, sy = w / flow.shape[1], h / flow.shape[0]
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow *= np.array([sx, sy], np.float32)
        return flow
