"""Where the streaming tracker starts new tracks: in grid cells that hold none, at the most
trackable pixel of the cell, dynamic cells first."""

from __future__ import annotations

import cv2
import numpy as np


def free_cells(uv: np.ndarray, height: int, width: int, cell: int) -> np.ndarray:
    """``(Hc, Wc)`` bool grid of ``cell``-pixel cells holding none of the pixels ``uv``
    ``(M, 2)`` (NaN rows ignored)."""
    hc, wc = -(-height // cell), -(-width // cell)
    free = np.ones((hc, wc), bool)
    ok = np.all(np.isfinite(uv), axis=1)
    if ok.any():
        c = np.floor(uv[ok] / cell).astype(np.int64)
        inb = (c[:, 0] >= 0) & (c[:, 0] < wc) & (c[:, 1] >= 0) & (c[:, 1] < hc)
        free[c[inb, 1], c[inb, 0]] = False
    return free


def cell_candidates(grey: np.ndarray, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Per ``cell``-pixel cell, its most trackable pixel (largest Shi-Tomasi score) ``(Hc,
    Wc, 2)`` float64 ``(u, v)`` and that score ``(Hc, Wc)``."""
    h, w = grey.shape
    score = cv2.cornerMinEigenVal(grey, 3)
    hc, wc = -(-h // cell), -(-w // cell)
    pad = np.full((hc * cell, wc * cell), -1.0, np.float32)
    pad[:h, :w] = score
    blocks = pad.reshape(hc, cell, wc, cell).transpose(0, 2, 1, 3).reshape(hc, wc, -1)
    best = np.argmax(blocks, axis=2)
    rows = np.arange(hc)[:, None] * cell + best // cell
    cols = np.arange(wc)[None, :] * cell + best % cell
    uv = np.stack([cols, rows], axis=-1).astype(np.float64)
    return uv, np.take_along_axis(blocks, best[..., None], axis=2)[..., 0]


def choose_seeds(candidates: np.ndarray, free: np.ndarray, dynamic: np.ndarray,
                 valid: np.ndarray, num_dynamic: int, num_total: int) -> np.ndarray:
    """Seed pixels ``(S, 2)``: up to ``num_dynamic`` free, valid cells on dynamic pixels,
    then free valid cells of any kind up to ``num_total`` seeds in all (cells in raster
    order, evenly thinned when there are more than needed). ``candidates`` ``(Hc, Wc, 2)``;
    ``free``, ``dynamic``, ``valid`` ``(Hc, Wc)`` bool."""
    def pick(mask: np.ndarray, k: int) -> np.ndarray:
        idx = np.flatnonzero(mask)
        if k <= 0 or idx.size == 0:
            return idx[:0]
        if idx.size > k:
            idx = idx[np.linspace(0, idx.size - 1, k).round().astype(np.int64)]
        return idx

    flat_c = candidates.reshape(-1, 2)
    usable = (free & valid).reshape(-1)
    dyn = pick(usable & dynamic.reshape(-1), min(num_dynamic, num_total))
    rest = usable.copy()
    rest[dyn] = False
    other = pick(rest & ~dynamic.reshape(-1), num_total - dyn.size)
    return flat_c[np.concatenate([dyn, other])]
