"""What the metric modules share: array inputs and the error statistics (evo's ``stat``).

Inputs may be numpy arrays or torch tensors (any float dtype; computed in float64);
results are Python floats, tuples or dicts. Nothing here is differentiable. Empty inputs
(no valid pixel, no pose pair, an empty cloud) give NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

ArrayLike = np.ndarray | Tensor  # accepted everywhere; any float dtype
_STATS = ("rmse", "mean", "median", "max")


def _numpy64(x: ArrayLike) -> np.ndarray:
    """Any array-like (torch included) as a float64 numpy array."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _stat(errors: np.ndarray, stat: str) -> float:
    """One statistic of a 1-D error array (NaN when empty)."""
    if stat not in _STATS:
        raise ValueError(f"stat must be one of {_STATS}, got {stat!r}")
    if errors.size == 0:
        return math.nan
    if stat == "rmse":
        return float(np.sqrt(np.mean(errors**2)))
    return float(getattr(np, stat)(errors))
