"""Photometric jitter of training clips: one draw per clip, zero ranges are the identity,
reproducible from the seed, values stay in [0, 1], pixels do not move."""

from __future__ import annotations

import torch

from unihoi_ros.train.augment import PhotometricJitter, photometric_jitter

NONE = PhotometricJitter(gain=0, contrast=0, saturation=0, white_balance=0, gamma=0, noise=0)


def _clips() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    frame = torch.rand((1, 2, 1, 3, 12, 16), generator=g)
    return frame.expand(1, 2, 4, 3, 12, 16).clone()  # 4 identical frames per clip


def test_zero_ranges_are_the_identity():
    rgb = _clips()
    out = photometric_jitter(rgb, torch.Generator().manual_seed(0), NONE)
    assert torch.allclose(out, rgb, atol=1e-6)


def test_one_draw_per_clip_and_reproducible():
    rgb = _clips()
    no_noise = PhotometricJitter(noise=0.0)
    a = photometric_jitter(rgb, torch.Generator().manual_seed(1), no_noise)
    b = photometric_jitter(rgb, torch.Generator().manual_seed(1), no_noise)
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and a.shape == rgb.shape
    # The frames of one clip change alike; the two clips differently; the image changed.
    assert torch.allclose(a[:, :, 1:], a[:, :, :1].expand_as(a[:, :, 1:]))
    assert not torch.allclose(a[:, 0], a[:, 1])
    assert (a - rgb).abs().mean() > 0.01


def test_pixels_keep_their_place():
    """A photometric change is monotone per channel: the brightest pixel of a grey ramp
    stays the brightest (no geometric change, so the priors still hold)."""
    ramp = torch.linspace(0.05, 0.95, 16).expand(1, 1, 4, 3, 12, 16).clone()
    out = photometric_jitter(ramp, torch.Generator().manual_seed(2), PhotometricJitter(noise=0))
    grey = out.mean(dim=3)[0, 0, 0]
    assert torch.all(grey[:, 1:] >= grey[:, :-1] - 1e-6)
