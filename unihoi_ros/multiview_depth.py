"""Offline depth refinement: a whole recording's network depth replaced, where the video's
own multi-view geometry measures it, by triangulated depth.

For recorded corpora (``unihoi process`` over a whole recording, not the live node): each
frame's depth is triangulated from its flow to the frames ``offset`` before and after
(essential matrix with the known K, forward-backward-checked correspondences, parallax and
reprojection limits), the frames' scales tied into one along the recording and anchored
to the network's own depth (so the metric scale stays the network's), fused over
neighbouring frames, and used where it exists; the network's depth fills the rest. This
is exactly how ``unihoi adapt`` builds its depth teacher (:mod:`unihoi_ros.train.adapt`:
:func:`~unihoi_ros.train.adapt.geometric_depths`, :func:`~unihoi_ros.train.adapt.
teacher_from`), applied at test time instead of distilled into the network.

It needs parallax (a moving camera) and a static scene where it keeps a pixel: moving
hands and objects mostly fail the epipolar and two-pair consistency checks and keep the
network's depth, but a motion along its epipolar line is not detected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unihoi_ros.geometry.two_view import TwoViewSettings


@dataclass
class RefineSettings:
    """How :func:`refine_depths` triangulates and fuses (``unihoi adapt``'s teacher's
    defaults).

    Attributes:
        offset: frame distance of each frame's two triangulation pairs.
        scale_anchor: weight of the network's per-frame scale against the frame-to-frame
            ties (:func:`~unihoi_ros.train.adapt.consistent_log_scales`).
        fuse_radius: neighbours on each side fused into each frame (median).
        two_view: the triangulation's thresholds.
    """

    offset: int = 16
    scale_anchor: float = 0.01
    fuse_radius: int = 2
    two_view: TwoViewSettings = field(default_factory=TwoViewSettings)


def refine_depths(frames: np.ndarray, depth: np.ndarray, K: np.ndarray,
                  geometry_frames: np.ndarray | None = None, pair_flow=None,
                  settings: RefineSettings | None = None, progress: bool = False,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The recording's depth with its multi-view geometry where that measures it.

    Args:
        frames: ``(N, h, w, 3)`` uint8 RGB, the frames ``depth`` belongs to, in recording
            order (consecutive frames of one camera).
        depth: ``(N, h, w)`` the network's depth, metres (read with ``K``).
        K: ``(3, 3)`` intrinsics of ``frames``, pixels.
        geometry_frames: ``(N, H, W, 3)`` the same frames at the size to triangulate at
            (finer angles; reduced to ``(h, w)`` by a block median where ``H, W`` are
            integer multiples of ``h, w``, nearest otherwise); None: ``frames``.
        pair_flow: the triangulation pairs' flow provider (e.g.
            :class:`~unihoi_ros.flow.raft.RAFTFlow`); None: OpenCV DIS ``medium``.
        settings: :class:`RefineSettings`.
        progress: a tqdm bar over the frames.

    Returns:
        ``(refined (N, h, w) float32 metres, geometric (N, h, w) bool)``: the refined
        depth and where it is the triangulated one (elsewhere the network's).
    """
    from unihoi_ros.train.adapt import (
        PairFlows,
        block_median,
        geometric_depths,
        resize_K,
        scaled_geometry,
    )

    s = settings or RefineSettings()
    frames = np.asarray(frames)
    depth = np.asarray(depth, np.float32)
    if frames.shape[:3] != depth.shape:
        raise ValueError(f"frames {frames.shape} and depth {depth.shape} differ in size")
    hw = frames.shape[1:3]
    geo_frames = frames if geometry_frames is None else np.asarray(geometry_frames)
    if len(geo_frames) != len(frames):
        raise ValueError("geometry_frames and frames differ in length")
    geo_hw = geo_frames.shape[1:3]
    geo, _ = geometric_depths(geo_frames, resize_K(K, hw, geo_hw), s.offset, s.two_view,
                              progress, pair_flow)
    geo = np.stack([block_median(g, hw) for g in geo])
    metric = scaled_geometry(geo, depth, PairFlows(frames), s.scale_anchor, s.fuse_radius)
    geometric = np.isfinite(metric) & (metric > 0)
    return np.where(geometric, metric, depth).astype(np.float32), geometric
