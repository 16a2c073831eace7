"""Trajectory metrics (evo's ``metrics.APE`` / ``metrics.RPE``): ATE, RPE, path length.

ATE = statistic of ``|t_est_aligned,i - t_gt,i|`` (evo APE, translation part) after the
alignment of :mod:`~unihoi_ros.geometry.metrics.alignment`. RPE over index pairs
``(i, j = i + delta)`` (evo's ``all_pairs=False`` takes ``i = 0, delta, 2 delta, ...``):
``E = inv(inv(gt_i) gt_j) @ (inv(est_i) est_j)``, translation error ``|t(E)|`` (m),
rotation error ``angle(R(E))`` (degrees). The default statistic is RMSE; the UniHOI
authors' reported numbers use evo's ``mean`` (pass ``stat="mean"``). Path length
(:func:`path_length`): sum of the distances between consecutive positions, metres.
No pose pair gives NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..poses import invert_se3, rotation_angle
from .alignment import _align, _poses
from .common import ArrayLike, _numpy64, _stat

__all__ = ["RPEResult", "ate", "path_length", "rpe", "trajectory_metrics"]


def _ate_errors(est: Tensor, gt: Tensor) -> np.ndarray:
    return torch.linalg.vector_norm(est[:, :3, 3] - gt[:, :3, 3], dim=-1).numpy()


def _pairs(n: int, delta: int, all_pairs: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs as evo's ``filter_pairs_by_index``."""
    if delta < 1:
        raise ValueError(f"delta must be >= 1 frame, got {delta}")
    if all_pairs:
        i = np.arange(max(n - delta, 0))
        return i, i + delta
    ids = np.arange(0, n, delta)
    return ids[:-1], ids[1:]


def _rpe_errors(
    est: Tensor, gt: Tensor, delta: int, all_pairs: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair translation (m) and rotation (deg) errors."""
    i, j = _pairs(est.shape[0], delta, all_pairs)
    rel_gt = invert_se3(gt[i]) @ gt[j]
    rel_est = invert_se3(est[i]) @ est[j]
    E = invert_se3(rel_gt) @ rel_est
    trans = torch.linalg.vector_norm(E[:, :3, 3], dim=-1).numpy()
    rot = torch.rad2deg(rotation_angle(E[:, :3, :3])).numpy()
    return trans, rot


class RPEResult(NamedTuple):
    """Relative pose error: translation (metres) and rotation (degrees) statistics.

    A tuple ``(trans, rot_deg)`` that also reads by name: ``r.rot_deg == r["rot_deg"]``.
    """

    trans: float
    rot_deg: float

    def __getitem__(self, key):  # type: ignore[override]
        """Index by position or by field name."""
        return getattr(self, key) if isinstance(key, str) else tuple.__getitem__(self, key)


def ate(est: ArrayLike, gt: ArrayLike, align: str = "sim3", stat: str = "rmse") -> float:
    """Absolute trajectory error (evo APE, translation part), metres.

    Args:
        est: ``(N, 4, 4)`` estimated camera-to-world poses.
        gt: ``(N, 4, 4)`` ground-truth poses, metres.
        align: ``"sim3"``, ``"se3"`` or ``"none"`` (see :func:`align_trajectory`).
        stat: ``"rmse"`` (default), ``"mean"``, ``"median"`` or ``"max"``.
    """
    gt = _poses(gt, "gt")
    aligned, _, _ = _align(_poses(est, "est"), gt, align)
    return _stat(_ate_errors(aligned, gt), stat)


def rpe(
    est: ArrayLike,
    gt: ArrayLike,
    delta: int = 1,
    align: str = "sim3",
    stat: str = "rmse",
    all_pairs: bool = False,
) -> RPEResult:
    """Relative pose error (evo RPE, delta in frames).

    Args:
        est: ``(N, 4, 4)`` estimated camera-to-world poses.
        gt: ``(N, 4, 4)`` ground-truth poses, metres.
        delta: frame distance of the pairs.
        align: alignment before the error (only scale matters for RPE): see :func:`ate`.
        stat: statistic over the pairs (default RMSE).
        all_pairs: every ``(i, i + delta)`` instead of evo's default non-overlapping
            ``i = 0, delta, 2 delta, ...``.

    Returns:
        ``RPEResult(trans, rot_deg)``: translation (m) and rotation (degrees); NaN when
        there is no pair.
    """
    gt = _poses(gt, "gt")
    aligned, _, _ = _align(_poses(est, "est"), gt, align)
    trans, rot = _rpe_errors(aligned, gt, delta, all_pairs)
    return RPEResult(_stat(trans, stat), _stat(rot, stat))


def trajectory_metrics(
    est: ArrayLike, gt: ArrayLike, align: str = "sim3", delta: int = 1, stat: str = "rmse"
) -> dict[str, float | bool]:
    """ATE, RPE translation and RPE rotation with one alignment.

    Returns:
        ``{"ate" (m), "rpe_trans" (m), "rpe_rot_deg", "scale" (alignment scale, 1 unless
        sim3), "align_ok", "num_poses"}``.
    """
    gt = _poses(gt, "gt")
    aligned, scale, ok = _align(_poses(est, "est"), gt, align)
    trans, rot = _rpe_errors(aligned, gt, delta, False)
    return {
        "ate": _stat(_ate_errors(aligned, gt), stat),
        "rpe_trans": _stat(trans, stat),
        "rpe_rot_deg": _stat(rot, stat),
        "scale": scale,
        "align_ok": ok,
        "num_poses": gt.shape[0],
    }


def path_length(T: ArrayLike) -> float:
    """Length of the path through the positions of ``T`` ``(N, 4, 4)``, metres (0 if N < 2)."""
    t = _numpy64(T)[:, :3, 3]
    return float(np.linalg.norm(np.diff(t, axis=0), axis=1).sum())
