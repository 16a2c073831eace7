"""Relative camera pose from 3D points of one frame and their pixels in the next (PnP).

Why not only Procrustes: the paper places frame t against frame t-1 with a rigid fit of
both frames' unprojected points (:mod:`unihoi_ros.geometry.procrustes`). That fit needs
the two depth maps to agree in scale and shape. A head camera moves a few millimetres
per frame, while a monocular network's depth for consecutive frames easily differs by
1-3 % (5-15 mm at half a metre): the 3D fit turns that disagreement into translation.
PnP uses the depth of frame t-1 only and the flow's pixel positions in frame t, which
are accurate to a fraction of a pixel, so the scale of frame t's depth cannot leak into
the motion (see bench/RESULTS.md, "pose solver").

Solver: OpenCV's SQPnP inside RANSAC (flow outliers at occlusions and moving hands),
then Levenberg-Marquardt on the inliers' reprojection error (``cv2.solvePnPRefineLM``).
Deterministic: OpenCV's RANSAC seeds its generator the same way on every call.

Inlier threshold: a fixed RANSAC threshold suits one noise level only. On synthetic
frames flow and depth agree to a few tenths of a pixel and a tight threshold (0.5 px)
keeps the best points; on real video the reprojection residuals of good points spread
to 1-2 px (blur, compression, rolling shutter, depth that is only roughly right), and a
0.5 px threshold keeps a small, biased subset. :func:`reprojection_noise_px` measures the
residual spread of a solved pair (a robust sigma over all its rows, outliers included)
and :func:`adaptive_inlier_px` turns it into the next pair's threshold.
"""

from __future__ import annotations

import numpy as np

__all__ = ["adaptive_inlier_px", "relative_pose_pnp", "reprojection_errors",
           "reprojection_noise_px", "smoothed_noise_px"]

#: Correspondences needed for a solve (SQPnP's minimal set is 3; RANSAC wants a margin).
MIN_POINTS = 12


def relative_pose_pnp(
    points_prev: np.ndarray,
    pixels_curr: np.ndarray,
    K_curr: np.ndarray,
    weights: np.ndarray | None = None,
    inlier_px: float = 1.0,
    ransac_iterations: int = 100,
    min_inliers: int = MIN_POINTS,
) -> tuple[np.ndarray, bool, int]:
    """Pose of camera t in camera t-1 from 3D-2D correspondences.

    Args:
        points_prev: ``(N, 3)`` surface points in camera t-1, metres (REP-103 optical).
        pixels_curr: ``(N, 2)`` the same points' pixels ``(u, v)`` in frame t.
        K_curr: ``(3, 3)`` intrinsics of frame t, pixels.
        weights: ``(N,)``; rows with weight <= 0 are left out (PnP itself is unweighted).
        inlier_px: RANSAC reprojection threshold, pixels of frame t.
        ransac_iterations: RANSAC hypotheses.
        min_inliers: fewer usable rows or inliers than this fails the solve.

    Returns:
        ``(T, ok, inliers)``: ``T (4, 4)`` float64 mapping camera-t points into camera t-1
        (``p_prev = T @ p_curr``, the same convention as the Procrustes fits), ``ok``
        False (and T the identity) when the solve is degenerate or fails, and the
        number of inliers used by the final refinement.
    """
    import cv2

    P = np.asarray(points_prev, np.float64).reshape(-1, 3)
    uv = np.asarray(pixels_curr, np.float64).reshape(-1, 2)
    K = np.asarray(K_curr, np.float64).reshape(3, 3)
    usable = np.isfinite(P).all(1) & np.isfinite(uv).all(1) & (P[:, 2] > 0)
    if weights is not None:
        w = np.asarray(weights, np.float64).reshape(-1)
        usable &= np.isfinite(w) & (w > 0)
    P, uv = np.ascontiguousarray(P[usable]), np.ascontiguousarray(uv[usable])
    if len(P) < max(min_inliers, 4) or not np.isfinite(K).all():
        return np.eye(4), False, 0
    try:
        found, rvec, tvec, inliers = cv2.solvePnPRansac(
            P, uv, K, None, iterationsCount=ransac_iterations,
            reprojectionError=float(inlier_px), confidence=0.999, flags=cv2.SOLVEPNP_SQPNP,
        )
        if not found or inliers is None or len(inliers) < min_inliers:
            return np.eye(4), False, 0 if inliers is None else len(inliers)
        idx = inliers[:, 0]
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 50, 1e-12)
        rvec, tvec = cv2.solvePnPRefineLM(P[idx], uv[idx], K, None, rvec, tvec, criteria)
    except cv2.error:
        return np.eye(4), False, 0
    R, _ = cv2.Rodrigues(rvec)
    # (R, t) maps camera t-1 points into camera t; invert for t -> t-1.
    T = np.eye(4)
    T[:3, :3] = R.T
    T[:3, 3] = -R.T @ tvec.reshape(3)
    if not np.isfinite(T).all():
        return np.eye(4), False, 0
    return T, True, len(idx)


def reprojection_errors(
    T: np.ndarray, points_prev: np.ndarray, pixels_curr: np.ndarray, K_curr: np.ndarray
) -> np.ndarray:
    """Pixel distance between each point of camera t-1 seen from camera t and its pixel.

    Args:
        T: ``(4, 4)`` camera t in camera t-1 (``p_prev = T @ p_curr``, as
            :func:`relative_pose_pnp` returns it).
        points_prev: ``(N, 3)`` points in camera t-1, metres.
        pixels_curr: ``(N, 2)`` their observed pixels ``(u, v)`` in frame t.
        K_curr: ``(3, 3)`` intrinsics of frame t, pixels.

    Returns:
        ``(N,)`` float64 pixels; ``inf`` for points that land behind camera t or are not
        finite.
    """
    T = np.asarray(T, np.float64)
    P = np.asarray(points_prev, np.float64).reshape(-1, 3)
    uv = np.asarray(pixels_curr, np.float64).reshape(-1, 2)
    K = np.asarray(K_curr, np.float64).reshape(3, 3)
    R, t = T[:3, :3], T[:3, 3]
    Q = (P - t) @ R  # camera t: R^T (p - t)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * Q[:, 0] / Q[:, 2] + K[0, 1] * Q[:, 1] / Q[:, 2] + K[0, 2]
        v = K[1, 1] * Q[:, 1] / Q[:, 2] + K[1, 2]
        err = np.hypot(u - uv[:, 0], v - uv[:, 1])
    return np.where(np.isfinite(err) & (Q[:, 2] > 0), err, np.inf)


def reprojection_noise_px(errors: np.ndarray) -> float:
    """Robust spread of reprojection errors: ``1.4826 * median`` (pixels).

    For 2D Gaussian pixel noise of standard deviation ``s`` per axis the error norm is
    Rayleigh-distributed with median ``1.177 s``, so this gives about ``1.74 s``: a scale
    of the whole error, not of one axis. Non-finite rows (points behind the camera) count
    as errors larger than the median; rows beyond the median (outliers, up to half of them)
    do not move it. NaN when there is no row.
    """
    e = np.asarray(errors, np.float64).reshape(-1)
    e = e[~np.isnan(e)]
    if e.size == 0:
        return float("nan")
    return float(1.4826 * np.median(e))


def smoothed_noise_px(previous: float | None, measured: float, keep: float = 0.5) -> float | None:
    """Running estimate of the reprojection noise of a stream (pixels): the exponential
    average ``keep * previous + (1 - keep) * measured``; ``measured`` alone at the start
    (``previous`` None); a non-finite measurement leaves ``previous`` unchanged."""
    if not np.isfinite(measured):
        return previous
    if previous is None:
        return float(measured)
    return float(keep * previous + (1.0 - keep) * measured)


def adaptive_inlier_px(
    noise_px: float | None, factor: float, floor_px: float, cap_px: float
) -> float:
    """RANSAC threshold for the next pair: ``factor * noise_px`` clipped to
    ``[floor_px, cap_px]`` (pixels); ``floor_px`` when there is no estimate yet or
    ``factor`` is 0 (a fixed threshold)."""
    if noise_px is None or not np.isfinite(noise_px) or factor <= 0:
        return float(floor_px)
    return float(min(max(factor * noise_px, floor_px), max(cap_px, floor_px)))
