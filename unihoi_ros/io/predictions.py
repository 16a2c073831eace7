"""Per-frame predictions of a run as one typed record (:class:`Predictions`).

Runs are stored in the layout of :mod:`unihoi_ros.io.run_layout` (depth and confidence
PNGs per frame, ``frames.json``) and read back with :func:`unihoi_ros.io.load_run`, which
also reads runs written before it as one compressed ``predictions.npz``
(:meth:`Predictions.save` / :meth:`Predictions.load`, kept for those).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Predictions:
    """Stacked outputs of a run.

    Attributes:
        stamps_ns: ``(N,)`` int64.
        depth: ``(N, H, W)`` float32 metres (NaN invalid).
        K: ``(N, 3, 3)`` float64 pixels.
        T_world_cam: ``(N, 4, 4)`` float64 camera-to-world (world = first camera).
        confidence: ``(N, H, W)`` float32 in [0, 1].
        pose_ok: ``(N,)`` bool, False where the pose solve was degenerate and the previous
            pose was kept; None when unknown (runs stored as ``predictions.npz``).
    """

    stamps_ns: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray
    confidence: np.ndarray
    pose_ok: np.ndarray | None = None

    @classmethod
    def from_results(cls, results) -> Predictions:
        return cls(
            stamps_ns=np.array([r.stamp_ns for r in results], np.int64),
            depth=np.stack([r.depth for r in results]).astype(np.float32),
            K=np.stack([r.K for r in results]).astype(np.float64),
            T_world_cam=np.stack([r.T_world_cam for r in results]).astype(np.float64),
            confidence=np.stack([r.confidence for r in results]).astype(np.float32),
            pose_ok=np.array([bool(r.pose_ok) for r in results], bool),
        )

    def save(self, path: str | Path) -> None:
        """The legacy single-file storage (one ``.npz``, float32 maps: 2 MB per 640x480
        frame); runs are written with :func:`unihoi_ros.io.run_layout.write_run`."""
        np.savez_compressed(path, stamps_ns=self.stamps_ns, depth=self.depth, K=self.K,
                            T_world_cam=self.T_world_cam, confidence=self.confidence)

    @classmethod
    def load(cls, path: str | Path) -> Predictions:
        """Read a legacy ``.npz`` (:meth:`save`); :func:`unihoi_ros.io.load_run` reads any
        run."""
        with np.load(path) as z:
            return cls(z["stamps_ns"], z["depth"], z["K"], z["T_world_cam"], z["confidence"])
