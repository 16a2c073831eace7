"""Quaternions of single rotations on numpy arrays (the ROS message side).

These take and return one float64 numpy rotation and need no torch. The batched,
differentiable torch versions (another algorithm: branch-free Shepperd) are
:func:`unihoi_ros.geometry.poses.quaternions_from_matrices` and
:func:`~unihoi_ros.geometry.poses.matrices_from_quaternions`. Quaternions are
``(x, y, z, w)`` (the order of ``geometry_msgs/Quaternion`` and of scipy's
``Rotation.as_quat``); :func:`quaternion_from_matrix` returns unit quaternions with
``w >= 0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["matrix_from_quaternion", "quaternion_from_matrix", "rigid_from_quaternion"]


def quaternion_from_matrix(R: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion ``(x, y, z, w)`` with ``w >= 0``.

    Bar-Itzhack's method (eigenvector of a symmetric 4x4): robust near 180 degrees and for
    slightly non-orthonormal input (gives the nearest rotation's quaternion).

    Args:
        R: ``(3, 3)`` (or the top-left of a ``(4, 4)``) rotation matrix.

    Returns:
        ``(4,)`` float64 ``(x, y, z, w)``.
    """
    R = np.asarray(R, dtype=np.float64)[:3, :3]
    (xx, xy, xz), (yx, yy, yz), (zx, zy, zz) = R
    K = (
        np.array(
            [
                [xx - yy - zz, yx + xy, zx + xz, zy - yz],
                [yx + xy, yy - xx - zz, zy + yz, xz - zx],
                [zx + xz, zy + yz, zz - xx - yy, yx - xy],
                [zy - yz, xz - zx, yx - xy, xx + yy + zz],
            ]
        )
        / 3.0
    )
    _, vecs = np.linalg.eigh(K)
    q = vecs[:, -1]
    if q[3] < 0:
        q = -q
    return q / np.linalg.norm(q)


def matrix_from_quaternion(q: Sequence[float] | np.ndarray) -> np.ndarray:
    """Quaternion ``(x, y, z, w)`` (normalised here) -> ``(3, 3)`` float64 rotation matrix."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def rigid_from_quaternion(translation: Sequence[float] | np.ndarray,
                          q: Sequence[float] | np.ndarray) -> np.ndarray:
    """Translation ``(3,)`` (metres) and quaternion ``(x, y, z, w)`` -> ``(4, 4)`` float64
    rigid transform (what a ``geometry_msgs/Transform`` or ``Pose`` holds)."""
    T = np.eye(4)
    T[:3, :3] = matrix_from_quaternion(q)
    T[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return T
