"""``unihoi process --refine-depth``: two passes over each recording.

Pass 1 streams the recording through the network as usual and keeps its depth; the depth
is refined with the recording's own multi-view geometry
(:func:`unihoi_ros.multiview_depth.refine_depths`); pass 2 streams the same frames through
the same pipeline with the refined depth (:class:`~unihoi_ros.multiview_depth.
RefinedDepthBackend`), so poses, clouds, tracks and every written output come from it.
Pass 2's poses come from a pose graph over the whole recording on the refined depth
(:mod:`unihoi_ros.geometry.pose_graph`: pairs 1, 4 and 16 frames apart, fitted at once;
their flow is DIS's also with ``--raft-weights``, which triangulates the depth;
``--no-pose-graph``: the stream's chain of consecutive pairs, as a live node places them).
One input (:func:`unihoi_ros.commands.process.run_single`) and each input of a batch
(:func:`unihoi_ros.offline_batch.process_item`) go through :func:`prepare_refined_pass`.
Pass 1's frames at the processing size, depth and confidence are held in memory between
the passes (a batch: one input's at a time); the frames at the triangulation's size are
decoded again from the input (:func:`~unihoi_ros.multiview_depth.kept_frames`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: The picture of what the refinement changed (:func:`~unihoi_ros.io.pictures.
#: refinement_png`), beside the run's other outputs.
REFINEMENT_PICTURE = "refinement.png"


def load_pair_flow(raft_weights: Path | None):
    """The refinement's pair-flow provider: RAFT-small on ``raft_weights``
    (:class:`~unihoi_ros.flow.raft.RAFTFlow`, CPU), or None (OpenCV DIS ``medium``).

    Called once per process before any input is read: a bad checkpoint stops the run
    before any work, and a batch does not reload it per input.

    Raises:
        ModelNotFoundError: no file at ``raft_weights``.
        ModelError: the file is not a RAFT-small checkpoint.
    """
    if raft_weights is None:
        return None
    from unihoi_ros.flow.raft import RAFTFlow

    return RAFTFlow(raft_weights)


def uses_pose_graph(args) -> bool:
    """Whether ``unihoi process`` args ask for pass 2's poses from the pose graph:
    ``--refine-depth`` without ``--no-pose-graph``."""
    return bool(getattr(args, "refine_depth", False)) and not getattr(args, "no_pose_graph",
                                                                      False)


def prepare_refined_pass(source, reconstructor, settings, camera, max_frames, *,
                         progress: bool, pair_flow, info: dict, reread=None,
                         picture_dir: Path | None = None, pose_graph: bool = True):
    """Pass 1 and the refinement (:func:`refined_run`) of one input; the one place that
    says what pass 2 streams and what the report gets, for single and batch runs.

    Args:
        source, reconstructor, settings, camera, max_frames, progress, pair_flow,
            pose_graph: as :func:`refined_run`'s.
        info: the report's extra entries (:func:`~unihoi_ros.offline.process_source`);
            gets ``depth_refinement`` and, with a known camera, ``intrinsics``.

    Returns:
        ``(source, reconstructor, camera, max_frames)`` for
        :func:`~unihoi_ros.offline.process_source`: the held frames, the reconstructor on
        the refined depth, no camera and no frame limit (K and frames are pass 1's).

    Raises:
        ValueError: no frame could be reconstructed, or the input read again lacks a frame
            pass 1 kept.
        SourceError: the input cannot be read (again), e.g. a video that ends early.
    """
    source, reconstructor, info["depth_refinement"] = refined_run(
        source, reconstructor, settings, camera, max_frames=max_frames, progress=progress,
        pair_flow=pair_flow, reread=reread, picture_dir=picture_dir, pose_graph=pose_graph)
    if camera is not None:  # pass 2 takes K from the refined backend, which holds camera's
        info["intrinsics"] = {**camera.report(), "used": "network pass; the refined depth's K"}
    return source, reconstructor, None, None


def refined_run(source, reconstructor, settings, camera=None, *, max_frames=None,
                progress=True, pair_flow=None, reread=None,
                picture_dir: Path | None = None, pose_graph: bool = True):
    """Pass 1 and the refinement; returns what pass 2 needs.

    Args:
        source: the recording (:class:`~unihoi_ros.io.sources.FrameSource`).
        reconstructor: pass 1's, with the network backend.
        settings: the run's :class:`~unihoi_ros.pipeline.settings.StreamSettings`.
        camera: a known camera (:func:`~unihoi_ros.io.camera_info.choose_camera`) or None.
        max_frames: pass 1 reads at most this many frames (None: all).
        pair_flow: the triangulation pairs' flow provider (:func:`load_pair_flow`; None:
            DIS).
        reread: the same recording, read again for the triangulation's larger frames
            (None: ``source``; a batch gives its source without the progress counting).
        picture_dir: where to draw what the refinement changed
            (:data:`REFINEMENT_PICTURE`; None: no picture).
        pose_graph: pass 2's poses from :func:`~unihoi_ros.geometry.pose_graph.
            pose_graph_poses` on the refined depth (False: the stream's pair chain).

    Returns:
        ``(source2, reconstructor2, info)``: the processed frames as a source, a
        reconstructor on the refined depth (K included: pass 2 takes no camera; with
        ``pose_graph`` the graph's poses too), and the report's ``depth_refinement``
        entry.

    Raises:
        ValueError: no frame could be reconstructed, or the input read again lacks a frame
            pass 1 kept.
        SourceError: the input cannot be read (again), e.g. a video that ends early.
    """
    from unihoi_ros.geometry.multiview import (
        PairFlows,
        RefineSettings,
        pair_offset,
        refined_confidence,
    )
    from unihoi_ros.geometry.pose_graph import (
        PoseGraphSettings,
        pose_graph_poses,
        poses_by_stamp,
    )
    from unihoi_ros.io.sources import FrameSource
    from unihoi_ros.multiview_depth import (
        RefinedDepthBackend,
        kept_frames,
        network_pass,
        refine_depths,
    )
    from unihoi_ros.offline import _frames_checked
    from unihoi_ros.ros.camera_input import CameraInput
    from unihoi_ros.ros.ratelog import RateLimitedLog

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
    # The frames at the triangulation's size are decoded again (not held: memory).
    again = kept_frames(((stamp, camera_input.prepare(rgb, camera)[0])
                         for stamp, rgb in _frames_checked(reread or source, max_frames)),
                        first.stamps_ns, first.geometry_hw)
    # One flow cache for the refinement and the graph: the graph's pairs one frame apart
    # are the consecutive flows the scale chain computed (DIS medium on the same frames).
    flows = PairFlows(first.frames)
    depth, geometric = refine_depths(first.frames, first.depth, first.K, again, pair_flow,
                                     refine, progress, flows)
    t2 = time.perf_counter()
    if picture_dir is not None:
        from unihoi_ros.io.pictures import refinement_png

        refinement_png(picture_dir / REFINEMENT_PICTURE, first.frames, first.depth, depth,
                       geometric,
                       title=f"{source.path.name}: depth refined where the recording's "
                       f"geometry measured it ({100 * geometric.mean():.0f} % of the pixels)")
    confidence = refined_confidence(first.confidence, geometric)
    backend = RefinedDepthBackend(first.frames, depth, first.K, confidence)
    second = dataclasses.replace(settings, process_size=None, max_side=0)
    frames, stamps = first.frames, first.stamps_ns.tolist()
    poses, graph, t3 = None, PoseGraphSettings(), time.perf_counter()
    if pose_graph:
        poses = poses_by_stamp(stamps, *pose_graph_poses(frames, depth, first.K, confidence,
                                                         graph, flows, progress))
    del flows  # the cache (0.6 MB a frame at 320x240) is not needed in pass 2
    t4 = time.perf_counter()
    source2 = FrameSource(path=source.path, kind=source.kind, num_frames=len(frames),
                          description=f"{source.description} (second pass: refined depth)",
                          _iter=lambda: zip(stamps, frames), topic=source.topic)
    info = {"pairs": pair_flow.describe() if pair_flow is not None else "DIS medium",
            "offset": pair_offset(len(first.frames), refine.offset),
            "shorter_pairs": refine.shorter_pairs,
            "fuse_radius": refine.fuse_radius,
            "scale_anchor": refine.scale_anchor,
            "geometry_size": list(first.geometry_hw),
            "measured_fraction": float(geometric.mean()),
            "poses": (f"pose graph, pairs {', '.join(map(str, graph.offsets))} frames apart"
                      if pose_graph else "the stream's consecutive pairs"),
            "network_pass_s": t1 - t0, "refinement_s": t2 - t1, "poses_s": t4 - t3}
    log.info("depth refined from the recording's own geometry: %.0f %% of the pixels "
             "measured (%s pairs, %.0f s)", 100 * info["measured_fraction"], info["pairs"],
             t2 - t1)
    log.info("second pass poses: %s (%.0f s)", info["poses"], t4 - t3)
    return source2, second.make_reconstructor(backend, poses=poses), info
