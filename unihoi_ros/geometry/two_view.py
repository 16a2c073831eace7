"""Depth from two views of a static scene: relative pose from flow, then triangulation.

The depth teacher of ``unihoi adapt`` (:mod:`unihoi_ros.train.adapt`) where no network
teacher exists: the multi-view geometry of the video itself. For a frame ``a`` and a frame
``b`` a few frames away, with the camera's intrinsics ``K`` known:

1. :func:`relative_pose_essential`: the essential matrix from flow correspondences
   (OpenCV's five-point solver in RANSAC, then the cheirality test of ``recoverPose``):
   ``x_b = R x_a + t`` with ``|t| = 1`` (two views fix translation up to scale).
2. :func:`triangulate_rays`: every correspondence's depth in both views by the midpoint of
   the two rays (closed-form 2x2 least squares per pixel), the parallax angle between the
   rays and the reprojection error of the midpoint in both frames.
3. :func:`two_view_depth`: a dense flow field in, a depth map of frame ``a`` out (unit
   baseline scale), keeping the pixels with enough parallax (depth error grows as
   ``1 / parallax``), a small reprojection error and an epipolar inlier.
4. :func:`fuse_depths`: several such maps of one frame (against frames before and after),
   brought to a common scale by the median ratio on shared pixels, fused by the per-pixel
   median; pixels whose estimates disagree are dropped.

The scale of the result is arbitrary (a unit baseline); the caller sets it (the adapt
teacher: the base model's median). Pure numpy + OpenCV; conventions of
:mod:`unihoi_ros.geometry.camera` (optical axes, z-depth, pixel centres at integer
``(u, v) = (column, row)``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from unihoi_ros.geometry.reductions import nanmedian_first_axis

__all__ = ["TwoViewSettings", "fuse_depths", "relative_pose_essential", "triangulate_rays",
           "two_view_depth"]


@dataclass(frozen=True)
class TwoViewSettings:
    """Thresholds of :func:`two_view_depth`.

    Attributes:
        ransac_px: RANSAC threshold of the essential matrix (Sampson distance), pixels.
        pose_points: correspondences drawn (even grid over the valid pixels) for the pose.
        min_valid_fraction: a pair whose flow is trusted on less of the frame than this
            gives no depth: where the flow fails on the scene (motion too large), the few
            pixels left can be a hand that moves with the head, and the pose is fitted to
            it (measured on HOI4D frames 52 apart: 4-8 % trusted, pose inliers 0.5-0.6,
            depth "kept" on the arm; good pairs there and on 7-Scenes: 60-86 %).
        min_inlier_fraction: a pose with fewer RANSAC inliers than this is refused.
        min_parallax_deg: pixels whose two rays meet at a smaller angle are dropped.
        max_reprojection_px: pixels whose midpoint reprojects farther (either view) are
            dropped.
        min_median_parallax_deg: a pair whose median parallax is below this (too little
            translation: the pose's translation direction is noise) gives no depth.
    """

    ransac_px: float = 1.0
    pose_points: int = 2000
    min_valid_fraction: float = 0.3
    min_inlier_fraction: float = 0.5
    min_parallax_deg: float = 1.0
    max_reprojection_px: float = 1.0
    min_median_parallax_deg: float = 1.0


def _rays(uv: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``(N, 3)`` rays ``K^-1 [u, v, 1]`` (z = 1) of pixels ``uv (N, 2)``."""
    x = (uv[:, 0] - K[0, 2]) / K[0, 0]
    y = (uv[:, 1] - K[1, 2]) / K[1, 1]
    return np.stack([x, y, np.ones_like(x)], axis=-1)


def relative_pose_essential(
    uv_a: np.ndarray, uv_b: np.ndarray, K: np.ndarray, ransac_px: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pose of view ``b`` relative to view ``a`` from pixel correspondences.

    Args:
        uv_a, uv_b: ``(N, 2)`` float pixels of the same scene points in frames a and b.
        K: ``(3, 3)`` intrinsics of both frames, pixels.
        ransac_px: RANSAC threshold, pixels.

    Returns:
        ``(R (3, 3), t (3,), inliers (N,) bool)`` with ``x_b = R x_a + t`` for points in
        camera coordinates and ``|t| = 1``; ``inliers`` all False when no pose is found
        (also where OpenCV refuses the points as degenerate: identical frames).
    """
    import cv2

    a = np.ascontiguousarray(uv_a, np.float64)
    b = np.ascontiguousarray(uv_b, np.float64)
    none = (np.eye(3), np.zeros(3), np.zeros(len(a), bool))
    if len(a) < 8:
        return none
    try:
        E, mask = cv2.findEssentialMat(a, b, np.asarray(K, np.float64), method=cv2.RANSAC,
                                       prob=0.999, threshold=float(ransac_px))
    except cv2.error:  # degenerate correspondences, e.g. none moves (a repeated frame)
        return none
    if E is None or E.shape != (3, 3):  # several solutions stacked, or none: degenerate
        return none
    _, R, t, pose_mask = cv2.recoverPose(E, a, b, np.asarray(K, np.float64),
                                         mask=mask.copy())
    inliers = (pose_mask.ravel() > 0)
    return R, t.ravel() / max(np.linalg.norm(t), 1e-12), inliers


def _dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of ``(N, 3)`` arrays, summed in the order ``.sum(-1)`` sums
    them (the same bits), without its slow reduction over a 3-long axis."""
    return a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1] + a[:, 2] * b[:, 2]


def triangulate_rays(
    uv_a: np.ndarray, uv_b: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Midpoint triangulation of correspondences under ``x_b = R x_a + t``.

    Args:
        uv_a, uv_b: ``(N, 2)`` pixels in frames a and b.
        K: ``(3, 3)`` intrinsics, pixels.
        R, t: the pose of :func:`relative_pose_essential` (``t`` in the result's units).

    Returns:
        ``(depth_a (N,), depth_b (N,), parallax_deg (N,), reprojection_px (N,))``: the
        midpoint's z in each camera (units of ``t``; <= 0 behind a camera), the angle
        between the two rays, and the larger of its two reprojection errors.
    """
    ra = _rays(uv_a, K) @ R.T  # ray of a, in b's axes
    rb = _rays(uv_b, K)
    aa, bb, ab = _dot3(ra, ra), _dot3(rb, rb), _dot3(ra, rb)
    at, bt = ra @ t, rb @ t
    det = aa * bb - ab * ab
    det = np.where(np.abs(det) < 1e-15, np.nan, det)
    # min |z_a ra + t - z_b rb|^2 over (z_a, z_b): the 2x2 normal equations.
    za = (ab * bt - bb * at) / det
    zb = (aa * bt - ab * at) / det
    mid_b = 0.5 * (za[:, None] * ra + t + zb[:, None] * rb)  # in camera b
    mid_a = (mid_b - t) @ R  # R^T (x - t), in camera a
    cosang = ab / np.sqrt(aa * bb)
    parallax = np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0)))

    def reproj(p: np.ndarray, uv: np.ndarray) -> np.ndarray:
        z = np.where(p[:, 2] > 1e-12, p[:, 2], np.nan)
        u = K[0, 0] * p[:, 0] / z + K[0, 2]
        v = K[1, 1] * p[:, 1] / z + K[1, 2]
        return np.hypot(u - uv[:, 0], v - uv[:, 1])

    err = np.fmax(reproj(mid_a, uv_a), reproj(mid_b, uv_b))
    return mid_a[:, 2], mid_b[:, 2], parallax, err


def _grid_rows(valid: np.ndarray, count: int) -> np.ndarray:
    """Flat indices of about ``count`` valid pixels on an even grid."""
    idx = np.flatnonzero(valid.ravel())
    if len(idx) <= count:
        return idx
    return idx[np.linspace(0, len(idx) - 1, count).round().astype(np.int64)]


def two_view_depth(
    flow_ab: np.ndarray, valid: np.ndarray, K: np.ndarray,
    settings: TwoViewSettings = TwoViewSettings(),
) -> tuple[np.ndarray, dict]:
    """Depth of frame a (unit baseline) from the dense flow a -> b of a static scene.

    Args:
        flow_ab: ``(H, W, 2)`` pixels: pixel ``(u, v)`` of frame a is seen at
            ``(u, v) + flow_ab[v, u]`` in frame b.
        valid: ``(H, W)`` bool, the flow's trusted pixels (forward-backward check; static
            scene).
        K: ``(3, 3)`` intrinsics of both frames at this size, pixels.
        settings: thresholds (:class:`TwoViewSettings`).

    Returns:
        ``(depth (H, W) float32, info)``: z-depth of frame a in units of the baseline
        ``|t|``, NaN where no depth is kept; ``info``: ``ok``, ``R``, ``t``,
        ``valid_fraction``, ``inlier_fraction``, ``median_parallax_deg``, ``kept``
        (fraction of pixels with a depth), ``reason`` when not ok.
    """
    h, w = valid.shape
    depth = np.full((h, w), np.nan, np.float32)
    info: dict = {"ok": False, "kept": 0.0, "valid_fraction": float(valid.mean()),
                  "inlier_fraction": 0.0, "median_parallax_deg": 0.0}
    vv, uu = np.mgrid[0:h, 0:w]
    uv_a = np.stack([uu, vv], -1).reshape(-1, 2).astype(np.float64)
    uv_b = uv_a + flow_ab.reshape(-1, 2).astype(np.float64)
    if info["valid_fraction"] < settings.min_valid_fraction:
        info["reason"] = (f"flow trusted on {info['valid_fraction']:.2f} of the frame < "
                          f"{settings.min_valid_fraction}")
        return depth, info
    rows = _grid_rows(valid, settings.pose_points)
    if len(rows) < 16:
        info["reason"] = "too few valid flow pixels"
        return depth, info
    R, t, inl = relative_pose_essential(uv_a[rows], uv_b[rows], K, settings.ransac_px)
    frac = float(inl.mean()) if len(inl) else 0.0
    info.update(R=R, t=t, inlier_fraction=frac)
    if frac < settings.min_inlier_fraction:
        info["reason"] = f"essential matrix inliers {frac:.2f} < {settings.min_inlier_fraction}"
        return depth, info
    sel = np.flatnonzero(valid.ravel())
    za, zb, par, err = triangulate_rays(uv_a[sel], uv_b[sel], K, R, t)
    med_par = float(np.nanmedian(par[rows_in(sel, rows)])) if len(sel) else 0.0
    info["median_parallax_deg"] = med_par
    if not med_par >= settings.min_median_parallax_deg:
        info["reason"] = f"median parallax {med_par:.2f} deg < {settings.min_median_parallax_deg}"
        return depth, info
    keep = ((za > 0) & (zb > 0) & (par >= settings.min_parallax_deg)
            & (err <= settings.max_reprojection_px))
    flat = depth.reshape(-1)
    flat[sel[keep]] = za[keep]
    info.update(ok=True, kept=float(keep.sum()) / (h * w))
    return depth, info


def rows_in(sel: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions in the sorted index array ``sel`` of the entries ``rows`` (a subset)."""
    return np.searchsorted(sel, rows)


def fuse_depths(
    depths: list[np.ndarray], max_spread: float = 0.05, min_views: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """One depth map from several two-view maps of the same frame, each at its own scale.

    Args:
        depths: ``(H, W)`` maps, NaN where empty; the first non-empty one sets the scale.
        max_spread: a pixel whose estimates (after scaling) differ from their median by more
            than this fraction is dropped.
        min_views: a pixel needs at least this many estimates.

    Returns:
        ``(depth (H, W) float32, views (H, W) int)``: the fused map (NaN where dropped) and
        how many estimates each pixel had.
    """
    maps = [d for d in depths if np.isfinite(d).any()]
    if not maps:
        shape = depths[0].shape if depths else (0, 0)
        return np.full(shape, np.nan, np.float32), np.zeros(shape, np.int64)
    ref = maps[0]
    scaled = [ref]
    for d in maps[1:]:
        both = np.isfinite(ref) & np.isfinite(d)
        if both.sum() < 50:
            continue
        scaled.append(d * np.median(ref[both] / d[both]))
    stack = np.stack(scaled)
    views = np.isfinite(stack).sum(0)
    if len(scaled) > 1:
        with warnings.catch_warnings():  # all-NaN pixels stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            med = nanmedian_first_axis(stack)
            dev = np.nanmax(np.abs(stack / med - 1.0), axis=0)
        med = np.where((dev <= max_spread) | (views < 2), med, np.nan)
    else:
        med = stack[0]
    med = np.where(views >= min_views, med, np.nan)
    return med.astype(np.float32), views
