"""Property tests of the simulator's building blocks.

Intersections, rigid helpers, culling rectangles and textures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from unihoi_ros.sim.camera import image_bounds, intrinsics, project, sphere_rect
from unihoi_ros.sim.rigid import inv_pose, look_at, make_pose, so3_exp, so3_log
from unihoi_ros.sim.scene import (
    BOX,
    CAPSULE,
    CYLINDER,
    ELLIPSOID,
    ROOM,
    intersect,
    normals_and_faces,
)
from unihoi_ros.sim.texture import CHECKER, albedo, random_material

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _sdf(kind: int, size: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Signed distance-like function, < 0 inside the solid (for ROOM: inside the room)."""
    if kind == ELLIPSOID:
        return np.sqrt(((p / size) ** 2).sum(1)) - 1.0
    if kind in (BOX, ROOM):
        return (np.abs(p) - size).max(1)
    if kind == CYLINDER:
        return np.maximum(np.hypot(p[:, 0], p[:, 1]) - size[0], np.abs(p[:, 2]) - size[2])
    q = p.copy()
    q[:, 2] -= np.clip(p[:, 2], -size[2], size[2])
    return np.linalg.norm(q, axis=1) - size[0]


@settings(max_examples=40, deadline=None)
@given(seed=seeds, kind=st.sampled_from([ELLIPSOID, BOX, CYLINDER, CAPSULE, ROOM]))
def test_first_hit_is_on_surface_and_first(seed: int, kind: int) -> None:
    rng = np.random.default_rng(seed)
    size = rng.uniform(0.05, 0.5, size=3)
    if kind in (CYLINDER, CAPSULE):
        size[1] = size[0]
    if kind == ROOM:
        o = rng.uniform(-0.9, 0.9, size=3) * size  # inside
    else:
        o = rng.normal(size=3)
        o *= (np.max(size) * 2 + 0.1) / np.linalg.norm(o) * rng.uniform(1.0, 3.0)
    # Half the rays aimed at the primitive, half random.
    target = rng.uniform(-0.5, 0.5, size=(100, 3)) * size  # inside every kind
    d = np.concatenate([target - o, rng.normal(size=(100, 3))])
    t = intersect(kind, size, o, np.ascontiguousarray(d.T))
    hit = np.isfinite(t)
    if kind == ROOM:
        assert hit.all()
    else:
        assert hit[:100].all()  # aimed at interior points
    p = o + t[hit, None] * d[hit]
    assert np.abs(_sdf(kind, size, p)).max() < 1e-9 * max(1.0, np.abs(t[hit]).max())
    # Nothing of the solid before the hit (sampled), nothing at all along a miss.
    s = np.linspace(0.0, 0.999, 200)
    for i in np.flatnonzero(hit)[:50]:
        pts = o + (s * t[i])[:, None] * d[i]
        inside = _sdf(kind, size, pts) < -1e-9
        assert not inside.any() if kind != ROOM else inside[:-1].all()
    for i in np.flatnonzero(~hit)[:50]:
        pts = o + np.linspace(0, 50, 2000)[:, None] * d[i]
        assert (_sdf(kind, size, pts) > -1e-9).all()


@settings(max_examples=30, deadline=None)
@given(seed=seeds, kind=st.sampled_from([ELLIPSOID, BOX, CYLINDER, CAPSULE]))
def test_normals_point_outwards(seed: int, kind: int) -> None:
    rng = np.random.default_rng(seed)
    size = rng.uniform(0.05, 0.5, size=3)
    if kind in (CYLINDER, CAPSULE):
        size[1] = size[0]
    o = np.array([0.0, 0.0, 0.0])
    d = rng.normal(size=(100, 3))
    # Rays from the centre hit the surface from inside; use those points.
    if kind == BOX:
        t = np.min(size / np.abs(d), axis=1)
    else:
        t = np.array([np.inf] * 100)
        lo, hi = np.zeros(100), np.full(100, 10.0)
        for _ in range(80):  # bisection on the sdf along each ray
            mid = 0.5 * (lo + hi)
            inside = _sdf(kind, size, o + mid[:, None] * d) < 0
            lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
        t = lo
    p = o + t[:, None] * d
    n, _ = normals_and_faces(kind, size, p)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0)
    eps = 1e-5
    assert (_sdf(kind, size, p + eps * n) > 0).all()
    assert (_sdf(kind, size, p - eps * n) < 0).all()


@settings(max_examples=50, deadline=None)
@given(seed=seeds)
def test_so3_roundtrip_and_poses(seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(20, 3))
    w *= rng.uniform(0, np.pi - 1e-3, size=(20, 1)) / np.linalg.norm(w, axis=1, keepdims=True)
    r = so3_exp(w)
    assert np.allclose(r @ np.swapaxes(r, 1, 2), np.eye(3), atol=1e-12)
    assert np.allclose(so3_log(r), w, atol=1e-9)
    t = make_pose(r, rng.normal(size=(20, 3)))
    assert np.allclose(t @ inv_pose(t), np.eye(4), atol=1e-12)
    eye, target = rng.normal(size=3), rng.normal(size=3)
    rc = look_at(eye, target)
    assert np.isclose(np.linalg.det(rc), 1.0)
    fwd = (target - eye) / np.linalg.norm(target - eye)
    assert np.allclose(rc[:, 2], fwd)
    assert abs(rc[2, 0]) < 1e-12  # x (right) is horizontal
    assert rc[2, 1] <= 1e-12  # y points down (or horizontal)


@settings(max_examples=50, deadline=None)
@given(seed=seeds)
def test_sphere_rect_is_conservative(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = 48, 64
    k = intrinsics(w, h, np.radians(rng.uniform(40, 120)), rng.uniform(-0.02, 0.02, 2))
    c = rng.normal(size=3) * [0.5, 0.5, 1.0] + [0, 0, rng.uniform(-0.5, 2.0)]
    r = float(rng.uniform(0.01, 0.6))
    rect = sphere_rect(k, c, r, image_bounds(h, w))
    d = rng.normal(size=(4000, 3))
    pts = c + r * d / np.linalg.norm(d, axis=1, keepdims=True)
    uv, z = project(k, pts)
    ok = (z > 1e-6) & (uv[:, 0] >= -0.5) & (uv[:, 0] <= w - 0.5)
    ok &= (uv[:, 1] >= -0.5) & (uv[:, 1] <= h - 0.5)
    if rect is None:
        assert not ok.any()
        return
    u0, u1, v0, v1 = rect
    tol = 1e-6
    assert (uv[ok, 0] >= u0 - tol).all() and (uv[ok, 0] <= u1 + tol).all()
    assert (uv[ok, 1] >= v0 - tol).all() and (uv[ok, 1] <= v1 + tol).all()


def test_texture_is_a_function_of_the_point_and_band_limited() -> None:
    rng = np.random.default_rng(5)
    mat = random_material(rng, pattern=CHECKER, period=(0.05, 0.05))
    p = rng.uniform(-1, 1, size=(5000, 3))
    n = np.tile([0.0, 0.0, 1.0], (5000, 1))
    a = albedo(mat, p, n, np.full(5000, 1e-4))
    assert a.shape == (5000, 3) and (a >= 0).all() and (a <= 1).all()
    assert np.array_equal(a, albedo(mat, p, n, np.full(5000, 1e-4)))
    # A footprint far above the checker period averages the pattern out: low contrast.
    blurred = albedo(mat, p, n, np.full(5000, 1.0))
    assert blurred.std(0).max() < 0.5 * a.std(0).max()


def test_sim_depends_on_numpy_only() -> None:
    """The simulator must not pull in torch or the package's other layers; of geometry it
    uses only the camera model (numpy, torch-free)."""
    code = (
        "import sys, unihoi_ros.sim; "
        "ok = ('unihoi_ros.geometry', 'unihoi_ros.geometry.camera'); "
        "bad = [m for m in sys.modules if m == 'torch' or "
        "(m.startswith('unihoi_ros.') and not m.startswith('unihoi_ros.sim') "
        "and m not in ok)]; "
        "assert not bad, bad"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
