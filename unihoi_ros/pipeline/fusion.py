"""Fusing per-frame point clouds into one world-frame cloud (offline outputs, the demo)."""

from __future__ import annotations

import numpy as np

from unihoi_ros.geometry.camera import transform_points, unproject_pixels
from unihoi_ros.pipeline.results import FrameResult


def voxel_downsample(
    points: np.ndarray, colors: np.ndarray, voxel: float
) -> tuple[np.ndarray, np.ndarray]:
    """Average of the points (and colours) in each occupied cubic voxel.

    Args:
        points: ``(N, 3)`` metres. colors: ``(N, 3)`` uint8. voxel: edge length, metres.

    Returns:
        ``(M, 3)`` float32 centroids and ``(M, 3)`` uint8 mean colours, M <= N.
    """
    if len(points) == 0:
        return points.astype(np.float32).reshape(0, 3), colors.reshape(0, 3)
    keys = np.floor(points / voxel).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, inverse, points)
    csum = np.zeros((len(counts), 3))
    np.add.at(csum, inverse, colors.astype(np.float64))
    return ((sums / counts[:, None]).astype(np.float32),
            np.round(csum / counts[:, None]).astype(np.uint8))


class CloudFuser:
    """Accumulates confidence-filtered world points of :class:`FrameResult`s.

    Args:
        voxel: voxel edge (metres) of the downsampling applied on :meth:`cloud`.
        min_confidence: points below this confidence are skipped (moving hands and
            objects get low confidence, so the fused cloud is the static scene).
        max_points_per_frame: random subsample per frame to bound memory.
    """

    def __init__(self, voxel: float = 0.01, min_confidence: float = 0.5,
                 max_points_per_frame: int = 20000, seed: int = 0) -> None:
        self.voxel = voxel
        self.min_confidence = min_confidence
        self.max_points_per_frame = max_points_per_frame
        self._rng = np.random.default_rng(seed)
        self._points: list[np.ndarray] = []
        self._colors: list[np.ndarray] = []

    def add(self, result: FrameResult) -> None:
        d, K = result.depth, result.K
        keep = np.isfinite(d) & (d > 0) & (result.confidence >= self.min_confidence)
        rows, cols = np.nonzero(keep)
        if len(rows) > self.max_points_per_frame:
            pick = self._rng.choice(len(rows), self.max_points_per_frame, replace=False)
            rows, cols = rows[pick], cols[pick]
        cam = unproject_pixels(np.stack([cols, rows], axis=-1),
                               d[rows, cols].astype(np.float64), K)
        self._points.append(transform_points(result.T_world_cam, cam))
        self._colors.append(result.rgb[rows, cols])

    def cloud(self) -> tuple[np.ndarray, np.ndarray]:
        """``(M, 3)`` float32 world points and ``(M, 3)`` uint8 colours, voxel-averaged."""
        if not self._points:
            return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
        return voxel_downsample(np.concatenate(self._points), np.concatenate(self._colors),
                                self.voxel)
