"""Rigid-motion helpers for the synthetic world (pure numpy, sim-internal).

Rotations are ``(..., 3, 3)`` float64 matrices, poses ``(..., 4, 4)`` homogeneous matrices
``T_a_b`` that map points from frame ``b`` to frame ``a``. Angles are radians. These are
kept here (rather than in :mod:`unihoi_ros.geometry`) so that the simulator depends on numpy
only.
"""

from __future__ import annotations

import numpy as np


def skew(w: np.ndarray) -> np.ndarray:
    """Cross-product matrices ``[w]_x`` of ``w`` ``(..., 3)`` -> ``(..., 3, 3)``."""
    w = np.asarray(w, dtype=np.float64)
    z = np.zeros(w.shape[:-1])
    return np.stack(
        [
            np.stack([z, -w[..., 2], w[..., 1]], -1),
            np.stack([w[..., 2], z, -w[..., 0]], -1),
            np.stack([-w[..., 1], w[..., 0], z], -1),
        ],
        -2,
    )


def so3_exp(w: np.ndarray) -> np.ndarray:
    """Rotation matrices from rotation vectors ``w`` ``(..., 3)`` (axis * angle, rad)."""
    w = np.asarray(w, dtype=np.float64)
    theta = np.linalg.norm(w, axis=-1)[..., None, None]
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    # Taylor terms near zero keep the result smooth and exact to float precision.
    a = np.where(small, 1.0 - theta**2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta**2 / 24.0, (1.0 - np.cos(safe)) / safe**2)
    k = skew(w)
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + a * k + b * (k @ k)


def so3_log(r: np.ndarray) -> np.ndarray:
    """Rotation vectors ``(..., 3)`` (rad) of rotation matrices ``(..., 3, 3)``.

    Uses ``atan2(sin, cos)`` for accuracy at all angles, with an axis from the symmetric
    part near pi where the antisymmetric part vanishes.
    """
    r = np.asarray(r, dtype=np.float64)
    v = 0.5 * np.stack(
        [r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]],
        -1,
    )
    s = np.linalg.norm(v, axis=-1)
    c = 0.5 * (np.trace(r, axis1=-2, axis2=-1) - 1.0)
    theta = np.arctan2(s, c)
    small = s < 1e-8
    scale = np.where(small, 1.0 + theta**2 / 6.0, theta / np.where(small, 1.0, s))
    out = v * scale[..., None]
    near_pi = small & (c < 0.0)
    if np.any(near_pi):
        # theta ~ pi: R ~ 2 a a^T - I, take the column with the largest diagonal entry.
        rp = r[near_pi]
        sym = 0.5 * (rp + np.eye(3))
        col = np.argmax(np.diagonal(sym, axis1=-2, axis2=-1), axis=-1)
        axis = sym[np.arange(len(col)), :, col]
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        out[near_pi] = axis * theta[near_pi][..., None]
    return out


def rotation_angle(r: np.ndarray) -> np.ndarray:
    """Rotation angle (rad, in [0, pi]) of rotation matrices ``(..., 3, 3)``."""
    return np.linalg.norm(so3_log(r), axis=-1)


def rot_x(a: float) -> np.ndarray:
    """Rotation about the x axis by ``a`` rad."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(a: float) -> np.ndarray:
    """Rotation about the y axis by ``a`` rad."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(a: float) -> np.ndarray:
    """Rotation about the z axis by ``a`` rad."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def make_pose(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Homogeneous ``(..., 4, 4)`` pose from rotation ``(..., 3, 3)`` and translation (m)."""
    r = np.asarray(r, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    shape = np.broadcast_shapes(r.shape[:-2], t.shape[:-1])
    out = np.zeros((*shape, 4, 4))
    out[..., :3, :3] = r
    out[..., :3, 3] = t
    out[..., 3, 3] = 1.0
    return out


def inv_pose(t: np.ndarray) -> np.ndarray:
    """Inverse of rigid poses ``(..., 4, 4)`` (exact: transpose the rotation)."""
    t = np.asarray(t, dtype=np.float64)
    rt = np.swapaxes(t[..., :3, :3], -1, -2)
    return make_pose(rt, -(rt @ t[..., :3, 3:4])[..., 0])


def interp_pose(t0: np.ndarray, t1: np.ndarray, s: float) -> np.ndarray:
    """Geodesic rotation / linear translation interpolation, ``s`` in [0, 1]."""
    r0, r1 = t0[:3, :3], t1[:3, :3]
    r = r0 @ so3_exp(s * so3_log(r0.T @ r1))
    return make_pose(r, (1.0 - s) * t0[:3, 3] + s * t1[:3, 3])


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """``R_world_cam`` of an OpenCV optical frame (x right, y down, z forward).

    The optical axis points from ``eye`` to ``target``; x is horizontal w.r.t. ``up``
    (default world +z, REP-103 world axes).
    """
    up = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def min_jerk(s: np.ndarray | float) -> np.ndarray | float:
    """Minimum-jerk time scaling of ``s`` clipped to [0, 1].

    Zero velocity and acceleration at both ends, so piecewise motions built from it are
    smooth.
    """
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10.0 - 15.0 * s + 6.0 * s**2)
