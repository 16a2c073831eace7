"""Per-pixel reductions over a few stacked maps (the multi-view depth's medians)."""

from __future__ import annotations

import numpy as np


def nanmedian_first_axis(stack: np.ndarray) -> np.ndarray:
    """``np.nanmedian(stack, axis=0)``, bit for bit, without its per-slice Python path.

    NumPy's ``nanmedian`` over a short first axis (a few views or the 4 pixels of a block)
    goes through masked arrays and a warning per all-NaN pixel: 12-28 ms for a 240x320
    map here, against 5 ms for this sort. NaN where a pixel has no value (all NaN).

    Args:
        stack: ``(K, ...)`` float, NaN where a map has no value.

    Returns:
        ``(...)`` the median of each pixel's non-NaN values (the mean of the two middle ones
        for an even count, in ``stack``'s dtype, as NumPy computes it).
    """
    ordered = np.sort(stack, axis=0)  # NaN sort last (after +inf, as NumPy counts them)
    count = (~np.isnan(stack)).sum(axis=0)
    lo = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[None], 0)[0]
    hi = np.take_along_axis(ordered, np.maximum(count // 2, 0)[None], 0)[0]
    middle = (lo + hi) * np.asarray(0.5, dtype=stack.dtype)
    return np.where(count > 0, middle, np.nan).astype(stack.dtype, copy=False)
