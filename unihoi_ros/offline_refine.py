"""``unihoi process --refine-depth``: two passes over one recording.

Pass 1 streams the recording through the network as usual and keeps its depth; the depth
is refined with the recording's own multi-view geometry
(:func:`unihoi_ros.multiview_depth.refine_depths`); pass 2 streams the same frames through
the same pipeline with the refined depth (:class:`~unihoi_ros.multiview_depth.
RefinedDepthBackend`), so poses, clouds, tracks and every written output come from it.
The recording is held in memory between the passes (about 1.8 MB per frame processed at
320x240: the frames at that size and twice it, depth and confidence), and the refinement
peaks near 5 MB per frame.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


def refined_run(source, reconstructor, settings, camera=None, *, max_frames=None,
                progress=True, raft_weights: Path | None = None):
    """Pass 1 and the refinement; returns what pass 2 needs.

    Args:
        source: the recording (:class:`~unihoi_ros.io.sources.FrameSource`).
        reconstructor: pass 1's, with the network backend.
        settings: the run's :class:`~unihoi_ros.pipeline.settings.StreamSettings`.
        camera: a known camera (:func:`~unihoi_ros.io.camera_info.choose_camera`) or None.
        raft_weights: RAFT-small checkpoint for the triangulation pairs (None: DIS).

    Returns:
        ``(source2, reconstructor2, info)``: the processed frames as a source, a
        reconstructor on the refined depth (K included: pass 2 takes no camera), and the
        report's ``depth_refinement`` entry.

    Raises:
        ModelError: ``raft_weights`` cannot be loaded (before any work).
        ValueError: no frame could be reconstructed.
    """
    from unihoi_ros.io.sources import FrameSource
    from unihoi_ros.multiview_depth import (
        RefinedDepthBackend,
        RefineSettings,
        network_pass,
        refine_depths,
        refined_confidence,
    )
    from unihoi_ros.offline import _frames_checked
    from unihoi_ros.ros.camera_input import CameraInput
    from unihoi_ros.ros.ratelog import RateLimitedLog

    pair_flow = None
    if raft_weights is not None:  # loaded first: a bad checkpoint stops the run at once
        from unihoi_ros.flow.raft import RAFTFlow

        pair_flow = RAFTFlow(raft_weights)
    camera_input = CameraInput(lambda key, n: None, RateLimitedLog(log))
    total = source.num_frames if max_frames is None else min(max_frames,
                                                              source.num_frames or max_frames)
    t0 = time.perf_counter()
    first = network_pass(
        reconstructor,
        ((stamp, *camera_input.prepare(rgb, camera))
         for stamp, rgb in _frames_checked(source, max_frames)),
        progress=progress, total=total or None)
    t1 = time.perf_counter()
    refine = RefineSettings()
    depth, geometric = refine_depths(first.frames, first.depth, first.K,
                                     first.geometry_frames, pair_flow, refine, progress)
    t2 = time.perf_counter()
    backend = RefinedDepthBackend(first.frames, depth, first.K,
                                  refined_confidence(first.confidence, geometric))
    second = dataclasses.replace(settings, process_size=None, max_side=0)
    frames, stamps = first.frames, first.stamps_ns.tolist()
    source2 = FrameSource(path=source.path, kind=source.kind, num_frames=len(frames),
                          description=f"{source.description} (second pass: refined depth)",
                          _iter=lambda: zip(stamps, frames), topic=source.topic)
    info = {"pairs": pair_flow.describe() if pair_flow is not None else "DIS medium",
            "offset": refine.offset, "fuse_radius": refine.fuse_radius,
            "scale_anchor": refine.scale_anchor,
            "geometry_size": list(first.geometry_frames.shape[1:3]),
            "measured_fraction": float(geometric.mean()),
            "network_pass_s": t1 - t0, "refinement_s": t2 - t1}
    log.info("depth refined from the recording's own geometry: %.0f %% of the pixels "
             "measured (%s pairs, %.0f s)", 100 * info["measured_fraction"], info["pairs"],
             t2 - t1)
    return source2, second.make_reconstructor(backend), info
