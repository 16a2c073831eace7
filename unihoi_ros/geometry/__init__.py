"""Pure geometry on torch tensors: camera model, Procrustes fits, poses and metrics.

Imports nothing else of the package but the torch-free option enums
(:mod:`unihoi_ros.options`). Conventions: OpenCV optical axes (x right, y down,
z forward), z-depth in metres, pixel centres at integer ``(u, v) = (column, row)``,
camera-to-world poses as ``(..., 4, 4)`` matrices, quaternions ``(x, y, z, w)``.
"""

from __future__ import annotations

from .camera import (
    denormalize_intrinsics,
    normalize_intrinsics,
    pixel_grid,
    pixel_to_grid,
    project,
    scale_intrinsics,
    transform_points,
    unproject,
    unproject_pixels,
)
from .metrics import (
    RPEResult,
    abs_rel,
    align_trajectory,
    ate,
    chamfer_distance,
    delta1,
    depth_metrics,
    fscore,
    nearest_distances,
    pointcloud_metrics,
    rmse,
    rpe,
    trajectory_metrics,
    umeyama,
)
from .poses import (
    chain_relative,
    chain_relative_np,
    compose,
    invert_se3,
    matrix_from_quaternion,
    quaternion_from_matrix,
    relative_pose,
    rotation_angle,
    se3_from_rt,
    sim3_matrix,
)
from .procrustes import trimmed_weighted_rigid, weighted_rigid, weighted_sim3

__all__ = [
    "RPEResult",
    "abs_rel",
    "align_trajectory",
    "ate",
    "chain_relative",
    "chain_relative_np",
    "chamfer_distance",
    "compose",
    "delta1",
    "denormalize_intrinsics",
    "depth_metrics",
    "fscore",
    "invert_se3",
    "matrix_from_quaternion",
    "nearest_distances",
    "normalize_intrinsics",
    "pixel_grid",
    "pixel_to_grid",
    "pointcloud_metrics",
    "project",
    "quaternion_from_matrix",
    "relative_pose",
    "rmse",
    "rotation_angle",
    "rpe",
    "scale_intrinsics",
    "se3_from_rt",
    "sim3_matrix",
    "trajectory_metrics",
    "transform_points",
    "trimmed_weighted_rigid",
    "umeyama",
    "unproject",
    "unproject_pixels",
    "weighted_rigid",
    "weighted_sim3",
]
