"""Model sizes: one frozen dataclass describes every dimension of a UniHOI network.

``vitl14`` is the released EgoMono4D/UniHOI model (UniDepth V2 ViT-L/14, commit bebc4b2);
``vits14`` the same design on UniDepth's ViT-S/14; ``tiny`` our small CPU-trainable network
built from the same blocks. Numbers for the two reference sizes come from the authors'
``config/model/backbone/nvds_unidepth.yaml`` and UniDepth's ``configs/config_v2_vit*14.json``
(see ``../shared/reference/egomono4d/*-layout.json``) and, for the encoder levels, UniDepth's
``configs/config_v2old_vit{s,l14}.json`` (``output_idx`` [9, 10, 11, 12] / [21, 22, 23, 24]:
the last four blocks, unlike today's V2 which taps evenly spaced blocks).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelConfig:
    """Every hyper-parameter of the window network.

    Encoder (DINOv2 ViT): ``patch_size`` pixels, ``embed_dim``, ``depth`` blocks,
    ``num_heads``; ``output_idx`` are the 1-based blocks whose outputs feed the decoder;
    ``pos_grid`` the side of the stored positional-embedding grid; ``final_norm_eps`` the
    eps of the final LayerNorm (1e-6 in the UniDepth the authors pin, 1e-5 in UniDepth V2
    today: the first trap of ``../shared/reference/egomono4d/README.md``).
    Input sizing: frames are resized so their patch count falls in ``token_bounds``
    (UniDepth's ``pixels_bounds`` after ``_check_resolution``: [1200, 1200] for the
    authors' model), keeping the aspect ratio.
    Decoder (UniDepth V2, bebc4b2): ``hidden_dim``, ``decoder_heads``, ``expansion``,
    ``nystrom_depths`` (blocks per upsampling stage), ``camera_dim`` (ray Fourier features),
    ``head_channels`` (per-stage channels fed to the 7x7 depth/confidence convolutions).
    Video adaptor: ``unet_channels`` per 3D U-Net level; temporal transformers with
    ``transformer_depth``, ``transformer_heads`` x ``transformer_dim_head``,
    ``transformer_mlp_dim``. Confidence MLP hidden sizes ``corr_hidden``.
    """

    size: str
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    output_idx: tuple[int, ...]
    pos_grid: int = 37
    final_norm_eps: float = 1e-6
    token_bounds: tuple[int, int] = (1200, 1200)
    hidden_dim: int = 512
    decoder_heads: int = 8
    expansion: int = 4
    nystrom_depths: tuple[int, ...] = (6, 0, 0)
    camera_dim: int = 96
    head_channels: int = 16
    unet_channels: tuple[int, ...] = (256, 256, 384, 384)
    transformer_depth: int = 2
    transformer_heads: int = 4
    transformer_dim_head: int = 64
    transformer_mlp_dim: int = 256
    corr_hidden: tuple[int, ...] = (512, 64)
    frames: int = 4
    image_shape: tuple[int, int] = (288, 384)
    extras: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        """JSON-serialisable dictionary (tuples become lists)."""
        d = dataclasses.asdict(self)
        d.pop("extras", None)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)

    def network_input_shape(self, height: int, width: int) -> tuple[int, int]:
        """Size ``(h, w)`` in pixels the encoder sees for a ``height`` x ``width`` frame.

        UniDepth's ``_shapes`` (authors' ``backbone_nvds_unidepth.py``): the token count is
        clamped to the budget, then ``h = ceil(sqrt(n / ratio) - 0.5)`` and
        ``w = ceil(h * ratio - 0.5)`` patches, ratio = width / height.
        """
        p = self.patch_size
        ratio = width / height
        n = (height / p) * (width / p)
        lo, hi = sorted(self.token_bounds)
        n = max(min(n, hi), lo)
        h = math.ceil((n / ratio) ** 0.5 - 0.5)
        w = math.ceil(h * ratio - 0.5)
        return h * p, w * p


SIZES: dict[str, ModelConfig] = {
    "vitl14": ModelConfig(
        size="vitl14", patch_size=14, embed_dim=1024, depth=24, num_heads=16,
        output_idx=(21, 22, 23, 24),
    ),
    "vits14": ModelConfig(
        size="vits14", patch_size=14, embed_dim=384, depth=12, num_heads=6,
        output_idx=(9, 10, 11, 12),
    ),
    # Ours: same blocks, small enough to train on a CPU: 8-px patches, frames resized to at
    # most 192 patches (96 x 128 for 4:3 input), two encoder levels, thin decoder and heads.
    "tiny": ModelConfig(
        size="tiny", patch_size=8, embed_dim=96, depth=4, num_heads=3,
        output_idx=(3, 4), pos_grid=16, final_norm_eps=1e-6, token_bounds=(96, 192),
        hidden_dim=48, decoder_heads=4, expansion=2, nystrom_depths=(1, 0, 0),
        camera_dim=12, head_channels=4, unet_channels=(24, 32), transformer_depth=1,
        transformer_heads=2, transformer_dim_head=24, transformer_mlp_dim=96,
        corr_hidden=(16, 8), image_shape=(120, 160),
    ),
}


def get_config(size: str) -> ModelConfig:
    """Configuration of a named size (``vitl14``, ``vits14``, ``tiny``)."""
    try:
        return SIZES[size]
    except KeyError:
        raise ValueError(f"unknown model size {size!r}; known: {sorted(SIZES)}") from None
