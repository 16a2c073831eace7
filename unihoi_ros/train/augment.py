"""Photometric augmentation of training clips (issue #25: a network that does not learn one
room's or one camera's colours).

Only the network's input images change; the priors (teacher depth, flow, tracks, masks)
were computed on the clean frames and stay valid, because a photometric change moves no
pixel. One set of parameters per clip (every frame of a 4-frame window alike, as one
camera's exposure and white balance are over a second), pixel noise independent per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class PhotometricJitter:
    """Ranges of the per-clip photometric changes (each drawn uniformly).

    Attributes:
        gain: exposure, a factor in ``[1 - gain, 1 + gain]``.
        contrast: about the clip's mean grey, a factor in ``[1 - contrast, 1 + contrast]``.
        saturation: blend with grey, a factor in ``[1 - saturation, 1 + saturation]``.
        white_balance: per-channel factor in ``[1 - wb, 1 + wb]``.
        gamma: exponent in ``[1 - gamma, 1 + gamma]``.
        noise: pixel noise standard deviation, drawn in ``[0, noise]`` (of the [0, 1] range).
    """

    gain: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.3
    white_balance: float = 0.08
    gamma: float = 0.2
    noise: float = 0.02


def photometric_jitter(rgb: Tensor, generator: torch.Generator,
                       jitter: PhotometricJitter = PhotometricJitter()) -> Tensor:
    """Jittered copy of ``rgb``.

    Args:
        rgb: ``(B, C, F, 3, H, W)`` float in [0, 1] (the training batch's ``rgb``: B samples
            of C clips of F frames).
        generator: the random source (seeded per step by the caller: reproducible, and the
            same on resume).
        jitter: the ranges.

    Returns:
        ``(B, C, F, 3, H, W)`` in [0, 1], same dtype and device.
    """
    b, c = rgb.shape[:2]
    x = rgb.float()

    def draw(*shape: int, width: float) -> Tensor:
        u = torch.rand((b, c, 1, *shape), generator=generator)
        return (1.0 + width * (2.0 * u - 1.0)).to(x.device)

    x = x * draw(1, 1, 1, width=jitter.gain) * draw(3, 1, 1, width=jitter.white_balance)
    grey = x.mean(dim=3, keepdim=True)
    x = grey + (x - grey) * draw(1, 1, 1, width=jitter.saturation)
    mean = x.mean(dim=(2, 3, 4, 5), keepdim=True)
    x = mean + (x - mean) * draw(1, 1, 1, width=jitter.contrast)
    x = x.clamp(0.0, 1.0) ** draw(1, 1, 1, width=jitter.gamma)
    sigma = (jitter.noise * torch.rand((b, c, 1, 1, 1, 1), generator=generator)).to(x.device)
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    return (x + sigma * noise).clamp(0.0, 1.0).to(rgb.dtype)
