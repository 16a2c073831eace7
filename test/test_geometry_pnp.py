"""PnP relative pose: exactness, outliers, degeneracy, why it beats 3D-3D Procrustes
when consecutive depth maps disagree in scale, and the noise-adapted inlier threshold."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from unihoi_ros.geometry.pnp import (
    adaptive_inlier_px,
    relative_pose_pnp,
    reprojection_errors,
    reprojection_noise_px,
    smoothed_noise_px,
)
from unihoi_ros.geometry.procrustes import weighted_rigid

K = np.array([[120.0, 0.0, 79.5], [0.0, 120.0, 59.5], [0.0, 0.0, 1.0]])


def _scene(rng, n=600):
    """Points in camera t-1: a table-top at 0.3-0.7 m inside the 160x120 frustum."""
    z = rng.uniform(0.3, 0.7, n)
    u, v = rng.uniform(0, 159, n), rng.uniform(0, 119, n)
    return np.column_stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z])


def _motion(rng, trans_mm=2.0, rot_deg=0.3):
    """``T (4, 4)``: camera t in camera t-1 (head-camera-sized motion)."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(np.deg2rad(rot_deg) * rng.normal(size=3) / np.sqrt(3)
                                     ).as_matrix()
    direction = rng.normal(size=3)
    T[:3, 3] = trans_mm * 1e-3 * direction / np.linalg.norm(direction)
    return T


def _observe(T, points_prev):
    """Camera-t points and their pixels for ``p_prev = T @ p_curr``."""
    p_curr = (points_prev - T[:3, 3]) @ T[:3, :3]  # R^T (p - t)
    proj = p_curr @ K.T
    return p_curr, proj[:, :2] / proj[:, 2:]


def _errors(T, T_true):
    trans = np.linalg.norm(T[:3, 3] - T_true[:3, 3])
    cos = (np.trace(T[:3, :3].T @ T_true[:3, :3]) - 1) / 2
    return trans, np.degrees(np.arccos(np.clip(cos, -1, 1)))


@pytest.mark.parametrize("seed", range(5))
def test_exact_correspondences_give_the_pose(seed):
    rng = np.random.default_rng(seed)
    T_true, p_prev = _motion(rng), _scene(rng)
    _, uv = _observe(T_true, p_prev)
    T, ok, inliers = relative_pose_pnp(p_prev, uv, K)
    assert ok and inliers == len(p_prev)
    trans, rot = _errors(T, T_true)
    assert trans < 1e-8 and rot < 1e-6
    # Same convention as the Procrustes fit of the exact 3D pairs.
    p_curr, _ = _observe(T_true, p_prev)
    T_rigid = weighted_rigid(torch.from_numpy(p_curr), torch.from_numpy(p_prev),
                             torch.ones(len(p_prev), dtype=torch.float64)).numpy()
    np.testing.assert_allclose(T, T_rigid, atol=1e-8)


def test_outliers_and_weights():
    rng = np.random.default_rng(7)
    T_true, p_prev = _motion(rng), _scene(rng)
    _, uv = _observe(T_true, p_prev)
    uv = uv + rng.normal(0, 0.1, uv.shape)  # flow noise, 0.1 px
    bad = rng.random(len(uv)) < 0.3  # occlusions / a moving hand: 30 % wrong flow
    uv[bad] += rng.uniform(-8, 8, (bad.sum(), 2))
    T, ok, inliers = relative_pose_pnp(p_prev, uv, K)
    assert ok and inliers < (~bad).sum() + 0.02 * len(uv)
    trans, rot = _errors(T, T_true)
    assert trans < 3e-4 and rot < 0.03, (trans, rot)
    # Zero-weight rows are left out: weighting out the outliers alone also works.
    T_w, ok_w, inliers_w = relative_pose_pnp(p_prev, uv, K, weights=(~bad).astype(float))
    assert ok_w and inliers_w <= (~bad).sum()
    assert _errors(T_w, T_true)[0] < 3e-4


def test_depth_scale_of_the_new_frame_does_not_leak_into_the_motion():
    """Frame t's depth 2 % off (a typical disagreement of a monocular network between
    consecutive frames): Procrustes moves the camera by ~2 % of the scene depth, PnP
    never reads frame t's depth."""
    rng = np.random.default_rng(3)
    T_true, p_prev = _motion(rng, trans_mm=2.0), _scene(rng)
    p_curr, uv = _observe(T_true, p_prev)
    T_rigid = weighted_rigid(torch.from_numpy(1.02 * p_curr), torch.from_numpy(p_prev),
                             torch.ones(len(p_prev), dtype=torch.float64)).numpy()
    T_pnp, ok, _ = relative_pose_pnp(p_prev, uv, K)
    assert ok
    assert _errors(T_rigid, T_true)[0] > 5e-3  # > 5 mm: more than the motion itself
    assert _errors(T_pnp, T_true)[0] < 1e-8


def test_degenerate_inputs_fail_cleanly():
    rng = np.random.default_rng(1)
    T_true, p_prev = _motion(rng), _scene(rng, 50)
    _, uv = _observe(T_true, p_prev)
    for points, pixels, weights in (
        (p_prev[:5], uv[:5], None),  # too few
        (p_prev, uv, np.zeros(len(uv))),  # all weighted out
        (np.full_like(p_prev, np.nan), uv, None),  # NaN points
        (p_prev * np.array([1, 1, -1]), uv, None),  # behind the camera
    ):
        T, ok, inliers = relative_pose_pnp(points, pixels, K, weights)
        assert not ok and inliers == 0
        np.testing.assert_array_equal(T, np.eye(4))
    # NaN rows among good ones are ignored.
    p_nan = p_prev.copy()
    p_nan[::5] = np.nan
    T, ok, _ = relative_pose_pnp(p_nan, uv, K)
    assert ok and _errors(T, T_true)[0] < 1e-8


# ----------------------------------------------------------------- inlier threshold
def test_reprojection_errors_measure_pixel_offsets():
    rng = np.random.default_rng(4)
    T_true, p_prev = _motion(rng), _scene(rng, 200)
    _, uv = _observe(T_true, p_prev)
    np.testing.assert_allclose(reprojection_errors(T_true, p_prev, uv, K), 0, atol=1e-9)
    # a known offset of (3, 4) px on every pixel: 5 px each
    shifted = uv + np.array([3.0, 4.0])
    np.testing.assert_allclose(reprojection_errors(T_true, p_prev, shifted, K), 5.0, rtol=1e-9)
    # points behind camera t, or NaN, are infinitely wrong
    bad = p_prev.copy()
    bad[0] = [0.0, 0.0, -1.0]
    bad[1] = np.nan
    e = reprojection_errors(T_true, bad, uv, K)
    assert np.isinf(e[:2]).all() and np.isfinite(e[2:]).all()


def test_reprojection_noise_is_a_robust_scale_of_pixel_noise():
    """For Gaussian pixel noise of s per axis the error norm is Rayleigh (median 1.1774 s):
    the estimate is 1.4826 * 1.1774 s = 1.746 s, and 30 % gross outliers move it little."""
    rng = np.random.default_rng(5)
    T_true, p_prev = _motion(rng), _scene(rng, 4000)
    _, uv = _observe(T_true, p_prev)
    for s in (0.1, 0.7, 1.5):
        noisy = uv + rng.normal(0, s, uv.shape)
        est = reprojection_noise_px(reprojection_errors(T_true, p_prev, noisy, K))
        assert est == pytest.approx(1.4826 * np.sqrt(2 * np.log(2)) * s, rel=0.05)
        noisy[: len(noisy) * 3 // 10] += rng.uniform(20, 40, (len(noisy) * 3 // 10, 2))
        est_out = reprojection_noise_px(reprojection_errors(T_true, p_prev, noisy, K))
        assert est < est_out < 1.7 * est  # median of 70 % inliers: the 85th percentile
    assert np.isnan(reprojection_noise_px(np.array([])))


def test_adaptive_threshold_and_running_noise():
    assert adaptive_inlier_px(None, 2.5, 0.5, 4.0) == 0.5  # no estimate yet
    assert adaptive_inlier_px(0.1, 2.5, 0.5, 4.0) == 0.5  # synthetic-quality flow: floor
    assert adaptive_inlier_px(0.6, 2.5, 0.5, 4.0) == pytest.approx(1.5)
    assert adaptive_inlier_px(3.0, 2.5, 0.5, 4.0) == 4.0  # capped
    assert adaptive_inlier_px(3.0, 0.0, 0.5, 4.0) == 0.5  # factor 0: fixed threshold
    assert adaptive_inlier_px(float("nan"), 2.5, 0.5, 4.0) == 0.5
    assert smoothed_noise_px(None, 0.8) == 0.8
    assert smoothed_noise_px(0.8, 0.4) == pytest.approx(0.6)
    assert smoothed_noise_px(0.8, 0.4, keep=0.75) == pytest.approx(0.7)
    assert smoothed_noise_px(0.8, float("nan")) == 0.8
    assert smoothed_noise_px(None, float("inf")) is None
