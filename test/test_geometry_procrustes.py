"""Weighted rigid / Sim(3) Procrustes: exactness, references (scipy, evo), degeneracy, grads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from unihoi_ros.geometry.poses import se3_from_rt
from unihoi_ros.geometry.procrustes import weighted_rigid, weighted_sim3

F64 = torch.float64


def _rot(rng: np.random.Generator) -> np.ndarray:
    return Rotation.random(random_state=rng).as_matrix()


def _camera_scene(rng: np.random.Generator, n: int) -> np.ndarray:
    """Points a camera sees: z in [0.5, 4] m, inside a ~60 degree frustum."""
    z = rng.uniform(0.5, 4.0, n)
    xy = rng.uniform(-0.6, 0.6, (n, 2)) * z[:, None]
    return np.column_stack([xy, z])


def _apply(R: np.ndarray, t: np.ndarray, p: np.ndarray, s: float = 1.0) -> np.ndarray:
    return s * p @ R.T + t


def _t(*arrays: np.ndarray, dtype=F64):
    out = tuple(torch.tensor(np.asarray(a), dtype=dtype) for a in arrays)
    return out if len(out) > 1 else out[0]


def _static_dynamic(rng, n=400, dynamic=0.4):
    """Frame-t points p, frame-(t-1) points q; dynamic points follow another motion."""
    p = _camera_scene(rng, n)
    R, t = _rot(rng) @ np.eye(3), rng.normal(0, 0.3, 3)
    q = _apply(R, t, p)
    is_dyn = rng.random(n) < dynamic
    q[is_dyn] = _apply(_rot(rng), rng.normal(0, 0.5, 3), p[is_dyn])
    return p, q, (~is_dyn).astype(float), R, t


# ----------------------------------------------------------------------------- exactness


def test_static_weights_recover_exact_pose():
    rng = np.random.default_rng(0)
    p, q, w, R, t = _static_dynamic(rng)
    T, ok = weighted_rigid(*_t(p, q, w), return_ok=True)
    assert bool(ok)
    np.testing.assert_allclose(T[:3, :3].numpy(), R, atol=1e-6)
    np.testing.assert_allclose(T[:3, 3].numpy(), t, atol=1e-6)
    np.testing.assert_allclose(T[3].numpy(), [0, 0, 0, 1])
    # The dynamic points matter: with uniform weights the answer is far off.
    T_bad = weighted_rigid(*_t(p, q, np.ones_like(w)))
    assert np.abs(T_bad[:3, :3].numpy() - R).max() > 1e-2


def test_half_outliers_with_zero_weight():
    rng = np.random.default_rng(1)
    p, q, w, R, t = _static_dynamic(rng, n=600, dynamic=0.2)
    out = rng.random(len(p)) < 0.5
    q[out] = rng.uniform(-5, 5, (out.sum(), 3))
    w[out] = 0.0
    T = weighted_rigid(*_t(p, q, w))
    np.testing.assert_allclose(T[:3, :3].numpy(), R, atol=1e-6)
    np.testing.assert_allclose(T[:3, 3].numpy(), t, atol=1e-6)


def test_sim3_recovers_scale_rotation_translation():
    rng = np.random.default_rng(2)
    p, q, w, R, t = _static_dynamic(rng)
    s = 0.37
    q = _apply(R, t, p, s)
    q[w == 0] = rng.normal(size=((w == 0).sum(), 3))
    T, scale, ok = weighted_sim3(*_t(p, q, w), return_ok=True)
    assert bool(ok)
    assert abs(float(scale) - s) < 1e-9
    np.testing.assert_allclose(T[:3, :3].numpy(), R, atol=1e-9)
    np.testing.assert_allclose(T[:3, 3].numpy(), t, atol=1e-9)


def test_batched_equals_one_by_one():
    rng = np.random.default_rng(3)
    p = rng.normal(size=(2, 3, 30, 3))
    q = p @ _rot(rng).T + 0.1 * rng.normal(size=p.shape)
    w = rng.uniform(0, 1, (2, 3, 30))
    w[1, 2] = 0.0  # one degenerate member must not disturb the others
    T, s, ok = weighted_sim3(*_t(p, q, w), return_ok=True)
    assert T.shape == (2, 3, 4, 4) and s.shape == ok.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            Ti, si, oki = weighted_sim3(*_t(p[i, j], q[i, j], w[i, j]), return_ok=True)
            torch.testing.assert_close(T[i, j], Ti, rtol=0, atol=1e-12)
            torch.testing.assert_close(s[i, j], si, rtol=0, atol=1e-12)
            assert bool(ok[i, j]) == bool(oki)
    assert not bool(ok[1, 2]) and int(ok.sum()) == 5


def test_weights_broadcast_over_batch():
    rng = np.random.default_rng(4)
    p = rng.normal(size=(4, 20, 3))
    q = p @ _rot(rng).T
    w = rng.uniform(0.5, 1, 20)
    T = weighted_rigid(*_t(p, q, w))
    T_full = weighted_rigid(*_t(p, q, np.broadcast_to(w, (4, 20))))
    torch.testing.assert_close(T, T_full)


def test_float32_works_and_keeps_dtype():
    rng = np.random.default_rng(5)
    p, q, w, R, t = _static_dynamic(rng)
    T, s, ok = weighted_sim3(*_t(p, q, w, dtype=torch.float32), return_ok=True)
    assert T.dtype == s.dtype == torch.float32 and bool(ok)
    np.testing.assert_allclose(T[:3, :3].numpy(), R, atol=1e-4)
    np.testing.assert_allclose(T[:3, 3].numpy(), t, atol=1e-4)
    assert abs(float(s) - 1) < 1e-4


# ---------------------------------------------------------------------------- references

_SEEDS = st.integers(0, 2**32 - 1)


@settings(max_examples=40, deadline=None)
@given(seed=_SEEDS, n=st.integers(3, 40), noise=st.floats(0.0, 0.3), spread=st.floats(0.05, 20))
def test_rotation_matches_scipy_align_vectors(seed, n, noise, spread):
    rng = np.random.default_rng(seed)
    p = spread * rng.normal(size=(n, 3))
    q = _apply(_rot(rng), rng.normal(size=3), p) + noise * spread * rng.normal(size=(n, 3))
    w = rng.uniform(0.1, 2.0, n)
    T = weighted_rigid(*_t(p, q, w)).numpy()
    # scipy finds C with a ~= C b; with a, b the weighted-centred q, p, C is our R.
    mu_p, mu_q = (w[:, None] * p).sum(0) / w.sum(), (w[:, None] * q).sum(0) / w.sum()
    C = Rotation.align_vectors(q - mu_q, p - mu_p, weights=w)[0].as_matrix()
    np.testing.assert_allclose(T[:3, :3], C, atol=1e-9)
    np.testing.assert_allclose(T[:3, 3], mu_q - C @ mu_p, atol=1e-9 * (1 + spread))


@settings(max_examples=40, deadline=None)
@given(seed=_SEEDS, n=st.integers(3, 40), noise=st.floats(0.0, 0.3), scale=st.floats(0.1, 10))
def test_matches_evo_umeyama(seed, n, noise, scale):
    geometry = pytest.importorskip("evo.core.geometry")
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3))
    q = _apply(_rot(rng), rng.normal(size=3), p, scale) + noise * rng.normal(size=(n, 3))
    w = np.ones(n)
    for with_scale in (False, True):
        r, t, c = geometry.umeyama_alignment(p.T, q.T, with_scale)
        if with_scale:
            T, s = weighted_sim3(*_t(p, q, w))
        else:
            T, s = weighted_rigid(*_t(p, q, w)), 1.0
        np.testing.assert_allclose(T[:3, :3].numpy(), r, atol=1e-9)
        np.testing.assert_allclose(T[:3, 3].numpy(), t, atol=1e-9 * (1 + scale))
        assert abs(float(s) - c) < 1e-9 * max(1.0, c)


# ---------------------------------------------------------------------------- degeneracy


def _degenerate_cases():
    rng = np.random.default_rng(6)
    p = rng.normal(size=(10, 3))
    q = p + 1.0
    line = np.outer(rng.normal(size=10), [1.0, 2.0, -0.5]) + np.array([0.3, 0.1, 2.0])
    p_nan = p.copy()
    p_nan[:] = np.nan
    w_inf = np.full(10, np.inf)
    return {
        "zero_weights": (p, q, np.zeros(10)),
        "two_points": (p[:2], q[:2], np.ones(2)),
        "two_effective_points": (p, q, np.r_[1.0, 1.0, np.zeros(8)]),
        "one_point": (p[:1], q[:1], np.ones(1)),
        "no_points": (p[:0], q[:0], np.ones(0)),
        "collinear": (line, line @ _rot(rng).T, np.ones(10)),
        "all_nan_p": (p_nan, q, np.ones(10)),
        "all_inf_w": (p, q, w_inf),
        "nan_weights": (p, q, np.full(10, np.nan)),
        "target_collapsed": (p, np.zeros_like(p), np.ones(10)),
        "negative_weights": (p, q, -np.ones(10)),
    }


@pytest.mark.parametrize("name", list(_degenerate_cases()))
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_degenerate_gives_identity_not_ok_and_finite_grads(name, dtype):
    p, q, w = (x.requires_grad_() for x in _t(*_degenerate_cases()[name], dtype=dtype))
    T, ok = weighted_rigid(p, q, w, return_ok=True)
    Ts, s, oks = weighted_sim3(p, q, w, return_ok=True)
    assert not bool(ok) and not bool(oks)
    eye = torch.eye(4, dtype=dtype)
    assert torch.equal(T.detach(), eye) and torch.equal(Ts.detach(), eye)
    assert float(s.detach()) == 1.0
    (T.sum() + Ts.sum() + s).backward()
    for x in (p, q, w):
        assert x.grad is not None and torch.isfinite(x.grad).all()


def test_nan_and_inf_rows_are_ignored():
    rng = np.random.default_rng(7)
    p, q, w, R, _ = _static_dynamic(rng, n=100, dynamic=0.0)
    p[3, 1], q[10, 0], w[20], p[30, 2] = np.nan, np.inf, np.nan, -np.inf
    keep = np.ones(100, bool)
    keep[[3, 10, 20, 30]] = False
    T, ok = weighted_rigid(*_t(p, q, w), return_ok=True)
    T_ref = weighted_rigid(*_t(p[keep], q[keep], w[keep]))
    assert bool(ok)
    torch.testing.assert_close(T, T_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(T[:3, :3].numpy(), R, atol=1e-9)


def test_negative_weights_count_as_zero():
    rng = np.random.default_rng(8)
    p, q, w, _, _ = _static_dynamic(rng, n=50)
    w_neg = np.where(w > 0, w, -3.0)
    torch.testing.assert_close(weighted_rigid(*_t(p, q, w_neg)), weighted_rigid(*_t(p, q, w)))


def test_collinear_accepted_with_min_rank_1():
    rng = np.random.default_rng(9)
    line = np.outer(rng.normal(size=12), [0.2, -1.0, 0.4])
    R, t = _rot(rng), rng.normal(size=3)
    q = _apply(R, t, line, 2.0)
    T, s, ok = weighted_sim3(*_t(line, q, np.ones(12)), return_ok=True, min_rank=1)
    assert bool(ok) and abs(float(s) - 2.0) < 1e-9
    mapped = float(s) * line @ T[:3, :3].numpy().T + T[:3, 3].numpy()
    np.testing.assert_allclose(mapped, q, atol=1e-9)
    assert not bool(weighted_sim3(*_t(line, q, np.ones(12)), return_ok=True)[2])


# ------------------------------------------------------------------------------ gradients


def test_gradcheck_rigid_and_sim3():
    rng = np.random.default_rng(10)
    p = rng.normal(size=(7, 3))
    q = _apply(_rot(rng), rng.normal(size=3), p, 1.5) + 0.1 * rng.normal(size=(7, 3))
    w = rng.uniform(0.5, 1.5, 7)
    inputs = tuple(x.requires_grad_() for x in _t(p, q, w))
    assert torch.autograd.gradcheck(weighted_rigid, inputs)
    assert torch.autograd.gradcheck(lambda a, b, c: weighted_sim3(a, b, c), inputs)


def test_gradcheck_when_a_reflection_fits_better():
    # q is a mirror image of p: the best proper rotation uses the determinant fix (d = -1).
    rng = np.random.default_rng(11)
    p = rng.normal(size=(8, 3)) * [3.0, 2.0, 1.0]
    q = p * [1.0, 1.0, -1.0] + 0.05 * rng.normal(size=(8, 3))
    inputs = tuple(x.requires_grad_() for x in _t(p, q))
    w = torch.ones(8, dtype=F64)
    R = weighted_rigid(*inputs, w)[:3, :3].detach().numpy()
    assert abs(np.linalg.det(R) - 1) < 1e-12  # a proper rotation, never the mirror
    mu_p, mu_q = p.mean(0), q.mean(0)
    C = Rotation.align_vectors(q - mu_q, p - mu_p)[0].as_matrix()
    np.testing.assert_allclose(R, C, atol=1e-9)
    assert torch.autograd.gradcheck(lambda a, b: weighted_rigid(a, b, w), inputs)


def test_gradcheck_symmetric_cloud_with_repeated_singular_values():
    # A cube has an isotropic covariance: torch's generic SVD backward gives wrong (or
    # non-finite) gradients here, although the rotation is unique and smooth.
    cube = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    rng = np.random.default_rng(12)
    inputs = tuple(x.requires_grad_() for x in _t(cube, _apply(_rot(rng), [1, 2, 3], cube)))
    w = torch.ones(8, dtype=F64)
    assert torch.autograd.gradcheck(lambda a, b: weighted_rigid(a, b, w), inputs)


def _naive_rigid(p, q, w):
    """Plain-autograd weighted Kabsch (torch's SVD backward) as an independent reference."""
    wn = w / w.sum()
    mu_p, mu_q = (wn[:, None] * p).sum(0), (wn[:, None] * q).sum(0)
    cov = ((q - mu_q) * wn[:, None]).T @ (p - mu_p)
    U, _, Vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(U) * torch.linalg.det(Vh))
    R = U @ torch.diag(torch.stack([d * 0 + 1, d * 0 + 1, d])) @ Vh
    return se3_from_rt(R, mu_q - R @ mu_p)


def test_gradients_match_plain_svd_autograd_on_generic_input():
    rng = np.random.default_rng(13)
    p = rng.normal(size=(15, 3)) * [2.0, 1.0, 0.5]
    q = _apply(_rot(rng), rng.normal(size=3), p) + 0.2 * rng.normal(size=(15, 3))
    w = rng.uniform(0.2, 1.0, 15)
    g = torch.as_tensor(rng.normal(size=(4, 4)))
    grads = []
    for fn in (weighted_rigid, _naive_rigid):
        xs = tuple(x.requires_grad_() for x in _t(p, q, w))
        (fn(*xs) * g).sum().backward()
        grads.append([x.grad for x in xs])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
