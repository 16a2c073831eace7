"""Each training loss: zero at the ground truth, larger under a perturbation, finite grads.

The scene is exact for bilinear sampling: a fronto-parallel plane at z = 2 m seen by a
camera translating along x by 4 cm per frame, f = 50 px, so every flow and track moves by
exactly -1 pixel per frame.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unihoi_ros.geometry.camera import unproject
from unihoi_ros.train import losses as L

torch.manual_seed(0)
B, F, H, W = 2, 4, 12, 16
Z, FOCAL, DX = 2.0, 50.0, 0.04
DTYPE = torch.float64


def _K() -> torch.Tensor:
    K = torch.tensor([[FOCAL, 0.0, (W - 1) / 2], [0.0, FOCAL, (H - 1) / 2], [0, 0, 1]],
                     dtype=DTYPE)
    return K.expand(B, 3, 3).clone()


def _scene():
    depth = torch.full((B, F, H, W), Z, dtype=DTYPE)
    poses = torch.eye(4, dtype=DTYPE).repeat(B, F, 1, 1)
    poses[:, :, 0, 3] = DX * torch.arange(F, dtype=DTYPE)  # camera t at x = t * DX
    flow_fwd = torch.zeros(B, F - 1, H, W, 2, dtype=DTYPE)
    flow_fwd[..., 0] = -FOCAL * DX / Z  # -1 px
    flow_bwd = -flow_fwd
    ones = torch.ones(B, F - 1, H, W, dtype=torch.bool)
    static = torch.ones(B, F, H, W, dtype=DTYPE)
    v, u = torch.meshgrid(torch.arange(2.0, H, 3.0), torch.arange(4.0, W, 3.0), indexing="ij")
    uv0 = torch.stack([u.reshape(-1), v.reshape(-1)], -1).to(DTYPE)
    tracks = torch.stack([uv0 - torch.tensor([t, 0.0], dtype=DTYPE) for t in range(F)])
    tracks = tracks.expand(B, *tracks.shape).clone()
    visible = L.in_image(tracks, H, W)
    return depth, poses, flow_fwd, flow_bwd, ones, static, tracks, visible


def _finite_grad(fn, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    fn(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    return x.grad


def test_flow_3d_zero_at_truth_and_grows():
    depth, poses, ff, fb, ok, static, _, _ = _scene()
    points = unproject(depth, _K()[:, None])
    truth = L.flow_3d_loss(points, poses, ff, fb, ok, ok, static)
    assert truth.shape == (B,)
    assert torch.allclose(truth, torch.zeros(B, dtype=DTYPE), atol=1e-20)
    bad = depth.clone()
    bad[:, 2] *= 1.1
    perturbed = L.flow_3d_loss(unproject(bad, _K()[:, None]), poses, ff, fb, ok, ok, static)
    assert (perturbed > 1e-4).all()
    moved = poses.clone()
    moved[:, 3, 1, 3] += 0.05
    assert (L.flow_3d_loss(points, moved, ff, fb, ok, ok, static) > 1e-4).all()
    g = _finite_grad(lambda d: L.flow_3d_loss(unproject(d, _K()[:, None]), moved, ff, fb, ok,
                                              ok, static), depth)
    assert g.abs().sum() > 0


def test_flow_3d_ignores_dynamic_pixels():
    depth, poses, ff, fb, ok, static, _, _ = _scene()
    bad = depth.clone()
    bad[:, 2, :, 5:9] *= 1.5  # a "hand" at the wrong depth ...
    static = static.clone()
    static[:, 2, :, 5:9] = 0.0  # ... masked as dynamic
    loss = L.flow_3d_loss(unproject(bad, _K()[:, None]), poses, ff, fb, ok, ok, static)
    assert torch.allclose(loss, torch.zeros(B, dtype=DTYPE), atol=1e-20)


def test_tracking_3d_zero_at_truth_and_grows():
    depth, poses, _, _, _, static, tracks, vis = _scene()
    points = unproject(depth, _K()[:, None])
    truth = L.tracking_3d_loss(points, poses, tracks, vis, static)
    assert truth.shape == (B,)
    assert torch.allclose(truth, torch.zeros(B, dtype=DTYPE), atol=1e-20)
    moved = poses.clone()
    moved[:, 1, 2, 3] += 0.1
    assert (L.tracking_3d_loss(points, moved, tracks, vis, static) > 1e-4).all()
    g = _finite_grad(lambda d: L.tracking_3d_loss(unproject(d, _K()[:, None]), moved, tracks,
                                                  vis, static), depth)
    assert g.abs().sum() > 0


def test_shape_zero_for_a_similarity_and_grows():
    points = torch.randn(B, F, H, W, 3, dtype=DTYPE) + torch.tensor([0, 0, 3.0], dtype=DTYPE)
    angle = torch.tensor(0.3, dtype=DTYPE)
    R = torch.tensor([[1, 0, 0], [0, angle.cos(), -angle.sin()], [0, angle.sin(), angle.cos()]],
                     dtype=DTYPE)
    teacher = 1.7 * points @ R.T + torch.tensor([0.1, -0.2, 0.3], dtype=DTYPE)
    w = torch.ones(B, F, H, W, dtype=DTYPE)
    truth = L.shape_loss(points, teacher, w)
    assert truth.shape == (B,) and (truth < 1e-20).all()
    noisy = points + 0.05 * torch.randn_like(points)
    assert (L.shape_loss(noisy, teacher, w) > 1e-4).all()
    _finite_grad(lambda p: L.shape_loss(p, teacher, w), noisy)


def test_dynamic_area_minimum_at_the_warped_mask():
    _, _, _, fb, _, static, _, _ = _scene()
    static = static.clone()
    static[:, :, 4:8, 6:10] = 0.0
    target = L.warped_static_target(static, fb)
    assert ((target < 1e-9) | (target > 1 - 1e-9)).all()
    target = target.round()
    truth = L.dynamic_area_loss(target.clone(), static, fb)
    assert (truth < 1e-6).all()
    half = torch.full_like(target, 0.5)
    assert (L.dynamic_area_loss(half, static, fb) > 0.5).all()
    _finite_grad(lambda c: L.dynamic_area_loss(c, static, fb), half)


def test_cc_zero_for_equal_intrinsics_and_grows():
    K = _K()
    assert (L.cc_loss(K, K.clone(), H, W) == 0).all()
    K2 = K.clone()
    K2[:, 0, 0] *= 1.1
    loss = L.cc_loss(K, K2, H, W)
    assert torch.allclose(loss, torch.full((B,), 0.1 * FOCAL / W, dtype=DTYPE))
    per_frame = L.cc_loss(K[:, None].expand(B, F, 3, 3), K2[:, None].expand(B, F, 3, 3), H, W)
    assert torch.allclose(per_frame, loss)
    _finite_grad(lambda k: L.cc_loss(k, K, H, W), K2)


def test_scale_zero_at_teacher_scale():
    depth = 1.0 + torch.rand(B, F, H, W, dtype=DTYPE)
    valid = torch.ones_like(depth, dtype=torch.bool)
    assert (L.scale_loss(depth, depth.clone(), valid) < 1e-12).all()
    assert torch.allclose(L.scale_loss(1.2 * depth, depth, valid),
                          torch.full((B,), float(torch.log(torch.tensor(1.2))), dtype=DTYPE))
    _finite_grad(lambda d: L.scale_loss(d, depth, valid), 1.2 * depth)


def test_intrinsics_zero_at_teacher_and_measures_log_focal_and_centre():
    K = _K()
    assert (L.intrinsics_loss(K, K.clone(), H, W) == 0).all()
    K2 = K.clone()
    K2[:, 0, 0] *= 0.5  # focal halved: |log 0.5|
    K2[:, 1, 2] += 0.1 * H  # principal point 10 % of the height down
    expected = torch.full((B,), float(np.log(2.0)) + 0.1, dtype=DTYPE)
    assert torch.allclose(L.intrinsics_loss(K2, K, H, W), expected)
    per_frame = L.intrinsics_loss(K2[:, None].expand(B, F, 3, 3), K, H, W)
    assert torch.allclose(per_frame, expected)
    _finite_grad(lambda k: L.intrinsics_loss(k, K, H, W), K2)


def test_weighted_total_uses_paper_weights():
    terms = {k: torch.ones(B) for k in ("shape", "flow_3d", "tracking_3d", "dynamic_area", "cc")}
    total = L.weighted_total(terms, L.PAPER_WEIGHTS)
    assert torch.allclose(total, torch.full((B,), 4.0 + 5.0 + 5.0 + 0.005 + 1.0))
    with pytest.raises(ValueError):
        L.weighted_total(terms, {})
