"""Offline entry point: follow query pixels through a whole stream, forwards and backwards."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unihoi_ros.pipeline.results import FrameResult
from unihoi_ros.tracks.config import TrackerConfig
from unihoi_ros.tracks.dense import dense_flow_for
from unihoi_ros.tracks.state import Frame, TrackArrays


def _check_queries(queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    q = np.asarray(queries, np.float64)
    if q.ndim != 2 or q.shape[1] != 3:
        raise ValueError(f"queries must be (P, 3) rows (i, u, v), got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise ValueError("queries must be finite")
    frames = q[:, 0].astype(np.int64)
    if np.any(frames != q[:, 0]) or np.any(frames < 0) or np.any(frames >= n):
        raise ValueError(f"query frame indices must be integers in [0, {n})")
    return frames, q[:, 1:3]


def track_queries(
    results: Sequence[FrameResult],
    queries: np.ndarray,
    config: TrackerConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """3D tracks of query pixels through one stream's results.

    Args:
        results: the stream's :class:`FrameResult` s in order (as ``Reconstructor.push`` /
            ``flush`` return them), all of one image size.
        queries: ``(P, 3)`` float rows ``(i, u, v)``: an index into ``results`` and a pixel
            of that frame (column, row; pixel centres at integers, the results' size).
        config: tracker settings; None for the defaults.

    Returns:
        ``xyz`` ``(N, P, 3)`` float64 metres in the stream's world frame (the frame of
        ``FrameResult.T_world_cam``) for every frame before and after each query frame:
        where a point is not seen, its last estimate (a static point's anchor, a lost
        dynamic point's last sighting); NaN where it was never lifted (no valid depth yet;
        with ``config.fuse_static`` a static point is reported at its mean static lift in
        every frame it is static, including those before its first valid depth);
        ``visible`` ``(N, P)`` bool, the tracker sees the point in that frame.

    Each query is tracked forwards from its frame to the end and backwards to the start,
    with the rules of :mod:`unihoi_ros.tracks.state`. With ``config.fuse_static`` a point
    reported static in a frame is reported at the mean of its static lifts of both passes
    (offline, the whole clip measures a static point, not only the frames up to now).
    """
    cfg = config or TrackerConfig()
    n = len(results)
    frames_q, uv_q = _check_queries(queries, n)
    p = frames_q.shape[0]
    xyz = np.full((n, p, 3), np.nan)
    visible = np.zeros((n, p), bool)
    if n == 0 or p == 0:
        return xyz, visible
    sizes = {(r.height, r.width) for r in results}
    if len(sizes) != 1:
        raise ValueError(f"results must share one image size, got {sorted(sizes)}")
    frames = [Frame.of(r, cfg) for r in results]
    dense = dense_flow_for(cfg)
    flows: dict[tuple[int, int], np.ndarray] = {}

    def pair(a: int, b: int) -> tuple[np.ndarray, np.ndarray] | None:
        if dense is None:
            return None
        for key in ((a, b), (b, a)):
            if key not in flows:
                flows[key] = dense(frames[key[0]].grey, frames[key[1]].grey)
        return flows[(a, b)], flows[(b, a)]

    static = np.zeros((n, p), bool)  # reported as a static point
    lift_sum = np.zeros((p, 3))  # static lifts of both passes (m), see TrackArrays
    lift_count = np.zeros(p, np.int64)
    seed_xyz = np.full((p, 3), np.nan)  # lift at the query pixel, in both passes' sums
    for order in (range(n), range(n - 1, -1, -1)):
        state = TrackArrays()
        owner = np.zeros(0, np.int64)  # query index of each track
        prev = None
        for t in order:
            if prev is not None:
                state.advance(frames[prev], frames[t], cfg, pair(prev, t))
            new = np.flatnonzero(frames_q == t)
            if new.size:
                idx = state.seed(frames[t], uv_q[new], cfg)
                seed_xyz[new] = state.xyz[idx]
                owner = np.concatenate([owner, new])
            if len(state):
                xyz[t, owner] = state.xyz
                visible[t, owner] = state.visible
                static[t, owner] = ~state.follow
            prev = t
        lift_sum[owner] += state.lift_sum
        lift_count[owner] += state.lift_count
    if cfg.fuse_static:
        _pool_static(xyz, static, lift_sum, lift_count, seed_xyz)
    return xyz, visible


def _pool_static(xyz: np.ndarray, static: np.ndarray, lift_sum: np.ndarray,
                 lift_count: np.ndarray, seed_xyz: np.ndarray) -> None:
    """Put every static entry of ``xyz`` ``(N, P, 3)`` (where ``static`` ``(N, P)``) at its
    point's mean static lift over both passes, in place: ``lift_sum`` ``(P, 3)`` (m) and
    ``lift_count`` ``(P,)`` summed over the passes, ``seed_xyz`` ``(P, 3)`` the lift at the
    query pixel (NaN: none), which both passes counted and is counted once here."""
    sums, counts = lift_sum.copy(), lift_count.copy()
    twice = np.all(np.isfinite(seed_xyz), axis=1)
    sums[twice] -= seed_xyz[twice]
    counts[twice] -= 1
    ok = counts > 0
    mean = np.full_like(sums, np.nan)
    mean[ok] = sums[ok] / counts[ok, None]
    sel = static & ok[None, :]
    xyz[sel] = np.broadcast_to(mean, xyz.shape)[sel]
