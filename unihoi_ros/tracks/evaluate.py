"""Long-term 3D tracking accuracy against a synthetic clip's exact tracks, and the
dynamic flag against its exact motion.

The score (TAP-Vid-3D's APD style, with fixed thresholds): after one robust metric-scale
fit per clip — the median, over visible points, of the ratio of their ground-truth to
predicted distances from the first camera (the stream's world origin) — the fraction of
visible ``(frame, point)`` entries whose predicted 3D position lies within 2 / 5 / 10 cm of
the truth. A NaN prediction counts as a miss. Dynamic points (on hands, forearms and the
object) and static points are scored apart. The no-tracking baseline holds each query
point where it was first seen (its lift in the query frame) for the whole clip.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unihoi_ros.pipeline.results import FrameResult
from unihoi_ros.tracks.config import TrackerConfig
from unihoi_ros.tracks.lifting import lift, sample_depth
from unihoi_ros.tracks.queries import _check_queries, track_queries
from unihoi_ros.tracks.tracker import PointTracker

#: Distance thresholds of the score, metres.
THRESHOLDS_M = (0.02, 0.05, 0.10)


def ground_truth_tracks(seq, size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The exact tracks of a :class:`unihoi_ros.sim.Sequence` in the stream's world frame.

    Args:
        seq: the clip.
        size: ``(height, width)`` of the results' images, to express the queries in;
            None for the clip's size.

    Returns:
        ``xyz`` ``(N, P, 3)`` float64 metres in the first camera's optical frame (the
        stream's world), ``visible`` ``(N, P)`` bool, ``dynamic`` ``(P,)`` bool (on a
        body that can move), and ``queries`` ``(P, 3)`` rows ``(i, u, v)``.
    """
    tr = seq.tracks
    p = tr.visible.shape[1]
    body = tr.body.astype(np.int64)
    t_wb = seq.T_world_body[:, body]  # (N, P, 4, 4)
    world = np.einsum("npij,pj->npi", t_wb[..., :3, :3], tr.points_body) + t_wb[..., :3, 3]
    t0_inv = np.linalg.inv(seq.T_world_cam[0])
    xyz = world @ t0_inv[:3, :3].T + t0_inv[:3, 3]
    qf = tr.query_frame.astype(np.int64)
    # Sampled at pixel centres; the stored float32 projections are off by rounding only.
    uv = np.rint(tr.uv[qf, np.arange(p)].astype(np.float64))
    if size is not None and tuple(size) != (seq.height, seq.width):
        # Pixel centres at integers: scale about the image's outer corner (-0.5, -0.5).
        sx, sy = size[1] / seq.width, size[0] / seq.height
        uv = (uv + 0.5) * np.array([sx, sy]) - 0.5
    queries = np.column_stack([qf.astype(np.float64), uv])
    return {"xyz": xyz, "visible": tr.visible.copy(), "dynamic": body > 0, "queries": queries}


def hold_baseline(results: Sequence[FrameResult], queries: np.ndarray,
                  edge_tolerance: float = 0.05) -> np.ndarray:
    """No tracking: each query point held at its lift in its query frame, ``(N, P, 3)``."""
    n = len(results)
    frames_q, uv_q = _check_queries(queries, n)
    held = np.full((frames_q.shape[0], 3), np.nan)
    for t in np.unique(frames_q):
        sel = frames_q == t
        r = results[t]
        z = sample_depth(r.depth, uv_q[sel], edge_tolerance)
        held[sel] = lift(uv_q[sel], z, np.asarray(r.K, np.float64),
                         np.asarray(r.T_world_cam, np.float64))
    return np.broadcast_to(held, (n, *held.shape)).copy()


def scale_fit(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Robust metric scale: median of ``|gt| / |pred|`` over ``mask`` ``(N, P)`` entries with
    a finite, non-zero prediction (``pred``, ``gt``: ``(N, P, 3)`` metres, distances from
    the world origin = the first camera). 1.0 when no entry qualifies."""
    dp = np.linalg.norm(pred, axis=-1)
    dg = np.linalg.norm(gt, axis=-1)
    ok = mask & np.isfinite(dp) & (dp > 1e-9)
    if not ok.any():
        return 1.0
    return float(np.median(dg[ok] / dp[ok]))


def within_fractions(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray,
                     thresholds: Sequence[float] = THRESHOLDS_M) -> dict[str, float]:
    """Fraction of ``mask`` ``(N, P)`` entries with ``|pred - gt| < threshold`` (NaN: miss),
    keyed ``"2cm"`` and so on, plus ``"count"`` and ``"median_m"`` (median error, metres;
    NaN predictions as infinite); NaN fractions when the mask is empty."""
    err = np.linalg.norm(pred - gt, axis=-1)[mask]
    out: dict[str, float] = {}
    for thr in thresholds:
        key = f"{round(thr * 100):d}cm"
        with np.errstate(invalid="ignore"):
            out[key] = float(np.mean(err < thr)) if err.size else float("nan")
    out["count"] = int(err.size)
    out["median_m"] = float(np.median(np.nan_to_num(err, nan=np.inf))) if err.size else float(
        "nan")
    return out


def score_tracks(pred: np.ndarray, gt: dict[str, np.ndarray],
                 pred_visible: np.ndarray | None = None) -> dict:
    """Scores of predicted tracks ``pred`` ``(N, P, 3)`` against :func:`ground_truth_tracks`'s
    ``gt``: the fitted ``scale`` and, for ``"dynamic"`` and ``"static"`` points apart, the
    fractions within :data:`THRESHOLDS_M`; with ``pred_visible`` ``(N, P)`` also the
    occlusion accuracy (agreement with the true visibility over all entries)."""
    vis, dyn = gt["visible"], gt["dynamic"]
    s = scale_fit(pred, gt["xyz"], vis)
    scaled = pred * s
    out: dict = {"scale": s}
    for name, sel in (("dynamic", dyn), ("static", ~dyn)):
        out[name] = within_fractions(scaled, gt["xyz"], vis & sel[None, :])
    if pred_visible is not None:
        out["occlusion_accuracy"] = float(np.mean(pred_visible == vis))
    return out


def evaluate_tracks(results: Sequence[FrameResult], seq,
                    config: TrackerConfig | None = None) -> dict:
    """Track the clip's ground-truth queries through ``results`` (the clip streamed through
    a reconstructor) and score the tracker and the no-tracking baseline.

    Returns ``{"tracker": score, "hold": score}`` (see :func:`score_tracks`).
    """
    if len(results) != seq.num_frames:
        raise ValueError(f"{len(results)} results for a clip of {seq.num_frames} frames")
    gt = ground_truth_tracks(seq, (results[0].height, results[0].width))
    xyz, vis = track_queries(results, gt["queries"], config)
    hold = hold_baseline(results, gt["queries"])
    return {"tracker": score_tracks(xyz, gt, vis), "hold": score_tracks(hold, gt)}


def flag_scores(results: Sequence[FrameResult], seq, config: TrackerConfig | None = None,
                moved_m: float = 0.05, lag: int = 3, tracker=None) -> dict:
    """The streaming tracker's dynamic flag on a synthetic clip against its exact motion.

    ``results`` (the clip streamed through a reconstructor, at the clip's size) go
    through ``tracker`` (anything with :meth:`PointTracker.update`; None: a new
    ``PointTracker(config)``). Each track's seed pixel is tied to the surface point
    under it (exact depth, the body there); in every later frame where the tracker sees
    the track, the entry is *moving* when that point had already moved more than
    ``moved_m`` metres from its seed position ``lag`` frames earlier (sustained motion:
    what the flag can see after its hysteresis), and *static* when the track's pixel is on
    the static scene.

    Returns ``{"moving_flagged": fraction of moving entries flagged dynamic,
    "static_flagged": fraction of static entries flagged, "moving": count, "static":
    count, "rows_dynamic": fraction of all track rows flagged}`` (NaN fractions when a
    count is 0).
    """
    if (results[0].height, results[0].width) != (seq.height, seq.width):
        raise ValueError("flag_scores needs results at the clip's size")
    tracker = tracker if tracker is not None else PointTracker(config)
    seeds: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
    moving, moving_flagged, static, static_flagged, rows, rows_dyn = 0, 0, 0, 0, 0, 0
    for i, r in enumerate(results):
        ts = tracker.update(r)
        rows += len(ts)
        rows_dyn += int(np.count_nonzero(ts.dynamic))
        uvr = np.clip(np.rint(ts.uv), 0, [seq.width - 1, seq.height - 1])
        uvr = np.nan_to_num(uvr).astype(np.int64)
        for j in np.flatnonzero(ts.age == 0):
            body = int(seq.instance[i, uvr[j, 1], uvr[j, 0]])
            z = sample_depth(seq.depth[i], ts.uv[j:j + 1])
            x_world = np.append(lift(ts.uv[j:j + 1], z, seq.K, seq.T_world_cam[i])[0], 1.0)
            seeds[int(ts.ids[j])] = (body, np.linalg.solve(seq.T_world_body[i, body], x_world),
                                     x_world[:3])
        for j in np.flatnonzero(ts.visible):
            if not seq.dynamic[i, uvr[j, 1], uvr[j, 0]]:
                static += 1
                static_flagged += int(ts.dynamic[j])
                continue
            body, x_body, x_seed = seeds[int(ts.ids[j])]
            then = (seq.T_world_body[max(i - lag, 0), body] @ x_body)[:3]
            if body > 0 and np.linalg.norm(then - x_seed) > moved_m:
                moving += 1
                moving_flagged += int(ts.dynamic[j])
    nan = float("nan")
    return {"moving_flagged": moving_flagged / moving if moving else nan,
            "static_flagged": static_flagged / static if static else nan,
            "moving": moving, "static": static,
            "rows_dynamic": rows_dyn / rows if rows else nan}
