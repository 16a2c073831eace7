"""A backend that answers with a synthetic clip's ground truth (tests the geometry path)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from unihoi_ros.backends.base import Backend, WindowPrediction


def _frame_key(rgb: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16).digest()


class OracleBackend(Backend):
    """Ground-truth depth and K of a :class:`unihoi_ros.sim.Sequence`; confidence 1 on
    static and 0 on dynamic pixels.

    Frames are recognised by their pixels (a hash of the RGB bytes), so the reconstructor
    needs no side channel; a frame that is not in the sequence raises ``KeyError``.
    """

    name = "oracle"
    device = "cpu"
    num_frames = 4
    decodes_last = True

    def __init__(self, sequence) -> None:
        self._seq = sequence
        self._index = {_frame_key(f): i for i, f in enumerate(sequence.rgb)}
        self.encoder_calls = 0

    def encode(self, rgb: np.ndarray) -> int:
        """Index of ``rgb`` ``(H, W, 3)`` uint8 in the sequence."""
        self.encoder_calls += 1
        return self._index[_frame_key(rgb)]

    def infer_window(
        self, features: Sequence[int], rgbs: Sequence[np.ndarray], flows_bwd: np.ndarray,
        decode_last: int | None = None,
    ) -> WindowPrediction:
        idx = list(features)
        first = 0 if decode_last is None else len(idx) - int(decode_last)
        idx = idx[first:]
        static = ~self._seq.dynamic[idx[1:]]
        return WindowPrediction(
            depth=self._seq.depth[idx].astype(np.float32),
            K=np.asarray(self._seq.K, np.float64),
            confidence=static.astype(np.float32),
            first_frame=first,
        )
