"""Reference paths a pose estimate has to beat (scored with the trajectory metrics).

- Constant-velocity path (:func:`constant_velocity_path`): the first motion
  ``D = inv(T_0) T_1`` (to the first pose that differs from ``T_0``) repeated,
  ``T_k = T_0 D^k`` (a constant twist, the usual visual-odometry motion model; fractional
  powers when the stamps are uneven; SE(3) log and exp from
  :mod:`unihoi_ros.geometry.lie_algebra`).
- Straight-line path (:func:`straight_line_path`): the best-fit uniform straight line
  through the true positions.
"""

from __future__ import annotations

import numpy as np

from ..lie_algebra import se3_exp, se3_log
from .common import ArrayLike, _numpy64

__all__ = ["constant_velocity_path", "straight_line_path"]


def constant_velocity_path(T: ArrayLike, stamps_ns: ArrayLike | None = None) -> np.ndarray:
    """The first motion of the poses extrapolated at constant velocity (constant twist).

    The first motion is from ``T[0]`` to ``T[m]``, the first pose that differs from it
    (``m = 1`` unless the recording repeats its first moment, as 7-Scenes does where a
    frame is written twice: a zero first step would make the baseline a standstill).

    Args:
        T: ``(N, 4, 4)`` camera-to-world poses (``T[0]`` and ``T[m]`` are used), N >= 2.
        stamps_ns: optional ``(N,)`` stamps; frame k is then ``(t_k - t_0) / (t_m - t_0)``
            first motions from the start (``k / m`` when None or when ``t_m == t_0``).

    Returns:
        ``(N, 4, 4)`` float64 ``T_0 D^a_k`` with ``D = inv(T_0) T_m`` (so rows 0 and m
        equal ``T[0]`` and ``T[m]``; ``D^a`` through SE(3) log / exp).
    """
    T = _numpy64(T)
    n = T.shape[0]
    if n < 2:
        raise ValueError(f"a constant-velocity path needs >= 2 poses, got {n}")
    moved = np.flatnonzero((T[1:] != T[0]).any(axis=(1, 2)))
    m = int(moved[0]) + 1 if moved.size else 1
    steps = np.arange(n, dtype=np.float64) / m
    if stamps_ns is not None:
        t = np.asarray(stamps_ns, dtype=np.float64)
        if t[m] != t[0]:
            steps = (t - t[0]) / (t[m] - t[0])
    w, u = se3_log(np.linalg.inv(T[0]) @ T[m])  # twist (w, u): D = exp([w, u])
    out = np.empty((n, 4, 4))
    for k, a in enumerate(steps):
        out[k] = T[0] @ se3_exp(a * w, a * u)
    return out


def straight_line_path(T: ArrayLike, stamps_ns: ArrayLike | None = None) -> np.ndarray:
    """The best-fit uniform straight line through the true positions (a pose baseline).

    Positions ``a + b s_k`` with ``a, b`` the least-squares fit of the positions of ``T``
    against the step ``s_k`` (time when ``stamps_ns`` are given, else the frame index):
    uniform motion along one line, as close to the truth as such a path gets (no
    alignment can bring any uniform straight line closer, so score it with
    ``align="none"``); orientation held at ``T[0]``'s.

    Args:
        T: ``(N, 4, 4)`` camera-to-world poses, N >= 2.
        stamps_ns: optional ``(N,)`` stamps.

    Returns:
        ``(N, 4, 4)`` float64 poses.
    """
    T = _numpy64(T)
    n = T.shape[0]
    if n < 2:
        raise ValueError(f"a straight-line path needs >= 2 poses, got {n}")
    s = (np.asarray(stamps_ns, np.float64) - float(np.asarray(stamps_ns)[0])
         if stamps_ns is not None else np.arange(n, dtype=np.float64))
    A = np.stack([np.ones(n), s], axis=1)
    coef, *_ = np.linalg.lstsq(A, T[:, :3, 3], rcond=None)  # (2, 3): a, b
    out = np.repeat(T[:1], n, axis=0)
    out[:, :3, 3] = A @ coef
    return out
