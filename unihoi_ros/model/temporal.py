"""Small pre-norm transformer over the frames of a window (the authors' token projectors).

Names follow the authors' ``model/backbone/modules/transformer.py`` (a ViT-style
transformer): ``layers.{i}.0`` attention (``norm``, ``to_qkv`` without bias,
``to_out.0``) and ``layers.{i}.1`` feed-forward (``net.0`` LayerNorm, ``net.1``, GELU,
``net.4``). Input and output ``(B, F, D)``: one token per frame.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .linear import Linear


class Attention(nn.Module):
    """``to_out(softmax(q k^T / sqrt(d)) v)`` over the tokens of one window."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Sequential(Linear(inner, dim))

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    """``LayerNorm -> Linear -> GELU -> Linear`` (dropout slots kept for the key names)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), Linear(dim, hidden), nn.GELU(), nn.Identity(),
            Linear(hidden, dim), nn.Identity(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Transformer(nn.Module):
    """``depth`` residual (attention, feed-forward) pairs; ``(B, F, D) -> (B, F, D)``."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [nn.ModuleList([Attention(dim, heads, dim_head), FeedForward(dim, mlp_dim)])
             for _ in range(depth)]
        )

    def forward(self, x: Tensor) -> Tensor:
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return x
