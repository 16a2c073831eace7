"""Offline depth refinement: a whole recording's network depth replaced, where the video's
own multi-view geometry measures it, by triangulated depth.

For recorded corpora (``unihoi process`` over a whole recording, not the live node): each
frame's depth is triangulated from its flow to the frames ``offset`` before and after
(essential matrix with the known K, forward-backward-checked correspondences, parallax and
reprojection limits), the frames' scales tied into one along the recording and anchored
to the network's own depth (so the metric scale stays the network's), fused over
neighbouring frames, and used where it exists; the network's depth fills the rest. This
is exactly how ``unihoi adapt`` builds its depth teacher (the maths of
:mod:`unihoi_ros.geometry.multiview`, shared with :func:`unihoi_ros.train.adapt.
teacher_from`), applied at test time instead of distilled into the network.

It needs parallax (a moving camera) and a static scene where it keeps a pixel: moving
hands and objects mostly fail the epipolar and two-pair consistency checks and keep the
network's depth, but a motion along its epipolar line is not detected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.geometry.camera import scale_intrinsics
from unihoi_ros.geometry.multiview import (
    PairFlows,
    RefineSettings,
    block_median,
    geometric_depths,
    geometry_size,
    scaled_geometry,
)
from unihoi_ros.pipeline.oracle import _frame_key


def refine_depths(frames: np.ndarray, depth: np.ndarray, K: np.ndarray,
                  geometry_frames=None, pair_flow=None,
                  settings: RefineSettings | None = None, progress: bool = False,
                  flows: PairFlows | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The recording's depth with its multi-view geometry where that measures it.

    Args:
        frames: ``(N, h, w, 3)`` uint8 RGB, the frames ``depth`` belongs to, in recording
            order (consecutive frames of one camera).
        depth: ``(N, h, w)`` the network's depth, metres (read with ``K``).
        K: ``(3, 3)`` intrinsics of ``frames``, pixels.
        geometry_frames: the same N frames at the size to triangulate at (finer angles;
            each frame's depth reduced to ``(h, w)`` by a block median as it is made where
            ``H, W`` are integer multiples of ``h, w``, nearest otherwise): an ``(N, H, W,
            3)`` array or an iterable of ``(H, W, 3)`` frames read once (e.g. decoded again
            from the file, :func:`kept_frames`: only ``2 * offset + 1`` of them are held);
            None: ``frames``.
        pair_flow: the triangulation pairs' flow provider (e.g.
            :class:`~unihoi_ros.flow.raft.RAFTFlow`); None: OpenCV DIS ``medium``.
        settings: :class:`RefineSettings`.
        progress: a tqdm bar over the frames.
        flows: ``frames``' :class:`~unihoi_ros.geometry.multiview.PairFlows` for the scale
            chain and the fusion (None: made here); pass one to reuse its cached
            consecutive flows afterwards (e.g. the pose graph's pairs one frame apart).

    Returns:
        ``(refined (N, h, w) float32 metres, geometric (N, h, w) bool)``: the refined
        depth and where it is the triangulated one (elsewhere the network's).

    Raises:
        ValueError: ``frames`` and ``depth`` differ in size, or ``geometry_frames`` has
            another number of frames.
    """
    import itertools

    s = settings or RefineSettings()
    frames = np.asarray(frames)
    depth = np.asarray(depth, np.float32)
    if frames.shape[:3] != depth.shape:
        raise ValueError(f"frames {frames.shape} and depth {depth.shape} differ in size")
    hw = frames.shape[1:3]
    geo_iter = iter(frames if geometry_frames is None else geometry_frames)
    first = next(geo_iter, None)
    if first is None:
        raise ValueError("geometry_frames and frames differ in length (no geometry frame)")
    geo_K = scale_intrinsics(K, hw, first.shape[:2])
    geo, _ = geometric_depths(itertools.chain([first], geo_iter), geo_K, s.offset, s.two_view,
                              progress, pair_flow, reduce=lambda d: block_median(d, hw),
                              total=len(frames), shorter_pairs=s.shorter_pairs)
    if len(geo) != len(frames):
        raise ValueError(f"geometry_frames ({len(geo)}) and frames ({len(frames)}) differ in "
                         "length")
    if flows is None:
        flows = PairFlows(frames)
    elif flows.frames.shape != frames.shape:
        raise ValueError(f"flows are of frames {flows.frames.shape}, not {frames.shape}")
    metric = scaled_geometry(geo, depth, flows, s.scale_anchor, s.fuse_radius)
    geometric = np.isfinite(metric) & (metric > 0)
    return np.where(geometric, metric, depth).astype(np.float32), geometric


def kept_frames(stamped_frames, stamps_ns, size_hw: tuple[int, int]):
    """The frames a pass kept, read again and resized: for each of ``stamps_ns`` (the
    pass's stamps, in stream order) the first frame of ``stamped_frames`` (``(stamp_ns,
    rgb (H, W, 3) uint8)``, the same stream) with that stamp after the previous one's,
    resized to ``size_hw`` (area). A frame the pass dropped (a repeated or older stamp) is
    skipped.

    Raises:
        ValueError: the stream ended before every stamp was found (it is not the same).
    """
    import cv2

    wanted = iter(int(t) for t in stamps_ns)
    target = next(wanted, None)
    for stamp, rgb in stamped_frames:
        if target is None:
            return
        if int(stamp) == target:
            yield cv2.resize(rgb, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_AREA)
            target = next(wanted, None)
    if target is not None:
        raise ValueError(f"the recording read again lacks the frame stamped {target} ns")


class RefinedDepthBackend(Backend):
    """A backend that answers with a recording's refined depth (:func:`refine_depths`), for
    a second pass of the pipeline over the same frames (poses, clouds, tracks and outputs
    from the refined depth).

    Frames are recognised by their pixels (a hash of the RGB bytes, as the oracle
    backend); byte-identical frames (a repeated video frame) are answered in their order;
    a frame of another recording raises ``KeyError``.

    Args:
        frames: ``(N, h, w, 3)`` uint8 the frames exactly as they will be fed.
        depth: ``(N, h, w)`` metres.
        K: ``(3, 3)`` intrinsics of ``frames``, pixels.
        confidence: ``(N, h, w)`` in [0, 1]
            (:func:`~unihoi_ros.geometry.multiview.refined_confidence`).
    """

    name = "refined depth"
    device = "cpu"
    num_frames = 4
    decodes_last = True

    def __init__(self, frames: np.ndarray, depth: np.ndarray, K: np.ndarray,
                 confidence: np.ndarray) -> None:
        self._indices: dict[bytes, list[int]] = {}
        for i, f in enumerate(frames):
            self._indices.setdefault(_frame_key(f), []).append(i)
        self._served: dict[bytes, int] = {}  # per key: how many of its frames were encoded
        self._depth = np.asarray(depth, np.float32)
        self._K = np.asarray(K, np.float64)
        self._confidence = np.asarray(confidence, np.float32)

    def encode(self, rgb: np.ndarray) -> int:
        """Index of ``rgb`` ``(h, w, 3)`` uint8 among the frames (each encoding of a
        repeated frame takes the next of its copies; the last one once all were taken)."""
        key = _frame_key(rgb)
        indices = self._indices[key]
        n = self._served.get(key, 0)
        self._served[key] = n + 1
        return indices[min(n, len(indices) - 1)]

    def infer_window(self, features, rgbs, flows_bwd, decode_last=None) -> WindowPrediction:
        idx = list(features)
        first = 0 if decode_last is None else len(idx) - int(decode_last)
        idx = idx[first:]
        return WindowPrediction(depth=self._depth[idx], K=self._K,
                                confidence=self._confidence[idx[1:]], first_frame=first)


@dataclass
class NetworkPass:
    """What the first pass over a recording keeps (:func:`network_pass`).

    Attributes:
        stamps_ns: ``(N,)`` int64, the frames' stamps in stream order.
        frames: ``(N, h, w, 3)`` uint8 as processed.
        depth: ``(N, h, w)`` metres; confidence ``(N, h, w)`` in [0, 1]; K ``(3, 3)`` the
            stream's (median of the frames').
        geometry_hw: the triangulation's frame size (:func:`geometry_size`); the frames at
            that size are not kept (read again: :func:`kept_frames`).
    """

    stamps_ns: np.ndarray
    frames: np.ndarray
    depth: np.ndarray
    confidence: np.ndarray
    K: np.ndarray
    geometry_hw: tuple[int, int]


def network_pass(reconstructor, stamped_frames, progress: bool = False,
                 total: int | None = None) -> NetworkPass:
    """Stream ``stamped_frames`` (``(stamp_ns, rgb (H, W, 3) uint8, K (3, 3) or None)``,
    the K a known camera's at the frame's size) through ``reconstructor`` and keep what
    :func:`refine_depths` needs (the frames at the triangulation's size are read again
    from the recording, not kept: :func:`kept_frames`).

    Raises:
        ValueError: no frame was reconstructed.
    """
    from tqdm import tqdm

    from unihoi_ros.pipeline.config import processing_size

    results, geometry_hw = [], None
    for stamp, rgb, K in tqdm(stamped_frames, total=total, desc="network pass",
                              unit="frame", disable=not progress):
        if geometry_hw is None:
            geometry_hw = geometry_size(processing_size(reconstructor.config, rgb.shape[:2]),
                                        rgb.shape[:2])
        outcome = reconstructor.feed(int(stamp), rgb, K=K, build_points=False)
        results.extend(outcome.results)
    results.extend(reconstructor.flush())
    if not results:
        raise ValueError("no frame could be reconstructed in the network pass")
    frame_K = np.stack([r.K for r in results])
    K = np.median(frame_K, axis=0)
    # Each frame's depth was read with its own K (a predicted K moves along the stream):
    # read it with the one K kept, as the node reads it with a known K.
    depth = np.stack([r.depth for r in results]) * (K[0, 0] / frame_K[:, 0, 0])[:, None, None]
    return NetworkPass(np.array([r.stamp_ns for r in results], np.int64),
                       np.stack([r.rgb for r in results]), depth.astype(np.float32),
                       np.stack([r.confidence for r in results]).astype(np.float32), K,
                       geometry_hw)
