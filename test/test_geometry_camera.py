"""Pinhole camera: pixel grid, (un)projection round trips, intrinsics normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unihoi_ros.geometry.camera import (
    denormalize_intrinsics,
    focal_ratio,
    normalize_intrinsics,
    pixel_grid,
    pixel_to_grid,
    project,
    scale_intrinsics,
    transform_points,
    unproject,
    unproject_pixels,
)
from unihoi_ros.geometry.poses import se3_from_rt

F64 = torch.float64


def _K(fx=300.0, fy=310.0, cx=160.5, cy=119.0, skew=0.0, dtype=F64) -> torch.Tensor:
    return torch.tensor([[fx, skew, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype)


def test_pixel_grid_is_column_row_at_integer_centres():
    g = pixel_grid(3, 5, dtype=F64)
    assert g.shape == (3, 5, 2) and g.dtype == F64
    assert g[2, 4].tolist() == [4.0, 2.0]  # (u, v) = (column, row)
    assert g[0, 0].tolist() == [0.0, 0.0]
    assert torch.equal(g[..., 0][1], torch.arange(5, dtype=F64))


@pytest.mark.parametrize("skew", [0.0, 2.5])
def test_project_unproject_round_trip(skew):
    gen = torch.Generator().manual_seed(0)
    depth = 0.3 + 5 * torch.rand(2, 24, 32, generator=gen, dtype=F64)
    K = torch.stack([_K(skew=skew), _K(fx=200, fy=190, cx=15.2, cy=12.7, skew=skew)])
    pts = unproject(depth, K)
    assert pts.shape == (2, 24, 32, 3)
    torch.testing.assert_close(pts[..., 2], depth, rtol=0, atol=0)
    uv, z = project(pts, K[:, None, None])
    torch.testing.assert_close(
        uv, pixel_grid(24, 32, dtype=F64).expand(2, -1, -1, -1), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(z, depth, atol=1e-6, rtol=0)


def test_unproject_matches_inverse_k_and_project_matches_k():
    gen = torch.Generator().manual_seed(1)
    K = _K(skew=1.5)
    uv = 100 * torch.rand(50, 2, generator=gen, dtype=F64)
    z = 0.5 + torch.rand(50, generator=gen, dtype=F64)
    homog = torch.cat([uv, torch.ones(50, 1, dtype=F64)], dim=-1)
    ref = torch.linalg.solve(K, homog.T).T * z[:, None]
    pts = unproject_pixels(uv, z, K)
    torch.testing.assert_close(pts, ref, rtol=1e-12, atol=1e-12)
    proj = pts @ K.T
    uv2, z2 = project(pts, K)
    torch.testing.assert_close(uv2, proj[:, :2] / proj[:, 2:], rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(z2, z)


def test_optical_axes_x_right_y_down():
    K = _K()
    uv, _ = project(torch.tensor([[0.5, 0.0, 2.0], [0.0, 0.5, 2.0]], dtype=F64), K)
    assert uv[0, 0] > K[0, 2] and torch.isclose(uv[0, 1], K[1, 2])  # +x: right of centre
    assert uv[1, 1] > K[1, 2] and torch.isclose(uv[1, 0], K[0, 2])  # +y: below centre


def test_project_stays_finite_at_zero_depth():
    uv, _ = project(torch.tensor([[0.1, 0.2, 0.0], [0.0, 0.0, -1e-12]]), _K(dtype=torch.float32))
    assert torch.isfinite(uv).all() and uv.dtype == torch.float32


def test_float32_keeps_dtype_and_is_accurate():
    depth = torch.full((4, 6), 2.0)
    pts = unproject(depth, _K(dtype=torch.float32))
    assert pts.dtype == torch.float32
    uv, _ = project(pts, _K(dtype=torch.float32))
    torch.testing.assert_close(uv, pixel_grid(4, 6), atol=1e-4, rtol=0)


def test_normalized_intrinsics_round_trip_and_values():
    K = torch.stack([_K(), _K(skew=3.0)])
    Kn = normalize_intrinsics(K, 240, 320)
    assert Kn[0, 0, 0] == K[0, 0, 0] / 320 and Kn[0, 1, 1] == K[0, 1, 1] / 240
    assert Kn[0, 0, 2] == K[0, 0, 2] / 320 and Kn[0, 1, 2] == K[0, 1, 2] / 240
    assert Kn[0, 2].tolist() == [0.0, 0.0, 1.0]
    torch.testing.assert_close(denormalize_intrinsics(Kn, 240, 320), K, rtol=0, atol=1e-12)
    # Per-item sizes as tensors.
    sizes_h, sizes_w = torch.tensor([240.0, 480.0]), torch.tensor([320.0, 640.0])
    Kn2 = normalize_intrinsics(K, sizes_h, sizes_w, pixel_offset=0.5)
    torch.testing.assert_close(denormalize_intrinsics(Kn2, sizes_h, sizes_w, 0.5), K)


def test_half_pixel_offset_matches_authors_normalised_coordinates():
    # The authors' normalised coordinate of pixel index i is (i + 0.5) / W.
    h, w = 24, 32
    K = _K(fx=40, fy=41, cx=15.7, cy=11.2)
    pts = unproject(torch.full((h, w), 3.0, dtype=F64), K)
    uv_n, _ = project(pts, normalize_intrinsics(K, h, w, pixel_offset=0.5))
    ref = (pixel_grid(h, w, dtype=F64) + 0.5) / torch.tensor([w, h], dtype=F64)
    torch.testing.assert_close(uv_n, ref, rtol=0, atol=1e-12)


def test_transform_points_matches_homogeneous_product():
    gen = torch.Generator().manual_seed(2)
    R = torch.linalg.qr(torch.randn(3, 3, 3, generator=gen, dtype=F64))[0]
    T = se3_from_rt(R, torch.randn(3, 3, generator=gen, dtype=F64))
    p = torch.randn(3, 10, 3, generator=gen, dtype=F64)
    homog = torch.cat([p, torch.ones(3, 10, 1, dtype=F64)], dim=-1)
    ref = (homog @ T.mT)[..., :3]
    torch.testing.assert_close(transform_points(T, p), ref)


def test_unproject_project_are_differentiable():
    depth = (1 + torch.rand(5, 7, dtype=F64)).requires_grad_()
    K = _K().requires_grad_()
    uv, z = project(unproject(depth, K) * 1.1, K)
    (uv.sum() + z.sum()).backward()
    assert np.isfinite(depth.grad.numpy()).all() and np.isfinite(K.grad.numpy()).all()


def test_pixel_to_grid_samples_pixel_centres_with_align_corners_false():
    h, w = 5, 7
    img = torch.arange(h * w, dtype=F64).reshape(1, 1, h, w)
    uv = pixel_grid(h, w, dtype=F64)
    grid = torch.stack((pixel_to_grid(uv[..., 0], w), pixel_to_grid(uv[..., 1], h)), dim=-1)
    out = torch.nn.functional.grid_sample(img, grid[None], mode="bilinear",
                                          align_corners=False)
    torch.testing.assert_close(out, img)  # every pixel centre samples itself
    assert pixel_to_grid(torch.tensor(-0.5), w).item() == -1.0  # outer edges are +-1
    assert pixel_to_grid(torch.tensor(w - 0.5), w).item() == pytest.approx(1.0)
    shift = torch.full((h, w), 0.25, dtype=F64)
    expected = (uv[..., 0] + 0.5 + shift) * (2.0 / w) - 1.0
    assert torch.equal(pixel_to_grid(uv[..., 0], w, shift), expected)


def test_scale_intrinsics_keeps_pixel_centres_and_matches_normalisation():
    K = np.array([[300.0, 0.5, 160.5], [0.0, 310.0, 119.0], [0.0, 0.0, 1.0]])
    half = scale_intrinsics(K, (240, 320), (120, 160))
    assert half[0, 2] == (160.5 + 0.5) / 2 - 0.5 and half[1, 2] == (119.0 + 0.5) / 2 - 0.5
    assert half[0, 0] == 150.0 and half[1, 1] == 155.0 and half[0, 1] == 0.25
    np.testing.assert_array_equal(half[2], [0.0, 0.0, 1.0])
    # Pixel centre -> pixel centre: the centre of the 2x2 block (0..1) is the new pixel 0.
    np.testing.assert_allclose(scale_intrinsics(half, (120, 160), (240, 320)), K, atol=1e-12)
    same = scale_intrinsics(K, (240, 320), (240, 320))
    np.testing.assert_array_equal(same, K)
    assert same is not K and same.dtype == np.float64
    for to_hw in ((120, 160), (97, 131), (480, 640)):
        via_torch = denormalize_intrinsics(
            normalize_intrinsics(torch.from_numpy(K), 240, 320, pixel_offset=0.5),
            *to_hw, pixel_offset=0.5).numpy()
        np.testing.assert_array_equal(scale_intrinsics(K, (240, 320), to_hw), via_torch)


def test_focal_ratio_is_the_geometric_mean_of_the_axes():
    K = np.array([[100.0, 0, 32], [0, 90.0, 24], [0, 0, 1]])
    assert focal_ratio(K, K) == 1.0
    longer = K.copy()
    longer[0, 0], longer[1, 1] = 200.0, 90.0 * 8  # x2 and x8: geometric mean 4
    assert abs(focal_ratio(longer, K) - 4.0) < 1e-12
    assert abs(focal_ratio(K, longer) - 0.25) < 1e-12



def test_numpy_and_torch_give_the_same_bits():
    """One model for both kinds: the same formula, so the same float64 / float32 bits."""
    rng = np.random.default_rng(3)
    for dtype in (np.float64, np.float32):
        K = np.array([[300.0, 1.5, 160.5], [0.0, 310.0, 119.0], [0.0, 0.0, 1.0]], dtype)
        uv = (rng.uniform(0, 200, (64, 2))).astype(dtype)
        z = rng.uniform(0.3, 5.0, 64).astype(dtype)
        pts = unproject_pixels(uv, z, K)
        assert isinstance(pts, np.ndarray) and pts.dtype == dtype and pts.shape == (64, 3)
        ref = unproject_pixels(torch.from_numpy(uv), torch.from_numpy(z), torch.from_numpy(K))
        assert pts.tobytes() == ref.numpy().tobytes()
        uv_np, z_np = project(pts, K)
        uv_t, z_t = project(torch.from_numpy(pts), torch.from_numpy(K))
        assert uv_np.tobytes() == uv_t.numpy().tobytes() and z_np.tobytes() == z_t.numpy().tobytes()
        depth = rng.uniform(0.3, 5.0, (2, 5, 7)).astype(dtype)
        assert unproject(depth, K).tobytes() == unproject(
            torch.from_numpy(depth), torch.from_numpy(K)).numpy().tobytes()
    assert np.array_equal(pixel_grid(3, 5, dtype=np.float64), pixel_grid(3, 5, dtype=F64).numpy())


def test_numpy_path_keeps_the_bits_of_the_formulas_it_replaced():
    """Without skew the model's numpy path equals, bit for bit, the per-module formulas it
    replaced (point clouds: ``(u - cx) / fx * z``; simulator rays ``(u - cx) / fx`` with z
    1; tracker projection ``(x / z) @ K[:2, :2].T + K[:2, 2]``), so clips, clouds and
    tracks are unchanged."""
    rng = np.random.default_rng(4)
    K = np.array([[211.3, 0.0, 80.7], [0.0, 209.9, 61.2], [0.0, 0.0, 1.0]])
    uv = rng.uniform(-0.5, 160, (500, 2))
    z = rng.uniform(0.2, 6.0, 500)
    old = np.stack([(uv[:, 0] - K[0, 2]) / K[0, 0] * z, (uv[:, 1] - K[1, 2]) / K[1, 1] * z, z],
                   axis=-1)
    assert unproject_pixels(uv, z, K).tobytes() == old.tobytes()
    k32, uv32, z32 = K.astype(np.float32), uv.astype(np.float32), z.astype(np.float32)
    old32 = np.stack([(uv32[:, 0] - k32[0, 2]) / k32[0, 0] * z32,
                      (uv32[:, 1] - k32[1, 2]) / k32[1, 1] * z32, z32], axis=-1)
    assert unproject_pixels(uv32, z32, k32).tobytes() == old32.tobytes()
    rays = np.stack([(uv[:, 0] - K[0, 2]) / K[0, 0], (uv[:, 1] - K[1, 2]) / K[1, 1],
                     np.ones(500)], axis=-1)
    assert unproject_pixels(uv, 1.0, K).tobytes() == rays.tobytes()
    pts = old
    assert project(pts, K)[0].tobytes() == (
        (pts[:, :2] / pts[:, 2:]) @ K[:2, :2].T + K[:2, 2]).tobytes()
