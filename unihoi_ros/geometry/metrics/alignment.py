"""Trajectory alignment (evo's ``geometry.umeyama_alignment`` and ``PosePath3D.align``).

Poses are ``(N, 4, 4)`` camera-to-world, matched by index. Alignment is Umeyama on the
positions, exactly as evo's ``PosePath3D.align`` (``"sim3"`` = ``correct_scale=True``:
translations scaled by s, then ``G = [R | t]`` applied on the left; ``"se3"`` without
scale; ``"none"``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from unihoi_ros.options import Alignment, parse

from ..poses import se3_from_rt
from ..procrustes import weighted_rigid, weighted_sim3
from .common import ArrayLike, _numpy64

__all__ = ["align_trajectory", "umeyama"]


def _poses(x: ArrayLike, name: str) -> Tensor:
    """``(N, 4, 4)`` float64 CPU tensor, validated."""
    T = torch.from_numpy(_numpy64(x))
    if T.ndim != 3 or T.shape[-2:] != (4, 4):
        raise ValueError(f"{name} must be (N, 4, 4), got {tuple(T.shape)}")
    return T


def umeyama(
    x: ArrayLike, y: ArrayLike, with_scale: bool = True
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Least-squares ``y ~= s R x + t`` on point sets (evo's ``umeyama_alignment``).

    Unlike evo it does not raise on collinear points (their rotation about the line is
    arbitrary but the fit is still optimal); with fewer than 2 distinct points it returns
    the identity and ``ok = False``.

    Args:
        x: ``(N, 3)`` source points (e.g. estimated positions).
        y: ``(N, 3)`` target points (e.g. ground-truth positions).
        with_scale: fit s (Sim(3)); else s = 1 (SE(3)).

    Returns:
        ``R (3, 3)``, ``t (3,)``, ``s`` and ``ok``.
    """
    xs = torch.from_numpy(_numpy64(x))
    ys = torch.from_numpy(_numpy64(y))
    w = torch.ones(xs.shape[:-1], dtype=torch.float64)
    if with_scale:
        T, s, ok = weighted_sim3(xs, ys, w, True, min_rank=1)
    else:
        T, ok = weighted_rigid(xs, ys, w, True, min_rank=1)
        s = torch.ones(())
    return T[:3, :3].numpy(), T[:3, 3].numpy(), float(s), bool(ok)


def _align(est: Tensor, gt: Tensor, mode: str) -> tuple[Tensor, float, bool]:
    """Aligned copy of ``est``, the scale and the fit's ok flag."""
    if est.shape != gt.shape:
        raise ValueError(f"est {tuple(est.shape)} and gt {tuple(gt.shape)} differ in shape")
    align = parse(Alignment, mode)
    if align is None:
        raise ValueError(f"align must be 'sim3', 'se3' or 'none', got {mode!r}")
    if align is Alignment.NONE:
        return est.clone(), 1.0, True
    R, t, s, ok = umeyama(est[:, :3, 3], gt[:, :3, 3], with_scale=align is Alignment.SIM3)
    if not ok:
        # All estimated positions coincide (e.g. an identity-pose baseline): rotation and
        # scale change nothing, so the least-squares alignment is the centroid shift.
        R, s = np.eye(3), 1.0
        t = (gt[:, :3, 3].mean(dim=0) - est[:, :3, 3].mean(dim=0)).numpy()
    scaled = se3_from_rt(est[:, :3, :3], s * est[:, :3, 3])
    G = se3_from_rt(torch.from_numpy(R), torch.from_numpy(t))
    return G @ scaled, s, ok


def align_trajectory(est: ArrayLike, gt: ArrayLike, mode: str = "sim3") -> np.ndarray:
    """Align an estimated trajectory to ground truth (as evo ``align``).

    Args:
        est: ``(N, 4, 4)`` estimated camera-to-world poses.
        gt: ``(N, 4, 4)`` ground-truth poses, metres.
        mode: ``"sim3"`` (scale + rigid), ``"se3"`` (rigid) or ``"none"``.

    Returns:
        ``(N, 4, 4)`` float64 aligned estimate: ``[[R_a R_i, s R_a t_i + t_a], [0, 1]]``.
        Degenerate positions (fewer than 2 distinct) are only shifted onto the ground
        truth's centroid (the least-squares optimum then; evo raises instead).
    """
    return _align(_poses(est, "est"), _poses(gt, "gt"), mode)[0].numpy()
