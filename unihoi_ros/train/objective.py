"""One training objective evaluation: network forward, poses, and every loss of a batch.

A batch holds B samples; a sample is two 4-frame clips of the same video (the ``cc`` loss
compares their intrinsics). The 2B clips run through the network together, poses come
from the confidence-weighted Procrustes over the backward flow (differentiable, as in
the paper), and each loss is computed per clip (per sample for ``cc``) then averaged over
the sample's clips, giving ``(B,)`` values.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unihoi_ros.geometry.camera import unproject
from unihoi_ros.geometry.window_poses import poses_from_window

from .losses import (
    cc_loss,
    dynamic_area_loss,
    flow_3d_loss,
    intrinsics_loss,
    scale_loss,
    shape_loss,
    tracking_3d_loss,
    weighted_total,
)

#: Batch keys and their per-sample shapes (C = 2 clips, F frames, P tracks).
BATCH_KEYS = {
    "rgb": "(B, C, F, 3, H, W) float in [0, 1]",
    "flow_fwd": "(B, C, F-1, H, W, 2) pixels, t-1 -> t",
    "flow_bwd": "(B, C, F-1, H, W, 2) pixels, t -> t-1",
    "valid_fwd": "(B, C, F-1, H, W) bool",
    "valid_bwd": "(B, C, F-1, H, W) bool",
    "teacher_depth": "(B, C, F, H, W) metres (0 invalid)",
    "teacher_K": "(B, C, 3, 3) pixels",
    "tracks_uv": "(B, C, F, P, 2) pixels",
    "tracks_visible": "(B, C, F, P) bool",
    "static": "(B, C, F, H, W) in [0, 1]",
}
#: Optional batch keys: ``teacher_weight (B, C, F, H, W)`` >= 0, per-pixel weight of the
#: teacher in the ``shape`` loss (``unihoi adapt``: 1 on triangulated depth, less on the
#: base model's own depth); absent: 1 wherever the teacher is valid.


def _clips(x: Tensor) -> Tensor:
    """``(B, C, ...)`` -> ``(B*C, ...)``."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def compute_losses(
    model: nn.Module, batch: dict[str, Tensor], weights: dict[str, float],
    num_pose_points: int = 1000,
) -> dict[str, Tensor]:
    """Every loss term ``(B,)`` and their weighted sum under ``"total"``.

    Args:
        model: the UniHOI network (or a wrapper with the same call signature).
        batch: tensors as in :data:`BATCH_KEYS`.
        weights: loss weights by name (see :data:`losses.PAPER_WEIGHTS`).
        num_pose_points: pixels per frame pair of the pose Procrustes.
    """
    b, c = batch["rgb"].shape[:2]
    rgb = _clips(batch["rgb"])
    flow_bwd = _clips(batch["flow_bwd"])
    out = model(rgb, flow_bwd.permute(0, 1, 4, 2, 3))
    h, w = out.depth.shape[-2:]
    points = unproject(out.depth, out.K[:, None])  # (N, F, H, W, 3)
    poses = poses_from_window(out.depth, out.K, flow_bwd.permute(0, 1, 4, 2, 3).to(
        out.depth.dtype), out.confidence, num_pose_points)
    static = _clips(batch["static"]).to(out.depth.dtype)
    t_depth = _clips(batch["teacher_depth"]).to(out.depth.dtype)
    t_valid = torch.isfinite(t_depth) & (t_depth > 0)
    t_depth = torch.where(t_valid, t_depth, torch.ones_like(t_depth))
    t_points = unproject(t_depth, _clips(batch["teacher_K"]).to(out.depth.dtype)[:, None])

    def per_sample(x: Tensor) -> Tensor:
        return x.reshape(b, c).mean(dim=1)

    terms: dict[str, Tensor] = {}
    if weights.get("shape", 0.0):
        t_weight = t_valid.to(points.dtype)
        if "teacher_weight" in batch:
            t_weight = t_weight * _clips(batch["teacher_weight"]).to(points.dtype)
        terms["shape"] = per_sample(shape_loss(points, t_points, t_weight))
    if weights.get("flow_3d", 0.0):
        terms["flow_3d"] = per_sample(flow_3d_loss(
            points, poses, _clips(batch["flow_fwd"]).to(points.dtype), flow_bwd.to(points.dtype),
            _clips(batch["valid_fwd"]), _clips(batch["valid_bwd"]), static))
    if weights.get("tracking_3d", 0.0):
        terms["tracking_3d"] = per_sample(tracking_3d_loss(
            points, poses, _clips(batch["tracks_uv"]).to(points.dtype),
            _clips(batch["tracks_visible"]), static))
    if weights.get("dynamic_area", 0.0):
        terms["dynamic_area"] = per_sample(dynamic_area_loss(
            out.confidence, static, flow_bwd.to(points.dtype)))
    K_all = out.K_frames if out.K_frames is not None else out.K  # per frame where given
    if weights.get("cc", 0.0):
        K_pairs = K_all.reshape(b, c, *K_all.shape[1:])
        terms["cc"] = cc_loss(K_pairs[:, 0], K_pairs[:, 1], h, w) if c >= 2 else (
            torch.zeros(b, dtype=points.dtype, device=points.device))
    if weights.get("scale", 0.0):
        terms["scale"] = per_sample(scale_loss(out.depth, t_depth, t_valid))
    if weights.get("intrinsics", 0.0):
        terms["intrinsics"] = per_sample(intrinsics_loss(
            K_all, _clips(batch["teacher_K"]).to(K_all.dtype), h, w))
    terms["total"] = weighted_total(terms, weights)
    return terms
