"""Depth registration into the colour camera (geometry/registration.py, io/registration.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from unihoi_ros.geometry.registration import (
    color_poses_from_depth_poses,
    edge_alignment_cost,
    edge_points,
    register_depth,
)
from unihoi_ros.io.registration import SEVEN_SCENES

K_D = np.array([[585.0, 0, 80.0], [0, 585.0, 60.0], [0, 0, 1]]) / np.array([[4, 1, 1],
                                                                            [1, 4, 1],
                                                                            [1, 1, 1]])
K_C = np.array([[130.0, 0, 81.0], [0, 130.0, 59.0], [0, 0, 1]])


def test_identity_registration_is_exact():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 3.0, (120, 160)).astype(np.float32)
    depth[10:20, 30:40] = 0.0
    depth[50, 50] = np.nan
    out = register_depth(depth, K_D, K_D, np.eye(4), (120, 160))
    expect = np.where(depth > 0, depth, np.nan)
    np.testing.assert_array_equal(out, expect)  # every sample back on its own pixel, no loss


def test_planes_with_occluder_match_the_analytic_colour_depth():
    """A wall at 2 m with a square box face at 1 m in front, seen by a colour camera with
    another focal length, principal point and a 3 cm baseline: the registered depth is
    exact on both planes, the box wins where both land (z-buffer), and the occlusion
    shadow has the width parallax predicts."""
    tx = -0.03
    T = np.eye(4)
    T[0, 3] = tx
    depth = np.full((120, 160), 2.0, np.float32)
    depth[40:80, 60:100] = 1.0  # the box face in the depth camera
    out = register_depth(depth, K_D, K_C, T, (120, 160))
    fc, cxc = K_C[0, 0], K_C[0, 2]
    # box columns in the colour image: depth camera's x at the box edges, shifted by tx
    fd, cxd = K_D[0, 0], K_D[0, 2]
    x_left, x_right = (60 - cxd) / fd * 1.0, (99 - cxd) / fd * 1.0
    u_left, u_right = fc * (x_left + tx) + cxc, fc * (x_right + tx) + cxc
    box_cols = np.arange(int(np.ceil(u_left)) + 1, int(np.floor(u_right)))
    rows = np.arange(int(np.ceil(K_C[1, 1] * (40 - 60) / fd + K_C[1, 2])) + 1,
                     int(np.floor(K_C[1, 1] * (79 - 60) / fd + K_C[1, 2])))
    assert len(box_cols) > 10 and len(rows) > 10
    np.testing.assert_array_equal(out[np.ix_(rows, box_cols)], 1.0)  # nearest surface wins
    # the wall far from the box: exactly 2 m where samples land
    wall = out[8:25, :]  # colour rows above 6 lie outside the depth camera's view
    assert np.isfinite(wall[:, 10:150]).mean() > 0.95
    np.testing.assert_allclose(wall[np.isfinite(wall)], 2.0)
    # occlusion shadow: to the box's left (tx < 0 moves near points left by more), the wall
    # right beside the box is hidden from the depth camera; width fc*|tx|*(1/1 - 1/2) px
    shadow = fc * abs(tx) * (1.0 / 1.0 - 1.0 / 2.0)
    mid = rows[len(rows) // 2]
    left_wall_edge = fc * ((59 - cxd) / fd * 2.0 + tx) / 2.0 + cxc  # wall's last column
    gap = np.isnan(out[mid, int(np.ceil(left_wall_edge)) + 1:int(np.floor(u_left))])
    assert gap.all() and abs(gap.size - shadow) <= 2.0


def test_colour_pose_helper_inverts_the_rig_transform():
    rng = np.random.default_rng(1)
    from scipy.spatial.transform import Rotation
    T_wd = np.tile(np.eye(4), (3, 1, 1))
    T_wd[:, :3, :3] = Rotation.random(3, random_state=3).as_matrix()
    T_wd[:, :3, 3] = rng.normal(size=(3, 3))
    T_cd = np.eye(4)
    T_cd[:3, :3] = Rotation.from_euler("xyz", [1, -2, 3], degrees=True).as_matrix()
    T_cd[:3, 3] = [-0.03, 0.001, 0.002]
    T_wc = color_poses_from_depth_poses(T_wd, T_cd)
    np.testing.assert_allclose(T_wc @ T_cd, T_wd, atol=1e-12)
    # a point 1 m ahead of the colour camera, seen from the depth camera, is where T_cd says
    p_c = np.array([0.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(np.linalg.inv(T_wd[0]) @ T_wc[0] @ p_c,
                               np.linalg.inv(T_cd) @ p_c, atol=1e-12)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="depth_m"):
        register_depth(np.zeros((2, 3, 4)), K_D, K_C, np.eye(4), (120, 160))
    with pytest.raises(ValueError, match="K_color"):
        register_depth(np.ones((120, 160)), K_D, np.eye(2), np.eye(4), (120, 160))
    with pytest.raises(ValueError, match="depth camera"):
        SEVEN_SCENES.register(np.ones((120, 160)))


def _colour_edge_distance(path):
    grey = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 1.0), 40, 120)
    return cv2.distanceTransform((edges == 0).astype(np.uint8), cv2.DIST_L2, 5)


def test_seven_scenes_registration_puts_depth_edges_on_colour_edges(shared_dir):
    """On real 7-Scenes frames the estimation did not use (it used every 4th frame from
    300), the registered depth's own contours lie on colour edges much better than the raw
    depth image's contours do (mean capped distance, pixels)."""
    data = shared_dir / "data" / "7scenes_redkitchen_300_699"
    raw_costs, reg_costs, valid = [], [], []
    for n in (301, 451, 601, 699):
        depth = cv2.imread(str(data / f"frame-{n:06d}.depth.png"), cv2.IMREAD_UNCHANGED)
        depth = depth.astype(np.float32) / 1000.0
        dist = _colour_edge_distance(data / f"frame-{n:06d}.color.jpg")
        reg = SEVEN_SCENES.register(depth)
        assert reg.shape == (480, 640) and reg.dtype == np.float32
        valid.append(np.isfinite(reg).mean())
        uv_raw, _ = edge_points(depth)
        uv_reg, _ = edge_points(np.nan_to_num(reg, nan=0.0))
        raw_costs.append(edge_alignment_cost(uv_raw, dist))
        reg_costs.append(edge_alignment_cost(uv_reg, dist))
    raw, reg = float(np.mean(raw_costs)), float(np.mean(reg_costs))
    assert reg < 0.75 * raw, (raw, reg)
    assert min(valid) > 0.7  # a colour-sized map, mostly filled (NaN: shadows, border)
    # the registered depths are the measured ones, moved: their range is the raw range
    assert np.nanmax(reg) < 4.0
