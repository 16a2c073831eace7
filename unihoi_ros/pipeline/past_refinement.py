"""Depth refined from the frames before each frame only: the live counterpart of
``unihoi process --refine-depth`` (``ReconstructorConfig.past_refinement``).

The offline refinement (:func:`unihoi_ros.multiview_depth.refine_depths`) pairs each frame
with the frames ``offset`` before *and after* it, solves one depth scale over the whole
recording and fuses neighbours on both sides, so it needs the recording. A live stream
has only the past. Here each frame, as it arrives:

1. is triangulated against the frame ``offset`` earlier (shorter pairs back where that
   pair gives no depth; :func:`~unihoi_ros.geometry.two_view.two_view_depth`), at the
   geometry size (up to twice the processing size), reduced to the processing size by a
   block median;
2. takes the scale of the chain over the frames so far
   (:class:`~unihoi_ros.geometry.multiview.LogScaleFilter`: frame-to-frame ties through the
   stream's own backward flow, weakly anchored to the network's depth);
3. is fused with the ``fuse_radius`` frames before it, warped into it
   (:func:`~unihoi_ros.geometry.multiview.fuse_views`);
4. keeps the network's depth where the geometry measured nothing.

On the shared 7-Scenes frames (bench/RESULTS.md, "... live depth refinement from past
frames"), held-out segments streamed through the pipeline from their first frame:
median-scaled abs_rel 0.215 -> 0.182 and ATE 0.66x -> 0.54x the straight line, at about
0.2 s per frame on 2 cores (the pairs triangulated at 640x480).
"""

from __future__ import annotations

import numpy as np

from unihoi_ros.flow.consistency import consistency_mask
from unihoi_ros.geometry.camera import scale_intrinsics
from unihoi_ros.geometry.multiview import (
    LogScaleFilter,
    RefineSettings,
    base_log_scale,
    block_median,
    first_pair_depth,
    fuse_views,
    pair_distances,
    sample_along_flow,
    step_log_ratios,
)

#: The past-only refinement's settings: the offline refinement's, fused with 4 frames
#: before instead of 2 on each side (measured better: 0.198 vs 0.204 held out).
PAST_REFINE_SETTINGS = RefineSettings(fuse_radius=4)


class PastRefinement:
    """One stream's past-only refinement (module docstring); frames in stream order.

    Holds the last ``offset`` frames at the geometry size and, for the fusion, the last
    ``fuse_radius`` frames at the processing size with their scaled (unfused) geometric
    depths.

    Args:
        settings: :class:`~unihoi_ros.geometry.multiview.RefineSettings` (default
            :data:`PAST_REFINE_SETTINGS`).
        flow: the flow provider of the pairs and the fusion (``backward(a, b)``: pixels of
            ``a`` into ``b``); default OpenCV DIS ``medium``.
    """

    def __init__(self, settings: RefineSettings | None = None, flow=None) -> None:
        from unihoi_ros.flow import DISFlow

        self.settings = settings or PAST_REFINE_SETTINGS
        if self.settings.scale_anchor is None or not self.settings.scale_anchor > 0:
            raise ValueError("the past-only refinement needs scale_anchor > 0 (the chain's "
                             f"anchor to the network), got {self.settings.scale_anchor}")
        self._flow = DISFlow("medium") if flow is None else flow
        self.reset()

    def reset(self) -> None:
        """Forget the stream (a new one starts with the next frame)."""
        self._geometry: dict[int, np.ndarray] = {}  # index -> frame at the geometry size
        self._recent: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # -> (frame, depth)
        self._previous_geometric: np.ndarray | None = None
        self._chain = LogScaleFilter(self.settings.scale_anchor)
        self._count = 0

    def refine(self, frame: np.ndarray, geometry_frame: np.ndarray, depth: np.ndarray,
               K: np.ndarray, flow_bwd: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The next frame's refined depth.

        Args:
            frame: ``(h, w, 3)`` uint8 at the processing size.
            geometry_frame: ``(H, W, 3)`` uint8, the same frame at the geometry size
                (integer multiples of ``h, w`` for a block median; the processing size
                itself is fine).
            depth: ``(h, w)`` the network's depth, metres, read with ``K``.
            K: ``(3, 3)`` intrinsics of ``frame``, pixels.
            flow_bwd: ``(h, w, 2)`` pixels of ``frame`` into the previous frame of the
                stream (None for the first).

        Returns:
            ``(depth (h, w) float32 metres, measured (h, w) bool)``: the refined depth and
            where it is the geometry's (elsewhere the network's).
        """
        s = self.settings
        i = self._count
        self._count += 1
        hw = depth.shape
        geometric = block_median(self._triangulated(i, geometry_frame, K, hw), hw)
        step = float("nan")
        if self._previous_geometric is not None and flow_bwd is not None:
            step = float(step_log_ratios(np.stack([self._previous_geometric, geometric]),
                                         flow_bwd[None])[0])
        log_scale = self._chain.update(step, base_log_scale(geometric, depth))
        self._previous_geometric = geometric
        metric = geometric * np.float32(np.exp(log_scale))  # NaN everywhere without a scale
        warped = [sample_along_flow(d, flow_bwd if j == i - 1 and flow_bwd is not None
                                    else self._flow.backward(frame, f))
                  for j, (f, d) in sorted(self._recent.items())]
        fused = fuse_views(metric, warped) if s.fuse_radius > 0 else metric
        self._recent[i] = (frame, metric)  # neighbours fuse in unfused, as offline
        self._recent.pop(i - s.fuse_radius, None)
        measured = np.isfinite(fused) & (fused > 0)
        return np.where(measured, fused, depth).astype(np.float32), measured

    def _triangulated(self, i: int, geometry_frame: np.ndarray, K: np.ndarray,
                      hw: tuple[int, int]) -> np.ndarray:
        """Frame ``i``'s depth (unit baseline, NaN where none) at the geometry size from its
        first pair that gives one: ``offset`` frames back, then shorter."""
        s = self.settings
        self._geometry[i] = geometry_frame
        geo_K = scale_intrinsics(K, hw, geometry_frame.shape[:2])

        def pairs():  # with the frames before it that the stream has, longest first
            for dist in pair_distances(s.offset) if s.shorter_pairs else (s.offset,):
                earlier = self._geometry.get(i - dist)
                if earlier is not None:
                    fab = self._flow.backward(geometry_frame, earlier)
                    fba = self._flow.backward(earlier, geometry_frame)
                    yield i - dist, fab, consistency_mask(fab, fba)

        depth, _ = first_pair_depth(pairs(), geo_K, s.two_view)
        self._geometry.pop(i - s.offset, None)  # the next frame pairs with i + 1 - offset
        if depth is None:
            return np.full(geometry_frame.shape[:2], np.nan, np.float32)
        return depth

