"""Image resampling as matrix products: exact, cheap for small maps, and export-friendly.

Bilinear resizing (with or without antialiasing, either corner convention) is separable and
linear, so resizing a map ``x (..., H, W)`` to ``(h, w)`` equals ``Ry @ x @ Rx.T`` with
``Ry (h, H)`` and ``Rx (w, W)``. We obtain the matrices by resizing identity images with
``torch.nn.functional.interpolate`` itself, so the weights are PyTorch's own (the authors'
code calls ``interpolate``) and the result matches to float rounding. In ONNX the product
is two ``MatMul`` nodes: no antialiased ``Resize`` (which TensorRT lacks), no corner modes.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor


@lru_cache(maxsize=256)
def _matrix_cpu(n_in: int, n_out: int, align_corners: bool, antialias: bool) -> Tensor:
    # Cached tensors outlive the caller's mode: made under inference_mode they could never
    # be saved for backward by a later training step, so always build them outside it.
    with torch.inference_mode(False):
        return _build_matrix(n_in, n_out, align_corners, antialias)


def _build_matrix(n_in: int, n_out: int, align_corners: bool, antialias: bool) -> Tensor:
    if n_in == n_out:
        return torch.eye(n_out)
    # Channel c holds a unit impulse at row c. The width is kept at 2 (unchanged): with a
    # width of 1, PyTorch's antialiased CPU kernel takes a different path and its rows
    # differ from what the same call gives on real images.
    eye = torch.eye(n_in).reshape(1, n_in, n_in, 1).expand(1, n_in, n_in, 2).contiguous()
    out = F.interpolate(
        eye, size=(n_out, 2), mode="bilinear", align_corners=align_corners, antialias=antialias
    )
    return out[0, :, :, 0].T.contiguous()  # (n_out, n_in)


def resize_matrix(
    n_in: int,
    n_out: int,
    *,
    align_corners: bool = False,
    antialias: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """1-D bilinear resampling matrix ``(n_out, n_in)`` equal to ``F.interpolate``'s weights."""
    return _matrix_cpu(int(n_in), int(n_out), bool(align_corners), bool(antialias)).to(
        device=device, dtype=dtype
    )


def resize2d(
    x: Tensor,
    size: tuple[int, int],
    *,
    align_corners: bool = False,
    antialias: bool = False,
) -> Tensor:
    """Bilinear resize of the last two axes of ``x (..., H, W)`` to ``size (h, w)``.

    Equals ``F.interpolate(x, size, mode="bilinear", ...)`` to float rounding. Without
    antialiasing, and for an antialiased enlargement (antialiasing changes only what
    shrinks: the same weights to float rounding), this *is* ``F.interpolate`` (cheaper on
    large maps; exported as a linear ``Resize``, which TensorRT supports, and whose output
    size may follow the graph's input size); antialiased reductions use the matrix products.
    """
    h_in, w_in = x.shape[-2], x.shape[-1]
    h, w = size[0], size[1]  # no int(): a traced size stays a graph value
    if (h, w) == (h_in, w_in):
        return x
    if not antialias or (h >= h_in and w >= w_in):
        lead = x.shape[:-2]
        y = F.interpolate(x.reshape(-1, 1, h_in, w_in), size=(h, w), mode="bilinear",
                          align_corners=align_corners)
        return y.reshape(*lead, h, w)
    out = x
    if h != h_in:
        ry = resize_matrix(
            h_in, h, align_corners=align_corners, antialias=antialias,
            device=x.device, dtype=x.dtype,
        )
        out = torch.matmul(ry, out)
    if w != w_in:
        rx = resize_matrix(
            w_in, w, align_corners=align_corners, antialias=antialias,
            device=x.device, dtype=x.dtype,
        )
        out = torch.matmul(out, rx.T)
    return out
