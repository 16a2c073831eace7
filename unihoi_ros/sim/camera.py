"""The simulator's camera: the package's pinhole model (:mod:`unihoi_ros.geometry.camera`,
numpy, torch-free) on the simulator's layouts, plus the simulator's own helpers (a K from
a field of view, image bounds, a sphere's image rectangle).

Conventions: OpenCV / REP-103 optical axes (x right, y down, z forward); pixel ``(u, v)``
is column ``u``, row ``v`` with pixel *centres* at integer coordinates, so the image spans
``[-0.5, W - 0.5] x [-0.5, H - 0.5]``. ``K`` is ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in
pixels. Camera rays are *not* normalised: their optical-axis component is 1, so the ray
parameter of a hit is its z-depth.
"""

from __future__ import annotations

import numpy as np

from unihoi_ros.geometry import camera


def intrinsics(width: int, height: int, hfov_rad: float, pp_offset: np.ndarray) -> np.ndarray:
    """``K`` (3, 3) float64 for a horizontal field of view and square pixels (fx = fy).

    ``hfov_rad`` spans the full image width ``W`` pixels: ``fx = W / (2 tan(hfov / 2))``.
    ``pp_offset`` (2,) is the principal point offset from the image centre, in units of the
    image width (so the same value gives the same geometry at any resolution).
    """
    f = width / (2.0 * np.tan(0.5 * hfov_rad))
    cx = 0.5 * (width - 1) + pp_offset[0] * width
    cy = 0.5 * (height - 1) + pp_offset[1] * width
    return np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])


def hfov_of(k: np.ndarray, width: int) -> float:
    """Horizontal field of view (rad) of ``K`` for an image ``width`` pixels wide."""
    return float(2.0 * np.arctan(0.5 * width / k[0, 0]))


def pixel_grid(height: int, width: int) -> np.ndarray:
    """Pixel centres ``(H * W, 2)`` float64 ``(u, v)`` in row-major order."""
    return camera.pixel_grid(height, width, dtype=np.float64).reshape(-1, 2)


def rays(k: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Camera-frame rays ``(M, 3)`` float64 through pixels ``uv`` ``(M, 2)``, with z
    component 1 (the points at z-depth 1)."""
    return camera.unproject_pixels(uv, 1.0, k)


def project(k: np.ndarray, x_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project camera-frame points ``(M, 3)`` (m) -> pixels ``(M, 2)`` and z-depth ``(M,)``.

    Points with ``z <= 0`` get NaN pixel coordinates. Not :func:`unihoi_ros.geometry.camera.
    project`: this multiplies by ``1 / z`` where that divides by ``z`` (1 ulp apart), and the
    simulator's clips are kept bit for bit; skew is 0 here.
    """
    z = x_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(z > 0.0, 1.0 / z, np.nan)
    uv = np.empty((x_cam.shape[0], 2))
    uv[:, 0] = k[0, 0] * x_cam[:, 0] * inv + k[0, 2]
    uv[:, 1] = k[1, 1] * x_cam[:, 1] * inv + k[1, 2]
    return uv, z


def in_image(uv: np.ndarray, height: int, width: int) -> np.ndarray:
    """Whether pixel positions ``(M, 2)`` fall inside the image area (NaN -> False)."""
    with np.errstate(invalid="ignore"):
        return (
            (uv[:, 0] >= -0.5)
            & (uv[:, 0] < width - 0.5)
            & (uv[:, 1] >= -0.5)
            & (uv[:, 1] < height - 0.5)
        )


def image_bounds(height: int, width: int) -> tuple[float, float, float, float]:
    """Pixel-area bounds ``(u_lo, u_hi, v_lo, v_hi)`` of an ``height x width`` image."""
    return (-0.5, width - 0.5, -0.5, height - 0.5)


def sphere_rect(
    k: np.ndarray,
    center_cam: np.ndarray,
    radius: float,
    bounds: tuple[float, float, float, float],
) -> tuple[float, float, float, float] | None:
    """Conservative pixel rectangle ``(u0, u1, v0, v1)`` covering the image of a sphere.

    ``center_cam`` (3,) is the sphere centre in the camera frame (m); the rectangle is
    clipped to ``bounds`` ``(u_lo, u_hi, v_lo, v_hi)`` (pixels). Returns None when the
    sphere is entirely behind the camera or outside the bounds, and ``bounds`` itself when
    the sphere reaches the camera centre. The bound is exact per axis: the extreme values
    of ``x / z`` over a sphere are the tangents of the 2D problem in the xz (resp. yz)
    plane.
    """
    if not np.isfinite(radius):
        return bounds
    cz = center_cam[2]
    if cz + radius <= 0.0:
        return None
    out = []
    for axis, f, c, lo_b, hi_b in (
        (0, k[0, 0], k[0, 2], bounds[0], bounds[1]),
        (1, k[1, 1], k[1, 2], bounds[2], bounds[3]),
    ):
        ca = center_cam[axis]
        dist = np.hypot(ca, cz)
        if dist <= radius * 1.0001:
            return bounds
        mid = np.arctan2(ca, cz)
        half = np.arcsin(radius / dist)
        lo, hi = mid - half, mid + half
        # A silhouette that reaches the camera plane is unbounded on that side.
        lo_px = -np.inf if lo <= -0.5 * np.pi else c + f * np.tan(lo)
        hi_px = np.inf if hi >= 0.5 * np.pi else c + f * np.tan(hi)
        lo_px, hi_px = max(lo_px, lo_b), min(hi_px, hi_b)
        if lo_px > hi_px:
            return None
        out += [lo_px, hi_px]
    return out[0], out[1], out[2], out[3]
