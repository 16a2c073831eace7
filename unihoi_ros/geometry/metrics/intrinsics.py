"""Intrinsics errors (:func:`intrinsics_errors`): each predicted ``K`` is first rescaled to
the ground truth's image size (:func:`unihoi_ros.geometry.camera.scale_intrinsics`), then
per frame ``fx_pred / fx_true`` (``fx_ratio``, its mean; below 1 = too short a focal
length, too wide a field of view), ``|fx_pred / fx_true - 1|`` (``fx_rel_err``), likewise
for fy, and ``|cx_pred - cx_true|`` (``cx_err_px``, ground-truth pixels), likewise for cy,
each averaged over frames; ``pp_err_frac = max(cx_err_px / W, cy_err_px / H)``.
"""

from __future__ import annotations

import numpy as np

from ..camera import scale_intrinsics
from .common import ArrayLike, _numpy64

__all__ = ["intrinsics_errors"]


def intrinsics_errors(
    pred_K: ArrayLike, gt_K: ArrayLike, pred_hw: tuple[int, int], gt_hw: tuple[int, int]
) -> dict[str, float]:
    """Errors of predicted intrinsics against the truth, in the ground truth's pixels.

    Args:
        pred_K: ``(N, 3, 3)`` predicted intrinsics, pixels of a ``pred_hw`` image.
        gt_K: ``(3, 3)`` or ``(N, 3, 3)`` true intrinsics, pixels of a ``gt_hw`` image.
        pred_hw: ``(height, width)`` the prediction's K belongs to.
        gt_hw: ``(height, width)`` the truth's K belongs to (the errors' pixels).

    Returns:
        ``{"fx_rel_err", "fy_rel_err"`` (mean over frames of ``|pred / true - 1|``),
        ``"fx_ratio", "fy_ratio"`` (mean ``pred / true``), ``"cx_err_px", "cy_err_px"``
        (mean ``|pred - true|``, pixels), ``"pp_err_frac"`` (``max(cx_err_px / W,
        cy_err_px / H)``), ``"num_frames"}``; see the module doc.
    """
    pk = _numpy64(pred_K)
    if pk.ndim != 3 or pk.shape[-2:] != (3, 3):
        raise ValueError(f"pred_K must be (N, 3, 3), got {pk.shape}")
    pk = np.stack([scale_intrinsics(k, pred_hw, gt_hw) for k in pk])
    gk = np.broadcast_to(_numpy64(gt_K), pk.shape)
    fx, fy = pk[:, 0, 0] / gk[:, 0, 0], pk[:, 1, 1] / gk[:, 1, 1]
    cx = np.abs(pk[:, 0, 2] - gk[:, 0, 2])
    cy = np.abs(pk[:, 1, 2] - gk[:, 1, 2])
    h, w = gt_hw
    return {
        "fx_rel_err": float(np.mean(np.abs(fx - 1.0))),
        "fy_rel_err": float(np.mean(np.abs(fy - 1.0))),
        "fx_ratio": float(np.mean(fx)),
        "fy_ratio": float(np.mean(fy)),
        "cx_err_px": float(np.mean(cx)),
        "cy_err_px": float(np.mean(cy)),
        "pp_err_frac": float(max(np.mean(cx) / w, np.mean(cy) / h)),
        "num_frames": int(pk.shape[0]),
    }
