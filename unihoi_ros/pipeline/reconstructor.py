"""Streaming reconstruction: one frame in, metric depth, K, pose, confidence and points out.

Per new frame the encoder runs once and the backward flow to the previous frame is
computed once; both are cached in the ring buffer. Every ``stride`` frames the window
network runs on the last ``window`` frames. Each frame pair's relative pose comes from
flow correspondences at confident pixels: by default PnP (frame t-1's points, frame t's
pixels; :mod:`unihoi_ros.geometry.pnp` says why), or the paper's confidence-weighted
Procrustes (``pose_solver="procrustes"``). The window is placed in the world by chaining
from its newest already reconstructed frame. Depths are the network's metric depths as
predicted: by default they are not rescaled to earlier windows, because chaining a
per-window scale fit compounds the network's small position-in-window scale bias into a
drift of the whole stream's scale (measured: 0.7x to 0.35x over 32 frames on synthetic
clips). This departs from the paper's online Sim(3) alignment; bench/RESULTS.md ("pose
solver") has the numbers. ``window_scale_chain`` > 0 chains with a leak toward each
window's own scale (:mod:`unihoi_ros.pipeline.scale_chain`), which bounds that drift;
measured and not adopted (bench/RESULTS.md, "Window scale chaining").

First frames: the window is filled by repeating the first frame of the stream, so every
frame gets a result as soon as it arrives; results produced from such incomplete
windows carry the flag ``"warmup"``. The world frame is the camera of the stream's first
frame (after a reset: the first frame after it; with given poses: theirs).

Given poses (``poses``, offline only): the second pass of ``unihoi process --refine-depth``
places each frame at the pose a pose graph over the whole recording found
(:mod:`unihoi_ros.geometry.pose_graph`) instead of chaining pair solves; the world is then
that graph's.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging

import numpy as np
import torch

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.errors import InferenceError
from unihoi_ros.flow.base import FlowProvider
from unihoi_ros.geometry.camera import focal_ratio, scale_intrinsics
from unihoi_ros.geometry.correspondences import flow_correspondences, grid_pixels
from unihoi_ros.geometry.multiview import geometry_size, refined_confidence
from unihoi_ros.geometry.pnp import (
    adaptive_inlier_px,
    relative_pose_pnp,
    reprojection_errors,
    reprojection_noise_px,
    smoothed_noise_px,
)
from unihoi_ros.geometry.poses import chain_relative_np
from unihoi_ros.geometry.procrustes import trimmed_weighted_rigid, weighted_rigid
from unihoi_ros.pipeline.config import ReconstructorConfig, processing_size
from unihoi_ros.pipeline.gate import StreamGate
from unihoi_ros.pipeline.intrinsics import StreamIntrinsics
from unihoi_ros.pipeline.outcome import DropReason, FeedOutcome, ResetReason
from unihoi_ros.pipeline.past_refinement import PastRefinement
from unihoi_ros.pipeline.points import colored_points
from unihoi_ros.pipeline.results import FrameResult, ResultFlag
from unihoi_ros.pipeline.ring_buffer import FrameSlot, RingBuffer
from unihoi_ros.pipeline.scale_chain import chained_window_scale
from unihoi_ros.pipeline.stats import StreamStats

log = logging.getLogger(__name__)

_F64 = torch.float64


def fit_to_backend(config: ReconstructorConfig, backend: Backend) -> ReconstructorConfig:
    """``config`` with ``process_size`` set to the backend's fixed input size, if it has one.

    An ONNX graph or a TensorRT engine takes one ``(height, width)`` (its ``input_size``):
    frames of any camera are resized to it (K and every output then describe the resized
    image), said once here. Backends without a fixed size leave ``config`` unchanged.
    """
    fixed = backend.input_size
    if fixed is None:
        return config
    fixed = (int(fixed[0]), int(fixed[1]))
    if config.process_size is not None and tuple(config.process_size) == fixed:
        return config
    log.info("the backend takes %dx%d frames only (width x height): frames are resized to "
             "it%s", fixed[1], fixed[0], "" if config.process_size is None else
             f" instead of the configured {config.process_size[1]}x{config.process_size[0]}")
    return dataclasses.replace(config, process_size=fixed)


class Reconstructor:
    """Frames in (:meth:`feed`), :class:`FrameResult` out.

    Args:
        backend: the network (:class:`unihoi_ros.backends.Backend`).
        flow: the backward-flow provider (:class:`unihoi_ros.flow.FlowProvider`).
        config: settings; None for the defaults.
        poses: given camera poses by stamp, ``{stamp_ns: (4, 4) T_world_cam or None}``
            (None: the pose is not known; such a frame keeps the previous pose and is
            flagged ``pose_degenerate``); frames are placed there instead of by pair
            solves. None (default): poses from the stream's pairs.

    :meth:`feed` is the one entry, live and offline: the stream's gate
    (:class:`~unihoi_ros.pipeline.gate.StreamGate`: stamps and sizes), the frame checks,
    then the work. Bad input never raises: empty or non-finite frames and duplicate or
    out-of-order stamps are dropped and counted (see :meth:`stats`); a change of
    resolution or a jump back in time resets the stream; a failing backend
    (:class:`~unihoi_ros.errors.InferenceError`) resets it and drops the frame. Any other
    exception is a bug and propagates with its traceback. :meth:`push` is :meth:`feed`
    for batch callers (results queued for :meth:`drain`); :meth:`flush` ends a stream. A
    backend with a fixed input size (``input_size``) gets every frame resized to it
    (:func:`fit_to_backend`).
    """

    def __init__(
        self, backend: Backend, flow: FlowProvider, config: ReconstructorConfig | None = None,
        poses: dict[int, np.ndarray | None] | None = None,
    ) -> None:
        self.backend = backend
        self.flow = flow
        self.config = fit_to_backend(config or ReconstructorConfig(), backend)
        self.gate = StreamGate()
        self._stats = StreamStats(self.config.timing_window)
        self._buffer = RingBuffer(self.config.window)
        self._ready: list[FrameResult] = []
        self._since_window = 0
        self._grid: torch.Tensor | None = None
        self._stream_K = StreamIntrinsics()
        self._pnp_noise: float | None = None  # running reprojection noise, pixels
        self._past = PastRefinement() if self.config.past_refinement else None
        self._given_poses = poses
        self._last_pose = np.eye(4)  # with given poses: where a frame without one stays

    # ------------------------------------------------------------------ public API
    def feed(
        self,
        stamp_ns: int,
        rgb: np.ndarray,
        *,
        K: np.ndarray | None = None,
        build_points: bool = True,
    ) -> FeedOutcome:
        """One frame of a stream in, its outcome out: the single entry, live and offline.

        Owns the stream rules (:class:`~unihoi_ros.pipeline.gate.StreamGate`): a stamp
        that jumps back by more than :data:`~unihoi_ros.pipeline.outcome.TIME_JUMP_NS` or
        a new resolution resets the stream; a duplicate, older, empty or non-finite frame
        is dropped; a failing backend resets the stream and drops the frame. Never raises
        for a frame or a backend failure; other exceptions (bugs) propagate.

        Args:
            stamp_ns: the frame's stamp, nanoseconds.
            rgb: ``(H, W, 3)`` uint8 RGB (or float in [0, 1]) at the camera's size.
            K: ``(3, 3)`` intrinsics of ``rgb`` (pixels), e.g. from camera_info, or None to
                use the network's; it is rescaled with the frame to the processing size.
            build_points: build this frame's point cloud (the node: only while subscribed).

        Returns:
            the :class:`FeedOutcome`: results completed by this frame (also those of older
            frames of a window stride), or the drop reason; the reset reason, if any.
            The results are returned only (not queued for :meth:`drain`).
        """
        self._stats.counts["frames_in"] += 1
        checked = FeedOutcome()
        if not self.gate.checked(stamp_ns):
            # The stamp counts as seen only once the frame is admitted (a NaN frame does
            # not take its stamp from a good one that follows).
            checked = self.check_stamp(stamp_ns, record=False)
            if checked.dropped is not None:
                return checked
        with self._stats.time("preprocess"):
            camera, admission = self._admit(rgb)
            frame = None if camera is None else np.ascontiguousarray(self._resize(camera))
        if frame is None:
            self.gate.offered()
        else:
            self.gate.admit(stamp_ns, np.asarray(rgb).shape[:2])
        if admission.reset is None and checked.reset is not None:
            admission = dataclasses.replace(admission, reset=checked.reset,
                                            message=checked.message)
        if frame is None:
            return admission
        try:
            admission.results = self._process(int(stamp_ns), frame, camera, K, build_points)
        except InferenceError as exc:  # the backend failed: a new stream, not a crash
            return self._failed(exc)
        return admission

    def check_stamp(self, stamp_ns: int, record: bool = True) -> FeedOutcome:
        """The gate's stamp rules (:meth:`StreamGate.check_stamp
        <unihoi_ros.pipeline.gate.StreamGate.check_stamp>`) for a frame about to be fed,
        applied: a drop is counted, a jump back in time resets the stream.

        The node calls it before decoding (``record``: a frame that cannot be decoded
        still takes its stamp); :meth:`feed` then does not apply the rules again to that
        stamp, and applies them itself to a stamp not checked yet.
        """
        outcome = self.gate.check_stamp(stamp_ns, record)
        if outcome.dropped is not None:
            self._stats.drop(outcome.dropped)
        elif outcome.reset is not None:
            self.reset()
        return outcome

    def push(
        self,
        stamp_ns: int,
        rgb: np.ndarray,
        *,
        K: np.ndarray | None = None,
        build_points: bool = True,
    ) -> FrameResult | None:
        """:meth:`feed` for batch callers: every result is also queued for :meth:`drain`
        (and :meth:`flush`); returns the newest frame's result when a window ran, else None
        (dropped frames, a window stride still waiting, a backend failure)."""
        results = self.feed(stamp_ns, rgb, K=K, build_points=build_points).results
        self._ready.extend(results)
        return results[-1] if results else None

    def flush(self) -> list[FrameResult]:
        """End of the stream: reconstruct frames still waiting for a window (stride > 1),
        then return them with every result queued by :meth:`push` (:meth:`drain`)."""
        if self._since_window > 0 and len(self._buffer) > 0:
            try:
                self._ready.extend(self._run_window())
            except InferenceError as exc:
                self._failed(exc)
        return self.drain()

    def drain(self) -> list[FrameResult]:
        """All results queued by :meth:`push` since the last drain, oldest first."""
        out, self._ready = self._ready, []
        return out

    def reset(self) -> None:
        """Forget the stream: the next frame starts a new world frame (its size is the
        stream's; the newest stamp stays seen). Given ``poses`` keep their world."""
        self._buffer.clear()
        self.gate.size = None
        self._since_window = 0
        self._grid = None
        self._stream_K.clear()
        self._pnp_noise = None
        if self._past is not None:
            self._past.reset()
        self._stats.counts["resets"] += 1

    def backward_flow(self, stamp_ns: int) -> tuple[np.ndarray, int] | None:
        """``(flow, prev_stamp_ns)`` of a frame still in the window buffer (a result just
        drained): its backward flow ``(H, W, 2)`` float32 pixels at the processing size to
        the stream's frame before it, and that frame's stamp; None when the frame is no
        longer buffered or begins its stream. For consumers that need the same flow
        (:meth:`unihoi_ros.tracks.PointTracker.update`); read-only, not a copy."""
        stamp = int(stamp_ns)
        for i in range(len(self._buffer) - 1, 0, -1):
            slot = self._buffer[i]
            if slot.stamp_ns == stamp:
                return slot.flow_bwd, self._buffer[i - 1].stamp_ns
        return None

    @property
    def pnp_inlier_px(self) -> float:
        """The RANSAC threshold the next PnP pair solve uses, pixels of the processed frame
        (``pnp_inlier_px`` until the stream's reprojection noise is known, or always with
        ``pnp_noise_factor`` 0)."""
        cfg = self.config
        return adaptive_inlier_px(self._pnp_noise, cfg.pnp_noise_factor, cfg.pnp_inlier_px,
                                  cfg.pnp_max_inlier_px)

    def stats(self) -> dict:
        """Counts (frames in/out, encoder passes, resets, degenerate poses), drops by
        reason, and per-stage timings in milliseconds."""
        return self._stats.summary()

    # ------------------------------------------------------------------ input checks
    def _admit(self, rgb) -> tuple[np.ndarray | None, FeedOutcome]:
        """The validated camera frame, ``(H, W, 3)`` uint8 at the camera's size (None:
        dropped, counted), and the decision (drop reason; a resolution-change reset, already
        applied)."""
        arr = np.asarray(rgb) if rgb is not None else None
        if arr is None or arr.size == 0:
            return self._drop(DropReason.EMPTY, "empty frame")
        if arr.ndim != 3 or arr.shape[2] != 3:
            return self._drop(DropReason.BAD_SHAPE, f"expected (H, W, 3) RGB, got shape "
                                                    f"{arr.shape}")
        if arr.dtype != np.uint8:
            if not np.isfinite(arr).all():
                return self._drop(DropReason.NON_FINITE, "frame holds NaN or inf values")
            arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        # the camera's size: a new camera resets even at a fixed process size
        outcome = self.gate.check_size(arr.shape[:2])
        if outcome.reset is not None:
            log.warning("%s", outcome.message)
            self.reset()
        return arr, outcome

    def _resize(self, arr: np.ndarray, target: tuple[int, int] | None = None) -> np.ndarray:
        """``arr`` at ``target`` ``(h, w)`` (default: the processing size), area-averaged."""
        target = target or processing_size(self.config, arr.shape[:2])
        if tuple(arr.shape[:2]) == tuple(target):
            return arr
        import cv2

        return cv2.resize(arr, (target[1], target[0]), interpolation=cv2.INTER_AREA)

    def _drop(self, reason: DropReason, message: str) -> tuple[None, FeedOutcome]:
        self._stats.drop(reason)
        if self._stats.drops[reason] == 1 or self._stats.drops[reason] % 100 == 0:
            log.warning("dropped frame (%s, %d so far): %s", reason, self._stats.drops[reason],
                        message)
        return None, FeedOutcome(dropped=reason, message=message)

    def _failed(self, exc: InferenceError) -> FeedOutcome:
        """A backend failure: the stream is reset and the frame dropped (counted); the
        outcome carries the exception (its cause: the backend's own, with traceback)."""
        self.reset()
        self._stats.drop(DropReason.INFERENCE_ERROR)
        return FeedOutcome([], DropReason.INFERENCE_ERROR, ResetReason.INFERENCE_ERROR,
                           f"inference failed ({exc}): resetting the stream", error=exc)

    def _backend(self, call, *args, **kwargs):
        """``call(*args, **kwargs)`` of the backend; whatever it raises becomes an
        :class:`~unihoi_ros.errors.InferenceError` (the original as its cause)."""
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            raise InferenceError(repr(exc)) from exc

    # ------------------------------------------------------------------ the frame
    def _process(self, stamp_ns: int, frame: np.ndarray, camera: np.ndarray, K,
                 build_points: bool) -> list[FrameResult]:
        """An admitted frame (``frame`` at the processing size, ``camera`` the same frame
        at the camera's size, both uint8): encoded, flow to the previous one, into the ring
        buffer; the window runs every ``stride`` frames. Returns the results it completed."""
        known_K = None
        if K is not None:
            known_K = scale_intrinsics(K, camera.shape[:2], frame.shape[:2])
        with self._stats.time("encoder"):
            features = self._backend(self.backend.encode, frame)
        self._stats.counts["encoder_passes"] += 1
        prev = self._buffer.last
        with self._stats.time("flow"):
            if prev is None:
                flow = np.zeros((*frame.shape[:2], 2), np.float32)
            else:
                flow = self.flow.backward(frame, prev.rgb, stamp_ns, prev.stamp_ns)
        geometry_rgb = None
        if self._past is not None:  # the triangulation's finer copy of the camera frame
            # A copy of its own: the refinement keeps it 16 frames, the caller's buffer may
            # be reused for the next frame.
            geometry_rgb = np.array(
                self._resize(camera, geometry_size(frame.shape[:2], camera.shape[:2])),
                copy=True)
        self._buffer.append(FrameSlot(stamp_ns, frame, features, flow, known_K,
                                      bool(build_points), geometry_rgb))
        self._since_window += 1
        if self._since_window < self.config.stride:
            return []
        return self._run_window()

    # ------------------------------------------------------------------ the window
    def _run_window(self) -> list[FrameResult]:
        """The window on the newest frames; the results of its new frames, oldest first."""
        cfg = self.config
        slots = self._buffer.window(cfg.window)
        new_count = min(self._since_window, len(self._buffer))
        self._since_window = 0
        # A repeated warm-up slot has zero flow to itself, and no motion.
        repeated = np.array([s is prev for prev, s in itertools.pairwise(slots)])
        flows = np.stack([
            s.flow_bwd if not same else np.zeros_like(s.flow_bwd)
            for s, same in zip(slots[1:], repeated)
        ])
        decode = self._frames_to_decode(slots, new_count)
        with self._stats.time("network"):
            args = ([s.features for s in slots], [s.rgb for s in slots], flows)
            pred = (self._backend(self.backend.infer_window, *args) if decode == cfg.window
                    else self._backend(self.backend.infer_window, *args, decode_last=decode))
        if pred.first_frame > cfg.window - decode:
            raise InferenceError(f"the backend decoded window frames {pred.first_frame}.."
                               f"{cfg.window - 1}, {decode} were needed (an ONNX graph or "
                               "engine exported for fewer frames?)")
        self._choose_intrinsics(pred, slots[-1].known_K)
        if self._past is not None:
            with self._stats.time("refinement"):
                self._refine_past_only(pred, slots, new_count)
        if cfg.window_scale_chain > 0:
            self._chain_scale(pred, slots)
        if self._given_poses is None:
            with self._stats.time("poses"):
                T_win, rel_ok = self._window_poses(pred, flows, repeated)
                T_align, align_ok = self._align_to_world(slots, T_win, rel_ok)
        flags_common = (ResultFlag.WARMUP,) if len(self._buffer) < cfg.window else ()
        results = []
        for j in range(cfg.window - new_count, cfg.window):
            slot = slots[j]
            if self._given_poses is None:
                T_world = T_align @ T_win[j]
                pose_ok = bool(rel_ok[: j + 1].all()) and align_ok
            else:
                T_world, pose_ok = self._given_pose(slot.stamp_ns)
            flags = flags_common + (() if pose_ok else (ResultFlag.POSE_DEGENERATE,))
            if not pose_ok:
                self._stats.counts["pose_degenerate"] += 1
            k = j - pred.first_frame  # index into the decoded frames
            slot.depth = pred.depth[k]
            slot.K = pred.K
            slot.T_world_cam = T_world
            slot.confidence = (pred.confidence[k - 1] if k > 0
                               else np.ones_like(pred.depth[0], np.float32))
            results.append(self._result(slot, pose_ok, flags))
        self._stats.counts["frames_out"] += len(results)
        return results

    def _given_pose(self, stamp_ns: int) -> tuple[np.ndarray, bool]:
        """``(T_world_cam (4, 4), ok)`` of a frame from the given ``poses``; the previous
        frame's pose and False where the frame has none."""
        T = self._given_poses.get(stamp_ns)
        if T is None:
            return self._last_pose, False
        self._last_pose = np.array(T, np.float64)  # a copy: results own their poses
        return self._last_pose, True

    def _choose_intrinsics(self, pred: WindowPrediction, known_K) -> None:
        """Replace the window's predicted K in place: by the camera's ``known_K`` (3, 3)
        when it has one, else by the stream's running median with ``stream_intrinsics``;
        the depth ``(n, H, W)`` metres is then read with that focal length (depth inferred
        from appearance scales with the focal length: depth x chosen / predicted focal)."""
        cfg = self.config
        if known_K is not None:  # a calibrated camera: its K, not the network's
            chosen = np.array(known_K, dtype=np.float64)
            rescale = cfg.known_k_rescales_depth
        elif cfg.stream_intrinsics:  # one K per stream: the windows' running median
            chosen, rescale = self._stream_K.update(pred.K), True
        else:
            return
        if rescale:
            pred.depth = pred.depth * np.float32(focal_ratio(chosen, pred.K))
        pred.K = chosen

    def _refine_past_only(self, pred: WindowPrediction, slots: list[FrameSlot],
                          new_count: int) -> None:
        """``past_refinement``: the window's new frames' depth ``(n, H, W)`` refined in
        place, oldest first (:class:`~unihoi_ros.pipeline.past_refinement.PastRefinement`),
        their confidence 1 where the geometry measured it; a decoded frame that already has
        a result (the anchor; every older frame with a full-window decode) takes its
        published, refined depth, so its pair's pose reads the depth it was published
        with."""
        window = self.config.window
        for j in range(pred.first_frame, window):
            k, slot = j - pred.first_frame, slots[j]
            if j < window - new_count:
                if slot.reconstructed and slot.depth is not None:
                    pred.depth[k] = slot.depth
                continue
            depth, measured = self._past.refine(slot.rgb, slot.geometry_rgb, pred.depth[k],
                                                pred.K, slot.flow_bwd)
            slot.geometry_rgb = None  # the refinement keeps what it needs of it
            pred.depth[k] = depth
            if k > 0:  # frame k's confidence is pred.confidence[k - 1]
                pred.confidence[k - 1] = refined_confidence(pred.confidence[k - 1], measured)

    def _chain_scale(self, pred: WindowPrediction, slots: list[FrameSlot]) -> None:
        """Multiply the window's depth ``(n, H, W)`` in place by
        :func:`~unihoi_ros.pipeline.scale_chain.chained_window_scale`: the decoded frames
        that already have a result (the anchor) compared with their published depth at
        pixels whose published confidence reaches ``min_confidence``. Before the poses, so
        poses, points and the published depth share the chained scale."""
        cfg = self.config
        shared = {id(slots[j]): (j - pred.first_frame, slots[j])
                  for j in range(pred.first_frame, cfg.window)
                  if slots[j].reconstructed and slots[j].depth is not None}
        if not shared:
            return
        ks = [k for k, _ in shared.values()]
        previous = np.stack([s.depth for _, s in shared.values()])
        valid = np.stack([s.confidence >= cfg.min_confidence for _, s in shared.values()])
        scale = chained_window_scale(previous, pred.depth[ks], valid, cfg.window_scale_chain)
        pred.depth = pred.depth * np.float32(scale)

    def _frames_to_decode(self, slots: list[FrameSlot], new_count: int) -> int:
        """How many of the window's last frames the network must decode: the new ones and
        the frame they chain from (the anchor), when that one was already reconstructed
        and the backend can decode a window's last frames; else all. The older frames'
        re-decoded depth would be discarded (each frame's result is its first), and the
        full-resolution depth head is most of the network's time (``decode_full_window``
        turns this off)."""
        cfg = self.config
        anchor = cfg.window - new_count - 1
        if (cfg.decode_full_window or anchor < 1 or not slots[anchor].reconstructed
                or not self.backend.decodes_last):
            return cfg.window
        return new_count + 1

    def _pose_grid(self, h: int, w: int) -> torch.Tensor:
        if self._grid is None:
            self._grid = grid_pixels(h, w, self.config.num_pose_points, dtype=_F64)
        return self._grid

    def _window_poses(self, pred: WindowPrediction, flows: np.ndarray, repeated: np.ndarray):
        """``(F, 4, 4)`` float64 poses of the window's frames in its frame 0, and
        ``(F,)`` bool solve flags (a failed pair keeps the previous frame's pose).
        ``repeated (F-1,)`` marks warm-up pairs of one frame with itself (identity).

        Only the pairs among the decoded frames (``pred.first_frame``..F-1) are solved; the
        older pairs were solved by earlier windows and count as identity and solved here,
        which cancels out of the new frames' poses (they chain from the anchor), so a new
        frame's ``pose_ok`` says whether its own pairs were solved and anchored."""
        cfg = self.config
        first = pred.first_frame
        n, h, w = pred.depth.shape
        uv = self._pose_grid(h, w)
        depth = torch.from_numpy(np.ascontiguousarray(pred.depth, np.float32))
        K = torch.from_numpy(np.asarray(pred.K, np.float64))
        flows = np.ascontiguousarray(flows[first:])
        repeated = repeated[first:]
        p_curr, p_prev, valid = flow_correspondences(
            depth[1:], depth[:-1], K, K, torch.from_numpy(flows), uv, cfg.edge_tolerance,
        )
        idx = (uv[:, 1].long() * w + uv[:, 0].long())
        conf = torch.from_numpy(_eroded_at(pred.confidence, cfg.confidence_erosion_px,
                                           idx.numpy())).to(_F64)
        weights = torch.where(valid & (conf >= cfg.min_confidence), conf,
                              torch.zeros_like(conf))
        if cfg.pose_solver == "pnp":
            solved = [(np.eye(4), True, 0) if repeated[i] else
                      self._solve_pnp(p_prev[i].numpy(), uv.numpy(), pred.K, weights[i].numpy())
                      for i in range(n - 1)]
            T_rel = np.stack([T for T, _, _ in solved])
            ok = np.array([good for _, good, _ in solved])
        else:
            if cfg.robust_iterations > 0:
                T_rel, ok = trimmed_weighted_rigid(p_curr, p_prev, weights, return_ok=True,
                                                   iterations=cfg.robust_iterations)
            else:
                T_rel, ok = weighted_rigid(p_curr, p_prev, weights, return_ok=True)
            T_rel = torch.where(ok[:, None, None], T_rel, torch.eye(4, dtype=_F64)).numpy()
            ok = ok.numpy()
            T_rel[repeated], ok[repeated] = np.eye(4), True
        T_rel = np.concatenate([np.broadcast_to(np.eye(4), (first, 4, 4)), T_rel])
        ok = np.concatenate([np.ones(first, bool), ok])
        return chain_relative_np(T_rel), np.concatenate([[True], ok])

    def _solve_pnp(self, points_prev: np.ndarray, pixels: np.ndarray, K: np.ndarray,
                   weights: np.ndarray) -> tuple[np.ndarray, bool, int]:
        """One pair's :func:`relative_pose_pnp` at the stream's current inlier threshold
        (``pnp_noise_factor``), then the running reprojection noise updated from it."""
        cfg = self.config
        T, ok, inliers = relative_pose_pnp(points_prev, pixels, K, weights, self.pnp_inlier_px)
        if ok and cfg.pnp_noise_factor > 0:
            used = weights > 0
            errors = reprojection_errors(T, points_prev[used], pixels[used], K)
            self._pnp_noise = smoothed_noise_px(self._pnp_noise, reprojection_noise_px(errors))
        return T, ok, inliers

    def _align_to_world(self, slots: list[FrameSlot], T_win, rel_ok):
        """Rigid ``(T (4, 4), ok)`` taking window coordinates to the world.

        The window hangs on its newest frame that was already reconstructed (the anchor):
        the frames after it chain on from the anchor's world pose by the window's own
        relative poses, so a new frame's motion is exactly its pair solve.

        Only frames linked to the newest one by successful pair solves can anchor the
        window; if none of them was reconstructed before, the window hangs on the frame
        just before the break (its pose is kept: failed pairs count as no motion).
        """
        broken = np.flatnonzero(~np.asarray(rel_ok))
        first_linked = int(broken[-1]) if broken.size else 0
        shared = [j for j, s in enumerate(slots) if s.reconstructed and j >= first_linked]
        if shared:
            j, ok = max(shared), True
        else:
            j = first_linked - 1
            if j < 0 or not slots[j].reconstructed:
                # First window of the stream: its frame 0 defines the world (flagged if a
                # pair inside it failed, as those frames then only keep the last pose).
                return np.eye(4), first_linked == 0
            ok = False
        return slots[j].T_world_cam @ np.linalg.inv(T_win[j]), ok

    def _result(self, slot: FrameSlot, pose_ok: bool, flags: tuple[str, ...]) -> FrameResult:
        cfg = self.config
        if cfg.build_points and slot.build_points:
            with self._stats.time("points"):
                points, colors = colored_points(slot.depth, slot.K, slot.rgb, slot.confidence,
                                                cfg.point_stride, cfg.min_point_confidence)
        else:
            points = np.zeros((0, 3), np.float32)
            colors = np.zeros((0, 3), np.uint8)
        depth = np.where(np.isfinite(slot.depth) & (slot.depth > 0), slot.depth, np.nan)
        return FrameResult(
            stamp_ns=slot.stamp_ns, rgb=slot.rgb, depth=depth.astype(np.float32),
            K=np.asarray(slot.K, np.float64), T_world_cam=slot.T_world_cam,
            confidence=slot.confidence.astype(np.float32), points=points, colors=colors,
            pose_ok=pose_ok, flags=flags,
        )


def _eroded_at(confidence: np.ndarray, radius: int, flat_idx: np.ndarray) -> np.ndarray:
    """``(F, N)`` confidence at flat pixel indices after a ``(2r+1)^2`` min-filter per map.

    Patch-based flow is unreliable within a patch of a low-confidence (moving or occluded)
    region, so pose weights take the worst confidence of their neighbourhood. Only the
    sampled pixels are kept (no full-resolution copies).
    """
    if radius <= 0:
        return np.stack([c.reshape(-1)[flat_idx] for c in confidence])
    import cv2

    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return np.stack([cv2.erode(np.ascontiguousarray(c, np.float32), kernel).reshape(-1)[flat_idx]
                     for c in confidence])
