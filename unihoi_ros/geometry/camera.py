"""The package's one pinhole camera model: pixel grids, (un)projection, intrinsics.

Conventions (shared by the whole package):

- Camera axes are the OpenCV / REP-103 optical axes: x right, y down, z forward.
- Depth is z-depth: the coordinate along the optical axis, in metres (not the ray length).
- Pixel coordinates ``(u, v)`` are (column, row); the centre of pixel ``[row, col]`` lies at
  integer coordinates ``(u, v) = (col, row)``, as in OpenCV and ROS ``CameraInfo``.
- ``K`` is the 3x3 pinhole matrix in pixels ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``
  (skew ``s`` is honoured, usually 0).

- ``grid_sample`` coordinates: :func:`pixel_to_grid` maps pixel coordinates to the
  ``[-1, 1]`` units of ``F.grid_sample(..., align_corners=False)``, where -1 and 1 are the
  outer *edges* of the image, so pixel centre ``c`` sits at ``(2c + 1) / size - 1``.

The camera functions (:func:`pixel_grid`, :func:`unproject_pixels`, :func:`unproject`,
:func:`project`, :func:`transform_points`, :func:`pixel_to_grid`) take numpy arrays or torch
tensors and return the same kind, with one formula for both (the network's geometry runs
on tensors; the host's point clouds, the tracker and the simulator on arrays). They are
pure, batched over leading dimensions ``...`` (broadcasting rules), differentiable on
tensors, and keep the input dtype (float32 or float64). :func:`normalize_intrinsics` and
:func:`denormalize_intrinsics` are torch; :func:`scale_intrinsics` and :func:`focal_ratio`
are numpy. The module imports torch only when given tensors (the simulator, which depends
on numpy only, uses it too).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "denormalize_intrinsics",
    "focal_ratio",
    "normalize_intrinsics",
    "pixel_grid",
    "pixel_to_grid",
    "project",
    "scale_intrinsics",
    "transform_points",
    "unproject",
    "unproject_pixels",
]

#: A numpy array or a torch tensor (the camera functions return the kind they are given).
Array = Any


def _is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (a tensor exists only once torch is imported, so
    this never imports it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _stack_last(parts: list, like: Array) -> Array:
    """``parts`` broadcast together and stacked along a new last axis, as ``like``'s kind."""
    if _is_tensor(like):
        import torch

        return torch.stack(torch.broadcast_tensors(*parts), dim=-1)
    return np.stack(np.broadcast_arrays(*parts), axis=-1)


def pixel_grid(
    height: int,
    width: int,
    *,
    dtype: Any = None,
    device: Any = None,
) -> Array:
    """Pixel-centre coordinates of an image.

    Args:
        height: image height H in pixels.
        width: image width W in pixels.
        dtype: floating dtype of the result: a torch dtype (a tensor; None:
            ``torch.float32``) or a numpy one (an array, e.g. ``np.float64``).
        device: device of a tensor result.

    Returns:
        ``(H, W, 2)``: ``[..., 0] = u`` (column index) and ``[..., 1] = v`` (row index), in
        pixels, so ``grid[r, c] == (c, r)``.
    """
    torch = sys.modules.get("torch")
    if dtype is None or (torch is not None and isinstance(dtype, torch.dtype)):
        import torch

        v = torch.arange(height, dtype=dtype or torch.float32, device=device)
        u = torch.arange(width, dtype=dtype or torch.float32, device=device)
        vv, uu = torch.meshgrid(v, u, indexing="ij")
        return torch.stack([uu, vv], dim=-1)
    vv, uu = np.meshgrid(np.arange(height, dtype=dtype), np.arange(width, dtype=dtype),
                         indexing="ij")
    return np.stack([uu, vv], axis=-1)


def pixel_to_grid(coord: Array, size: int, offset: Array | None = None) -> Array:
    """Pixel coordinates along one image axis to ``grid_sample`` units.

    For ``F.grid_sample(..., align_corners=False)``: -1 and 1 are the outer edges of the
    ``size`` pixels, so the centre of pixel ``c`` (at integer ``c`` in the package's
    convention) maps to ``(c + 0.5) * 2 / size - 1``. With ``align_corners=True`` the
    corners would be the outer pixel *centres* instead; that convention is not used here.

    Args:
        coord: ``(...)`` pixel coordinates (u along the width, v along the height), pixels.
        size: the image's extent along that axis (W for u, H for v), pixels.
        offset: optional ``(...)`` displacement added to the pixel centre before the
            mapping (e.g. a flow component), pixels; computed as ``(coord + 0.5) +
            offset`` so that the rounding matches adding it to the shifted centre.

    Returns:
        ``(...)`` normalised coordinates (broadcast of ``coord`` and ``offset``), unitless.
    """
    centre = coord + 0.5
    if offset is not None:
        centre = centre + offset
    return centre * (2.0 / size) - 1.0


def scale_intrinsics(
    K: np.ndarray, from_hw: tuple[int, int], to_hw: tuple[int, int]
) -> np.ndarray:
    """``(3, 3)`` intrinsics of an image of size ``from_hw`` resized to ``to_hw`` (numpy).

    Pixel centres stay pixel centres, as when the image is resized with OpenCV's area /
    bilinear interpolation: ``c' = (c + 0.5) * s - 0.5`` for the principal point and
    ``f' = f * s`` for the focal lengths (skew scales with the width), where
    ``s = to / from`` per axis. Equal to ``denormalize_intrinsics(normalize_intrinsics(K,
    *from_hw, pixel_offset=0.5), *to_hw, pixel_offset=0.5)`` to the bit.

    Args:
        K: ``(3, 3)`` intrinsics in pixels of the ``from_hw`` image.
        from_hw: ``(height, width)`` of the image ``K`` belongs to, pixels.
        to_hw: ``(height, width)`` of the resized image, pixels.

    Returns:
        ``(3, 3)`` float64 intrinsics in pixels of the ``to_hw`` image (a copy of ``K`` when
        the sizes are equal).
    """
    k = np.array(K, dtype=np.float64)
    if tuple(from_hw) == tuple(to_hw):
        return k
    row2 = k[2]
    row0 = (k[0] + 0.5 * row2) / float(from_hw[1]) * float(to_hw[1]) - 0.5 * row2
    row1 = (k[1] + 0.5 * row2) / float(from_hw[0]) * float(to_hw[0]) - 0.5 * row2
    return np.stack([row0, row1, row2])


def _k_entries(K: Array) -> tuple[Array, Array, Array, Array, Array]:
    """``(fx, s, cx, fy, cy)``, each ``(...)``, from ``K (..., 3, 3)``."""
    return K[..., 0, 0], K[..., 0, 1], K[..., 0, 2], K[..., 1, 1], K[..., 1, 2]


def unproject_pixels(uv: Array, z: Array | float, K: Array) -> Array:
    """Lift pixels with known z-depth to camera-space points.

    Args:
        uv: ``(..., 2)`` pixel coordinates (column, row), pixels.
        z: ``(...)`` z-depth, metres (1.0: the rays through the pixels, z component 1).
        K: ``(..., 3, 3)`` intrinsics in pixels; its leading dims broadcast with ``uv``'s
            (for a ``(B, N, 2)`` set of pixels pass ``K[:, None]``).

    Returns:
        ``(..., 3)`` points in the camera optical frame, metres (same kind as ``uv``).
    """
    fx, s, cx, fy, cy = _k_entries(K)
    y_n = (uv[..., 1] - cy) / fy
    x_n = (uv[..., 0] - cx - s * y_n) / fx  # closed-form inverse of K: no matrix inverse
    return _stack_last([x_n * z, y_n * z, z], uv)


def unproject(depth: Array, K: Array) -> Array:
    """Depth map to a camera-space point map.

    Args:
        depth: ``(..., H, W)`` z-depth, metres (non-finite values give non-finite points).
        K: ``(..., 3, 3)`` intrinsics in pixels of this depth map's size.

    Returns:
        ``(..., H, W, 3)`` points in the camera optical frame, metres;
        ``unproject(depth, K)[..., r, c, :]`` is the point seen at pixel ``(u, v) = (c, r)``.
    """
    h, w = depth.shape[-2:]
    if _is_tensor(depth):
        grid = pixel_grid(h, w, dtype=depth.dtype, device=depth.device)
    else:
        grid = pixel_grid(h, w, dtype=depth.dtype)
    return unproject_pixels(grid, depth, K[..., None, None, :, :])


def project(points: Array, K: Array, eps: float = 1e-8) -> tuple[Array, Array]:
    """Project camera-space points to pixels.

    Args:
        points: ``(..., 3)`` points in the camera optical frame, metres.
        K: ``(..., 3, 3)`` intrinsics in pixels; its leading dims broadcast with
            ``points``' leading dims (for ``(B, N, 3)`` points pass ``K[:, None]``).
        eps: points with ``|z| <= eps`` are divided by ``eps`` instead of ``z`` so the
            result stays finite (their pixels are meaningless: callers mask ``z > 0``).

    Returns:
        ``uv (..., 2)`` pixel coordinates (column, row) and ``z (...)`` depth, metres (same
        kind as ``points``).
    """
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    if _is_tensor(points):
        import torch

        z_safe = torch.where(z.abs() > eps, z, torch.full_like(z, eps))
    else:
        z_safe = np.where(np.abs(z) > eps, z, np.asarray(eps, dtype=z.dtype))
    x_n, y_n = x / z_safe, y / z_safe
    fx, s, cx, fy, cy = _k_entries(K)
    u = fx * x_n + s * y_n + cx
    v = fy * y_n + cy
    return _stack_last([u, v], points), z


def _image_size(value: float | Tensor, like: Tensor) -> Tensor:
    """Return a size as a tensor that broadcasts against a ``(..., 3)`` row of ``K``."""
    import torch

    size = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return size[..., None]


def normalize_intrinsics(
    K: Tensor, height: float | Tensor, width: float | Tensor, pixel_offset: float = 0.0
) -> Tensor:
    """Intrinsics in pixels to intrinsics divided by the image size.

    The normalised form (``fx/W, fy/H, cx/W, cy/H``; skew divided by W) is what the
    UniHOI / EgoMono4D network predicts and its code uses. Their normalised image
    coordinates put pixel index ``i``'s centre at ``(i + 0.5) / W``, whereas our pixel
    convention puts it at ``i``: pass ``pixel_offset=0.5`` to convert exactly between the
    two (``cx_n = (cx + 0.5) / W``). The default 0 is the plain division.

    Args:
        K: ``(..., 3, 3)`` intrinsics in pixels.
        height: image height H in pixels (float or tensor ``(...)``).
        width: image width W in pixels (float or tensor ``(...)``).
        pixel_offset: added to the principal point before dividing, pixels.

    Returns:
        ``(..., 3, 3)`` normalised intrinsics (unitless).
    """
    row2 = K[..., 2, :]
    row0 = (K[..., 0, :] + pixel_offset * row2) / _image_size(width, K)
    row1 = (K[..., 1, :] + pixel_offset * row2) / _image_size(height, K)
    import torch

    return torch.stack(torch.broadcast_tensors(row0, row1, row2), dim=-2)


def denormalize_intrinsics(
    K_norm: Tensor, height: float | Tensor, width: float | Tensor, pixel_offset: float = 0.0
) -> Tensor:
    """Inverse of :func:`normalize_intrinsics`.

    Args:
        K_norm: ``(..., 3, 3)`` normalised intrinsics (``fx/W, fy/H, cx/W, cy/H``).
        height: image height H in pixels (float or tensor ``(...)``).
        width: image width W in pixels (float or tensor ``(...)``).
        pixel_offset: subtracted from the principal point after scaling, pixels (0.5 turns
            the UniHOI authors' half-pixel convention into ours).

    Returns:
        ``(..., 3, 3)`` intrinsics in pixels.
    """
    row2 = K_norm[..., 2, :]
    row0 = K_norm[..., 0, :] * _image_size(width, K_norm) - pixel_offset * row2
    row1 = K_norm[..., 1, :] * _image_size(height, K_norm) - pixel_offset * row2
    import torch

    return torch.stack(torch.broadcast_tensors(row0, row1, row2), dim=-2)


def transform_points(T: Array, points: Array) -> Array:
    """Apply a rigid (or similarity / affine) transform to a set of points.

    Args:
        T: ``(..., 4, 4)`` transform; its bottom row is ignored (affine: ``R p + t`` with
            ``R = T[:3, :3]``, which may hold a scale). Leading dims broadcast with
            ``points``' leading dims.
        points: ``(..., N, 3)`` points (a single point: pass ``p[..., None, :]``).

    Returns:
        ``(..., N, 3)`` transformed points, same units and kind as ``points``.
    """
    R = T[..., :3, :3]
    R_t = R.mT if _is_tensor(R) else np.swapaxes(R, -1, -2)
    return points @ R_t + T[..., None, :3, 3]


def focal_ratio(K_known: np.ndarray, K_predicted: np.ndarray) -> float:
    """``sqrt((fx_k / fx_p) * (fy_k / fy_p))``: how much longer the known focal length is
    than the predicted one (geometric mean over the two axes; 1 when they agree).

    Depth inferred from appearance scales with the focal length the image is read with
    (an object of size S spanning s pixels lies at ``z = f S / s``: Metric3D's canonical
    camera, Yin et al. 2023), so a network's depth read with its own focal length becomes
    the depth for the known camera when multiplied by this ratio.

    Args:
        K_known, K_predicted: ``(3, 3)`` intrinsics of the same image, pixels.
    """
    k, p = np.asarray(K_known, np.float64), np.asarray(K_predicted, np.float64)
    return float(np.sqrt((k[0, 0] / p[0, 0]) * (k[1, 1] / p[1, 1])))

