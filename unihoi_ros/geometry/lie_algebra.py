"""SO(3) and SE(3) exponential and logarithm on numpy arrays (evo's ``lie_algebra``).

A twist ``(w, u)``: ``w`` ``(3,)`` the rotation vector (axis times angle, radians), ``u``
``(3,)`` the translational part (metres); ``exp([w, u]) = [[R, V u], [0, 1]]`` with
``R = exp([w]x)`` (Rodrigues) and ``V`` the SO(3) left Jacobian. Single transforms,
float64.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["se3_exp", "se3_log", "skew", "so3_exp_and_jacobian"]


def skew(w: np.ndarray) -> np.ndarray:
    """``(3, 3)`` cross-product matrix ``[w]x`` of ``w`` ``(3,)``."""
    return np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def so3_exp_and_jacobian(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``exp([w]x)`` ``(3, 3)`` and the SE(3) left Jacobian ``V(w)`` ``(3, 3)`` (``t = V u``)
    of a rotation vector ``w`` ``(3,)`` (radians); Taylor series near 0."""
    th = float(np.linalg.norm(w))
    W = skew(w)
    W2 = W @ W
    if th < 1e-6:  # series; keeps the ratios finite for (near) pure translation
        a, b, c = 1.0 - th**2 / 6, 0.5 - th**2 / 24, 1.0 / 6 - th**2 / 120
    else:
        a, b, c = math.sin(th) / th, (1 - math.cos(th)) / th**2, (th - math.sin(th)) / th**3
    R = np.eye(3) + a * W + b * W2
    V = np.eye(3) + b * W + c * W2
    return R, V


def se3_exp(w: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``(4, 4)`` float64 rigid transform ``exp([w, u])`` of the twist ``(w, u)`` (each
    ``(3,)``; radians, metres)."""
    R, V = so3_exp_and_jacobian(w)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, V @ u
    return T


def se3_log(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The twist ``(w, u)`` (each ``(3,)``; radians, metres) with ``exp([w, u]) = T`` for a
    rigid transform ``T`` ``(4, 4)`` (rotation angle in [0, pi])."""
    from scipy.spatial.transform import Rotation  # lazy: scipy only where it is needed

    w = Rotation.from_matrix(T[:3, :3]).as_rotvec()
    return w, np.linalg.solve(so3_exp_and_jacobian(w)[1], T[:3, 3])
