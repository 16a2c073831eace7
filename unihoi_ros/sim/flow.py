"""Analytic ground-truth backward optical flow (pure functions).

For a pixel of frame t with depth z and body b, the surface point is unprojected,
moved by the body's motion between t and t-1 (``T_world_body[t-1] @ inv(T_world_body[t])``,
identity for the static world) and projected into camera t-1. The flow is the pixel
offset (dx, dy) from frame t's pixel to that position. Whether the point is actually seen
in frame t-1 (occlusion, out of view) is decided by re-casting, in
:func:`unihoi_ros.sim.render.visible`.
"""

from __future__ import annotations

import numpy as np

from .camera import pixel_grid, project, rays
from .rigid import inv_pose


def unproject_world(depth: np.ndarray, k: np.ndarray, T_world_cam: np.ndarray) -> np.ndarray:
    """World points ``(H * W, 3)`` (m) of a z-depth map ``(H, W)`` (m), row-major."""
    h, w = depth.shape
    x_cam = rays(k, pixel_grid(h, w)) * depth.reshape(-1, 1)
    return x_cam @ T_world_cam[:3, :3].T + T_world_cam[:3, 3]


def move_points(
    points: np.ndarray, body: np.ndarray, T_from: np.ndarray, T_to: np.ndarray
) -> np.ndarray:
    """Carry world points rigidly with their bodies from one set of body poses to another.

    ``points`` ``(M, 3)`` (m) lie on bodies ``body`` ``(M,)``; ``T_from`` and ``T_to`` are
    ``(B, 4, 4)`` body-to-world poses.
    """
    out = np.empty_like(points)
    rel = T_to @ inv_pose(T_from)  # (B, 4, 4)
    for b in np.unique(body):
        m = body == b
        out[m] = points[m] @ rel[b, :3, :3].T + rel[b, :3, 3]
    return out


def backward_flow(
    depth: np.ndarray,
    body: np.ndarray,
    k: np.ndarray,
    T_world_cam_t: np.ndarray,
    T_world_cam_prev: np.ndarray,
    T_world_body_t: np.ndarray,
    T_world_body_prev: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward flow of frame t to frame t-1.

    Args:
        depth: ``(H, W)`` z-depth of frame t (m), float64 for exactness.
        body: ``(H, W)`` body id of each pixel of frame t.
        k: ``(3, 3)`` intrinsics (pixels).
        T_world_cam_t, T_world_cam_prev: ``(4, 4)`` camera-to-world poses at t and t-1.
        T_world_body_t, T_world_body_prev: ``(B, 4, 4)`` body poses at t and t-1.

    Returns:
        flow ``(H, W, 2)`` float64 pixel offsets (dx, dy) to frame t-1 (NaN where the point
        is behind camera t-1), the moved points ``(H * W, 3)`` in world at t-1 (m), and
        their z-depth ``(H * W,)`` in camera t-1 (m).
    """
    h, w = depth.shape
    pts = unproject_world(depth, k, T_world_cam_t)
    moved = move_points(pts, body.reshape(-1), T_world_body_t, T_world_body_prev)
    r, c = T_world_cam_prev[:3, :3], T_world_cam_prev[:3, 3]
    uv_prev, z_prev = project(k, (moved - c) @ r)
    flow = (uv_prev - pixel_grid(h, w)).reshape(h, w, 2)
    return flow, moved, z_prev
