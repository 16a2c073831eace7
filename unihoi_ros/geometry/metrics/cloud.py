"""Point-cloud metrics (non-finite rows dropped): with ``d(x, Y) = min_y |x - y|``,
``chamfer = (mean_a d(a, B) + mean_b d(b, A)) / 2`` (metres; ``squared=True`` uses
``d^2``); the authors' kaolin number is ``2 * chamfer_distance(pred, gt, squared=True)``.
F-score at threshold t: precision = share of pred points with ``d(pred, GT) <= t``,
recall = share of GT points with ``d(gt, Pred) <= t``, ``F = 2PR / (P + R)`` (0 when
both are 0). An empty cloud gives NaN.
"""

from __future__ import annotations

import math

import numpy as np

from .common import ArrayLike, _numpy64

__all__ = ["chamfer_distance", "fscore", "nearest_distances", "pointcloud_metrics"]


def _cloud(x: ArrayLike, name: str) -> np.ndarray:
    """``(N, 3)`` float64 with non-finite rows dropped."""
    c = _numpy64(x)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"{name} must be (N, 3), got {c.shape}")
    return c[np.isfinite(c).all(axis=1)]


def nearest_distances(src: ArrayLike, dst: ArrayLike, workers: int = 1) -> np.ndarray:
    """Distance from each ``src (N, 3)`` point to its nearest ``dst (M, 3)`` point.

    Returns:
        ``(N,)`` metres (after dropping non-finite rows of both).
    """
    from scipy.spatial import cKDTree  # lazy: keeps `import unihoi_ros.geometry` light

    s, d = _cloud(src, "src"), _cloud(dst, "dst")
    if len(d) == 0:
        return np.full(len(s), np.inf)
    return cKDTree(d).query(s, k=1, workers=workers)[0]


def chamfer_distance(a: ArrayLike, b: ArrayLike, squared: bool = False, workers: int = 1) -> float:
    """Symmetric Chamfer distance: mean of the two directed mean NN distances.

    Args:
        a: ``(N, 3)`` points, metres.
        b: ``(M, 3)`` points, metres.
        squared: average squared distances instead (m^2).
        workers: threads for the KD-tree queries.

    Returns:
        ``(mean_a d(a, B) + mean_b d(b, A)) / 2``, NaN if a cloud is empty.
    """
    a, b = _cloud(a, "a"), _cloud(b, "b")
    if len(a) == 0 or len(b) == 0:
        return math.nan
    d_ab = nearest_distances(a, b, workers)
    d_ba = nearest_distances(b, a, workers)
    k = 2 if squared else 1
    return float(0.5 * (np.mean(d_ab**k) + np.mean(d_ba**k)))


def fscore(
    pred: ArrayLike,
    gt: ArrayLike,
    thresholds: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1),
    workers: int = 1,
) -> dict[float, dict[str, float]]:
    """Precision, recall and F-score at distance thresholds.

    Args:
        pred: ``(N, 3)`` predicted points, metres.
        gt: ``(M, 3)`` ground-truth points, metres.
        thresholds: distances in metres; a point within ``<= t`` of the other cloud hits.
        workers: threads for the KD-tree queries.

    Returns:
        ``{t: {"precision", "recall", "fscore"}}`` (values in [0, 1]; NaN for empty clouds).
    """
    p, g = _cloud(pred, "pred"), _cloud(gt, "gt")
    if len(p) == 0 or len(g) == 0:
        nan = {"precision": math.nan, "recall": math.nan, "fscore": math.nan}
        return {float(t): dict(nan) for t in thresholds}
    d_pg = nearest_distances(p, g, workers)
    d_gp = nearest_distances(g, p, workers)
    out = {}
    for t in thresholds:
        prec, rec = float(np.mean(d_pg <= t)), float(np.mean(d_gp <= t))
        f = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
        out[float(t)] = {"precision": prec, "recall": rec, "fscore": f}
    return out


def pointcloud_metrics(
    pred: ArrayLike,
    gt: ArrayLike,
    thresholds: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1),
    workers: int = 1,
) -> dict[str, float]:
    """Chamfer distance and F-scores in one flat dict.

    Returns:
        ``{"chamfer": m, "fscore@<t>", "precision@<t>", "recall@<t>" for each t}``.
    """
    out = {"chamfer": chamfer_distance(pred, gt, workers=workers)}
    for t, vals in fscore(pred, gt, thresholds, workers).items():
        for key, value in vals.items():
            out[f"{key}@{t:g}"] = value
    return out
