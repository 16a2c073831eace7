"""Acceptance tests of the synthetic world (``unihoi_ros.sim``).

The geometric checks are computed here independently, in numpy, from the published
depth, K and poses; they never call the simulator's own flow code.
"""

from __future__ import annotations

import numpy as np
import pytest

from unihoi_ros.sim import Sequence, make_sequence, raycast

H, W, N = 72, 96, 30


@pytest.fixture(scope="module")
def seq() -> Sequence:
    return make_sequence(3, N, H, W)


# --- independent reference maths ------------------------------------------------------------


def _grid(h: int, w: int) -> np.ndarray:
    v, u = np.mgrid[0:h, 0:w]
    return np.stack([u.ravel(), v.ravel()], -1).astype(np.float64)


def _unproject(depth: np.ndarray, k: np.ndarray, t_wc: np.ndarray) -> np.ndarray:
    """World points (H*W, 3) of a z-depth map."""
    uv = _grid(*depth.shape)
    z = depth.reshape(-1).astype(np.float64)
    x = np.stack([(uv[:, 0] - k[0, 2]) / k[0, 0] * z, (uv[:, 1] - k[1, 2]) / k[1, 1] * z, z], -1)
    return x @ t_wc[:3, :3].T + t_wc[:3, 3]


def _project(x_world: np.ndarray, k: np.ndarray, t_wc: np.ndarray):
    x = (x_world - t_wc[:3, 3]) @ t_wc[:3, :3]
    z = x[:, 2]
    uv = np.stack([k[0, 0] * x[:, 0] / z + k[0, 2], k[1, 1] * x[:, 1] / z + k[1, 2]], -1)
    return uv, z


def _move(points: np.ndarray, body: np.ndarray, t_from: np.ndarray, t_to: np.ndarray):
    """Carry points rigidly with their body from poses ``t_from`` to ``t_to`` (B, 4, 4)."""
    out = np.empty_like(points)
    for b in np.unique(body):
        rel = t_to[b] @ np.linalg.inv(t_from[b])
        m = body == b
        out[m] = points[m] @ rel[:3, :3].T + rel[:3, 3]
    return out


def _moved_into_prev(s: Sequence, t: int):
    """Pixels of frame t moved by the ground-truth motion and projected into frame t-1."""
    x = _unproject(s.depth[t], s.K, s.T_world_cam[t])
    body = s.instance[t].reshape(-1)
    x_prev = _move(x, body, s.T_world_body[t], s.T_world_body[t - 1])
    uv, z = _project(x_prev, s.K, s.T_world_cam[t - 1])
    return uv, z, body


def _planar_bilinear_inv_depth(s: Sequence, t: int, uv: np.ndarray, body: np.ndarray):
    """Interpolate frame t's depth at sub-pixel ``uv`` where bilinear 1/z is exact.

    Exact means: the 4x4 pixels around the landing cell belong to ``body`` and their
    inverse depth is affine (one plane: 1/z is affine in (u, v) on a plane).

    Returns (depth, ok) with ok False where the check does not apply.
    """
    h, w = s.height, s.width
    inv = 1.0 / s.depth[t].astype(np.float64)
    inst = s.instance[t]
    with np.errstate(invalid="ignore"):
        u0 = np.floor(uv[:, 0])
        v0 = np.floor(uv[:, 1])
        ok = (u0 >= 1) & (u0 <= w - 3) & (v0 >= 1) & (v0 <= h - 3)
    ok &= np.isfinite(uv).all(1)
    depth = np.full(len(uv), np.nan)
    idx = np.flatnonzero(ok)
    iu, iv = u0[idx].astype(int), v0[idx].astype(int)
    off = np.arange(-1, 3)
    rows = iv[:, None, None] + off[None, :, None]
    cols = iu[:, None, None] + off[None, None, :]
    patch = inv[rows, cols]  # (M, 4, 4)
    same = (inst[rows, cols] == body[idx][:, None, None]).all((1, 2))
    scale = np.abs(patch).max((1, 2))
    d2u = np.abs(patch[:, :, 2:] - 2 * patch[:, :, 1:-1] + patch[:, :, :-2]).max((1, 2))
    d2v = np.abs(patch[:, 2:, :] - 2 * patch[:, 1:-1, :] + patch[:, :-2, :]).max((1, 2))
    d2x = np.abs(patch[:, 1:, 1:] - patch[:, 1:, :-1] - patch[:, :-1, 1:] + patch[:, :-1, :-1])
    planar = np.maximum(np.maximum(d2u, d2v), d2x.max((1, 2))) <= 2e-6 * scale
    fu = uv[idx, 0] - iu
    fv = uv[idx, 1] - iv
    p = patch[:, 1:3, 1:3]
    interp = (
        p[:, 0, 0] * (1 - fu) * (1 - fv)
        + p[:, 0, 1] * fu * (1 - fv)
        + p[:, 1, 0] * (1 - fu) * fv
        + p[:, 1, 1] * fu * fv
    )
    good = same & planar
    depth[idx[good]] = 1.0 / interp[good]
    ok[idx[~good]] = False
    return depth, ok


# --- flow and depth consistency ---------------------------------------------------------


def test_flow_matches_reprojection(seq: Sequence) -> None:
    grid = _grid(H, W)
    for t in range(1, N):
        uv, z, _ = _moved_into_prev(seq, t)
        flow = seq.flow_bwd[t - 1].reshape(-1, 2).astype(np.float64)
        front = z > 0
        assert np.array_equal(np.isfinite(flow).all(1), front)
        err = np.abs(grid + flow - uv)[front]
        assert err.max() < 0.01, (t, err.max())
        # Points behind camera t-1 or landing outside the image cannot be visible.
        inside = front & (uv[:, 0] >= -0.5) & (uv[:, 0] < W - 0.5)
        inside &= (uv[:, 1] >= -0.5) & (uv[:, 1] < H - 0.5)
        assert seq.flow_bwd_occluded[t - 1].reshape(-1)[~inside].all()


def test_depth_consistent_on_planar_surfaces(seq: Sequence) -> None:
    """Check the moved point's z against frame t-1's depth where it lands.

    Frame t-1's depth is interpolated exactly (bilinear inverse depth on planar patches);
    there the occlusion mask must say "visible" exactly when the depths agree.
    """
    checked = {"static": 0, "dynamic": 0}
    for t in range(1, N):
        uv, z, body = _moved_into_prev(seq, t)
        ref, ok = _planar_bilinear_inv_depth(seq, t - 1, uv, body)
        occ = seq.flow_bwd_occluded[t - 1].reshape(-1)
        rel = np.abs(z - ref) / ref
        vis = ok & ~occ
        assert vis.any()
        assert rel[vis].max() < 1e-4, (t, rel[vis].max())
        # Hidden points land behind a surface of the same body (e.g. a box's far side).
        hidden = ok & occ
        assert (rel[hidden] > 1e-4).all()
        assert (z[hidden] > ref[hidden]).all()
        checked["static"] += int(np.sum(vis & (body == 0)))
        checked["dynamic"] += int(np.sum(vis & (body > 0)))
    assert checked["static"] > 0.3 * (N - 1) * H * W * 0.6
    assert checked["dynamic"] > 0 or seq.world.prims[-1].kind not in (1, 2)


def test_depth_consistent_by_recasting(seq: Sequence) -> None:
    """Re-cast camera t-1's ray through the exact landing position of each visible point.

    It must hit the same body at the moved point's z (all bodies, including curved
    hands, and right up to occlusion boundaries).
    """
    rng = np.random.default_rng(0)
    n_dyn = 0
    for t in range(1, N):
        uv, z, body = _moved_into_prev(seq, t)
        vis = ~seq.flow_bwd_occluded[t - 1].reshape(-1)
        # All dynamic pixels plus a sample of static ones keeps the test fast.
        pick = np.flatnonzero(vis & ((body > 0) | (rng.random(body.size) < 0.15)))
        z_cast, body_cast = raycast(seq, t - 1, uv[pick])
        assert np.array_equal(body_cast, body[pick])
        rel = np.abs(z_cast - z[pick]) / z[pick]
        assert rel.max() < 1e-4, (t, rel.max())
        n_dyn += int(np.sum(body[pick] > 0))
        # Occluded points in view: the ray meets something else first.
        occ = np.flatnonzero(~vis & np.isfinite(uv).all(1))
        occ = occ[(uv[occ, 0] >= -0.5) & (uv[occ, 0] < W - 0.5)]
        occ = occ[(uv[occ, 1] >= -0.5) & (uv[occ, 1] < H - 0.5)]
        if occ.size:
            z_o, b_o = raycast(seq, t - 1, uv[occ])
            assert ((z_o < z[occ] * (1 - 1e-7)) | (b_o != body[occ])).all()
    assert n_dyn > 1000


def test_bodies_move_and_object_is_carried(seq: Sequence) -> None:
    tw = seq.T_world_body
    assert np.allclose(tw[:, 0], np.eye(4))
    obj = seq.body_names.index("object")
    step = np.linalg.norm(np.diff(tw[:, obj, :3, 3], axis=0), axis=1)
    assert step.max() > 1e-3  # the object is picked up within the first second
    hands = [i for i, n in enumerate(seq.body_names) if n.startswith("hand")]
    moving = step > 1e-9
    # While the object moves, some hand keeps a fixed pose relative to it (rigid grasp).
    ok = False
    for hnd in hands:
        rel = np.linalg.inv(tw[:, hnd]) @ tw[:, obj]
        if np.abs(rel[1:][moving] - rel[1:][moving][0]).max() < 1e-9:
            ok = True
    assert ok


def _bilinear(img: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Sample ``img`` (H, W, C) at sub-pixel ``uv`` (M, 2) (clamped to the image)."""
    h, w = img.shape[:2]
    u = np.clip(uv[:, 0], 0, w - 1.000001)
    v = np.clip(uv[:, 1], 0, h - 1.000001)
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    fu, fv = (u - u0)[:, None], (v - v0)[:, None]
    return (
        img[v0, u0] * (1 - fu) * (1 - fv)
        + img[v0, u0 + 1] * fu * (1 - fv)
        + img[v0 + 1, u0] * (1 - fu) * fv
        + img[v0 + 1, u0 + 1] * fu * fv
    )


def test_brightness_constancy_along_flow(seq: Sequence) -> None:
    """Warp frame t-1 by the flow: it reproduces frame t much better than no warping.

    Textures are attached to the bodies (and band-limited), so this holds on visible,
    moving pixels.
    """
    grid = _grid(H, W)
    for t in range(1, N):
        flow = seq.flow_bwd[t - 1].reshape(-1, 2).astype(np.float64)
        sel = ~seq.flow_bwd_occluded[t - 1].reshape(-1) & (np.linalg.norm(flow, axis=1) > 1.0)
        if sel.sum() < 200:
            continue
        img_t = seq.rgb[t].reshape(-1, 3).astype(np.float64)[sel]
        prev = seq.rgb[t - 1].astype(np.float64)
        warped = np.abs(_bilinear(prev, grid[sel] + flow[sel]) - img_t).mean()
        unwarped = np.abs(prev.reshape(-1, 3)[sel] - img_t).mean()
        assert warped < 0.6 * unwarped, (t, warped, unwarped)


# --- tracks ------------------------------------------------------------------------------


def test_tracks_follow_their_body(seq: Sequence) -> None:
    tr = seq.tracks
    p = tr.body.size
    assert tr.uv.shape == (N, p, 2) and tr.visible.shape == (N, p)
    q = tr.query_frame
    uq = tr.uv[q, np.arange(p)].astype(np.float64)
    assert np.abs(uq - np.round(uq)).max() < 1e-4  # sampled at pixel centres
    uq = np.round(uq)
    assert tr.visible[q, np.arange(p)].all()
    iu, iv = uq[:, 0].astype(int), uq[:, 1].astype(int)
    assert np.array_equal(seq.instance[q, iv, iu], tr.body)
    assert (tr.body > 0).sum() > 0.1 * p
    # Independent: unproject at the query pixel, carry with the body, project everywhere.
    k = seq.K
    for j in range(p):
        zq = float(seq.depth[q[j], iv[j], iu[j]])
        xc = np.array([(iu[j] - k[0, 2]) / k[0, 0] * zq, (iv[j] - k[1, 2]) / k[1, 1] * zq, zq])
        xw = seq.T_world_cam[q[j], :3, :3] @ xc + seq.T_world_cam[q[j], :3, 3]
        b = int(tr.body[j])
        xb = np.linalg.inv(seq.T_world_body[q[j], b]) @ np.append(xw, 1.0)
        pts = (seq.T_world_body[:, b] @ xb)[:, :3]
        for t in range(N):
            uv, z = _project(pts[t : t + 1], k, seq.T_world_cam[t])
            if z[0] > 0:
                assert np.abs(uv[0] - tr.uv[t, j]).max() < 0.01
                assert abs(z[0] - tr.depth[t, j]) < 1e-4 * z[0]


def test_tracks_visibility_and_flow(seq: Sequence) -> None:
    tr = seq.tracks
    p = tr.body.size
    # Consistent with the flow: one step back from the query frame.
    for j in range(p):
        q = int(tr.query_frame[j])
        if q == 0 or not tr.visible[q - 1, j]:
            continue
        u, v = int(tr.uv[q, j, 0]), int(tr.uv[q, j, 1])
        expect = tr.uv[q, j] + seq.flow_bwd[q - 1, v, u]
        assert np.abs(expect - tr.uv[q - 1, j]).max() < 1e-3
        assert not seq.flow_bwd_occluded[q - 1, v, u]
    # Visible points agree with the depth map at the nearest pixel, hidden ones do not.
    t_idx, j_idx = np.nonzero(tr.visible)
    u = np.clip(np.round(tr.uv[t_idx, j_idx, 0]).astype(int), 0, W - 1)
    v = np.clip(np.round(tr.uv[t_idx, j_idx, 1]).astype(int), 0, H - 1)
    rel = np.abs(seq.depth[t_idx, v, u] - tr.depth[t_idx, j_idx]) / tr.depth[t_idx, j_idx]
    assert np.mean(rel < 0.05) > 0.95
    uv = tr.uv
    with np.errstate(invalid="ignore"):
        inside = (uv[..., 0] >= -0.5) & (uv[..., 0] < W - 0.5)
        inside &= (uv[..., 1] >= -0.5) & (uv[..., 1] < H - 0.5) & (tr.depth > 0)
    t_idx, j_idx = np.nonzero(inside & ~tr.visible)
    assert t_idx.size > 0
    u = np.clip(np.round(uv[t_idx, j_idx, 0]).astype(int), 0, W - 1)
    v = np.clip(np.round(uv[t_idx, j_idx, 1]).astype(int), 0, H - 1)
    assert np.mean(seq.depth[t_idx, v, u] < tr.depth[t_idx, j_idx]) > 0.9
    assert not (tr.visible & ~inside).any()


# --- determinism, coverage, camera -------------------------------------------------------


def _fields(s: Sequence) -> dict[str, np.ndarray]:
    out = {
        name: getattr(s, name)
        for name in (
            "rgb",
            "depth",
            "K",
            "T_world_cam",
            "flow_bwd",
            "flow_bwd_occluded",
            "dynamic",
            "instance",
            "T_world_body",
            "stamps_ns",
        )
    }
    for name in ("uv", "visible", "depth", "body", "points_body", "query_frame"):
        out["tracks." + name] = getattr(s.tracks, name)
    return out


def test_deterministic() -> None:
    a = _fields(make_sequence(11, 6, 40, 56, num_tracks=32))
    b = _fields(make_sequence(11, 6, 40, 56, num_tracks=32))
    c = _fields(make_sequence(12, 6, 40, 56, num_tracks=32))
    for name in a:
        assert a[name].dtype == b[name].dtype
        assert a[name].tobytes() == b[name].tobytes(), name  # bit for bit, NaNs included
    assert not np.array_equal(a["rgb"], c["rgb"])
    assert not np.array_equal(a["T_world_cam"], c["T_world_cam"])


def test_fields_shapes_and_types(seq: Sequence) -> None:
    b = len(seq.body_names)
    assert seq.rgb.shape == (N, H, W, 3) and seq.rgb.dtype == np.uint8
    assert seq.depth.shape == (N, H, W) and seq.depth.dtype == np.float32
    assert seq.K.shape == (3, 3) and seq.K.dtype == np.float64
    assert seq.T_world_cam.shape == (N, 4, 4) and seq.T_world_cam.dtype == np.float64
    assert seq.flow_bwd.shape == (N - 1, H, W, 2) and seq.flow_bwd.dtype == np.float32
    assert seq.flow_bwd_occluded.shape == (N - 1, H, W) and seq.flow_bwd_occluded.dtype == bool
    assert seq.dynamic.shape == (N, H, W) and seq.dynamic.dtype == bool
    assert seq.instance.shape == (N, H, W) and seq.instance.dtype == np.int16
    assert seq.T_world_body.shape == (N, b, 4, 4)
    assert seq.stamps_ns.dtype == np.int64
    assert np.array_equal(seq.dynamic, seq.instance > 0)
    assert seq.instance.min() >= 0 and seq.instance.max() < b
    assert np.array_equal(np.diff(seq.stamps_ns), np.full(N - 1, 33_333_333)) or np.all(
        np.abs(np.diff(seq.stamps_ns) - 1e9 / 30) <= 1
    )
    assert seq.fps == 30.0 and seq.seed == 3
    assert seq.body_names[0] == "static" and seq.body_names[-1] == "object"
    rot = seq.T_world_cam[:, :3, :3]
    assert np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(rot), 1.0)
    assert np.all(seq.T_world_cam[:, 3] == [0, 0, 0, 1])


def _check_camera(s: Sequence, hfov: tuple[float, float], max_rot_deg: float = 30.0) -> None:
    k = s.K
    assert k[0, 0] == k[1, 1] and k[0, 1] == 0.0
    assert hfov[0] - 1e-9 <= s.hfov_deg <= hfov[1] + 1e-9
    assert abs(k[0, 2] - (s.width - 1) / 2) <= 0.03 * s.width
    assert abs(k[1, 2] - (s.height - 1) / 2) <= 0.03 * s.width
    rel = np.swapaxes(s.T_world_cam[:-1, :3, :3], 1, 2) @ s.T_world_cam[1:, :3, :3]
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)
    speed = np.degrees(np.arccos(cos)) * s.fps
    assert speed.max() <= max_rot_deg + 1e-6
    assert np.isfinite(s.depth).all() and (s.depth > 0).all()


@pytest.mark.parametrize(
    "seed, opts",
    [
        (0, {}),
        (1, {}),
        (2, {}),
        (4, {"num_hands": 1, "hfov_deg": (100.0, 100.0)}),
        (5, {"num_hands": 2, "hfov_deg": (60.0, 60.0)}),
        (6, {"num_hands": 1, "motion_speed": 2.0, "fps": 15.0}),
    ],
)
def test_coverage_and_camera(seed: int, opts: dict) -> None:
    s = make_sequence(seed, 30, 60, 96, num_tracks=8, **opts)
    frac = s.dynamic.mean(axis=(1, 2))
    assert frac.min() >= 0.05 and frac.max() <= 0.40, frac
    _check_camera(s, opts.get("hfov_deg", (60.0, 100.0)))
    if "num_hands" in opts:
        assert len(s.body_names) == 2 * opts["num_hands"] + 2


def test_camera_moves_like_a_head(seq: Sequence) -> None:
    _check_camera(seq, (60.0, 100.0))
    pos = seq.T_world_cam[:, :3, 3]
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=1) * seq.fps
    assert 0.0 < speed.max() < 0.5  # slow translation (m/s)
    # Looking down at the table: optical axis below the horizon.
    assert (seq.T_world_cam[:, 2, 2] < -0.3).all()


def test_resolution_independent_world() -> None:
    """Same seed and aspect ratio: same camera, motion and field of view at any size."""
    a = make_sequence(21, 4, 30, 40, num_tracks=4)
    b = make_sequence(21, 4, 60, 80, num_tracks=4)
    assert np.array_equal(a.T_world_cam, b.T_world_cam)
    assert np.array_equal(a.T_world_body, b.T_world_body)
    assert abs(a.hfov_deg - b.hfov_deg) < 1e-9


def test_focal_length_is_not_tied_to_the_hands_distance() -> None:
    """The head stays at arm's length whatever the lens (world version 2): the focal length
    and the hands' distance are independent, so a hand's apparent size f / Z varies with the
    lens and fx is observable from the pixels. (Version 1 moved the head in as the field of
    view widened: correlation 0.97, f / Z within 5 %.)"""
    focal, dist = [], []
    for seed in range(40):
        s = make_sequence(seed, 1, 24, 32, num_tracks=1)
        focal.append(s.K[0, 0] / s.width)
        dist.append(float(np.median(s.depth[0][s.dynamic[0]])))
    focal, dist = np.array(focal), np.array(dist)
    assert abs(np.corrcoef(focal, dist)[0, 1]) < 0.4
    apparent = focal / dist
    assert apparent.std() / apparent.mean() > 0.15


def test_raycast_matches_depth_and_works_outside_the_image(seq: Sequence) -> None:
    t = 7
    z, body = raycast(seq, t, _grid(H, W))
    assert np.allclose(z, seq.depth[t].reshape(-1), rtol=1e-6, atol=0)
    assert np.array_equal(body, seq.instance[t].reshape(-1))
    out = np.array([[-30.0, -20.0], [W + 25.0, H + 10.0], [W / 2, -40.0], [-15.0, H / 2]])
    z_out, _ = raycast(seq, t, out)
    assert np.isfinite(z_out).all() and (z_out > 0).all()


def test_options_validated() -> None:
    with pytest.raises(ValueError):
        make_sequence(0, 0, 10, 10)
    with pytest.raises(ValueError):
        make_sequence(0, 2, 10, 10, num_hands=3)
    with pytest.raises(ValueError):
        make_sequence(0, 2, 10, 10, hfov_deg=(100.0, 60.0))
