"""Ray casting of the synthetic world: depth, body ids, shaded colour, visibility.

A camera ray through pixel ``(u, v)`` is ``c + t * R_world_cam @ ((u - cx) / fx,
(v - cy) / fy, 1)``, so the hit parameter ``t`` is the z-depth. Each primitive is tested
only on the rays inside the image rectangle of its bounding sphere (cheap culling; exact
per axis), which keeps the cost close to one pass over the pixels for the large surfaces
plus a small one per object. Shading is Lambertian (view independent), so a static surface
has the same colour in every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import image_bounds, in_image, pixel_grid, project, rays, sphere_rect
from .scene import intersect, normals_and_faces
from .texture import albedo
from .world import World

#: Relative z tolerance for deciding that a re-cast ray hits the same surface point.
VISIBILITY_RTOL = 1e-6


@dataclass(frozen=True)
class Hits:
    """First hits of a batch of camera rays.

    Attributes:
        z: ``(M,)`` float64 z-depth (m) in the camera frame (inf: no hit).
        prim: ``(M,)`` int64 index of the hit primitive in ``world.prims`` (-1: none).
    """

    z: np.ndarray
    prim: np.ndarray


def prim_poses(world: World, T_world_body: np.ndarray) -> np.ndarray:
    """World poses ``(P, 4, 4)`` of all primitives given body poses ``(B, 4, 4)``."""
    return np.stack([T_world_body[p.body] @ p.T_body_prim for p in world.prims])


def _grid_candidates(rect: tuple[float, float, float, float], h: int, w: int) -> np.ndarray | None:
    """Return row-major indices of the ``h x w`` pixel centres inside ``rect`` (None: all)."""
    u0, u1, v0, v1 = rect
    c0, c1 = max(int(np.ceil(u0 - 1e-6)), 0), min(int(np.floor(u1 + 1e-6)), w - 1)
    r0, r1 = max(int(np.ceil(v0 - 1e-6)), 0), min(int(np.floor(v1 + 1e-6)), h - 1)
    if c0 == 0 and r0 == 0 and c1 == w - 1 and r1 == h - 1:
        return None
    if c0 > c1 or r0 > r1:
        return np.empty(0, dtype=np.int64)
    return (np.arange(r0, r1 + 1)[:, None] * w + np.arange(c0, c1 + 1)[None, :]).ravel()


def _sorted_candidates(
    rect: tuple[float, float, float, float], uv: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Return the indices of rays (sorted by pixel row ``rows``) whose ``uv`` is in ``rect``."""
    u0, u1, v0, v1 = rect
    lo = int(np.searchsorted(rows, np.floor(v0 - 1e-6), side="left"))
    hi = int(np.searchsorted(rows, np.floor(v1 + 1e-6), side="right"))
    us, vs = uv[lo:hi, 0], uv[lo:hi, 1]
    inside = (us >= u0 - 1e-6) & (us <= u1 + 1e-6) & (vs >= v0 - 1e-6) & (vs <= v1 + 1e-6)
    return lo + np.flatnonzero(inside)


def cast(
    world: World,
    poses: np.ndarray,
    k: np.ndarray,
    T_world_cam: np.ndarray,
    uv: np.ndarray,
    grid: tuple[int, int] | None = None,
) -> Hits:
    """First hits of the camera rays through pixel positions ``uv`` ``(M, 2)``.

    ``poses`` are the primitives' world poses (``prim_poses``). ``grid = (H, W)`` says that
    ``uv`` is the full row-major pixel grid (culling by slicing). Otherwise ``uv`` may be
    anywhere (also outside the image): the rays are bucketed by pixel row once so that each
    primitive only scans the rows of its rectangle.
    """
    order = None
    if grid is not None:
        h, w = grid
        bounds = image_bounds(h, w)
    else:
        if uv.shape[0] == 0:
            return Hits(z=np.empty(0), prim=np.empty(0, dtype=np.int64))
        # Bucket the rays by pixel row (a radix sort on int16 is linear time).
        rows = np.clip(np.floor(uv[:, 1]), -30000, 30000).astype(np.int16)
        order = np.argsort(rows, kind="stable")
        uv, rows = uv[order], rows[order]
        bounds = (
            float(uv[:, 0].min()),
            float(uv[:, 0].max()),
            float(uv[:, 1].min()),
            float(uv[:, 1].max()),
        )
    r_wc, c = T_world_cam[:3, :3], T_world_cam[:3, 3]
    d_cam = np.ascontiguousarray(rays(k, uv).T)  # (3, M): contiguous per-axis rows
    z = np.full(uv.shape[0], np.inf)
    prim = np.full(uv.shape[0], -1, dtype=np.int64)
    for i, p in enumerate(world.prims):
        r_wp, t_wp = poses[i, :3, :3], poses[i, :3, 3]
        center_cam = r_wc.T @ (t_wp - c)
        rect = sphere_rect(k, center_cam, p.bound_radius * 1.001 + 1e-4, bounds)
        if rect is None:
            continue
        if grid is not None:
            idx = _grid_candidates(rect, h, w)
        elif rect == bounds:
            idx = None
        else:
            idx = _sorted_candidates(rect, uv, rows)
        if idx is not None and idx.size == 0:
            continue
        d = d_cam if idx is None else d_cam[:, idx]
        # Rays in the primitive frame: rigid maps keep the ray parameter (= z-depth).
        o_p = r_wp.T @ (c - t_wp)
        d_p = (r_wp.T @ r_wc) @ d
        t = intersect(p.kind, p.size, o_p, d_p)
        if idx is None:
            better = t < z
            z = np.where(better, t, z)
            prim[better] = i
        else:
            better = t < z[idx]
            sel = idx[better]
            z[sel] = t[better]
            prim[sel] = i
    if order is not None:
        z_out, prim_out = np.empty_like(z), np.empty_like(prim)
        z_out[order], prim_out[order] = z, prim
        z, prim = z_out, prim_out
    return Hits(z=z, prim=prim)


def shade(
    world: World,
    poses: np.ndarray,
    k: np.ndarray,
    T_world_cam: np.ndarray,
    uv: np.ndarray,
    hits: Hits,
) -> np.ndarray:
    """Colour ``(M, 3)`` float64 in [0, 1] of the hits: texture albedo x Lambert shading.

    The texture's anti-aliasing footprint is a function of the surface point only, never of
    the current camera: for the static world, the pixel size at the point seen from the
    clip's mean head position (distance and obliquity); for moving bodies, the pixel size
    at the nominal viewing distance. So static surfaces look identical in every frame.
    """
    r_wc, c = T_world_cam[:3, :3], T_world_cam[:3, 3]
    rgb = np.zeros((uv.shape[0], 3))
    # Group the pixels by primitive (int16 keys: linear-time radix sort).
    order = np.argsort(hits.prim.astype(np.int16), kind="stable")
    bounds = np.searchsorted(hits.prim[order], np.arange(len(world.prims) + 1))
    head = world.layout.head_base
    pixel_angle = 1.0 / k[0, 0]  # rad per pixel at the image centre
    for i, p in enumerate(world.prims):
        idx = order[bounds[i] : bounds[i + 1]]
        if idx.size == 0:
            continue
        r_wp, t_wp = poses[i, :3, :3], poses[i, :3, 3]
        d_p = rays(k, uv[idx]) @ (r_wc.T @ r_wp)
        pts = r_wp.T @ (c - t_wp) + hits.z[idx, None] * d_p  # primitive-frame hit points
        n, faces = normals_and_faces(p.kind, p.size, pts)
        if p.body == 0:
            rel = pts @ r_wp.T + (t_wp - head)
            dist = np.linalg.norm(rel, axis=1)
            cos = np.abs(np.einsum("ij,ij->i", n @ r_wp.T, rel)) / dist
            footprint = dist * pixel_angle / np.maximum(cos, 0.25)
        else:
            footprint = np.full(idx.size, 1.2 * world.layout.view_dist * pixel_angle)
        light = world.ambient + np.maximum(n @ (r_wp.T @ world.light_dirs.T), 0.0) @ (
            world.light_gains
        )
        # The texture is a function of the point in the primitive (hence body) frame.
        if len(p.materials) == 1:
            col = albedo(p.materials[0], pts, n, footprint)
        else:
            col = np.empty((idx.size, 3))
            for f in np.unique(faces):
                m = faces == f
                col[m] = albedo(p.materials[int(f) % len(p.materials)], pts[m], n[m], footprint[m])
        rgb[idx] = col * light[:, None]
    return np.clip(rgb, 0.0, 1.0)


@dataclass(frozen=True)
class Frame:
    """One rendered view.

    Attributes:
        depth: ``(H, W)`` float64 z-depth (m).
        prim: ``(H, W)`` int64 primitive index.
        body: ``(H, W)`` int16 body id (0 = static).
        rgb: ``(H, W, 3)`` uint8, or None when rendered without shading.
    """

    depth: np.ndarray
    prim: np.ndarray
    body: np.ndarray
    rgb: np.ndarray | None


def render(
    world: World,
    T_world_body: np.ndarray,
    k: np.ndarray,
    T_world_cam: np.ndarray,
    height: int,
    width: int,
    with_rgb: bool = True,
) -> Frame:
    """Render one frame of size ``height x width`` (pixels) from ``T_world_cam`` (4, 4)."""
    poses = prim_poses(world, T_world_body)
    uv = pixel_grid(height, width)
    hits = cast(world, poses, k, T_world_cam, uv, grid=(height, width))
    body_of = np.array([p.body for p in world.prims], dtype=np.int16)
    rgb = None
    if with_rgb:
        col = shade(world, poses, k, T_world_cam, uv, hits)
        rgb = np.round(col * 255.0).astype(np.uint8).reshape(height, width, 3)
    return Frame(
        depth=hits.z.reshape(height, width),
        prim=hits.prim.reshape(height, width),
        body=body_of[hits.prim].reshape(height, width),
        rgb=rgb,
    )


def visible(
    world: World,
    T_world_body: np.ndarray,
    k: np.ndarray,
    T_world_cam: np.ndarray,
    height: int,
    width: int,
    points_world: np.ndarray,
    body: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project points into a camera and test whether each is the first surface seen.

    ``points_world`` ``(M, 3)`` (m) lie on bodies ``body`` ``(M,)``.

    Returns pixel positions ``(M, 2)`` (NaN behind the camera), z-depth ``(M,)`` (m) and
    ``visible`` ``(M,)`` bool: in front of the camera, inside the image, and the ray
    re-cast through the exact sub-pixel position hits the same body at the same depth
    (relative tolerance ``VISIBILITY_RTOL``).
    """
    r_wc, c = T_world_cam[:3, :3], T_world_cam[:3, 3]
    x_cam = (points_world - c) @ r_wc
    uv, z = project(k, x_cam)
    vis = in_image(uv, height, width) & (z > 0.0)
    idx = np.flatnonzero(vis)
    if idx.size:
        poses = prim_poses(world, T_world_body)
        hits = cast(world, poses, k, T_world_cam, uv[idx])
        body_of = np.array([p.body for p in world.prims], dtype=np.int64)
        hit_body = np.where(hits.prim >= 0, body_of[np.maximum(hits.prim, 0)], -1)
        same = (np.abs(hits.z - z[idx]) <= VISIBILITY_RTOL * z[idx]) & (hit_body == body[idx])
        vis[idx] = same
    return uv, z, vis
