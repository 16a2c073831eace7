"""``nn.Linear`` with a faster CPU inference path that computes the same product.

PyTorch runs float32 ``nn.Linear`` through MKL's sgemm. On AMD CPUs, MKL takes its AVX2 code
path: about 190 GFLOP/s on two Zen 5 cores. The same product as a 1x1 convolution runs
through oneDNN, which uses AVX-512 on any x86 CPU: 330-450 GFLOP/s for the network's shapes
(``bench/RESULTS.md``). Results are equal up to summation order (about 1e-7 relative).

The convolution path is used only for float32 CPU inference with at least
:data:`MIN_ROWS` rows and :data:`MIN_MACS` multiply-adds; it needs no copy of the weights.
Otherwise this is ``F.linear``: training (autograd), CUDA, ONNX export (tracing),
``torch.compile``, and small products, where MKL is as fast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Fewest rows (tokens) for which the oneDNN path pays off (measured: 2x from 1200 rows,
#: roughly even at 64).
MIN_ROWS = 256
#: Fewest multiply-adds (rows x K x M): below this the path's extra dispatches (about 20 us)
#: cost more than they save (the tiny model's layers; measured even at 5.5 M, 1.9x at 79 M).
MIN_MACS = 1 << 25


def _plain(x: Tensor, weight: Tensor) -> bool:
    return (
        x.device.type != "cpu"
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
        or not torch.backends.mkldnn.is_available()
    )


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x (..., K), weight (M, K), bias (M,)) -> (..., M)``, see the module doc."""
    k = x.shape[-1]
    rows = x.numel() // k if k else 0
    m = weight.shape[0]
    if rows < MIN_ROWS or rows * k * m < MIN_MACS or _plain(x, weight):
        return F.linear(x, weight, bias)
    # (rows, K) row-major is (1, K, rows, 1) channels-last: oneDNN's 1x1 convolution layout.
    x_nhwc = x.reshape(rows, k).view(1, rows, 1, k).permute(0, 3, 1, 2)
    y = F.conv2d(x_nhwc, weight.view(m, k, 1, 1), bias)  # (1, M, rows, 1), channels-last
    return y.permute(0, 2, 3, 1).reshape(*x.shape[:-1], m)


class Linear(nn.Linear):
    """Drop-in ``nn.Linear`` (same parameters and names) using :func:`linear`."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)
