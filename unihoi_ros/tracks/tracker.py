"""Streaming point tracker: one :class:`FrameResult` in, the current 3D tracks out.

Meant for the node's ``tracks`` PointCloud2 (x, y, z in the world frame, ``id`` uint32,
``dynamic`` uint8, ``rgb``): :class:`TrackSet` holds exactly those arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unihoi_ros.pipeline.results import FrameResult
from unihoi_ros.tracks.config import TrackerConfig
from unihoi_ros.tracks.dense import dense_flow_for, reusable_flow
from unihoi_ros.tracks.lifting import sample_depth, sample_nearest
from unihoi_ros.tracks.seeding import cell_candidates, choose_seeds, free_cells
from unihoi_ros.tracks.state import Frame, TrackArrays


@dataclass
class TrackSet:
    """The tracks after one frame (M tracks; world frame of the stream, metres).

    Attributes:
        stamp_ns: the frame's stamp.
        ids: ``(M,)`` uint32, stable for a track's life, never reused within a stream.
        xyz: ``(M, 3)`` float64 world position (an anchored point's anchor; a following
            point's latest lift; the last estimate while not seen).
        dynamic: ``(M,)`` bool, seen to move against the scene (hands, moving objects):
            set only on motion evidence that a static point's measurements cannot produce
            (rules in :mod:`unihoi_ros.tracks.state`), for the rest of the track's life.
        rgb: ``(M, 3)`` uint8 colour at the last sighting.
        uv: ``(M, 2)`` float64 pixel in the current frame (the last one while not seen).
        visible: ``(M,)`` bool, seen in the current frame.
        age: ``(M,)`` int32 frames since the track started.
        following: ``(M,)`` bool, positioned by its latest lift (dynamic, or seeded where
            the network's confidence is low and not yet seen to move); False: held at its
            static anchor.
    """

    stamp_ns: int
    ids: np.ndarray
    xyz: np.ndarray
    dynamic: np.ndarray
    rgb: np.ndarray
    uv: np.ndarray
    visible: np.ndarray
    age: np.ndarray
    following: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class PointTracker:
    """Follows up to ``config.max_tracks`` points through a stream of results.

    Per :meth:`update`: every track moves from the previous frame (rules in
    :mod:`unihoi_ros.tracks.state`); tracks unseen for more than ``max_lost_frames``
    frames, or never lifted, are dropped; free grid cells (``min_distance_px``) get new
    tracks, cells where the confidence is below ``min_confidence`` first (they follow their
    lifts) up to ``dynamic_share`` of the bound, so most new tracks go where the scene may
    move. A new
    image size or a stamp that does not increase starts a new stream (all tracks dropped;
    ids keep counting).
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._dense = dense_flow_for(self.config)
        self._next_id = 0
        self.reset()

    def reset(self) -> None:
        """Drop every track (a new stream); ids keep counting."""
        self._state = TrackArrays()
        self._ids = np.zeros(0, np.uint32)
        self._age = np.zeros(0, np.int32)
        self._prev: Frame | None = None
        self._prev_stamp: int | None = None

    def update(self, result: FrameResult,
               flow_bwd: tuple[np.ndarray, int] | None = None) -> TrackSet:
        """Advance the tracks to ``result`` (the stream's next frame) and return them.

        ``flow_bwd``: ``(flow, prev_stamp_ns)``, a dense flow ``(H, W, 2)`` float32 pixels
        from ``result``'s frame to the frame stamped ``prev_stamp_ns`` (the reconstructor's
        own: :meth:`~unihoi_ros.pipeline.reconstructor.Reconstructor.backward_flow`). When
        that frame is the one the tracks come from, it serves as the forward-backward
        check's backward flow and only the forward flow is computed: half the tracker's
        cost, track figures unchanged (bench/TRACKS.md, "Reusing the pipeline's flow").
        Otherwise (None, another frame, another size) both flows are computed here.
        """
        c = self.config
        frame = Frame.of(result, c)
        prev = self._prev
        if prev is not None and (
            (prev.height, prev.width) != (frame.height, frame.width)
            or int(result.stamp_ns) <= int(self._prev_stamp)
        ):
            self.reset()
            prev = None
        st = self._state
        if prev is not None and len(st):
            flows = None
            if self._dense is not None:
                bwd = reusable_flow(flow_bwd, self._prev_stamp, (frame.height, frame.width))
                flows = (self._dense(prev.grey, frame.grey),
                         self._dense(frame.grey, prev.grey) if bwd is None else bwd)
            st.advance(prev, frame, c, flows)
            self._age += 1
        keep = (st.lost <= c.max_lost_frames) & np.all(np.isfinite(st.xyz), axis=1)
        st.keep(keep)
        self._ids, self._age = self._ids[keep], self._age[keep]
        self._seed(frame)
        self._prev, self._prev_stamp = frame, int(result.stamp_ns)
        return TrackSet(
            stamp_ns=int(result.stamp_ns), ids=self._ids.copy(), xyz=st.xyz.copy(),
            dynamic=st.dynamic.copy(), rgb=st.rgb.copy(), uv=st.uv.copy(),
            visible=st.visible.copy(), age=self._age.copy(), following=st.follow.copy(),
        )

    def _seed(self, frame: Frame) -> None:
        c, st = self.config, self._state
        room = c.max_tracks - len(st)
        if room <= 0:
            return
        cell = max(2, round(c.min_distance_px))
        cand, score = cell_candidates(frame.grey, cell)
        flat = cand.reshape(-1, 2)
        z = sample_depth(frame.depth, flat, c.edge_tolerance).reshape(score.shape)
        conf = sample_nearest(frame.confidence, flat).reshape(score.shape)
        # Only the tracks seen now hold their cell: a lost track's pixel is stale.
        free = free_cells(st.uv[st.visible], frame.height, frame.width, cell)
        num_dyn = int(c.dynamic_share * c.max_tracks) - int(np.sum(st.follow))
        uv = choose_seeds(cand, free, conf < c.min_confidence,
                          np.isfinite(z) & (score > 1e-6), num_dyn, room)
        if uv.shape[0] == 0:
            return
        st.seed(frame, uv, c)
        n = uv.shape[0]
        self._ids = np.concatenate(
            [self._ids, np.arange(self._next_id, self._next_id + n, dtype=np.uint32)])
        self._age = np.concatenate([self._age, np.zeros(n, np.int32)])
        self._next_id += n
