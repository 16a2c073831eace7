"""Exact backward flow of a synthetic sequence, looked up by stamp (tests, oracle runs)."""

from __future__ import annotations

import numpy as np


class GroundTruthFlow:
    """Backward flow from :func:`unihoi_ros.sim.make_sequence` ground truth.

    Frames are identified by their stamps (``sequence.stamps_ns``); asking for a pair that
    is not consecutive in the sequence composes nothing and raises ``KeyError``.
    """

    name = "ground_truth"

    def __init__(self, sequence) -> None:
        self._flow = sequence.flow_bwd
        self._index = {int(s): i for i, s in enumerate(sequence.stamps_ns)}

    def backward(
        self, curr: np.ndarray, prev: np.ndarray, curr_stamp_ns: int, prev_stamp_ns: int
    ) -> np.ndarray:
        """``(H, W, 2)`` float32 pixels from frame ``curr_stamp_ns`` to ``prev_stamp_ns``."""
        i, j = self._index[int(curr_stamp_ns)], self._index[int(prev_stamp_ns)]
        if i == j:
            return np.zeros((*curr.shape[:2], 2), np.float32)
        if j != i - 1:
            raise KeyError(f"frames {j} -> {i} are not consecutive in the sequence")
        return self._flow[i - 1]
