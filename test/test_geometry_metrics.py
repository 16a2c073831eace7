"""Metrics: depth vs direct numpy, trajectories vs evo, point clouds vs brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from unihoi_ros.geometry.metrics import (
    abs_rel,
    align_trajectory,
    ate,
    chamfer_distance,
    constant_velocity_path,
    delta1,
    depth_metrics,
    fscore,
    intrinsics_errors,
    path_length,
    pointcloud_metrics,
    rmse,
    rpe,
    straight_line_path,
    trajectory_metrics,
    umeyama,
)

# --------------------------------------------------------------------------------- depth


def _depth_pair(seed: int = 0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.3, 5.0, (20, 30))
    pred = gt * rng.uniform(0.7, 1.4, gt.shape)
    gt[0, :5] = 0.0
    gt[1, :3] = np.nan
    gt[2, :2] = -1.0
    pred[3, :4] = np.nan
    pred[4, :2] = -0.5  # negative prediction: must be a delta miss
    return pred, gt


def test_depth_metrics_match_direct_numpy():
    pred, gt = _depth_pair()
    v = np.isfinite(gt) & (gt > 0) & np.isfinite(pred)
    p, g = pred[v], gt[v]
    ref_abs_rel = np.mean(np.abs(p - g) / g)
    ref_rmse = np.sqrt(np.mean((p - g) ** 2))
    ratio = np.maximum(p / g, g / p)
    ratio[p <= 0] = np.inf
    ref_d1 = np.mean(ratio < 1.25)
    assert abs(abs_rel(pred, gt) - ref_abs_rel) < 1e-12
    assert abs(rmse(pred, gt) - ref_rmse) < 1e-12
    assert abs(delta1(pred, gt) - ref_d1) < 1e-12
    all_m = depth_metrics(torch.tensor(pred, dtype=torch.float32), torch.tensor(gt))
    assert abs(all_m["abs_rel"] - ref_abs_rel) < 1e-6
    assert all_m["num_valid"] == v.sum()
    n_gt = (np.isfinite(gt) & (gt > 0)).sum()
    assert abs(all_m["coverage"] - v.sum() / n_gt) < 1e-12


def test_depth_metrics_mask_and_empty():
    pred, gt = _depth_pair(1)
    mask = np.zeros_like(gt, bool)
    mask[10:, 10:] = True
    p, g = pred[10:, 10:], gt[10:, 10:]
    assert abs(rmse(pred, gt, mask) - np.sqrt(np.mean((p - g) ** 2))) < 1e-12
    assert math.isnan(abs_rel(pred, np.zeros_like(gt)))
    assert math.isnan(depth_metrics(pred, gt, np.zeros_like(mask))["delta1"])
    with pytest.raises(ValueError):
        rmse(pred[:2], gt)


# ---------------------------------------------------------------------------- trajectory


def _trajectory(seed: int, n: int = 40):
    """Smooth ground truth and a noisy estimate in another frame and scale."""
    rng = np.random.default_rng(seed)
    rotvecs = np.cumsum(rng.normal(0, 0.05, (n, 3)), axis=0)
    pos = np.cumsum(rng.normal(0, 0.1, (n, 3)), axis=0)
    gt = np.tile(np.eye(4), (n, 1, 1))
    gt[:, :3, :3] = Rotation.from_rotvec(rotvecs).as_matrix()
    gt[:, :3, 3] = pos
    noise = np.tile(np.eye(4), (n, 1, 1))
    noise[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, 0.02, (n, 3))).as_matrix()
    noise[:, :3, 3] = rng.normal(0, 0.02, (n, 3))
    est = gt @ noise
    G = np.eye(4)
    G[:3, :3], G[:3, 3] = Rotation.random(random_state=rng).as_matrix(), rng.normal(size=3)
    est = G @ est
    est[:, :3, 3] *= 0.4  # unknown monocular scale
    return est, gt


def _evo(est: np.ndarray, gt: np.ndarray, align: str, delta: int = 1, stat: str = "rmse"):
    """Reference numbers from evo itself (test-only dependency)."""
    metrics = pytest.importorskip("evo.core.metrics")
    trajectory = pytest.importorskip("evo.core.trajectory")
    ts = np.arange(len(gt), dtype=float)
    traj_ref = trajectory.PoseTrajectory3D(poses_se3=list(gt), timestamps=ts)
    traj_est = trajectory.PoseTrajectory3D(poses_se3=list(est), timestamps=ts)
    if align != "none":
        traj_est.align(traj_ref, correct_scale=align == "sim3")
    stat_type = metrics.StatisticsType(stat)
    ape = metrics.APE(metrics.PoseRelation.translation_part)
    ape.process_data((traj_ref, traj_est))
    out = {"ate": ape.get_statistic(stat_type)}
    for key, rel in (
        ("rpe_trans", metrics.PoseRelation.translation_part),
        ("rpe_rot_deg", metrics.PoseRelation.rotation_angle_deg),
    ):
        r = metrics.RPE(rel, delta=delta, delta_unit=metrics.Unit.frames, all_pairs=False)
        r.process_data((traj_ref, traj_est))
        out[key] = r.get_statistic(stat_type)
    return out, traj_est.poses_se3


@pytest.mark.parametrize("align", ["sim3", "se3", "none"])
@pytest.mark.parametrize("delta", [1, 3])
def test_trajectory_metrics_equal_evo(align, delta):
    est, gt = _trajectory(0)
    ref, ref_aligned = _evo(est, gt, align, delta)
    assert abs(ate(est, gt, align=align) - ref["ate"]) < 1e-9
    r = rpe(est, gt, delta=delta, align=align)
    assert abs(r.trans - ref["rpe_trans"]) < 1e-9
    assert abs(r.rot_deg - ref["rpe_rot_deg"]) < 1e-9
    assert r["rot_deg"] == r[1] == r.rot_deg and tuple(r) == (r.trans, r.rot_deg)
    np.testing.assert_allclose(align_trajectory(est, gt, align), np.stack(ref_aligned), atol=1e-9)
    allm = trajectory_metrics(torch.tensor(est), torch.tensor(gt), align=align, delta=delta)
    for key in ("ate", "rpe_trans", "rpe_rot_deg"):
        assert abs(allm[key] - ref[key]) < 1e-9, key
    assert allm["align_ok"] and allm["num_poses"] == len(gt)


def test_sim3_alignment_recovers_the_scale_and_mean_statistic():
    est, gt = _trajectory(1)
    m = trajectory_metrics(est, gt, stat="mean")
    ref, _ = _evo(est, gt, "sim3", 1, "mean")
    assert abs(m["ate"] - ref["ate"]) < 1e-9 and abs(m["rpe_rot_deg"] - ref["rpe_rot_deg"]) < 1e-9
    assert 2.3 < m["scale"] < 2.7  # the estimate was shrunk by 0.4
    assert m["ate"] < ate(est, gt, align="se3")  # scale matters


@pytest.mark.parametrize("with_scale", [True, False])
def test_umeyama_equals_evo(with_scale):
    geometry = pytest.importorskip("evo.core.geometry")
    est, gt = _trajectory(2)
    x, y = est[:, :3, 3], gt[:, :3, 3]
    R, t, s, ok = umeyama(x, y, with_scale)
    r_ref, t_ref, c_ref = geometry.umeyama_alignment(x.T, y.T, with_scale)
    assert ok
    np.testing.assert_allclose(R, r_ref, atol=1e-9)
    np.testing.assert_allclose(t, t_ref, atol=1e-9)
    assert abs(s - c_ref) < 1e-9


def test_exact_trajectory_has_zero_error_and_degenerate_inputs_are_defined():
    _, gt = _trajectory(3)
    est = gt.copy()
    est[:, :3, 3] *= 3.0
    m = trajectory_metrics(est, gt)
    assert m["ate"] < 1e-9 and m["rpe_trans"] < 1e-9 and m["rpe_rot_deg"] < 1e-6
    # A straight-line trajectory (collinear positions) still aligns (evo would raise).
    line = np.tile(np.eye(4), (10, 1, 1))
    line[:, 0, 3] = np.arange(10.0)
    est_line = line.copy()
    est_line[:, :3, 3] *= 0.5
    assert ate(est_line, line) < 1e-9
    # One pose: no pair for RPE, alignment degenerate but defined.
    m1 = trajectory_metrics(gt[:1], gt[:1])
    assert math.isnan(m1["rpe_trans"]) and not m1["align_ok"] and m1["ate"] == 0.0
    with pytest.raises(ValueError):
        ate(gt[:3], gt[:4])


# --------------------------------------------------------------------------- point cloud


def _brute(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Nearest-neighbour distance from each row of a to b, by the full distance matrix."""
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(axis=1)


def _clouds(seed: int = 0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(-0.3, 0.3, (150, 3))
    pred = gt[:120] + rng.normal(0, 0.02, (120, 3))
    return np.vstack([pred, rng.uniform(-0.5, 0.5, (20, 3))]), gt


def test_chamfer_matches_brute_force():
    pred, gt = _clouds()
    d_pg, d_gp = _brute(pred, gt), _brute(gt, pred)
    assert abs(chamfer_distance(pred, gt) - 0.5 * (d_pg.mean() + d_gp.mean())) < 1e-12
    ref_sq = 0.5 * ((d_pg**2).mean() + (d_gp**2).mean())
    assert abs(chamfer_distance(pred, gt, squared=True) - ref_sq) < 1e-12
    assert abs(chamfer_distance(gt, pred) - chamfer_distance(pred, gt)) < 1e-15
    assert chamfer_distance(gt, gt) == 0.0


def test_fscore_matches_brute_force():
    pred, gt = _clouds(1)
    d_pg, d_gp = _brute(pred, gt), _brute(gt, pred)
    res = fscore(torch.tensor(pred), gt)
    assert sorted(res) == [0.01, 0.025, 0.05, 0.1]
    for t, vals in res.items():
        prec, rec = np.mean(d_pg <= t), np.mean(d_gp <= t)
        f = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
        assert abs(vals["precision"] - prec) < 1e-12 and abs(vals["recall"] - rec) < 1e-12
        assert abs(vals["fscore"] - f) < 1e-12
    assert 0 < res[0.025]["fscore"] < res[0.1]["fscore"] <= 1


def test_pointcloud_metrics_drop_nan_rows_and_handle_empty():
    pred, gt = _clouds(2)
    with_nan = np.vstack([pred, [[np.nan, 0.0, 0.0]]])
    m = pointcloud_metrics(with_nan, gt, thresholds=(0.05,))
    assert set(m) == {"chamfer", "precision@0.05", "recall@0.05", "fscore@0.05"}
    assert abs(m["chamfer"] - chamfer_distance(pred, gt)) < 1e-15
    assert math.isnan(chamfer_distance(pred[:0], gt))
    assert math.isnan(fscore(pred, gt[:0])[0.01]["fscore"])


def test_constant_trajectory_aligns_to_the_centroid():
    """An identity-pose baseline: the optimal alignment is the centroid shift."""
    from unihoi_ros.geometry.metrics import ate

    rng = np.random.default_rng(5)
    gt = np.tile(np.eye(4), (20, 1, 1))
    gt[:, :3, 3] = rng.normal(size=(20, 3)) + 3.0
    est = np.tile(np.eye(4), (20, 1, 1))
    spread = np.sqrt(np.mean(np.sum((gt[:, :3, 3] - gt[:, :3, 3].mean(0)) ** 2, axis=1)))
    for mode in ("sim3", "se3"):
        assert ate(est, gt, align=mode) == pytest.approx(spread, rel=1e-12)


# ------------------------------------------------------------------------ intrinsics


def test_intrinsics_errors_by_hand():
    """Predictions at half the ground truth's size: rescaled first (f * 2, (c + 0.5) * 2 - 0.5)."""
    gt = np.array([[110.0, 0, 80.0], [0, 100.0, 58.0], [0, 0, 1]])
    pred = np.array([[[50.0, 0, 41.0], [0, 45.0, 28.0], [0, 0, 1]],
                     [[60.0, 0, 41.0], [0, 45.0, 28.0], [0, 0, 1]]])
    # Rescaled to 120x160: fx 100 and 120, fy 90, cx 82.5, cy 56.5.
    out = intrinsics_errors(pred, gt, (60, 80), (120, 160))
    assert out["fx_ratio"] == pytest.approx((100 / 110 + 120 / 110) / 2, abs=1e-12)
    assert out["fx_rel_err"] == pytest.approx(10 / 110, abs=1e-12)  # both frames 10 px off
    assert out["fy_ratio"] == pytest.approx(0.9, abs=1e-12)
    assert out["fy_rel_err"] == pytest.approx(0.1, abs=1e-12)
    assert out["cx_err_px"] == pytest.approx(2.5, abs=1e-12)
    assert out["cy_err_px"] == pytest.approx(1.5, abs=1e-12)
    assert out["pp_err_frac"] == pytest.approx(max(2.5 / 160, 1.5 / 120), abs=1e-12)
    assert out["num_frames"] == 2
    # Per-frame truth and equal sizes: no rescaling.
    same = intrinsics_errors(np.repeat(gt[None], 3, 0), np.repeat(gt[None], 3, 0),
                             (120, 160), (120, 160))
    assert same["fx_rel_err"] == same["cx_err_px"] == same["pp_err_frac"] == 0.0
    with pytest.raises(ValueError):
        intrinsics_errors(gt, gt, (120, 160), (120, 160))


# ------------------------------------------------------------- constant-velocity path


def _pose(rotvec, t):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = t
    return T


def test_constant_velocity_path_repeats_the_first_step():
    T0 = _pose([0.1, -0.2, 0.3], [0.5, 0.1, -0.2])
    D = _pose([0.02, 0.05, -0.01], [0.01, -0.004, 0.02])
    gt = np.stack([T0 @ np.linalg.matrix_power(D, k) for k in range(10)])
    cv = constant_velocity_path(gt)
    assert np.allclose(cv, gt, atol=1e-10)
    assert trajectory_metrics(cv, gt)["ate"] < 1e-9
    # Uneven stamps: frame k sits (t_k - t_0) / (t_1 - t_0) steps out (last: 4.5 steps).
    stamps = np.array([0, 10, 30, 40, 45]) * 1_000_000
    uneven = constant_velocity_path(gt[[0, 1, 3, 4, 4]], stamps)
    assert np.allclose(uneven[:4], gt[[0, 1, 3, 4]], atol=1e-10)
    H = np.linalg.inv(gt[4]) @ uneven[4]  # half a step
    assert np.allclose(H @ H, D, atol=1e-10) and not np.allclose(H, D, atol=1e-3)
    # A pure translation (zero rotation) stays a straight line at constant speed.
    line = constant_velocity_path(np.stack([np.eye(4), _pose([0, 0, 0], [0.1, 0, 0])] * 2))
    assert np.allclose(line[:, :3, 3], [[0, 0, 0], [0.1, 0, 0], [0.2, 0, 0], [0.3, 0, 0]])
    # A repeated first moment (a recording that wrote its first frame twice): the motion
    # to the first pose that differs, over the time it took, not a standstill.
    stamps = np.arange(10) * 33_000_000
    held = constant_velocity_path(gt[[0, 0, 2, 3, 4, 5, 6, 7, 8, 9]], stamps)
    assert np.allclose(held[2:], gt[2:], atol=1e-10)
    assert np.allclose(constant_velocity_path(gt[[0, 0, 2, 3]]), gt[:4], atol=1e-10)


def test_constant_velocity_baseline_misses_a_curved_path():
    # Accelerating, turning path: the first step repeated drifts away from it.
    gt = np.stack([_pose([0, 0.05 * k**1.5, 0], [0.01 * k**2, 0.02 * np.sin(k), 0.0])
                   for k in range(12)])
    cv = constant_velocity_path(gt)
    assert np.allclose(cv[:2], gt[:2], atol=1e-12)
    assert trajectory_metrics(cv, gt)["ate"] > 0.05
    assert path_length(gt) == pytest.approx(
        np.linalg.norm(np.diff(gt[:, :3, 3], axis=0), axis=1).sum(), abs=1e-12)
    assert path_length(gt[:1]) == 0.0
    with pytest.raises(ValueError):
        constant_velocity_path(gt[:1])


def test_straight_line_path_is_the_best_uniform_line():
    # A uniform line is reproduced exactly (orientation held at the first pose's).
    T0 = _pose([0.1, -0.2, 0.3], [0.5, 0.1, -0.2])
    gt = np.stack([T0 @ _pose([0, 0, 0], [0.03 * k, -0.01 * k, 0.02 * k]) for k in range(8)])
    line = straight_line_path(gt)
    np.testing.assert_allclose(line[:, :3, 3], gt[:, :3, 3], atol=1e-12)
    np.testing.assert_allclose(line[:, :3, :3], np.repeat(gt[:1, :3, :3], 8, axis=0))
    # On a curved path no Sim(3)-aligned uniform straight line does better (evo's ATE).
    curved = np.stack([_pose([0, 0.05 * k, 0], [0.01 * k**2, 0.1 * np.sin(0.5 * k), 0.02 * k])
                       for k in range(12)])
    best = trajectory_metrics(straight_line_path(curved), curved, align="none")["ate"]
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = rng.normal(size=3)
        other = np.tile(np.eye(4), (12, 1, 1))
        other[:, :3, 3] = np.arange(12)[:, None] * d[None]
        assert best <= trajectory_metrics(other, curved, align="sim3")["ate"] + 1e-9
    # Stamps: uneven spacing is fitted in time, not in frame index.
    stamps = np.array([0, 1, 2, 4, 8]) * 10_000_000
    timed = np.stack([_pose([0, 0, 0], [0.1 * t, 0, 0]) for t in (0, 1, 2, 4, 8)])
    np.testing.assert_allclose(straight_line_path(timed, stamps)[:, :3, 3], timed[:, :3, 3],
                               atol=1e-12)
    with pytest.raises(ValueError):
        straight_line_path(gt[:1])
