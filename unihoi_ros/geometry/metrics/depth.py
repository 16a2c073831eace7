"""Depth metrics, over valid pixels (``gt`` finite and > 0, ``pred`` finite, and the
optional mask): ``abs_rel = mean(|pred - gt| / gt)``, ``rmse = sqrt(mean((pred - gt)^2))``
(m), ``delta1 = mean(max(pred / gt, gt / pred) < 1.25)`` (``pred <= 0`` counts as a miss).
Non-finite predictions are excluded, not penalised: check ``coverage`` in
:func:`depth_metrics`. No valid pixel gives NaN.
"""

from __future__ import annotations

import math

import numpy as np

from .common import ArrayLike, _numpy64

__all__ = ["abs_rel", "delta1", "depth_metrics", "rmse"]


def _depth_pairs(
    pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the valid ``(pred, gt)`` values as 1-D float64 arrays."""
    p, g = _numpy64(pred), _numpy64(gt)
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} differ in shape")
    valid = np.isfinite(g) & (g > 0) & np.isfinite(p)
    if mask is not None:
        valid &= np.broadcast_to(_numpy64(mask) != 0, valid.shape)
    return p[valid], g[valid]


def abs_rel(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean absolute relative depth error.

    Args:
        pred: ``(..., H, W)`` predicted depth, metres.
        gt: same shape, ground-truth depth, metres (invalid: non-finite or <= 0).
        mask: optional, broadcastable to ``gt``; nonzero = evaluate.

    Returns:
        ``mean(|pred - gt| / gt)`` over valid pixels (unitless), NaN if none.
    """
    p, g = _depth_pairs(pred, gt, mask)
    return float(np.mean(np.abs(p - g) / g)) if g.size else math.nan


def rmse(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Root-mean-square depth error, metres (arguments as :func:`abs_rel`)."""
    p, g = _depth_pairs(pred, gt, mask)
    return float(np.sqrt(np.mean((p - g) ** 2))) if g.size else math.nan


def _delta(p: np.ndarray, g: np.ndarray, threshold: float) -> float:
    with np.errstate(divide="ignore"):
        ratio = np.where(p > 0, np.maximum(p / g, g / np.where(p > 0, p, 1.0)), np.inf)
    return float(np.mean(ratio < threshold)) if g.size else math.nan


def delta1(
    pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None, threshold: float = 1.25
) -> float:
    """Share of valid pixels with ``max(pred/gt, gt/pred) < threshold`` (in [0, 1]).

    Arguments as :func:`abs_rel`; non-positive predictions count as misses.
    """
    p, g = _depth_pairs(pred, gt, mask)
    return _delta(p, g, threshold)


def depth_metrics(
    pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None
) -> dict[str, float]:
    """All depth metrics at once.

    Returns:
        ``{"abs_rel", "rmse" (m), "delta1", "num_valid", "coverage"}``; coverage is the
        share of valid-ground-truth pixels where the prediction is finite.
    """
    p, g = _depth_pairs(pred, gt, mask)
    gt_ok = _numpy64(gt)
    gt_valid = np.isfinite(gt_ok) & (gt_ok > 0)
    if mask is not None:
        gt_valid &= np.broadcast_to(_numpy64(mask) != 0, gt_valid.shape)
    n_gt = int(gt_valid.sum())
    return {
        "abs_rel": float(np.mean(np.abs(p - g) / g)) if g.size else math.nan,
        "rmse": float(np.sqrt(np.mean((p - g) ** 2))) if g.size else math.nan,
        "delta1": _delta(p, g, 1.25),
        "num_valid": float(g.size),
        "coverage": g.size / n_gt if n_gt else math.nan,
    }
