"""2D point tracking between two consecutive frames by dense optical flow (OpenCV DIS),
with a forward-backward consistency check. Dense flow is regularised: it follows
texture-poor surfaces (skin) where Lucas-Kanade's local window finds nothing to lock on."""

from __future__ import annotations

import cv2
import numpy as np

from unihoi_ros.flow.dis import PRESETS


class DenseFlow:
    """DIS flow between grey frames (``preset``: ``"ultrafast"``, ``"fast"``, ``"medium"``;
    ``finest_scale``: the pyramid level DIS stops at, 0 = full resolution; None: the
    preset's; ``max_side``: frames whose longer side is larger are downscaled to it for the
    flow, which is then upsampled and rescaled; None: full size)."""

    def __init__(self, preset: str = "medium", finest_scale: int | None = None,
                 max_side: int | None = None) -> None:
        self.max_side = max_side
        if preset not in PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; choose from {sorted(PRESETS)}")
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        if finest_scale is not None:
            self._dis.setFinestScale(int(finest_scale))

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """``(H, W, 2)`` float32: for each pixel of grey ``src``, the offset to ``dst``."""
        h, w = src.shape[:2]
        if not self.max_side or max(h, w) <= self.max_side:
            return self._dis.calc(src, dst, None)
        scale = max(h, w) / self.max_side
        size = (max(1, round(w / scale)), max(1, round(h / scale)))
        small = self._dis.calc(cv2.resize(src, size, interpolation=cv2.INTER_AREA),
                               cv2.resize(dst, size, interpolation=cv2.INTER_AREA), None)
        flow = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        flow *= np.array([w / size[0], h / size[1]], np.float32)
        return flow


def sample_flow(flow: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear ``flow`` ``(H, W, 2)`` at ``uv`` ``(M, 2)`` (clamped to the image)."""
    h, w = flow.shape[:2]
    u = np.clip(np.nan_to_num(uv[:, 0]), 0, w - 1)
    v = np.clip(np.nan_to_num(uv[:, 1]), 0, h - 1)
    u0 = np.minimum(np.floor(u).astype(np.int64), max(w - 2, 0))
    v0 = np.minimum(np.floor(v).astype(np.int64), max(h - 2, 0))
    u1, v1 = np.minimum(u0 + 1, w - 1), np.minimum(v0 + 1, h - 1)
    fu, fv = (u - u0)[:, None], (v - v0)[:, None]
    return ((1 - fu) * (1 - fv) * flow[v0, u0] + fu * (1 - fv) * flow[v0, u1]
            + (1 - fu) * fv * flow[v1, u0] + fu * fv * flow[v1, u1]).astype(np.float64)


def flow_step(flow_fwd: np.ndarray, flow_bwd: np.ndarray, uv: np.ndarray,
              fb_max_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Move pixels ``uv`` ``(M, 2)`` by ``flow_fwd`` (src -> dst) and check them with
    ``flow_bwd`` (dst -> src): ``ok`` ``(M,)`` where the round trip lands within
    ``fb_max_px`` of the start. Returns ``(uv_dst (M, 2) float64, ok)``."""
    if uv.shape[0] == 0:
        return np.zeros((0, 2)), np.zeros(0, bool)
    new = uv + sample_flow(flow_fwd, uv)
    back = new + sample_flow(flow_bwd, new)
    ok = np.linalg.norm(back - uv, axis=1) <= fb_max_px
    return new, ok & np.all(np.isfinite(new), axis=1)


def reusable_flow(flow_bwd: tuple[np.ndarray, int] | None, prev_stamp_ns: int | None,
                  size: tuple[int, int]) -> np.ndarray | None:
    """The ``(H, W, 2)`` flow of ``flow_bwd`` ``(flow, stamp_ns of the frame it points to)``
    when it points to the frame stamped ``prev_stamp_ns`` and has ``size`` ``(H, W)``;
    else None (the caller computes its own)."""
    if flow_bwd is None or prev_stamp_ns is None:
        return None
    flow, stamp = flow_bwd
    if int(stamp) != int(prev_stamp_ns) or tuple(np.shape(flow)) != (*size, 2):
        return None
    return np.asarray(flow, np.float32)


def dense_flow_for(config) -> DenseFlow | None:
    """The dense flow a :class:`~unihoi_ros.tracks.config.TrackerConfig` asks for, or None
    when its ``method`` uses none."""
    if config.method == "lk":
        return None
    return DenseFlow(config.dense_preset, config.dense_finest_scale, config.dense_max_side)
