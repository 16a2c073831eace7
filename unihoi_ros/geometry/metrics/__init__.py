"""Evaluation metrics, split as evo splits them: depth (:mod:`.depth`), trajectory
alignment (:mod:`.alignment`: Umeyama, as evo's ``geometry`` / ``PosePath3D.align``),
trajectory errors (:mod:`.trajectory`: ATE, RPE, as evo's ``metrics``), reference paths
(:mod:`.baselines`), intrinsics (:mod:`.intrinsics`) and point clouds (:mod:`.cloud`);
:mod:`.common` holds the shared input conversion and statistics.

Inputs may be numpy arrays or torch tensors (any float dtype; computed in float64);
results are Python floats, tuples or dicts. Nothing here is differentiable. Empty inputs
(no valid pixel, no pose pair, an empty cloud) give NaN. Every name is re-exported here:
``from unihoi_ros.geometry import metrics; metrics.ate(...)``.
"""

from __future__ import annotations

from .alignment import align_trajectory, umeyama
from .baselines import constant_velocity_path, straight_line_path
from .cloud import chamfer_distance, fscore, nearest_distances, pointcloud_metrics
from .depth import abs_rel, delta1, depth_metrics, rmse
from .intrinsics import intrinsics_errors
from .trajectory import RPEResult, ate, path_length, rpe, trajectory_metrics

__all__ = [
    "RPEResult",
    "abs_rel",
    "align_trajectory",
    "ate",
    "chamfer_distance",
    "constant_velocity_path",
    "delta1",
    "depth_metrics",
    "fscore",
    "intrinsics_errors",
    "nearest_distances",
    "path_length",
    "pointcloud_metrics",
    "rmse",
    "rpe",
    "straight_line_path",
    "trajectory_metrics",
    "umeyama",
]
