"""Augmentation of training clips. Photometric jitter: one draw per clip, zero ranges are
the identity, reproducible from the seed, values stay in [0, 1], pixels do not move.
Horizontal flip: exactly the mirrored world's priors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unihoi_ros.train.augment import (
    PhotometricJitter,
    horizontal_flip,
    photometric_jitter,
    random_zoom,
)

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


# --- horizontal flip -------------------------------------------------------------------

def _flow_of(depth: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``(H, W, 2)`` pixel motion of a static scene of ``depth`` (metres) seen by a camera
    that moves by ``X -> R X + t``; pixel centres at integers."""
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.linalg.inv(K) @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
    X = rays * depth.ravel()
    x = K @ (R @ X + t[:, None])
    uv = (x[:2] / x[2]).T.reshape(h, w, 2)
    return uv - np.stack([u, v], axis=-1)


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    import cv2

    return cv2.Rodrigues(np.asarray(axis, np.float64) / np.linalg.norm(axis) * angle)[0]


def test_flip_is_the_mirrored_world():
    """The mirrored sample's flow, tracks and K are exactly those of the mirrored world
    (``x -> -x`` in the camera frame, motion ``M R M, M t``), computed independently."""
    h, w = 12, 16
    K = np.array([[14.0, 0, 7.1], [0, 14.0, 5.6], [0, 0, 1]])
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    depth = 1.5 + 0.03 * u + 0.02 * v  # a tilted plane, asymmetric left-right
    R, t = _rotation([0.2, 1.0, 0.1], 0.05), np.array([0.03, -0.01, 0.02])
    flow = _flow_of(depth, K, R, t)
    tracks = np.array([[[3.0, 4.0], [10.0, 2.0]]])  # (F=1, N=2, 2)
    batch = {
        "rgb": torch.rand(1, 1, 2, 3, h, w),
        "teacher_depth": torch.tensor(depth, dtype=torch.float32).expand(1, 1, 2, h, w).clone(),
        "flow_fwd": torch.tensor(flow, dtype=torch.float32)[None, None, None],
        "tracks_uv": torch.tensor(tracks, dtype=torch.float32)[None, None],
        "teacher_K": torch.tensor(K, dtype=torch.float32)[None, None],
    }
    out = horizontal_flip(batch, torch.Generator().manual_seed(0), probability=1.0)

    M = np.diag([-1.0, 1.0, 1.0])
    K_m = out["teacher_K"][0, 0].double().numpy()
    depth_m = out["teacher_depth"][0, 0, 0].double().numpy()
    expected = _flow_of(depth_m, K_m, M @ R @ M, M @ t)
    assert np.allclose(out["flow_fwd"][0, 0, 0].double().numpy(), expected, atol=1e-4)
    # A pixel's ray in the mirrored camera is the mirrored ray.
    ray = np.linalg.inv(K) @ np.array([3.0, 4.0, 1.0])
    ray_m = np.linalg.inv(K_m) @ np.array([w - 1 - 3.0, 4.0, 1.0])
    assert np.allclose(ray_m, M @ ray, atol=1e-6)
    assert torch.equal(out["tracks_uv"][0, 0, 0, :, 0], torch.tensor([12.0, 5.0]))
    assert torch.equal(out["rgb"], batch["rgb"].flip(-1))


def test_flip_draws_per_sample_and_refuses_unknown_entries():
    batch = {"rgb": torch.rand(64, 1, 1, 3, 2, 3), "indices": torch.zeros(64, 1, 4)}
    out = horizontal_flip(batch, torch.Generator().manual_seed(5))
    flipped = torch.tensor([torch.equal(out["rgb"][i], batch["rgb"][i].flip(-1))
                            for i in range(64)])
    kept = torch.tensor([torch.equal(out["rgb"][i], batch["rgb"][i]) for i in range(64)])
    assert bool((flipped ^ kept).all()) and 16 < int(flipped.sum()) < 48
    assert torch.equal(horizontal_flip(out, torch.Generator().manual_seed(5))["rgb"],
                       batch["rgb"])  # the same draws undo themselves
    with pytest.raises(ValueError, match="no layout rule"):
        horizontal_flip({**batch, "depth_hint": torch.zeros(64, 2, 3)},
                        torch.Generator().manual_seed(0))


# --- random zoom -----------------------------------------------------------------------

def test_zoom_is_the_same_world_through_a_longer_lens():
    """The zoomed sample's flow and tracks are those the cropped camera (K from
    :func:`zoom_K`) sees of the same world, computed independently at the source points
    each output pixel shows; rays through matching pixels are the same ray."""
    h, w = 24, 32
    K = np.array([[30.0, 0, 15.3], [0, 30.0, 11.6], [0, 0, 1]])
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    depth = 1.5 + 0.02 * u + 0.01 * v
    R, t = _rotation([0.2, 1.0, 0.1], 0.03), np.array([0.02, -0.01, 0.01])
    flow = _flow_of(depth, K, R, t)
    tracks = np.array([[[20.0, 12.0], [10.0, 5.0]]])
    batch = {
        "rgb": torch.rand(1, 1, 2, 3, h, w),
        "teacher_depth": torch.tensor(depth, dtype=torch.float32).expand(1, 1, 2, h, w).clone(),
        "valid_fwd": torch.ones(1, 1, 1, h, w, dtype=torch.bool),
        "flow_fwd": torch.tensor(flow, dtype=torch.float32)[None, None, None],
        "tracks_uv": torch.tensor(tracks, dtype=torch.float32)[None, None],
        "teacher_K": torch.tensor(K, dtype=torch.float32)[None, None],
    }
    out = random_zoom(batch, torch.Generator().manual_seed(0), max_scale=1.5, probability=1.0)
    K_z = out["teacher_K"][0, 0].double().numpy()
    s = K_z[0, 0] / K[0, 0]
    assert 1.0 < s <= 1.5 and np.isclose(K_z[1, 1] / K[1, 1], s)
    origin = np.array([K[0, 2] - K_z[0, 2] / s, K[1, 2] - K_z[1, 2] / s])
    src_u, src_v = origin[0] + u / s, origin[1] + v / s
    assert src_u.min() >= 0 and src_u.max() <= w - 1 and src_v.min() >= 0 and src_v.max() <= h - 1
    # The source points' flow, seen by the zoomed camera: analytic at the exact sources.
    X = np.linalg.inv(K) @ np.stack([src_u.ravel(), src_v.ravel(), np.ones(u.size)])
    X = X * (1.5 + 0.02 * src_u.ravel() + 0.01 * src_v.ravel())
    x = K_z @ (R @ X + t[:, None])
    expected = (x[:2] / x[2]).T.reshape(h, w, 2) - np.stack([u, v], axis=-1)
    got = out["flow_fwd"][0, 0, 0].double().numpy()
    assert np.abs(got - expected).max() < 0.02  # bilinear resampling of a smooth flow
    assert np.abs(expected).max() > 1.0
    # The ray through an output pixel is the ray through the source pixel it shows.
    ray = np.linalg.inv(K) @ np.array([src_u[5, 7], src_v[5, 7], 1.0])
    ray_z = np.linalg.inv(K_z) @ np.array([7.0, 5.0, 1.0])
    assert np.allclose(ray_z, ray, atol=1e-6)
    tr = out["tracks_uv"][0, 0, 0].double().numpy()
    assert np.allclose(tr, s * (tracks[0] - origin), atol=1e-4)
    # Depth and masks take the nearest source pixel; they are not blended.
    d = out["teacher_depth"][0, 0, 0].numpy()
    nearest = depth[np.rint(src_v).astype(int), np.rint(src_u).astype(int)]
    assert np.allclose(d, nearest, atol=1e-5)
    assert out["valid_fwd"].dtype == torch.bool and bool(out["valid_fwd"].all())


def test_zoom_draws_per_sample_and_refuses_unknown_entries():
    batch = {"rgb": torch.rand(64, 1, 1, 3, 6, 8), "indices": torch.zeros(64, 1, 4),
             "teacher_K": torch.eye(3).expand(64, 1, 3, 3).clone()}
    out = random_zoom(batch, torch.Generator().manual_seed(5))
    kept = torch.tensor([torch.equal(out["rgb"][i], batch["rgb"][i]) for i in range(64)])
    zoomed = out["teacher_K"][:, 0, 0, 0] > 1.0
    assert bool((kept ^ zoomed).all()) and 16 < int(zoomed.sum()) < 48
    assert torch.equal(out["indices"], batch["indices"])
    with pytest.raises(ValueError, match="no layout rule"):
        random_zoom({**batch, "depth_hint": torch.zeros(64, 2, 3)},
                    torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="max_scale"):
        random_zoom(batch, torch.Generator().manual_seed(0), max_scale=1.0)
