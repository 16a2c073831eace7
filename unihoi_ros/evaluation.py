"""Evaluation of predictions against ground truth, as the UniHOI authors compute it.

Trajectory: Sim(3)-aligned ATE and RPE (evo definitions, RMSE). Depth: abs_rel, rmse and
delta1 of the metric prediction (no rescaling) and, for reference, after per-frame median
scaling. Point clouds: both clouds in the ground-truth world (the prediction moved by the
trajectory's Sim(3) alignment), Chamfer distance and F-score at 1/2.5/5/10 cm.
A constant-depth + identity-pose baseline is computed on the same frames.
"""

from __future__ import annotations

import cv2
import numpy as np

from unihoi_ros.geometry import metrics
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


def _scale_K(K: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    S = np.diag([dst[1] / src[1], dst[0] / src[0], 1.0])
    return S @ K


def _world_cloud(depth, K, T, stride: int, rng, max_points: int) -> np.ndarray:
    pts = []
    for d, k, t in zip(depth, K, T):
        d = d[::stride, ::stride]
        rows, cols = np.nonzero(np.isfinite(d) & (d > 0))
        z = d[rows, cols].astype(np.float64)
        u, v = cols * stride, rows * stride
        cam = np.stack([(u - k[0, 2]) / k[0, 0] * z, (v - k[1, 2]) / k[1, 1] * z, z], -1)
        pts.append(cam @ t[:3, :3].T + t[:3, 3])
    cloud = np.concatenate(pts) if pts else np.zeros((0, 3))
    if len(cloud) > max_points:
        cloud = cloud[rng.choice(len(cloud), max_points, replace=False)]
    return cloud


def _depth_block(pred_depth, gt_depth) -> dict:
    """Metric and median-scaled depth metrics, plus per-frame abs_rel."""
    per_frame, scaled_p, scaled_g = [], [], []
    for p, g in zip(pred_depth, gt_depth):
        valid = np.isfinite(g) & (g > 0) & np.isfinite(p) & (p > 0)
        per_frame.append(metrics.abs_rel(p[valid], g[valid]) if valid.any() else np.nan)
        if valid.any():
            s = np.median(g[valid]) / np.median(p[valid])
            scaled_p.append(p[valid] * s)
            scaled_g.append(g[valid])
    out = metrics.depth_metrics(pred_depth, gt_depth)
    if scaled_p:
        sp, sg = np.concatenate(scaled_p), np.concatenate(scaled_g)
        out["median_scaled"] = {"abs_rel": metrics.abs_rel(sp, sg), "rmse": metrics.rmse(sp, sg),
                                "delta1": metrics.delta1(sp, sg)}
    out["per_frame_abs_rel"] = [float(x) for x in per_frame]
    return out


def evaluate(pred: Predictions, gt: GroundTruth, cloud_stride: int = 4, seed: int = 0) -> dict:
    """All metrics of ``pred`` against ``gt`` on the frames they share (see module doc)."""
    ip, ig = associate(pred.stamps_ns, gt.stamps_ns)
    if len(ip) == 0:
        raise ValueError("no predicted stamp matches a ground-truth stamp")
    out: dict = {"frames_evaluated": len(ip), "frames_predicted": len(pred.stamps_ns)}
    rng = np.random.default_rng(seed)
    est = pred.T_world_cam[ip]
    gt_T = None if gt.T_world_cam is None else gt.T_world_cam[ig]
    aligned = None
    if gt_T is not None and len(ip) >= 3:
        out["trajectory"] = metrics.trajectory_metrics(est, gt_T, align="sim3")
        aligned = metrics.align_trajectory(est, gt_T, mode="sim3")
        out["per_frame_translation_error_m"] = [
            float(x) for x in np.linalg.norm(aligned[:, :3, 3] - gt_T[:, :3, 3], axis=1)]
        identity = np.tile(np.eye(4), (len(ip), 1, 1))
        out["baseline_identity_pose"] = metrics.trajectory_metrics(identity, gt_T, align="sim3")
    if gt.depth is not None:
        shape = gt.depth.shape[1:]
        pd = np.stack([_resize_depth(pred.depth[i], shape) for i in ip])
        gd = gt.depth[ig]
        out["depth"] = _depth_block(pd, gd)
        const = np.full_like(gd, np.median(gd[np.isfinite(gd) & (gd > 0)]))
        out["baseline_constant_depth"] = metrics.depth_metrics(const, gd)
        if aligned is not None and gt.K is not None:
            pK = np.stack([_scale_K(pred.K[i], pred.depth.shape[1:], shape) for i in ip])
            scale = out["trajectory"]["scale"]
            pc = _world_cloud(pd * scale, pK, aligned, cloud_stride, rng, MAX_CLOUD_POINTS)
            gK = np.repeat(gt.K[None], len(ig), axis=0)
            gc = _world_cloud(gd, gK, gt_T, cloud_stride, rng, MAX_CLOUD_POINTS)
            out["pointcloud"] = metrics.pointcloud_metrics(pc, gc)
            bc = _world_cloud(const, gK, np.tile(np.eye(4), (len(ig), 1, 1)) @ gt_T[:1],
                              cloud_stride, rng, MAX_CLOUD_POINTS)
            out["baseline_pointcloud"] = metrics.pointcloud_metrics(bc, gc)
    return out
