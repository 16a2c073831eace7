"""Window-to-window depth-scale chaining (``ReconstructorConfig.window_scale_chain``).

Each window of the network predicts metric depth on its own; its scale can jump between
windows (an adapted model on real frames: frame-to-frame scale std 1.7 % within a window,
4.0 % across window boundaries). With PnP poses the translation of a step takes its scale
from the previous frame's depth, so those jumps become step-length jumps.

Chaining pulls each new window's scale toward the depth its frames already published: a
frame the new window decodes again (the anchor it chains from) was published with the
previous window's (rescaled) depth ``D_prev``; the new window decodes it as ``D_new``. With
``r`` the median of ``D_prev / D_new`` over confident pixels, the new window's depth is
multiplied by ``s = r ** (1 - a)``, i.e. ``log s_w = (1 - a) (log s_{w-1} + log q_w)`` with
``q_w`` the ratio of the raw (unscaled) predictions. ``a`` leaks toward the window's own
scale: ``a = 1`` is no chaining; ``a = 0`` full chaining, which compounds any per-window
bias ``b`` (in log scale) into a drift of ``w * b`` after ``w`` windows; with ``0 < a < 1`` the
accumulated log scale is bounded by ``(1 - a) / a * max|b|`` (settling within ~1/a windows).
"""

from __future__ import annotations

import numpy as np


def chained_window_scale(previous: np.ndarray, current: np.ndarray, valid: np.ndarray,
                         leak: float, min_pixels: int = 16) -> float:
    """The factor ``s = r ** (1 - leak)`` for a new window's depth (module docstring).

    Args:
        previous: ``(n, H, W)`` (or ``(H, W)``) depth, metres, of frames the new window
            shares with earlier ones, as already published (rescaled).
        current: the same frames' depth as the new window decodes them, same shape.
        valid: bool mask of the same shape: pixels to compare (confident, static).
        leak: ``a`` in [0, 1].
        min_pixels: fewer valid pixels (both depths finite and > 0) give 1.0.

    Returns:
        ``s`` (dimensionless, > 0); 1.0 when ``leak`` is 1 or nothing can be compared.

    Raises:
        ValueError: shapes differ or ``leak`` is outside [0, 1].
    """
    if not 0.0 <= leak <= 1.0:
        raise ValueError(f"leak must be in [0, 1], got {leak}")
    previous = np.asarray(previous, np.float64)
    current = np.asarray(current, np.float64)
    valid = np.asarray(valid, bool)
    if not previous.shape == current.shape == valid.shape:
        raise ValueError(f"shapes differ: previous {previous.shape}, current {current.shape}, "
                         f"valid {valid.shape}")
    if leak >= 1.0:
        return 1.0
    ok = (valid & np.isfinite(previous) & np.isfinite(current) & (previous > 0)
          & (current > 0))
    if np.count_nonzero(ok) < min_pixels:
        return 1.0
    log_r = float(np.median(np.log(previous[ok] / current[ok])))
    return float(np.exp((1.0 - leak) * log_r))
