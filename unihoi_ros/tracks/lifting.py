"""Pure maths of the tracker: sampling per-pixel maps at sub-pixel positions, lifting
pixels to the world and projecting world points back.

Conventions (README "Conventions"): pixel ``(u, v)`` is column ``u``, row ``v``, with pixel
centres at integer coordinates; camera axes are REP-103 optical (x right, y down,
z forward); ``T_world_cam`` ``(4, 4)`` maps camera coordinates to the world (metres).
"""

from __future__ import annotations

import numpy as np

from unihoi_ros.geometry import camera


def inside(uv: np.ndarray, height: int, width: int, margin: float = 0.0) -> np.ndarray:
    """``(M,)`` bool: ``uv`` ``(M, 2)`` lies within the image, ``margin`` pixels inside
    the outer pixel centres (NaN is outside)."""
    u, v = uv[:, 0], uv[:, 1]
    with np.errstate(invalid="ignore"):
        return ((u >= margin) & (u <= width - 1 - margin)
                & (v >= margin) & (v <= height - 1 - margin))


def sample_nearest(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Values of ``image`` ``(H, W, ...)`` at the pixels nearest ``uv`` ``(M, 2)``
    (clamped to the image; NaN positions read pixel (0, 0): mask them yourself)."""
    h, w = image.shape[:2]
    uvr = np.nan_to_num(np.rint(uv), nan=0.0)
    cols = np.clip(uvr[:, 0], 0, w - 1).astype(np.int64)
    rows = np.clip(uvr[:, 1], 0, h - 1).astype(np.int64)
    return image[rows, cols]


def sample_depth(depth: np.ndarray, uv: np.ndarray, edge_tolerance: float = 0.05) -> np.ndarray:
    """Depth ``(M,)`` float64 metres at sub-pixel ``uv`` ``(M, 2)``, edge-aware.

    Bilinear where the four surrounding depths agree within ``edge_tolerance`` (relative
    spread ``max / min - 1``); at an occlusion edge the nearest pixel's depth instead (a
    blend of a hand and the wall behind it is a point in mid-air). NaN outside the image
    or where the depth is invalid (NaN or <= 0).
    """
    h, w = depth.shape
    out = np.full(uv.shape[0], np.nan)
    ok = inside(uv, h, w)
    if not ok.any():
        return out
    u, v = uv[ok, 0].astype(np.float64), uv[ok, 1].astype(np.float64)
    u0 = np.clip(np.floor(u), 0, max(w - 2, 0)).astype(np.int64)
    v0 = np.clip(np.floor(v), 0, max(h - 2, 0)).astype(np.int64)
    u1, v1 = np.minimum(u0 + 1, w - 1), np.minimum(v0 + 1, h - 1)
    fu, fv = np.clip(u - u0, 0, 1), np.clip(v - v0, 0, 1)
    d = np.stack([depth[v0, u0], depth[v0, u1], depth[v1, u0], depth[v1, u1]], 1).astype(
        np.float64)
    wts = np.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        good = np.all(np.isfinite(d) & (d > 0), axis=1)
        smooth = good & (d.max(1) <= d.min(1) * (1.0 + edge_tolerance))
        bilinear = np.sum(d * wts, axis=1)
    nearest = d[np.arange(d.shape[0]), np.argmax(wts, axis=1)]
    z = np.where(smooth, bilinear, nearest)
    z[~(np.isfinite(z) & (z > 0))] = np.nan
    out[ok] = z
    return out


def lift(uv: np.ndarray, z: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray) -> np.ndarray:
    """World points ``(M, 3)`` float64 metres of pixels ``uv`` ``(M, 2)`` at z-depths ``z``
    ``(M,)`` (m) seen by a camera with intrinsics ``K`` ``(3, 3)`` and pose ``T_world_cam``
    ``(4, 4)``. NaN depth gives NaN points."""
    cam = camera.unproject_pixels(np.asarray(uv, np.float64), np.asarray(z, np.float64), K)
    return camera.transform_points(T_world_cam, cam)


def project(xyz: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``(M, 2)`` and z-depths ``(M,)`` (m) of world points ``xyz`` ``(M, 3)`` in the
    camera ``(K, T_world_cam)``; pixels are NaN for points not in front (z <= 1 mm)."""
    R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
    cam = (np.asarray(xyz, np.float64) - t) @ R  # R^T (x - t), row-wise
    uv, z = camera.project(cam, K)
    with np.errstate(invalid="ignore"):
        uv[~(z > 1e-3)] = np.nan
    return uv, z
