"""Evaluation of predictions against ground truth, as the UniHOI authors compute it.

Trajectory: Sim(3)-aligned ATE and RPE (evo definitions, RMSE), and the ATE as a per cent
of the ground-truth path length (``ate_pct_path``). Depth: abs_rel, rmse and delta1 of the
metric prediction (no rescaling: ``depth.abs_rel`` is what a metric-depth claim is judged
on) and, for reference, after per-frame median scaling (``depth.median_scaled``).
Intrinsics (``intrinsics``, when both sides have K): each frame's predicted K rescaled to
the ground truth's image size, then relative focal-length errors and ratios, and
principal-point errors in pixels and as a fraction of the image size
(:func:`unihoi_ros.geometry.metrics.intrinsics_errors`).

Point clouds: the clip's predicted world cloud (depth unprojected with the predicted K and
poses) is Sim(3)-aligned to the ground-truth cloud by a fit on per-pixel
correspondences (the same pixels in both), then Chamfer distance and F-score at
1/2.5/5/10 cm. Aligning on the points rather than on the trajectory keeps the scale
meaningful when the camera barely translates.

Baselines, on the same frames: constant depth at the ground truth's median (so its scale is
an oracle's) with identity poses (``baseline_constant_depth``, ``baseline_identity_pose``);
its cloud is aligned the same way. For poses also ``baseline_constant_velocity``: the first
two ground-truth poses' motion repeated for the whole clip (an oracle's start, then no
information), Sim(3)-aligned like the estimate — a pose estimate worth having beats it
clearly; and ``baseline_straight_line``: the best-fit uniform straight line through the
true positions, orientation held (:func:`unihoi_ros.geometry.metrics.straight_line_path`;
no alignment brings a uniform line closer, so it is scored as it is). For intrinsics
``baseline_centred_principal_point``: the principal point guessed
at the image centre (principal-point errors only; no focal-length guess is meaningful).
"""

from __future__ import annotations

import cv2
import numpy as np

from unihoi_ros.evaluation_result import (
    CloudScores,
    DepthScores,
    EvaluationResult,
    IntrinsicsScores,
    PrincipalPointScores,
    ScaledDepthScores,
    TrajectoryScores,
)
from unihoi_ros.geometry import metrics
from unihoi_ros.geometry.camera import scale_intrinsics, transform_points, unproject_pixels
from unihoi_ros.io.ground_truth import GroundTruth
from unihoi_ros.io.predictions import Predictions

MAX_CLOUD_POINTS = 20000


def associate(pred_stamps: np.ndarray, gt_stamps: np.ndarray, tol_ns: int = 1_000_000):
    """Index pairs ``(i_pred, i_gt)`` of equal stamps (within ``tol_ns``), in order."""
    gt_sorted = np.argsort(gt_stamps)
    gs = gt_stamps[gt_sorted]
    pos = np.clip(np.searchsorted(gs, pred_stamps), 0, len(gs) - 1)
    best = np.where(
        (pos > 0) & (np.abs(gs[np.maximum(pos - 1, 0)] - pred_stamps)
                     < np.abs(gs[pos] - pred_stamps)), pos - 1, pos)
    ok = np.abs(gs[best] - pred_stamps) <= tol_ns
    return np.flatnonzero(ok), gt_sorted[best[ok]]


def _resize_depth(depth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if depth.shape == shape:
        return depth
    return cv2.resize(depth, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


def _strided_K(K: np.ndarray, stride: int) -> np.ndarray:
    """Intrinsics of ``depth[::stride, ::stride]`` (pixel centres at integers)."""
    return K @ np.diag([1.0 / stride, 1.0 / stride, 1.0])


def _to_world(d, k, t, rows, cols) -> np.ndarray:
    cam = unproject_pixels(np.stack([cols, rows], axis=-1), d[rows, cols].astype(np.float64), k)
    return transform_points(t, cam)


def corresponding_clouds(pred_depth, pred_K, pred_T, gt_depth, gt_K, gt_T, stride: int):
    """World points of the pixels valid in both clips: ``(P (M, 3), G (M, 3))``, row i of
    each from the same pixel of the same frame (depth maps of equal size)."""
    P, G = [], []
    for pd, pk, pt, gd, gk, gt in zip(pred_depth, pred_K, pred_T, gt_depth, gt_K, gt_T):
        pd, gd = pd[::stride, ::stride], gd[::stride, ::stride]
        rows, cols = np.nonzero(np.isfinite(pd) & (pd > 0) & np.isfinite(gd) & (gd > 0))
        P.append(_to_world(pd, pk, pt, rows, cols))
        G.append(_to_world(gd, gk, gt, rows, cols))
    return np.concatenate(P), np.concatenate(G)


def aligned_cloud_metrics(P: np.ndarray, G: np.ndarray, rng, max_points: int) -> CloudScores:
    """Chamfer / F-score after the Sim(3) that best maps ``P`` onto ``G`` (per row)."""
    import torch

    from unihoi_ros.geometry.procrustes import weighted_sim3

    T, s, ok = weighted_sim3(torch.from_numpy(P), torch.from_numpy(G),
                             torch.ones(len(P), dtype=torch.float64), return_ok=True)
    T, s = T.numpy(), float(s)
    A = s * P @ T[:3, :3].T + T[:3, 3]
    pick_a = rng.choice(len(A), min(len(A), max_points), replace=False)
    pick_g = rng.choice(len(G), min(len(G), max_points), replace=False)
    return CloudScores.from_metrics(metrics.pointcloud_metrics(A[pick_a], G[pick_g]), s,
                                    bool(ok))


def _depth_block(pred_depth, gt_depth) -> DepthScores:
    """Metric and median-scaled depth metrics, plus per-frame abs_rel."""
    per_frame, scaled_p, scaled_g = [], [], []
    for p, g in zip(pred_depth, gt_depth):
        valid = np.isfinite(g) & (g > 0) & np.isfinite(p) & (p > 0)
        per_frame.append(metrics.abs_rel(p[valid], g[valid]) if valid.any() else np.nan)
        if valid.any():
            s = np.median(g[valid]) / np.median(p[valid])
            scaled_p.append(p[valid] * s)
            scaled_g.append(g[valid])
    out = DepthScores(**metrics.depth_metrics(pred_depth, gt_depth))
    if scaled_p:
        sp, sg = np.concatenate(scaled_p), np.concatenate(scaled_g)
        out.median_scaled = ScaledDepthScores(metrics.abs_rel(sp, sg), metrics.rmse(sp, sg),
                                              metrics.delta1(sp, sg))
    out.per_frame_abs_rel = [float(x) for x in per_frame]
    return out


def _trajectory_block(est: np.ndarray, gt_T: np.ndarray, length_m: float,
                      align: str = "sim3") -> TrajectoryScores:
    """``trajectory_metrics`` (Sim(3) unless ``align`` says) plus ``ate_pct_path`` (ATE
    over the path length, %; NaN for a path of (nearly) zero length)."""
    out = metrics.trajectory_metrics(est, gt_T, align=align)
    pct = 100.0 * out["ate"] / length_m if length_m > 1e-9 else float("nan")
    return TrajectoryScores(**out, ate_pct_path=pct)


def _centred_K(K: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``K`` with the principal point moved to the centre of an ``hw`` image."""
    k = np.array(K, dtype=np.float64)
    k[0, 2], k[1, 2] = 0.5 * (hw[1] - 1), 0.5 * (hw[0] - 1)
    return k


def evaluate(pred: Predictions, gt: GroundTruth, cloud_stride: int = 4, seed: int = 0,
             clouds: bool = True) -> EvaluationResult:
    """All metrics of ``pred`` against ``gt`` on the frames they share (see module doc).

    The ground truth's K is taken to belong to its depth maps' size (to the prediction's
    size when it has no depth: then ``intrinsics.gt_size_assumed`` is True). ``clouds``
    False skips the point-cloud metrics (the costly part: nearest neighbours).

    Returns:
        the typed record (:class:`~unihoi_ros.evaluation_result.EvaluationResult`);
        ``.to_dict()`` is the ``eval.json`` layout.
    """
    ip, ig = associate(pred.stamps_ns, gt.stamps_ns)
    if len(ip) == 0:
        raise ValueError("no predicted stamp matches a ground-truth stamp")
    out = EvaluationResult(frames_evaluated=len(ip), frames_predicted=len(pred.stamps_ns))
    rng = np.random.default_rng(seed)
    est = pred.T_world_cam[ip]
    gt_T = None if gt.T_world_cam is None else gt.T_world_cam[ig]
    aligned = None
    if gt_T is not None and len(ip) >= 3:
        length = metrics.path_length(gt_T)
        out.trajectory = _trajectory_block(est, gt_T, length)
        out.gt_path_length_m = length
        aligned = metrics.align_trajectory(est, gt_T, mode="sim3")
        out.per_frame_translation_error_m = [
            float(x) for x in np.linalg.norm(aligned[:, :3, 3] - gt_T[:, :3, 3], axis=1)]
        identity = np.tile(np.eye(4), (len(ip), 1, 1))
        out.baseline_identity_pose = _trajectory_block(identity, gt_T, length)
        cv = metrics.constant_velocity_path(gt_T, gt.stamps_ns[ig])
        out.baseline_constant_velocity = _trajectory_block(cv, gt_T, length)
        line = metrics.straight_line_path(gt_T, gt.stamps_ns[ig])  # already the best fit
        out.baseline_straight_line = _trajectory_block(line, gt_T, length, align="none")
    if gt.K is not None:
        pred_hw = tuple(pred.depth.shape[1:])
        gt_hw = pred_hw if gt.depth is None else tuple(gt.depth.shape[1:])
        out.intrinsics = IntrinsicsScores(
            **metrics.intrinsics_errors(pred.K[ip], gt.K, pred_hw, gt_hw),
            gt_size_assumed=gt.depth is None)
        centre = metrics.intrinsics_errors(_centred_K(gt.K, gt_hw)[None], gt.K, gt_hw, gt_hw)
        out.baseline_centred_principal_point = PrincipalPointScores(
            centre["cx_err_px"], centre["cy_err_px"], centre["pp_err_frac"])
    if gt.depth is not None:
        shape = gt.depth.shape[1:]
        pd = np.stack([_resize_depth(pred.depth[i], shape) for i in ip])
        gd = gt.depth[ig]
        out.depth = _depth_block(pd, gd)
        const = np.full_like(gd, np.median(gd[np.isfinite(gd) & (gd > 0)]))
        out.baseline_constant_depth = DepthScores(**metrics.depth_metrics(const, gd))
        if clouds and gt_T is not None and gt.K is not None:
            # Pixel columns are compared, so rows/cols index the stride grid consistently.
            pK = np.stack([scale_intrinsics(pred.K[i], pred.depth.shape[1:], shape) for i in ip])
            gK = np.repeat(gt.K[None], len(ig), axis=0)
            P, G = corresponding_clouds(pd, _strided_K(pK, cloud_stride), est,
                                        gd, _strided_K(gK, cloud_stride), gt_T, cloud_stride)
            out.pointcloud = aligned_cloud_metrics(P, G, rng, MAX_CLOUD_POINTS)
            identity = np.tile(np.eye(4), (len(ig), 1, 1))
            B, G = corresponding_clouds(const, _strided_K(gK, cloud_stride), identity,
                                        gd, _strided_K(gK, cloud_stride), gt_T, cloud_stride)
            out.baseline_pointcloud = aligned_cloud_metrics(B, G, rng, MAX_CLOUD_POINTS)
    return out
