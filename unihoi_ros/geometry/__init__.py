"""Pure geometry: camera model, Procrustes fits, poses and metrics.

Imports nothing else of the package but the torch-free option enums
(:mod:`unihoi_ros.options`). Conventions: OpenCV optical axes (x right, y down,
z forward), z-depth in metres, pixel centres at integer ``(u, v) = (column, row)``,
camera-to-world poses as ``(..., 4, 4)`` matrices, quaternions ``(x, y, z, w)``.

The names below are imported on first use (PEP 562), so importing one torch-free module
(:mod:`~unihoi_ros.geometry.camera` on numpy arrays, :mod:`~unihoi_ros.geometry.quaternions`,
:mod:`~unihoi_ros.geometry.frames`) does not import torch: the simulator and the ROS message
code use them without it.
"""

from __future__ import annotations

import importlib

#: Public name -> the submodule that defines it.
_HOME = {
    # camera
    "denormalize_intrinsics": "camera",
    "normalize_intrinsics": "camera",
    "pixel_grid": "camera",
    "pixel_to_grid": "camera",
    "project": "camera",
    "scale_intrinsics": "camera",
    "transform_points": "camera",
    "unproject": "camera",
    "unproject_pixels": "camera",
    # metrics
    "RPEResult": "metrics",
    "abs_rel": "metrics",
    "align_trajectory": "metrics",
    "ate": "metrics",
    "chamfer_distance": "metrics",
    "delta1": "metrics",
    "depth_metrics": "metrics",
    "fscore": "metrics",
    "nearest_distances": "metrics",
    "pointcloud_metrics": "metrics",
    "rmse": "metrics",
    "rpe": "metrics",
    "trajectory_metrics": "metrics",
    "umeyama": "metrics",
    # poses
    "chain_relative": "poses",
    "chain_relative_np": "poses",
    "compose": "poses",
    "invert_se3": "poses",
    "matrices_from_quaternions": "poses",
    "quaternions_from_matrices": "poses",
    "relative_pose": "poses",
    "rotation_angle": "poses",
    "se3_from_rt": "poses",
    "sim3_matrix": "poses",
    # lie_algebra
    "se3_exp": "lie_algebra",
    "se3_log": "lie_algebra",
    # procrustes
    "trimmed_weighted_rigid": "procrustes",
    "weighted_rigid": "procrustes",
    "weighted_sim3": "procrustes",
}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "matrices_from_quaternions",
    "nearest_distances",
    "normalize_intrinsics",
    "pixel_grid",
    "pixel_to_grid",
    "pointcloud_metrics",
    "project",
    "quaternions_from_matrices",
    "relative_pose",
    "rmse",
    "rotation_angle",
    "rpe",
    "scale_intrinsics",
    "se3_exp",
    "se3_from_rt",
    "se3_log",
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
