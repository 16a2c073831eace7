"""The UniHOI (EgoMono4D) window network: 4 frames + backward flows -> depth, K, confidence.

Computes the authors' ``Model`` up to the poses (``model/backbone/backbone_nvds_unidepth.py``
and ``model/intrinsics/intrinsics_model.py``, commit 3085e27): a frozen DINOv2 encoder per
frame, one residual 3D U-Net per encoder level over the window, temporal transformers over
the per-frame class tokens, the bebc4b2 UniDepth decoder per frame, one K per window (the
mean of the four) and a per-pixel confidence for frames 1..3. Poses are computed outside
the network (:func:`unihoi_ros.geometry.window_poses.poses_from_window`).

Parameter names equal the layout keys without the checkpoint's ``model.`` prefix
(``backbone.unidepth.pixel_encoder.*`` ...). The authors' ``camera_token_projector_list``
is built but never used in their forward pass; it is left out here (its checkpoint keys are
ignored with a log line by :func:`unihoi_ros.model.checkpoint.load_egomono4d`).

Streaming: :meth:`UniHOI.encode` runs the encoder on single frames; :meth:`forward_window`
takes four cached :class:`EncoderFeatures`, so a stream pays one encoder pass per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unihoi_ros.geometry.camera import pixel_to_grid

from .confidence import dense_confidence, make_confidence_mlp
from .config import ModelConfig, get_config
from .decoder import PixelDecoder
from .linear import Linear
from .resample import resize2d
from .temporal import Transformer
from .unet3d import UNet3D
from .vit import DinoVisionTransformer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_HALF_PIXEL = torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
_LAST_ENTRY = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class EncoderFeatures:
    """Encoder output of a batch of single frames (what a stream caches per frame).

    ``features``: one ``(B, h, w, D)`` map per decoder level (blocks ``output_idx``, after
    the final norm); ``cls_tokens``: ``(B, 4, D)`` class tokens of the (1-based) blocks
    ``L-2, L-1, L`` (L = depth) and ``output_idx[-2]``: the decoder's camera tokens, whose
    entries 1 and 2 are also its global tokens (UniDepth ``unidepthv2.py``).
    """

    features: list[Tensor]
    cls_tokens: Tensor

    def detach(self) -> EncoderFeatures:
        """Copy without autograd history."""
        return EncoderFeatures([f.detach() for f in self.features], self.cls_tokens.detach())


@dataclass
class WindowOutput:
    """Network outputs for a window of F frames at the input resolution ``H x W``.

    ``depth (B, F, H, W)`` metres along the optical axis; ``K (B, 3, 3)`` pixels, one per
    window, pixel centres at integer coordinates (OpenCV / ``CameraInfo``; the authors'
    normalised K is ``(K + 0.5 on cx, cy) / (W, H)``); ``confidence (B, F-1, H, W)`` in
    [0, 1] for frames 1..F-1 (the Procrustes weights); ``K_frames (B, F, 3, 3)`` the
    per-frame intrinsics before averaging. With ``decode_last = n`` depth is ``(B, n, H,
    W)`` and confidence ``(B, n-1, H, W)``: the window's last n frames and their pairs.
    """

    depth: Tensor
    K: Tensor
    confidence: Tensor
    K_frames: Tensor | None = None


class UniDepthCore(nn.Module):
    """Container named like UniDepth's model: ``pixel_encoder`` and ``pixel_decoder``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.pixel_encoder = DinoVisionTransformer(
            cfg.patch_size, cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.pos_grid,
            cfg.final_norm_eps,
        )
        self.pixel_decoder = PixelDecoder(
            cfg.embed_dim, cfg.hidden_dim, cfg.decoder_heads, cfg.expansion,
            cfg.nystrom_depths, cfg.camera_dim, cfg.head_channels, len(cfg.output_idx),
        )


class Backbone(nn.Module):
    """Holds every trained module under the authors' names (``backbone.*``)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, c = cfg.embed_dim, cfg.hidden_dim
        levels = len(cfg.output_idx)
        self.unidepth = UniDepthCore(cfg)
        self.corr_weighter_perpoint = make_confidence_mlp(c, cfg.corr_hidden)
        self.feature_fusion_unet_list = nn.ModuleList(
            [nn.Sequential(UNet3D(d, cfg.unet_channels)) for _ in range(levels)]
        )
        self.dino_projector = nn.Sequential(
            Linear(d * levels, c * levels), nn.ReLU(), Linear(c * levels, c)
        )

        def transformer() -> Transformer:
            return Transformer(d, cfg.transformer_depth, cfg.transformer_heads,
                               cfg.transformer_dim_head, cfg.transformer_mlp_dim)

        self.token_projector_list = nn.ModuleList([transformer() for _ in range(4)])
        self.global_token_projector_list = nn.ModuleList([transformer() for _ in range(2)])


class UniHOI(nn.Module):
    """The window network. ``UniHOI(config)`` or ``UniHOI.from_size("vits14")``.

    ``model(frames (B, F, 3, H, W) in [0, 1], flows_bwd (B, F-1, 2, H, W) pixels, frame t
    -> t-1) -> WindowOutput``. ``confidence_chunk_rows`` bounds the memory of the dense
    confidence head (``None`` processes whole frames, as for export).
    """

    def __init__(self, config: ModelConfig | str, freeze_encoder: bool | None = None) -> None:
        super().__init__()
        cfg = get_config(config) if isinstance(config, str) else config
        self.config = cfg
        self.backbone = Backbone(cfg)
        self.confidence_chunk_rows: int | None = 48
        if freeze_encoder is None:
            freeze_encoder = cfg.size != "tiny"
        if freeze_encoder:
            self.encoder.requires_grad_(False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_size(cls, name: str, **kw) -> UniHOI:
        """Randomly initialised network of a named size."""
        return cls(get_config(name), **kw)

    @classmethod
    def from_pretrained(cls, path_or_name: str | Path, map_location: str = "cpu") -> UniHOI:
        """Load our safetensors format (a path, or a bundled name such as ``unihoi-tiny``)."""
        from .checkpoint import load_network_state, read_pretrained_meta, resolve_pretrained

        weights = resolve_pretrained(path_or_name)
        meta = read_pretrained_meta(weights)
        model = cls(ModelConfig.from_dict(meta["config"]))
        from safetensors.torch import load_file

        load_network_state(model, load_file(str(weights), device=map_location),
                           source=str(weights))
        return model.eval()

    @property
    def encoder(self) -> DinoVisionTransformer:
        """The DINOv2 encoder (``backbone.unidepth.pixel_encoder``)."""
        return self.backbone.unidepth.pixel_encoder

    @property
    def decoder(self) -> PixelDecoder:
        """The UniDepth decoder (``backbone.unidepth.pixel_decoder``)."""
        return self.backbone.unidepth.pixel_decoder

    # ------------------------------------------------------------------ encoder
    def network_input_shape(self, height: int, width: int) -> tuple[int, int]:
        """Pixel size the encoder sees for ``height`` x ``width`` frames."""
        return self.config.network_input_shape(height, width)

    def encode(self, frames: Tensor) -> EncoderFeatures:
        """Run the encoder on single frames ``(B, 3, H, W)`` in [0, 1]."""
        return self.encode_normalized(self.normalize(frames))

    def normalize(self, frames: Tensor,
                  resize: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Frames ``(B, 3, H, W)`` in [0, 1] -> the encoder's input ``(B, 3, hh, ww)``:
        ImageNet-normalised and resized (antialiased) to :meth:`network_input_shape`
        (UniDepth's ``_preprocess``).

        ``resize``: the antialiased resampling matrices ``(hh, H)`` and ``(ww, W)``
        (:func:`~unihoi_ros.model.resample.resize_matrix`) given instead of made here: an
        exported graph takes them as inputs, so one graph serves any frame size.
        """
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must be (B, 3, H, W), got {tuple(frames.shape)}")
        mean = torch.tensor(IMAGENET_MEAN, dtype=frames.dtype, device=frames.device)
        std = torch.tensor(IMAGENET_STD, dtype=frames.dtype, device=frames.device)
        x = (frames - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
        if resize is not None:
            return torch.matmul(torch.matmul(resize[0], x), resize[1].T)
        hh, ww = self.network_input_shape(*frames.shape[-2:])
        if (hh, ww) != tuple(frames.shape[-2:]):
            x = resize2d(x, (hh, ww), antialias=True)
        return x

    def encode_normalized(self, x: Tensor) -> EncoderFeatures:
        """Run the encoder on :meth:`normalize`'s output ``(B, 3, hh, ww)``."""
        cfg = self.config
        n, levels = cfg.depth, list(cfg.output_idx)
        cls_blocks = [n - 2, n - 1, n, levels[-2]]
        feats, cls = self.encoder(x, keep=levels + cls_blocks)
        return EncoderFeatures(feats[:len(levels)], torch.cat(cls[len(levels):], dim=1))

    # ------------------------------------------------------------------ window
    def forward_window(
        self, features: Sequence[EncoderFeatures], flows_bwd: Tensor,
        decode_last: int | None = None,
    ) -> WindowOutput:
        """Rest of the network on cached per-frame encoder outputs.

        ``features``: one :class:`EncoderFeatures` per frame (oldest first);
        ``flows_bwd (B, F-1, 2, H, W)`` in pixels, flow from frame t to t-1 (t = 1..F-1),
        which also fixes the output size ``H x W``.

        ``decode_last = n`` (2..F) decodes depth only for the window's last n frames and
        confidence only for their n-1 pairs: ``depth (B, n, H, W)``, ``confidence
        (B, n-1, H, W)``, equal to the last entries of a full decode (frames are decoded
        independently after the video adaptor); K is still the mean over all F frames. A
        stream that already has the older frames' results needs only these, and the full
        resolution depth head is most of the network's cost.
        """
        bb = self.backbone
        dec = self.decoder
        f = len(features)
        b, _, _, hgt, wid = flows_bwd.shape
        if flows_bwd.shape[1] != f - 1 or flows_bwd.shape[2] != 2:
            raise ValueError(f"flows_bwd must be (B, {f - 1}, 2, H, W)")
        n = f if decode_last is None else int(decode_last)
        if not 2 <= n <= f:
            raise ValueError(f"decode_last must be in 2..{f}, got {decode_last}")
        # The token grid is the encoder's (fixed per graph): plain ints, so an exported
        # graph's dynamic frame size does not reach the decoder's shapes.
        _, h, w, d = (int(v) for v in features[0].features[0].shape)
        hh, ww = h * self.config.patch_size, w * self.config.patch_size

        # Video adaptor: one residual 3D U-Net per level over (B, D, F, h, w).
        fused, shallow = [], []
        for lvl, unet in enumerate(bb.feature_fusion_unet_list):
            x = torch.stack([ft.features[lvl] for ft in features], dim=1)  # (B, F, h, w, D)
            x = unet(x.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)  # (B, F, h, w, D)
            shallow.append(x)
            fused.append(x.reshape(b * f, h, w, d))
        dino = bb.dino_projector(torch.cat(shallow, dim=-1))  # (B, F, h, w, C)

        cls = torch.stack([ft.cls_tokens for ft in features], dim=1)  # (B, F, 4, D)
        camera_tokens = [
            proj(cls[:, :, i]).reshape(b * f, 1, d)
            for i, proj in enumerate(bb.token_projector_list)
        ]
        global_tokens = [
            proj(cls[:, :, i + 1]).reshape(b * f, 1, d)
            for i, proj in enumerate(bb.global_token_projector_list)
        ]
        keep = None
        if n < f:  # rows b * f + (f-n .. f-1) of the decoder's (B*F) batch
            keep = (torch.arange(b, device=flows_bwd.device)[:, None] * f
                    + torch.arange(f - n, f, device=flows_bwd.device)).reshape(-1)
        outs = dec(fused, camera_tokens, global_tokens, (hh, ww), keep)

        depth, conf, K = outs["depth"], outs["confidence"], outs["K"]
        if (hh, ww) != (hgt, wid):
            # UniDepth _postprocess: depth bilinear, confidence antialiased, K / ratio.
            ratio = hh / hgt
            depth = F.interpolate(depth, size=(hgt, wid), mode="bilinear", align_corners=False)
            conf = resize2d(conf, (hgt, wid), antialias=True)
            # Rows 0 and 1 over the ratio, row 2 kept; the ratio stays a tensor in a
            # traced graph (torch.tensor of it would freeze the export size's value).
            rows01 = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]],
                                  dtype=K.dtype, device=K.device)
            K = K * (rows01 / ratio + _LAST_ENTRY.to(K))
        depth = depth.reshape(b, n, hgt, wid)
        conf = conf.reshape(b, n, hgt, wid)
        # UniDepth's rays go through (u + 0.5, v + 0.5): its K puts pixel centres at half
        # integers. Our convention (geometry/camera.py) puts them at integers.
        K_frames = K.reshape(b, f, 3, 3) - _HALF_PIXEL.to(K)

        latents = outs["depth_features"].reshape(b, n, h, w, -1)
        confidence = dense_confidence(
            bb.corr_weighter_perpoint, latents, dino[:, f - n:], conf,
            flow_grid(flows_bwd[:, f - n:]), self.confidence_chunk_rows,
        )
        return WindowOutput(depth, K_frames.mean(dim=1), confidence, K_frames)

    def forward(self, frames: Tensor, flows_bwd: Tensor,
                decode_last: int | None = None) -> WindowOutput:
        """``frames (B, F, 3, H, W)`` in [0, 1], ``flows_bwd (B, F-1, 2, H, W)`` pixels;
        ``decode_last`` as in :meth:`forward_window`."""
        if frames.ndim != 5:
            raise ValueError(f"frames must be (B, F, 3, H, W), got {tuple(frames.shape)}")
        b, f = frames.shape[:2]
        enc = self.encode(frames.reshape(b * f, *frames.shape[2:]))
        per_frame = [
            EncoderFeatures(
                [x.reshape(b, f, *x.shape[1:])[:, i] for x in enc.features],
                enc.cls_tokens.reshape(b, f, *enc.cls_tokens.shape[1:])[:, i],
            )
            for i in range(f)
        ]
        return self.forward_window(per_frame, flows_bwd, decode_last)


def flow_grid(flows_bwd: Tensor) -> Tensor:
    """``grid_sample`` grid ``(B, F-1, H, W, 2)`` of where each pixel of frame t lands in
    frame t-1: pixel ``(u, v)`` plus the flow, mapped to [-1, 1] by
    :func:`unihoi_ros.geometry.camera.pixel_to_grid` (``align_corners=False``)."""
    _, _, _, hgt, wid = flows_bwd.shape
    u = torch.arange(wid, dtype=flows_bwd.dtype, device=flows_bwd.device)
    v = torch.arange(hgt, dtype=flows_bwd.dtype, device=flows_bwd.device)
    gx = pixel_to_grid(u.view(1, 1, 1, wid), wid, flows_bwd[:, :, 0])
    gy = pixel_to_grid(v.view(1, 1, hgt, 1), hgt, flows_bwd[:, :, 1])
    return torch.stack((gx, gy), dim=-1)
