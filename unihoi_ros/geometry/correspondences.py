"""3D correspondences between consecutive frames from depth and backward optical flow.

These feed the weighted Procrustes that gives relative camera poses (UniHOI §3.2): a
pixel of frame t is unprojected with its own depth, its flow target in frame t-1 with
frame t-1's depth sampled there.
"""

from __future__ import annotations

import math

import torch

from .camera import unproject_pixels


def grid_pixels(
    height: int, width: int, num_points: int, dtype=torch.float64, device=None
) -> torch.Tensor:
    """About ``num_points`` evenly spaced integer pixels covering the image.

    Returns:
        ``(N, 2)`` pixel coordinates ``(u, v)`` (column, row), N ≈ num_points, rows
        and columns in the image's aspect ratio.
    """
    rows = max(2, round(math.sqrt(num_points * height / width)))
    cols = max(2, round(num_points / rows))
    v = torch.linspace(0, height - 1, min(rows, height), dtype=dtype, device=device).round()
    u = torch.linspace(0, width - 1, min(cols, width), dtype=dtype, device=device).round()
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu.reshape(-1), vv.reshape(-1)], dim=-1)


def sample_depth_bilinear(
    depth: torch.Tensor, uv: torch.Tensor, edge_tolerance: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth at sub-pixel positions, interpolating inverse depth.

    Inverse depth is affine in pixel coordinates on a plane, so this is exact on planar
    surfaces (plain bilinear depth is not). Samples whose 2x2 neighbourhood straddles a
    depth edge (max/min ratio above ``1 + edge_tolerance``), leaves the image, or holds
    invalid depth are marked invalid.

    Args:
        depth: ``(..., H, W)`` metres (z-depth); non-finite or <= 0 is invalid.
        uv: ``(..., N, 2)`` pixel coordinates (column, row) in the same image.
        edge_tolerance: relative depth spread allowed inside one 2x2 neighbourhood.

    Returns:
        ``z (..., N)`` metres (1 where invalid, to stay finite) and ``valid (..., N)`` bool.
    """
    h, w = depth.shape[-2:]
    u, v = uv[..., 0], uv[..., 1]
    inside = (u >= 0) & (v >= 0) & (u <= w - 1) & (v <= h - 1) & torch.isfinite(u + v)
    u0 = torch.where(inside, u, torch.zeros_like(u)).floor().clamp(0, max(w - 2, 0))
    v0 = torch.where(inside, v, torch.zeros_like(v)).floor().clamp(0, max(h - 2, 0))
    fu, fv = (u - u0).clamp(0, 1), (v - v0).clamp(0, 1)
    u0l, v0l = u0.long(), v0.long()
    flat = depth.reshape(*depth.shape[:-2], h * w)

    def at(dv: int, du: int) -> torch.Tensor:
        idx = (v0l + dv).clamp(max=h - 1) * w + (u0l + du).clamp(max=w - 1)
        return torch.gather(flat, -1, idx)

    # Gather in the map's dtype, compute in uv's (maps stay float32, samples float64).
    d = torch.stack([at(0, 0), at(0, 1), at(1, 0), at(1, 1)], dim=-1).to(uv.dtype)
    ok = inside & (torch.isfinite(d) & (d > 0)).all(dim=-1)
    d_safe = torch.where(ok[..., None], d, torch.ones_like(d))
    spread = d_safe.amax(dim=-1) / d_safe.amin(dim=-1)
    ok = ok & (spread <= 1 + edge_tolerance)
    inv = 1.0 / d_safe
    wts = torch.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv], dim=-1)
    z = 1.0 / (inv * wts).sum(dim=-1)
    return torch.where(ok, z, torch.ones_like(z)), ok


def flow_correspondences(
    depth_curr: torch.Tensor,
    depth_prev: torch.Tensor,
    K_curr: torch.Tensor,
    K_prev: torch.Tensor,
    flow_bwd: torch.Tensor,
    uv: torch.Tensor,
    edge_tolerance: float = 0.05,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Camera-space point pairs linking frame t (curr) to frame t-1 (prev).

    Args:
        depth_curr, depth_prev: ``(..., H, W)`` metres.
        K_curr, K_prev: ``(..., 3, 3)`` pixels.
        flow_bwd: ``(..., H, W, 2)`` pixels, from frame t to frame t-1.
        uv: ``(N, 2)`` integer pixel positions in frame t (e.g. :func:`grid_pixels`); its
            dtype is the computation's (the maps may be float32).
        edge_tolerance: see :func:`sample_depth_bilinear`.

    Returns:
        ``p_curr (..., N, 3)`` points in camera t, ``p_prev (..., N, 3)`` the same surface
        points in camera t-1 (metres), ``valid (..., N)`` bool. A rigid ``T`` with
        ``T · p_curr ≈ p_prev`` is the pose of camera t in camera t-1.
    """
    h, w = depth_curr.shape[-2:]
    dtype = uv.dtype  # maps may be float32; samples are computed in uv's dtype
    idx = (uv[:, 1].long() * w + uv[:, 0].long()).expand(*depth_curr.shape[:-2], -1)
    z_curr = torch.gather(depth_curr.reshape(*depth_curr.shape[:-2], h * w), -1, idx).to(dtype)
    flow = flow_bwd.reshape(*flow_bwd.shape[:-3], h * w, 2)
    f = torch.gather(flow, -2, idx[..., None].expand(*idx.shape, 2)).to(dtype)
    uv_b = uv.expand(*f.shape)
    uv_prev = uv_b + f
    z_prev, ok_prev = sample_depth_bilinear(depth_prev, uv_prev, edge_tolerance)
    ok_curr = torch.isfinite(z_curr) & (z_curr > 0) & torch.isfinite(f).all(dim=-1)
    z_curr = torch.where(ok_curr, z_curr, torch.ones_like(z_curr))
    K_curr = K_curr.to(dtype)[..., None, :, :]  # broadcast over the N points
    K_prev = K_prev.to(dtype)[..., None, :, :]
    p_curr = unproject_pixels(uv_b, z_curr, K_curr)
    p_prev = unproject_pixels(torch.nan_to_num(uv_prev), z_prev, K_prev)
    return p_curr, p_prev, ok_curr & ok_prev

