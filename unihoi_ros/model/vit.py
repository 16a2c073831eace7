"""DINOv2 vision transformer, parameter-compatible with UniDepth V2's ``pixel_encoder``.

Keys are DINOv2's (``cls_token``, ``pos_embed``, ``register_tokens``, ``mask_token``,
``patch_embed.proj``, ``blocks.{i}.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,
mlp.fc2,ls2.gamma}``, ``norm``), flat blocks, exact GELU, no register tokens (the
``register_tokens`` and ``mask_token`` parameters exist in every UniDepth checkpoint and are
kept so checkpoints load strictly; they are never used). Every block output goes through
the final ``norm`` (UniDepth's ``use_norm=True``), whose eps is a setting: 1e-6 in the
UniDepth commit the authors pin (bebc4b2, ``unidepth/models/backbones/dinov2.py`` builds it
with the blocks' ``partial(nn.LayerNorm, eps=1e-6)``), 1e-5 in today's UniDepth V2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import LayerScale
from .linear import Linear


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch`` x ``patch`` convolution: ``(B, 3, H, W) -> (B, h*w, D)``."""

    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (DINOv2 layout)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = Linear(dim, dim * 3)
        self.proj = Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """``fc1 -> GELU (exact) -> fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc1(x)
        if h.requires_grad or torch.jit.is_tracing():
            return self.fc2(self.act(h))
        # Inference: GELU in place on the (tokens, 4D) hidden layer, the largest activation
        # of the encoder, instead of allocating a second one (same numbers).
        return self.fc2(torch.ops.aten.gelu_(h))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale: ``x + ls(attn(norm(x)))``, then the MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT returning every block's output after the final norm.

    ``forward(x (B, 3, H, W))`` (ImageNet-normalised, sides multiple of the patch) returns
    ``(features, cls)``: ``features`` a list with one ``(B, h, w, D)`` map per block,
    ``cls`` a list with one ``(B, 1, D)`` class token per block; ``h = H / patch``.
    """

    def __init__(
        self,
        patch_size: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        pos_grid: int = 37,
        final_norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.n_blocks = depth
        self.pos_grid = pos_grid
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid * pos_grid + 1, embed_dim))
        # Present in every DINOv2/UniDepth checkpoint, never used (no registers, no masks).
        self.register_tokens = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=final_norm_eps)
        # Set by the exporter: positional embeddings precomputed per grid, so the graph holds
        # a constant instead of a bicubic resize of a parameter.
        self.frozen_pos: dict[tuple[int, int], Tensor] = {}

    def interpolated_pos_embed(self, h: int, w: int) -> Tensor:
        """Positional embedding ``(1, 1 + h*w, D)`` for an ``h`` x ``w`` patch grid.

        The stored grid is resized bicubically (no antialias, fp32) to ``(h, w)``; the class
        part is kept. Unchanged when the grid already matches and is square.
        """
        if (h, w) in self.frozen_pos:
            return self.frozen_pos[(h, w)]
        n = self.pos_grid
        if h == n and w == n:
            return self.pos_embed
        pos = self.pos_embed.float()
        grid = pos[:, 1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", antialias=False)
        grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)
        return torch.cat((pos[:, :1], grid), dim=1).to(self.pos_embed.dtype)

    def freeze_pos_embed(self, h: int, w: int) -> None:
        """Precompute the positional embedding of an ``h`` x ``w`` grid (export helper)."""
        self.frozen_pos.pop((h, w), None)
        with torch.no_grad():
            self.frozen_pos[(h, w)] = self.interpolated_pos_embed(h, w).detach().clone()

    def forward(
        self, x: Tensor, blocks: int | None = None, keep: Sequence[int] | None = None
    ) -> tuple[list[Tensor], list[Tensor]]:
        """``keep``: 1-based block numbers whose outputs to return, in that order (default:
        every block run). Only kept blocks pay for the final norm and the copy out, and
        the others are not held until the end (24 ViT-L maps are 470 MB per window)."""
        b, _, hh, ww = x.shape
        p = self.patch_size
        if hh % p or ww % p:
            raise ValueError(f"input {hh}x{ww} is not a multiple of the patch size {p}")
        h, w = hh // p, ww // p
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(b, -1, -1), tokens), dim=1)
        tokens = tokens + self.interpolated_pos_embed(h, w)
        n_run = self.n_blocks if blocks is None else blocks
        wanted = list(range(1, n_run + 1)) if keep is None else [int(k) for k in keep]
        if any(not 1 <= k <= n_run for k in wanted):
            raise ValueError(f"keep {wanted} outside blocks 1..{n_run}")
        kept: dict[int, tuple[Tensor, Tensor]] = {}
        for number, blk in enumerate(self.blocks[:n_run], start=1):
            tokens = blk(tokens)
            if number in wanted:
                # LayerNorm is per token: norming the two slices apart avoids a copy.
                kept[number] = (self.norm(tokens[:, 1:]).reshape(b, h, w, self.embed_dim),
                                self.norm(tokens[:, :1]))
        return [kept[k][0] for k in wanted], [kept[k][1] for k in wanted]

