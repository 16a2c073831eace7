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
- :func:`random_zoom`: a crop of a sample, resized back to the full size. A crop is the
  same camera with a longer focal length and a moved principal point (``fx -> s fx``,
  ``cx -> s (cx - x0)``), so depth stays depth, flow and tracks scale by ``s``, and every
  loss holds as it did; what changes is how large the room's things appear and where.
  Every output pixel samples inside the source frame (no padding). Both clips and every
  frame of a sample share one crop (one camera).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from unihoi_ros.geometry.mirror import mirror_flow, mirror_image, mirror_intrinsics, mirror_points


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


#: How each entry of a training batch depends on the image's layout (what a mirror or a
#: crop does to it): ``image`` ``(..., H, W)`` resampled; ``flow`` ``(..., H, W, 2)``
#: pixels, resampled and its vectors transformed (mirror: ``du`` negated; crop: scaled);
#: ``points`` ``(..., 2)`` pixel coordinates, transformed; ``K`` ``(..., 3, 3)``; ``none``:
#: not a function of the layout. A key not listed is refused, not passed through.
LAYOUT_KINDS = {
    "rgb": "image", "valid_fwd": "image", "valid_bwd": "image", "teacher_depth": "image",
    "static": "image", "teacher_weight": "image", "gt_depth": "image",
    "flow_fwd": "flow", "flow_bwd": "flow",
    "tracks_uv": "points", "tracks_visible": "none", "indices": "none",
    "teacher_K": "K", "gt_K": "K",
}


#: Layout entries resampled bilinearly by :func:`random_zoom`; the other images (depth,
#: weights, masks) take the nearest pixel, so no depth is blended across an edge and no
#: mask becomes fractional.
BILINEAR_ENTRIES = frozenset({"rgb", "flow_fwd", "flow_bwd"})


def _refuse_unknown(batch: dict, name: str) -> None:
    unknown = set(batch) - set(LAYOUT_KINDS)
    if unknown:
        raise ValueError(f"{name}: no layout rule for batch entries {sorted(unknown)}")


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
    _refuse_unknown(batch, "horizontal_flip")
    width = batch["rgb"].shape[-1]
    flip = torch.rand(batch["rgb"].shape[0], generator=generator) < probability
    out = dict(batch)
    if not bool(flip.any()):
        return out
    for key, value in batch.items():
        kind = LAYOUT_KINDS[key]
        if kind == "image":
            mirrored = mirror_image(value)
        elif kind == "flow":
            mirrored = mirror_flow(value)
        elif kind == "points":
            mirrored = mirror_points(value, width)
        elif kind == "K":
            mirrored = mirror_intrinsics(value, width)
        else:
            continue
        shape = (-1,) + (1,) * (value.dim() - 1)
        out[key] = torch.where(flip.view(shape).to(value.device), mirrored, value)
    return out


def zoom_K(K: Tensor, scale: Tensor, origin: Tensor) -> Tensor:
    """``(B, ..., 3, 3)`` intrinsics of the crop whose pixel ``(0, 0)`` is the source's
    ``origin`` and which is magnified by ``scale`` (pixel centres at integers):
    ``f -> s f``, ``c -> s (c - origin)``.

    Args:
        K: ``(B, ..., 3, 3)`` pixels.
        scale: ``(B,)`` magnification (>= 1).
        origin: ``(B, 2)`` source pixel ``(u, v)`` of the crop's pixel ``(0, 0)``.
    """
    shape = (-1,) + (1,) * (K.dim() - 3)
    s = scale.to(K.dtype).view(shape)
    out = K.clone()
    for axis in (0, 1):
        o = origin[:, axis].to(K.dtype).view(shape)
        out[..., axis, axis] = s * K[..., axis, axis]
        out[..., axis, 2] = s * (K[..., axis, 2] - o)
    return out


def random_zoom(batch: dict, generator: torch.Generator, max_scale: float = 1.3,
                probability: float = 0.5) -> dict:
    """A copy of a training batch with each sample cropped and resized back, with
    ``probability`` (module docstring).

    A zoomed sample's magnification ``s`` is drawn uniformly in ``[1, max_scale]`` and its
    crop's place uniformly inside the frame; output pixel ``u'`` shows source pixel
    ``origin + u' / s`` (pixel centres at integers, the corners' centres map inside the
    frame), so flows and track positions become ``s * flow`` and ``s * (uv - origin)``, K
    :func:`zoom_K`. Tracks that leave the crop fall outside the image, where the losses
    drop them.

    Args:
        batch: the training batch, entries as in :data:`LAYOUT_KINDS`.
        generator: the random source (seeded per step by the caller).
        max_scale: the largest magnification (> 1).
        probability: chance that a sample is zoomed.

    Returns:
        The batch with zoomed samples where drawn; the others unchanged.
    """
    import torch.nn.functional as F

    if not max_scale > 1.0:  # NaN refused too
        raise ValueError(f"random_zoom: max_scale {max_scale} must be > 1")
    _refuse_unknown(batch, "random_zoom")
    rgb = batch["rgb"]
    b, (h, w) = rgb.shape[0], rgb.shape[-2:]
    zoom = torch.rand(b, generator=generator) < probability
    scale = torch.where(zoom, 1.0 + (max_scale - 1.0) * torch.rand(b, generator=generator),
                        torch.ones(b))
    size = torch.tensor([w - 1.0, h - 1.0])
    origin = torch.rand(b, 2, generator=generator) * size * (1.0 - 1.0 / scale[:, None])
    origin = torch.where(zoom[:, None], origin, torch.zeros_like(origin))
    out = dict(batch)
    if not bool(zoom.any()):
        return out
    # The sampling grid, in grid_sample's align_corners=True units (-1, 1 at the corner
    # pixels' centres): output pixel u' shows source pixel origin + u' / s.
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    s64, o64 = scale.double().view(b, 1, 1), origin.double()
    src_u = o64[:, 0].view(b, 1, 1) + xs / s64
    src_v = o64[:, 1].view(b, 1, 1) + ys / s64
    grid = torch.stack([2.0 * src_u / (w - 1) - 1.0, 2.0 * src_v / (h - 1) - 1.0], dim=-1)
    for key, value in batch.items():
        kind = LAYOUT_KINDS[key]
        if kind in ("image", "flow"):
            lead = value.shape[1:-2] if kind == "image" else value.shape[1:-3]
            x = value if kind == "image" else value.movedim(-1, -3)
            flat = x.reshape(b, -1, h, w)
            mode = "bilinear" if key in BILINEAR_ENTRIES else "nearest"
            sampled = F.grid_sample(flat.double(), grid.to(flat.device), mode=mode,
                                    padding_mode="border", align_corners=True)
            if kind == "flow":
                sampled = sampled * s64.view(b, 1, 1, 1).to(sampled.device)
                zoomed = sampled.reshape(b, *lead, 2, h, w).movedim(-3, -1)
            else:
                zoomed = sampled.reshape(b, *lead, h, w)
            zoomed = zoomed.to(value.dtype) if value.dtype != torch.bool else zoomed > 0.5
        elif kind == "points":
            shape = (b,) + (1,) * (value.dim() - 2) + (2,)
            zoomed = ((value - origin.view(shape).to(value))
                      * scale.view((*shape[:-1], 1)).to(value))
        elif kind == "K":
            zoomed = zoom_K(value, scale, origin)
        else:
            continue
        shape = (-1,) + (1,) * (value.dim() - 1)
        out[key] = torch.where(zoom.view(shape).to(value.device), zoomed, value)
    return out
