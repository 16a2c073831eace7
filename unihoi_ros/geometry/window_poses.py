"""Camera poses of a window from depth, intrinsics, backward flow and confidence.

The authors' procedure (``egomono4d/model/projection.py: align_surfaces`` with
``extrinsics_procrustes_flow.py``): unproject every frame's depth; for each consecutive
pair take ``num_points`` pixels of frame t evenly spaced over the flattened image
(``torch.linspace(0, H*W - 1, num_points)`` truncated to integers), follow the backward flow
into frame t-1 and sample frame t-1's points there (bilinear, border padding); a
confidence-weighted rigid Procrustes fit maps frame t's points onto frame t-1's, and the
relative poses are chained with frame 0 as the identity (camera-to-world).

Conventions are the package's (``geometry/camera.py``): pixel centres at integer
coordinates, ``K`` in pixels. The authors' normalised coordinates put pixel centres at
``(c + 0.5) / W``, which is the same point set once their K is shifted by half a pixel; the
network outputs K in our convention, so no correction is needed here. Their
``align_rigid`` minimises the same weighted least squares as
:func:`unihoi_ros.geometry.procrustes.weighted_rigid` (weights normalised only for the
centroids, which leaves the minimiser unchanged), so that function is used as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .camera import pixel_to_grid, unproject
from .poses import chain_relative
from .procrustes import weighted_rigid


def sample_indices(height: int, width: int, num_points: int | None, device=None) -> Tensor:
    """Flat pixel indices used for the fit: ``num_points`` evenly spaced (all if None)."""
    if num_points is None:
        return torch.arange(height * width, device=device)
    return torch.linspace(0, height * width - 1, num_points, dtype=torch.int64, device=device)


def relative_poses(
    depth: Tensor, K: Tensor, flows_bwd: Tensor, confidence: Tensor,
    num_points: int | None = 1000, threshold: float | None = None,
) -> Tensor:
    """Transforms ``(B, F-1, 4, 4)`` mapping frame t's camera points into frame t-1's.

    Args:
        depth: ``(B, F, H, W)`` z-depth, metres.
        K: ``(B, 3, 3)`` (one per window) or ``(B, F, 3, 3)`` intrinsics, pixels.
        flows_bwd: ``(B, F-1, 2, H, W)`` pixel flow from frame t to t-1 (t = 1..F-1).
        confidence: ``(B, F-1, H, W)`` weights in [0, 1] for frames 1..F-1.
        num_points: pixels per pair (the authors use 1000); None uses every pixel.
        threshold: weights below it are zeroed (the authors' ``inference_trunc``).
    """
    b, f, h, w = depth.shape
    if K.ndim == 3:
        K = K[:, None].expand(b, f, 3, 3)
    points = unproject(depth, K)  # (B, F, H, W, 3)
    idx = sample_indices(h, w, num_points, depth.device)

    later = points[:, 1:].reshape(b, f - 1, h * w, 3)[:, :, idx]
    flow = flows_bwd.permute(0, 1, 3, 4, 2).reshape(b, f - 1, h * w, 2)[:, :, idx]
    u = (idx % w).to(depth.dtype)
    v = torch.div(idx, w, rounding_mode="floor").to(depth.dtype)
    # Pixel coordinates -> grid_sample units (align_corners=False).
    gx = pixel_to_grid(u, w, flow[..., 0])
    gy = pixel_to_grid(v, h, flow[..., 1])
    grid = torch.stack((gx, gy), dim=-1).reshape(b * (f - 1), -1, 1, 2)
    earlier_maps = points[:, :-1].permute(0, 1, 4, 2, 3).reshape(b * (f - 1), 3, h, w)
    earlier = F.grid_sample(earlier_maps, grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
    earlier = earlier[..., 0].transpose(1, 2).reshape(b, f - 1, -1, 3)

    weights = confidence.reshape(b, f - 1, h * w)[..., idx]
    if threshold is not None:
        weights = torch.where(weights < threshold, torch.zeros_like(weights), weights)
    return weighted_rigid(later, earlier, weights)


def poses_from_window(
    depth: Tensor, K: Tensor, flows_bwd: Tensor, confidence: Tensor,
    num_points: int | None = 1000, threshold: float | None = None,
) -> Tensor:
    """Camera-to-world poses ``(B, F, 4, 4)`` of a window, frame 0 = identity.

    The relative poses of :func:`relative_poses` (t -> t-1) chained by
    :func:`~unihoi_ros.geometry.poses.chain_relative` (``P_t = P_{t-1} @ relative_t``).
    Arguments as in :func:`relative_poses`; units metres and pixels.
    """
    return chain_relative(relative_poses(depth, K, flows_bwd, confidence, num_points, threshold))
