"""Augmentation of training clips (issue #25: a network that does not learn one room's or
one camera's colours and layout).

- :func:`photometric_jitter`: only the network's input images change; the priors (teacher
  depth, flow, tracks, masks) were computed on the clean frames and stay valid, because a
  photometric change moves no pixel. One set of parameters per clip (every frame of a
  4-frame window alike, as one camera's exposure and white balance are over a second),
  pixel noise independent per frame.
- :func:`horizontal_flip`: the mirror image of a sample, priors mirrored with it. A mirrored
  video is the video of the mirrored world (``x -> -x`` in the camera frame): rigid motions
  stay rigid, depth stays depth, so every loss holds as it did; the room's left and right
  are what changes. Both clips of a sample flip together (the ``cc`` loss compares their K).
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


#: How each entry of a training batch mirrors: ``image`` ``(..., H, W)`` reversed along W;
#: ``flow`` ``(..., H, W, 2)`` pixels, reversed along W with ``du`` negated; ``points``
#: ``(..., 2)`` pixel coordinates, ``u -> W - 1 - u``; ``K`` ``(..., 3, 3)``; ``none``:
#: not a function of the image's layout. A key not listed is refused, not passed through.
MIRROR_KINDS = {
    "rgb": "image", "valid_fwd": "image", "valid_bwd": "image", "teacher_depth": "image",
    "static": "image", "teacher_weight": "image", "gt_depth": "image",
    "flow_fwd": "flow", "flow_bwd": "flow",
    "tracks_uv": "points", "tracks_visible": "none", "indices": "none",
    "teacher_K": "K", "gt_K": "K",
}


def mirror_K(K: Tensor, width: int) -> Tensor:
    """``(..., 3, 3)`` intrinsics of the horizontally mirrored image of ``width`` pixels
    (pixel centres at integers, as :func:`unihoi_ros.geometry.camera.scale_intrinsics`):
    ``cx' = width - 1 - cx``, the rest unchanged."""
    out = K.clone()
    out[..., 0, 2] = (width - 1) - K[..., 0, 2]
    return out


def horizontal_flip(batch: dict, generator: torch.Generator, probability: float = 0.5) -> dict:
    """A copy of a training batch with each sample mirrored left-right with ``probability``.

    Args:
        batch: the training batch (:meth:`unihoi_ros.train.dataset.ClipCache.batch`):
            ``rgb (B, C, F, 3, H, W)``; images ``(B, C, ..., H, W)`` (teacher depth and
            weight, validity and static masks); flows ``(B, C, F - 1, H, W, 2)`` pixels;
            ``tracks_uv (B, C, F, N, 2)`` pixels (NaN where unknown); ``teacher_K
            (B, C, 3, 3)``. Other entries pass through unchanged.
        generator: the random source (seeded per step by the caller).
        probability: chance that a sample is mirrored.

    Returns:
        The batch with mirrored samples where drawn: images reversed along W, flows'
        ``du`` negated, tracks' ``u -> W - 1 - u``, K's ``cx -> W - 1 - cx``.
    """
    unknown = set(batch) - set(MIRROR_KINDS)
    if unknown:
        raise ValueError(f"horizontal_flip: no mirroring rule for batch entries {sorted(unknown)}")
    width = batch["rgb"].shape[-1]
    flip = torch.rand(batch["rgb"].shape[0], generator=generator) < probability
    out = dict(batch)
    if not bool(flip.any()):
        return out
    for key, value in batch.items():
        kind = MIRROR_KINDS[key]
        if kind == "image":
            mirrored = value.flip(-1)
        elif kind == "flow":
            f = value.flip(-2)
            mirrored = torch.stack([-f[..., 0], f[..., 1]], dim=-1)
        elif kind == "points":
            mirrored = torch.stack([(width - 1) - value[..., 0], value[..., 1]], dim=-1)
        elif kind == "K":
            mirrored = mirror_K(value, width)
        else:
            continue
        shape = (-1,) + (1,) * (value.dim() - 1)
        out[key] = torch.where(flip.view(shape).to(value.device), mirrored, value)
    return out
