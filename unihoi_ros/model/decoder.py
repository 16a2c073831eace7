"""UniDepth V2 decoder as of the commit the authors pin (bebc4b2), parameter-compatible.

Key names follow ``pixel_decoder.*`` of the authors' checkpoint: ``input_adapter``,
``camera_token_adapter``, ``global_token_adapter`` (LayerNorm + Linear + GELU per level),
``camera_layer`` (intrinsics), ``global_layer`` (log-depth scale and shift),
``depth_layer`` (latents, Nystrom blocks, three ConvNeXt up-samplers, per-stage MLPs and the
7x7 depth / confidence convolutions), ``level_embeds`` and ``level_embed_layer``.
This design is the one in UniDepth's ``unidepth/models/unidepthv2/decoder_old.py`` (it
differs from today's V2 decoder, see ``../shared/reference/unidepth_v2/SUMMARY.md``).

Second trap of ``../shared/reference/egomono4d/README.md``: the depth head's ``NystromBlock`` calls
xformers' ``NystromAttention`` on ``(B, N, heads, head_dim)`` tensors; xformers treats the
second-to-last axis as the sequence, so attention runs across the heads of each token (a
softmax over ``heads`` entries, exact since heads < 128 landmarks). The released weights
were trained that way; :class:`NystromBlock` reproduces it, per token, in closed form.

Resizes that UniDepth performs with ``F.interpolate`` (antialiased ray downsampling, the
output upsampling) are computed as matrix products (:mod:`.resample`), equal to float
rounding and exportable without antialiased ``Resize``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import LayerScale
from .linear import Linear
from .resample import resize2d

#: Full-resolution head stacks above this size are decoded one frame at a time.
_SPLIT_HEADS_BYTES = 32 << 20


class MLP(nn.Module):
    """``LayerNorm -> proj1 -> GELU -> proj2`` (UniDepth ``layers/mlp.py``)."""

    def __init__(self, input_dim: int, expansion: int = 4, output_dim: int | None = None):
        super().__init__()
        hidden = int(input_dim * expansion)
        self.norm = nn.LayerNorm(input_dim)
        self.proj1 = Linear(input_dim, hidden)
        self.act = nn.GELU()
        self.proj2 = Linear(hidden, output_dim or input_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj2(self.act(self.proj1(self.norm(x))))


class AttentionBlock(nn.Module):
    """Cross/self-attention block (UniDepth ``layers/attention.py``), ``(B, N, C)`` tokens.

    ``x + ls1(out(attn(q(norm_x(x)) [+ pos], kv(norm_ctx(context)) [+ pos_ctx])))`` then
    ``x + ls2(mlp(x))``; ``kv`` packs keys then values, heads split ``(h d)``.
    """

    def __init__(self, dim: int, num_heads: int = 1, expansion: int = 4) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.mlp = MLP(dim, expansion=expansion)
        self.kv = Linear(dim, dim * 2)
        self.q = Linear(dim, dim)
        self.norm_attnx = nn.LayerNorm(dim)
        self.norm_attnctx = nn.LayerNorm(dim)
        self.out = Linear(dim, dim)
        self.ls1 = LayerScale(dim)
        self.ls2 = LayerScale(dim)

    def _query(self, x: Tensor, pos_embed: Tensor | None) -> Tensor:
        """``q (B, N, C)`` of the normed queries, with their positional term added."""
        q = self.q(self.norm_attnx(x))
        return q if pos_embed is None else q + pos_embed

    def _qkv(
        self, x: Tensor, context: Tensor, pos_embed: Tensor | None,
        pos_embed_context: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``q (B, N, C)``, ``k, v (B, M, C)`` with positional terms added."""
        context = self.norm_attnctx(context)
        k, v = self.kv(context).chunk(2, dim=-1)
        q = self._query(x, pos_embed)
        if pos_embed_context is not None:
            k = k + pos_embed_context
        return q, k, v

    def attn(
        self, x: Tensor, context: Tensor, pos_embed: Tensor | None = None,
        pos_embed_context: Tensor | None = None,
    ) -> Tensor:
        few_queries = 8 * x.shape[1] <= context.shape[1]
        if pos_embed_context is None and self.num_heads == 1 and few_queries:
            return self._attn_few_queries(x, context, pos_embed)
        q, k, v = self._qkv(x, context, pos_embed, pos_embed_context)
        b, n, c = q.shape
        h = self.num_heads

        def heads(t: Tensor) -> Tensor:
            return t.reshape(b, t.shape[1], h, c // h).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v))
        return self.out(out.transpose(1, 2).reshape(b, n, c))

    def _attn_few_queries(self, x: Tensor, context: Tensor, pos_embed: Tensor | None) -> Tensor:
        """Single-head attention of a few queries (the camera and global heads' 2-4 class
        tokens) over a long context (every feature token), without projecting the context.

        Exact in arithmetic: ``q . (Wk c + bk) = (q Wk) . c + q . bk``, and ``q . bk`` is
        the same for every key of a query, so it drops out of the softmax; ``A (C Wv^T +
        bv) = (A C) Wv^T + bv`` because each row of ``A`` sums to 1. This skips the key
        and value projections of all 4 x 1200 tokens per frame at ViT sizes.
        """
        ctx = self.norm_attnctx(context)
        q = self._query(x, pos_embed)
        c = q.shape[-1]
        w_k, w_v, b_v = self.kv.weight[:c], self.kv.weight[c:], self.kv.bias[c:]
        scores = torch.matmul(torch.matmul(q, w_k), ctx.transpose(1, 2)) * c ** -0.5
        mixed = torch.matmul(torch.softmax(scores, dim=-1), ctx)
        return self.out(F.linear(mixed, w_v, b_v))

    def forward(
        self, x: Tensor, context: Tensor | None = None, pos_embed: Tensor | None = None,
        pos_embed_context: Tensor | None = None,
    ) -> Tensor:
        context = x if context is None else context
        x = self.ls1(self.attn(x, context, pos_embed, pos_embed_context)) + x
        return self.ls2(self.mlp(x)) + x


class NystromBlock(AttentionBlock):
    """Self-attention block whose attention runs across the heads of each token.

    Reproduces ``xformers.NystromAttention`` applied to ``(B, N, heads, d)`` tensors as in
    UniDepth bebc4b2 (``layers/nystrom_attention.py``): for every token, a
    ``heads x heads`` attention with scale ``d ** -0.5`` (exact: heads < 128 landmarks).
    """

    def attn(
        self, x: Tensor, context: Tensor, pos_embed: Tensor | None = None,
        pos_embed_context: Tensor | None = None,
    ) -> Tensor:
        q, k, v = self._qkv(x, context, pos_embed, pos_embed_context)
        b, n, c = q.shape
        h = self.num_heads
        d = c // h
        q = q.reshape(b * n, h, d)
        k = k.reshape(b * n, h, d)
        v = v.reshape(b * n, h, d)
        w = torch.softmax(torch.matmul(q * (d ** -0.5), k.transpose(1, 2)), dim=-1)
        return self.out(torch.matmul(w, v).reshape(b, n, c))


class CvnxtBlock(nn.Module):
    """ConvNeXt block: depthwise 7x7, LayerNorm, MLP, ``gamma``; ``(B, C, H, W)``."""

    def __init__(self, dim: int, kernel_size: int = 7, expansion: int = 4) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pwconv1 = Linear(dim, expansion * dim)
        self.act = nn.GELU()
        self.pwconv2 = Linear(expansion * dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvUpsampleShuffleResidual(nn.Module):
    """Two ConvNeXt blocks, then 2x up: pixel-shuffle branch + bilinear residual branch.

    ``(B, C, H, W) -> (B, 4HW, C/2)`` tokens (UniDepth ``layers/upsample.py``); the residual
    is a 1x1 conv followed by ``UpsamplingBilinear2d`` (align_corners=True).
    """

    def __init__(self, dim: int, expansion: int = 4, kernel_size: int = 7) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [CvnxtBlock(dim, kernel_size, expansion) for _ in range(2)]
        )
        q = dim // 4
        self.up = nn.Sequential(
            nn.PixelShuffle(2),
            nn.Conv2d(q, q, kernel_size=7, padding=3, groups=q),
            nn.ReLU(),
            nn.Conv2d(q, dim // 2, kernel_size=3, padding=1),
        )
        self.residual = nn.Sequential(nn.Conv2d(dim, dim // 2, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = conv(x)
        h, w = x.shape[-2:]
        res = resize2d(self.residual(x), (2 * h, 2 * w), align_corners=True)
        out = self.up(x) + res
        return out.flatten(2).transpose(1, 2)


class ListAdapter(nn.Module):
    """One ``LayerNorm -> Linear -> GELU`` per input, ``input_adapters.{i}.{0,1}``."""

    def __init__(self, input_dims: list[int], hidden_dim: int) -> None:
        super().__init__()
        self.input_adapters = nn.ModuleList(
            [nn.Sequential(nn.LayerNorm(d), Linear(d, hidden_dim), nn.GELU())
             for d in input_dims]
        )

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        return [adapter(x) for x, adapter in zip(xs, self.input_adapters)]


def fourier_rays(rays: Tensor, dim: int, max_freq: int) -> Tensor:
    """Log-spaced sine features of unit rays ``(B, N, 3) -> (B, N, dim + 3)``.

    UniDepth ``utils/positional_embedding.generate_fourier_features`` with
    ``use_log=True, cat_orig=True``: ``dim / 3`` bands, frequencies ``2**linspace(0,
    log2(max_freq))``, ``sin(x * f * pi)``, then the rays themselves.
    """
    bands = dim // rays.shape[-1]
    scales = 2.0 ** torch.linspace(0.0, math.log2(max_freq), bands, dtype=rays.dtype)
    x = rays.unsqueeze(-1) * scales.to(rays.device) * math.pi
    return torch.cat((x.sin().flatten(-2), rays), dim=-1)


def sine_pos_embed(h: int, w: int, dim: int, device: torch.device | None = None) -> Tensor:
    """DETR sine embedding (normalised, 2*pi) of an ``h`` x ``w`` grid: ``(1, h*w, dim)``."""
    half = dim // 2
    y = torch.arange(1, h + 1, dtype=torch.float32).view(h, 1).expand(h, w)
    x = torch.arange(1, w + 1, dtype=torch.float32).view(1, w).expand(h, w)
    eps, scale = 1e-6, 2 * math.pi
    y = y / (h + eps) * scale
    x = x / (w + eps) * scale
    dim_t = torch.arange(half, dtype=torch.float32)
    dim_t = 10000 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / half)
    px = x[..., None] / dim_t
    py = y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=-1).flatten(-2)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=-1).flatten(-2)
    return torch.cat((py, px), dim=-1).reshape(1, h * w, dim).to(device)


def rays_from_intrinsics(K: Tensor, shape: tuple[int, int]) -> Tensor:
    """Unit ray directions ``(B, 3, H, W)`` through pixel centres ``(u + 0.5, v + 0.5)``.

    ``K (B, 3, 3)`` in pixels of an ``H`` x ``W`` image; UniDepth ``generate_rays``.
    """
    h, w = shape
    fx, fy = K[:, 0, 0].view(-1, 1, 1), K[:, 1, 1].view(-1, 1, 1)
    cx, cy = K[:, 0, 2].view(-1, 1, 1), K[:, 1, 2].view(-1, 1, 1)
    u = torch.arange(w, dtype=K.dtype, device=K.device).view(1, 1, w) + 0.5
    v = torch.arange(h, dtype=K.dtype, device=K.device).view(1, h, 1) + 0.5
    x = (u - cx) / fx
    y = (v - cy) / fy
    x, y = torch.broadcast_tensors(x, y)
    rays = torch.stack((x, y, torch.ones_like(x)), dim=1)
    return F.normalize(rays, dim=1)


def embed_rays(rays: Tensor, grid: tuple[int, int], camera_dim: int) -> Tensor:
    """Rays ``(B, 3, H, W)`` -> antialiased bilinear resize to ``grid`` -> renormalise ->
    Fourier features ``(B, h*w, camera_dim + 3)`` (UniDepth ``embed_rays``)."""
    r = resize2d(rays, grid, antialias=True)
    r = F.normalize(r.flatten(2).transpose(1, 2), dim=-1)
    return fourier_rays(r, camera_dim, max(grid) // 2)


class CameraHead(nn.Module):
    """Intrinsics from the class tokens attending over all features (``camera_layer``)."""

    def __init__(self, hidden_dim: int, expansion: int = 4) -> None:
        super().__init__()
        self.aggregate1 = AttentionBlock(hidden_dim, 1, expansion)
        self.aggregate2 = AttentionBlock(hidden_dim, 1, expansion)
        self.latents_pos = nn.Parameter(torch.zeros(1, 4, hidden_dim))
        self.in_features = MLP(hidden_dim, expansion=2)
        self.project_cls = MLP(hidden_dim)
        self.out = MLP(hidden_dim, expansion=2, output_dim=1)

    def forward(self, features: Tensor, cls_tokens: Tensor, pos_embed: Tensor) -> Tensor:
        """``features (B, 4hw, C)``, ``cls_tokens (B, 4, C)`` -> raw ``(B, 4)`` values."""
        cls_tokens = self.project_cls(cls_tokens)
        latents_pos = self.latents_pos.expand(cls_tokens.shape[0], -1, -1)
        context = torch.cat((self.in_features(features + pos_embed), cls_tokens), dim=1)
        cls_tokens = self.aggregate1(cls_tokens, context=context, pos_embed=latents_pos)
        cls_tokens = self.aggregate2(cls_tokens, context=context, pos_embed=latents_pos)
        return self.out(cls_tokens).squeeze(-1)


class GlobalHead(nn.Module):
    """Log-depth scale and shift from two class tokens (``global_layer``)."""

    def __init__(self, hidden_dim: int, camera_dim: int, expansion: int = 4) -> None:
        super().__init__()
        self.camera_dim = camera_dim
        self.in_features = Linear(hidden_dim, hidden_dim)
        self.project_rays = Linear(camera_dim + 3, hidden_dim)
        self.aggregate1 = AttentionBlock(hidden_dim, 1, expansion)
        self.aggregate2 = AttentionBlock(hidden_dim, 1, expansion)
        self.project_cls = MLP(hidden_dim)
        self.out = MLP(hidden_dim, expansion=2, output_dim=1)

    def forward(
        self, features: Tensor, cls_tokens: Tensor, rays: Tensor, grid: tuple[int, int]
    ) -> tuple[Tensor, Tensor]:
        """-> ``scale (B, 1, 1, 1)`` (positive), ``shift (B, 1, 1, 1)``."""
        levels = features.shape[1] // (grid[0] * grid[1])
        cls_tokens = self.project_cls(cls_tokens)
        ray_emb = self.project_rays(embed_rays(rays, grid, self.camera_dim))
        context = self.in_features(features + ray_emb.repeat(1, levels, 1))
        context = torch.cat((context, cls_tokens), dim=1)
        cls_tokens = self.aggregate1(cls_tokens, context=context)
        cls_tokens = self.aggregate2(cls_tokens, context=context)
        x = self.out(cls_tokens).squeeze(-1)
        return x[:, 0].exp().view(-1, 1, 1, 1), x[:, 1].view(-1, 1, 1, 1)


class DepthHead(nn.Module):
    """Latents from the features, camera prompting, Nystrom blocks and 3 up-samplers."""

    def __init__(
        self, hidden_dim: int, num_heads: int, expansion: int, depths: tuple[int, ...],
        camera_dim: int, num_resolutions: int, head_channels: int,
    ) -> None:
        super().__init__()
        self.camera_dim = camera_dim
        self.to_latents = MLP(hidden_dim, expansion=2)
        self.features_channel_cat = Linear(hidden_dim * num_resolutions, hidden_dim)
        self.aggregate_16 = AttentionBlock(hidden_dim, 1, expansion)
        self.prompt_camera = AttentionBlock(hidden_dim, 1, expansion)
        self.rays_layers = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.process_layers = nn.ModuleList()
        self.depth_mlp = nn.ModuleList()
        self.confidence_mlp = nn.ModuleList()
        for i, depth in enumerate(depths):
            dim = hidden_dim // 2**i
            self.process_layers.append(
                nn.ModuleList([NystromBlock(dim, num_heads // 2**i, expansion)
                               for _ in range(depth)])
            )
            self.rays_layers.append(Linear(camera_dim + 3, dim))
            self.ups.append(ConvUpsampleShuffleResidual(dim, expansion=expansion))
            self.depth_mlp.append(MLP(dim // 2, expansion=1, output_dim=head_channels))
            self.confidence_mlp.append(MLP(dim // 2, expansion=1, output_dim=head_channels))
        n = head_channels * len(depths)
        self.to_depth = nn.Conv2d(n, 1, 7, padding=3, padding_mode="reflect")
        self.to_confidence = nn.Conv2d(n, 1, 7, padding=3, padding_mode="reflect")

    def forward(
        self, features: list[Tensor], rays: Tensor, pos_embed: Tensor, level_embed: Tensor,
        grid: tuple[int, int], out_shape: tuple[int, int],
    ) -> tuple[Tensor, Tensor, Tensor]:
        """-> ``logdepth (B, 1, H, W)``, ``confidence (B, 1, H, W)`` at the network-input
        size, and the latents ``(B, h*w, C)`` (the authors' ``depth_features``)."""
        h, w = grid
        ray_embs = [
            layer(embed_rays(rays, (h * 2**i, w * 2**i), self.camera_dim))
            for i, layer in enumerate(self.rays_layers)
        ]
        f16 = self.features_channel_cat(torch.cat(features, dim=-1))
        latents = f16 + self.to_latents(f16)
        latents = self.aggregate_16(
            latents, context=torch.cat(features, dim=1),
            pos_embed_context=pos_embed + level_embed,
        )
        latents_16 = self.prompt_camera(latents, context=ray_embs[0])

        latents = latents_16
        stage_outputs = []
        for i, (up, layers, ray_emb) in enumerate(zip(self.ups, self.process_layers, ray_embs)):
            for layer in layers:
                latents = layer(latents, pos_embed=ray_emb)
            hi, wi = h * 2**i, w * 2**i
            x = (latents + ray_emb).transpose(1, 2).reshape(-1, latents.shape[-1], hi, wi)
            latents = up(x)
            stage_outputs.append((latents, 2 * hi, 2 * wi))

        def head(mlps: nn.ModuleList, conv: nn.Conv2d) -> Tensor:
            maps = [
                mlp(tok).transpose(1, 2).reshape(tok.shape[0], -1, hh, ww)
                for mlp, (tok, hh, ww) in zip(list(mlps)[::-1], stage_outputs[::-1])
            ]
            # Large outputs one frame at a time: the full-resolution stack is then (1, 3 x
            # head_channels, H, W) instead of (N, ...), which bounds peak memory (45 MB
            # instead of 180 MB at ViT sizes) at the same arithmetic.
            n = maps[0].shape[0]
            stack_bytes = 4 * n * sum(m.shape[1] for m in maps) * out_shape[0] * out_shape[1]
            step = 1 if stack_bytes > _SPLIT_HEADS_BYTES else n
            return torch.cat([
                conv(torch.cat([resize2d(m[j:j + step], out_shape) for m in maps], dim=1))
                for j in range(0, n, step)
            ], dim=0)

        logdepth = head(self.depth_mlp, self.to_depth)
        confidence = torch.sigmoid(head(self.confidence_mlp, self.to_confidence))
        return logdepth, confidence, latents_16


class PixelDecoder(nn.Module):
    """The bebc4b2 UniDepth V2 decoder (``pixel_decoder.*``)."""

    def __init__(
        self, embed_dim: int, hidden_dim: int = 512, num_heads: int = 8, expansion: int = 4,
        depths: tuple[int, ...] = (6, 0, 0), camera_dim: int = 96, head_channels: int = 16,
        num_resolutions: int = 4,
    ) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.num_resolutions = num_resolutions
        self.camera_layer = CameraHead(hidden_dim, expansion)
        self.global_layer = GlobalHead(hidden_dim, camera_dim, expansion)
        self.input_adapter = ListAdapter([embed_dim] * num_resolutions, hidden_dim)
        self.camera_token_adapter = ListAdapter([embed_dim] * 4, hidden_dim)
        self.global_token_adapter = ListAdapter([embed_dim] * 2, hidden_dim)
        self.depth_layer = DepthHead(
            hidden_dim, num_heads, expansion, depths, camera_dim, num_resolutions,
            head_channels,
        )
        self.level_embeds = nn.Parameter(torch.zeros(num_resolutions, hidden_dim))
        self.level_embed_layer = nn.Sequential(
            Linear(hidden_dim, hidden_dim), nn.GELU(), Linear(hidden_dim, hidden_dim),
            nn.LayerNorm(hidden_dim),
        )

    def forward(
        self, features: list[Tensor], camera_tokens: list[Tensor],
        global_tokens: list[Tensor], image_shape: tuple[int, int],
        keep: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Decode one batch of frames.

        ``features``: per level ``(N, h, w, D)``; ``camera_tokens``: 4 x ``(N, 1, D)``;
        ``global_tokens``: 2 x ``(N, 1, D)``; ``image_shape (H, W)`` the network input size.
        Returns ``K (N, 3, 3)`` in network-input pixels for every frame, and for the frames
        ``keep`` (``(N',)`` indices into N; None: all) ``depth (N', 1, H, W)`` metres,
        ``confidence (N', 1, H, W)`` and ``depth_features (N', h*w, C)``. Frames are decoded
        independently, so a kept frame's outputs do not depend on the others.
        """
        n, h, w, _ = features[0].shape
        hh, ww = image_shape
        feats = self.input_adapter([f.reshape(n, h * w, -1) for f in features])
        feats_cat = torch.cat(feats, dim=1)  # (N, L*h*w, C), level-major

        levels = self.level_embed_layer(self.level_embeds)  # (L, C)
        level_embed = levels.unsqueeze(1).expand(-1, h * w, -1).reshape(1, -1, self.hidden_dim)
        pos = sine_pos_embed(h, w, self.hidden_dim, device=feats_cat.device)
        pos_embed = pos.repeat(1, self.num_resolutions, 1)

        cam_tokens = torch.cat(self.camera_token_adapter(camera_tokens), dim=1)
        raw = self.camera_layer(feats_cat, cam_tokens, pos_embed + level_embed)
        half = max(hh, ww) / 2
        fx, fy = raw[:, 0].exp() * half, raw[:, 1].exp() * half
        cx, cy = raw[:, 2].sigmoid() * ww, raw[:, 3].sigmoid() * hh
        zero, one = torch.zeros_like(fx), torch.ones_like(fx)
        K = torch.stack(
            (fx, zero, cx, zero, fy, cy, zero, zero, one), dim=-1
        ).reshape(n, 3, 3)
        if keep is not None:  # the depth head (most of the decoder's cost): kept frames only
            feats = [f.index_select(0, keep) for f in feats]
            feats_cat = feats_cat.index_select(0, keep)
            global_tokens = [t.index_select(0, keep) for t in global_tokens]
        rays = rays_from_intrinsics(K if keep is None else K.index_select(0, keep), (hh, ww))

        glob_tokens = torch.cat(self.global_token_adapter(global_tokens), dim=1)
        scale, shift = self.global_layer(feats_cat, glob_tokens, rays, (h, w))

        logdepth, confidence, latents = self.depth_layer(
            feats, rays, pos_embed, level_embed, (h, w), (hh, ww)
        )
        # "norm in log space": LayerNorm over the whole map, then exp, affine and softplus.
        normed = F.layer_norm(logdepth, [hh, ww]).exp()
        depth = F.softplus((normed + shift) * scale, beta=10.0)
        return {"depth": depth, "confidence": confidence, "depth_features": latents, "K": K}
