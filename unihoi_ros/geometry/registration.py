"""Depth registration: a depth camera's depth map re-rendered in another (colour) camera.

An RGB-D sensor whose depth is not registered to its colour image (Kinect v1 raw streams,
7-Scenes) has two cameras: depth pixel ``(u, v)`` with depth ``z`` is the point
``X_d = z K_d^-1 [u, v, 1]`` of the depth camera, ``X_c = T_color_depth X_d`` in the colour
camera, seen at ``K_c X_c / z_c``. :func:`register_depth` forward-warps every valid depth
sample that way to the nearest colour pixel; where several land on one pixel the nearest
surface wins (z-buffer), and colour pixels no sample reaches are NaN (occlusion shadows,
the border the depth camera does not see).

:func:`edge_points` and :func:`edge_alignment_cost` are the measurable property behind the
estimation of ``K_color`` and ``T_color_depth`` where a dataset gives none
(``bench/estimate_registration.py``): occluding contours of the depth map, projected into
the colour camera, should lie on colour edges.

Pure numpy; conventions of :mod:`unihoi_ros.geometry.camera` (optical axes, z-depth in
metres, pixel centres at integer ``(u, v) = (column, row)``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "color_poses_from_depth_poses",
    "edge_alignment_cost",
    "edge_points",
    "project_depth_points",
    "register_depth",
]


def _check_K(K: np.ndarray, name: str) -> np.ndarray:
    k = np.asarray(K, np.float64)
    if k.shape != (3, 3) or not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ValueError(f"{name}: expected a (3, 3) pinhole matrix with positive focal "
                         f"lengths, got {np.asarray(K).tolist()}")
    return k


def _check_T(T: np.ndarray) -> np.ndarray:
    t = np.asarray(T, np.float64)
    if t.shape != (4, 4) or not np.isfinite(t).all():
        raise ValueError(f"T_color_depth: expected a finite (4, 4) transform, got shape "
                         f"{t.shape}")
    return t


def project_depth_points(
    uv: np.ndarray, z: np.ndarray, K_depth: np.ndarray, K_color: np.ndarray,
    T_color_depth: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Depth-camera pixels with depth to colour-camera pixels with depth.

    Args:
        uv: ``(N, 2)`` pixel coordinates (column, row) in the depth image, pixels.
        z: ``(N,)`` z-depth in the depth camera, metres (> 0).
        K_depth: ``(3, 3)`` depth camera intrinsics, pixels.
        K_color: ``(3, 3)`` colour camera intrinsics, pixels.
        T_color_depth: ``(4, 4)`` rigid transform taking depth-camera points to
            colour-camera points (metres).

    Returns:
        ``uv_c (N, 2)`` float64 pixel coordinates in the colour image and ``z_c (N,)``
        float64 z-depth along the colour camera's optical axis, metres.
    """
    kd, kc, T = _check_K(K_depth, "K_depth"), _check_K(K_color, "K_color"), _check_T(T_color_depth)
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    z = np.asarray(z, np.float64).reshape(-1)
    y = (uv[:, 1] - kd[1, 2]) * (z / kd[1, 1])
    x = (uv[:, 0] - kd[0, 2]) * (z / kd[0, 0]) - (kd[0, 1] / kd[0, 0]) * y
    R, t = T[:3, :3], T[:3, 3]
    # component-wise (a (N, 3) @ (3, 3) product is several times slower here)
    zc = R[2, 0] * x + R[2, 1] * y + R[2, 2] * z + t[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = (R[0, 0] * x + R[0, 1] * y + R[0, 2] * z + t[0]) / zc
        yc = (R[1, 0] * x + R[1, 1] * y + R[1, 2] * z + t[1]) / zc
    uv_c = np.empty((z.size, 2))
    uv_c[:, 0] = kc[0, 0] * xc + kc[0, 1] * yc + kc[0, 2]
    uv_c[:, 1] = kc[1, 1] * yc + kc[1, 2]
    return uv_c, zc


def register_depth(
    depth_m: np.ndarray, K_depth: np.ndarray, K_color: np.ndarray,
    T_color_depth: np.ndarray, color_shape: tuple[int, int],
) -> np.ndarray:
    """Re-render a depth camera's depth map in the colour camera (z-buffered forward warp).

    Each valid depth sample (finite, > 0) is unprojected with ``K_depth``, moved by
    ``T_color_depth`` and splatted to the nearest colour pixel; when several samples land
    on one pixel the smallest colour-camera depth wins (the nearest surface occludes).
    Colour pixels no sample reaches are NaN. No hole filling: a colour pixel gets a value
    only where the depth camera measured a surface that projects onto it.

    Args:
        depth_m: ``(H, W)`` z-depth of the depth camera, metres; 0, negative or non-finite
            values are invalid.
        K_depth: ``(3, 3)`` intrinsics of ``depth_m``, pixels.
        K_color: ``(3, 3)`` intrinsics of the colour image, pixels.
        T_color_depth: ``(4, 4)`` depth-camera-to-colour-camera rigid transform, metres.
        color_shape: ``(Hc, Wc)`` of the colour image, pixels (extra trailing entries such
            as a channel count are ignored).

    Returns:
        ``(Hc, Wc)`` float32 z-depth along the colour camera's optical axis, metres, NaN
        where no sample lands.
    """
    d = np.asarray(depth_m)
    if d.ndim != 2:
        raise ValueError(f"depth_m: expected (H, W), got shape {d.shape}")
    hc, wc = int(color_shape[0]), int(color_shape[1])
    if hc <= 0 or wc <= 0:
        raise ValueError(f"color_shape: expected a positive (H, W), got {color_shape}")
    out = np.full((hc, wc), np.nan, np.float32)
    d64 = d.astype(np.float64)
    valid = np.isfinite(d64) & (d64 > 0)
    rows, cols = np.nonzero(valid)
    if rows.size == 0:
        return out
    uv_c, zc = project_depth_points(np.stack([cols, rows], axis=1), d64[rows, cols],
                                    K_depth, K_color, T_color_depth)
    with np.errstate(invalid="ignore"):
        uc, vc = np.rint(uv_c[:, 0]), np.rint(uv_c[:, 1])
        keep = (zc > 0) & (uc >= 0) & (uc < wc) & (vc >= 0) & (vc < hc)
    if not keep.any():
        return out
    flat = vc[keep] * wc + uc[keep]  # integral float64, exact below 2**53
    zk = zc[keep]
    # one sort by pixel, nearest first within a pixel: pixel index + z / (2 max z) keeps
    # pixels apart (the fraction is < 0.5) and orders depths inside a pixel
    order = np.argsort(flat + zk * (0.5 / (zk.max() * (1 + 1e-9))), kind="stable")
    flat, zk = flat[order].astype(np.int64), zk[order]
    first = np.ones(flat.size, bool)
    first[1:] = flat[1:] != flat[:-1]
    out.reshape(-1)[flat[first]] = zk[first].astype(np.float32)
    return out


def color_poses_from_depth_poses(
    T_world_depth: np.ndarray, T_color_depth: np.ndarray
) -> np.ndarray:
    """Colour-camera poses from depth-camera poses of a rigid RGB-D rig.

    ``T_world_color = T_world_depth @ inv(T_color_depth)``.

    Args:
        T_world_depth: ``(..., 4, 4)`` depth-camera-to-world poses, metres.
        T_color_depth: ``(4, 4)`` depth-camera-to-colour-camera rigid transform, metres.

    Returns:
        ``(..., 4, 4)`` float64 colour-camera-to-world poses.
    """
    T = _check_T(T_color_depth)
    inv = np.eye(4)
    inv[:3, :3] = T[:3, :3].T
    inv[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return np.asarray(T_world_depth, np.float64) @ inv


def edge_points(
    depth_m: np.ndarray, min_jump_m: float = 0.1, min_rel_jump: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Occluding contours of a depth map: pixels on the near side of a depth jump.

    A pixel is on an occluding contour when one of its 4 neighbours is farther by more
    than ``max(min_jump_m, min_rel_jump * z)`` (invalid neighbours do not count); only
    the near side is kept, because it is what a second camera sees as the object's
    outline (the far side may be hidden from it).

    Args:
        depth_m: ``(H, W)`` z-depth, metres (invalid: 0 or non-finite).
        min_jump_m: smallest depth jump that counts, metres.
        min_rel_jump: smallest jump as a fraction of the pixel's depth.

    Returns:
        ``uv (N, 2)`` float64 pixel coordinates (column, row) and ``z (N,)`` float64 depth,
        metres, of the contour pixels.
    """
    d = np.asarray(depth_m, np.float64)
    if d.ndim != 2:
        raise ValueError(f"depth_m: expected (H, W), got shape {d.shape}")
    valid = np.isfinite(d) & (d > 0)
    z = np.where(valid, d, np.nan)
    edge = np.zeros(d.shape, bool)
    with np.errstate(invalid="ignore"):
        thr = np.maximum(min_jump_m, min_rel_jump * z)
        for axis in (0, 1):
            for shift in (1, -1):
                nb = np.roll(z, shift, axis=axis)
                # np.roll wraps: the wrapped row / column must not count
                if axis == 0:
                    nb[0 if shift == 1 else -1, :] = np.nan
                else:
                    nb[:, 0 if shift == 1 else -1] = np.nan
                edge |= valid & np.isfinite(nb) & (nb - z > thr)
    rows, cols = np.nonzero(edge)
    return np.stack([cols, rows], axis=1).astype(np.float64), d[rows, cols]


def edge_alignment_cost(
    uv_color: np.ndarray, edge_distance: np.ndarray, truncate_px: float = 8.0
) -> float:
    """Mean truncated distance from projected depth contours to the nearest colour edge.

    Args:
        uv_color: ``(N, 2)`` contour points in the colour image (column, row), pixels.
        edge_distance: ``(Hc, Wc)`` distance to the nearest colour edge pixel, pixels (e.g.
            ``cv2.distanceTransform`` of the inverted Canny edge map).
        truncate_px: distances are capped at this value (robust to contours that have no
            colour edge: textureless pairs, unmatched surfaces); points outside the image
            cost the cap.

    Returns:
        The mean capped distance, pixels (``truncate_px`` when there are no points).
    """
    e = np.asarray(edge_distance, np.float64)
    uv = np.asarray(uv_color, np.float64).reshape(-1, 2)
    if uv.shape[0] == 0:
        return float(truncate_px)
    u, v = np.rint(uv[:, 0]), np.rint(uv[:, 1])
    inside = np.isfinite(u) & np.isfinite(v) & (u >= 0) & (u < e.shape[1]) & (v >= 0) & (
        v < e.shape[0])
    cost = np.full(uv.shape[0], float(truncate_px))
    cost[inside] = np.minimum(e[v[inside].astype(int), u[inside].astype(int)], truncate_px)
    return float(cost.mean())
