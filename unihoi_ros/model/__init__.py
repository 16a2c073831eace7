"""UniHOI / EgoMono4D window network: sizes, checkpoints, export.

Public API: :class:`UniHOI` (``UniHOI(config)``, ``UniHOI.from_size(name)``,
``UniHOI.from_pretrained(path_or_name)``), :class:`WindowOutput`, :class:`EncoderFeatures`,
:class:`ModelConfig` / :func:`get_config`, and the checkpoint functions
:func:`load_egomono4d`, :func:`load_unidepth_encoder`, :func:`save_pretrained`.
Poses are computed outside the network: :func:`unihoi_ros.geometry.window_poses.
poses_from_window`.
"""

from __future__ import annotations

from .checkpoint import (
    CheckpointError,
    load_egomono4d,
    load_unidepth_encoder,
    rule_weights,
    save_pretrained,
)
from .config import SIZES, ModelConfig, get_config
from .unihoi import EncoderFeatures, UniHOI, WindowOutput

__all__ = [
    "SIZES",
    "CheckpointError",
    "EncoderFeatures",
    "ModelConfig",
    "UniHOI",
    "WindowOutput",
    "get_config",
    "load_egomono4d",
    "load_unidepth_encoder",
    "rule_weights",
    "save_pretrained",
]
