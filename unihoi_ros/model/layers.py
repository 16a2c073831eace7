"""Small layers shared by the encoder (:mod:`.vit`) and the decoder (:mod:`.decoder`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LayerScale(nn.Module):
    """Per-channel scale ``gamma`` (DINOv2 / UniDepth LayerScale).

    ``forward(x (..., dim)) -> x * gamma``; the parameter is named ``gamma`` (state-dict key
    ``<module>.gamma``, as in the authors' checkpoints).
    """

    def __init__(self, dim: int, init: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma
