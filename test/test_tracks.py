"""Long-term 3D point tracks (unihoi_ros.tracks) against the sim's exact tracks."""

from __future__ import annotations

import numpy as np
import pytest

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.flow import GroundTruthFlow
from unihoi_ros.pipeline import OracleBackend, Reconstructor
from unihoi_ros.pipeline.results import FrameResult
from unihoi_ros.sim import make_sequence
from unihoi_ros.tracks import (
    PointTracker,
    TrackerConfig,
    evaluate_tracks,
    ground_truth_tracks,
    hold_baseline,
    track_queries,
)
from unihoi_ros.tracks.evaluate import scale_fit, score_tracks
from unihoi_ros.tracks.lifting import lift, project, sample_depth


def run_stream(seq, backend):
    rec = Reconstructor(backend, GroundTruthFlow(seq))
    for stamp, rgb in zip(seq.stamps_ns, seq.rgb):
        rec.push(int(stamp), rgb)
    return rec.flush()


class UniformConfidence(Backend):
    """Backend wrapper: confidence 1 everywhere (no hint of what moves)."""

    def __init__(self, inner):
        self.inner, self.name, self.device, self.num_frames = inner, "uniform", "cpu", 4

    def encode(self, rgb):
        return self.inner.encode(rgb)

    def infer_window(self, features, rgbs, flows):
        p = self.inner.infer_window(features, rgbs, flows)
        return WindowPrediction(p.depth, p.K, np.ones_like(p.confidence))


def results_with_depth_error(seq, factor):
    """Results with the clip's exact K and poses and its depth times ``factor(t)`` (an
    ``(H, W)`` relative error map of frame t): the tracker alone against a network's depth
    errors. Confidence 1 on static and 0 on dynamic pixels, like the oracle's."""
    t0_inv = np.linalg.inv(seq.T_world_cam[0])
    return [FrameResult(
        stamp_ns=int(seq.stamps_ns[t]), rgb=seq.rgb[t],
        depth=(seq.depth[t] * factor(t)).astype(np.float32),
        K=np.asarray(seq.K, np.float64), T_world_cam=t0_inv @ seq.T_world_cam[t],
        confidence=(~seq.dynamic[t]).astype(np.float32),
        points=np.zeros((0, 3), np.float32), colors=np.zeros((0, 3), np.uint8))
        for t in range(seq.num_frames)]


def noisy_depth_results(seq, frame_rel, pixel_rel, seed=0):
    """Depth with independent noise per frame: a relative scale error ``N(0, frame_rel)``
    of the whole frame times a relative error ``N(0, pixel_rel)`` per pixel."""
    rng = np.random.default_rng(seed)
    shape = seq.depth.shape[1:]
    return results_with_depth_error(seq, lambda t: (1.0 + frame_rel * rng.standard_normal())
                                    * (1.0 + pixel_rel * rng.standard_normal(shape)))


def wandering_depth_results(seq, amp):
    """Depth whose error wanders slowly, like a network's from frame to frame: a relative
    error ``amp * sin(2 pi (t / N + u / W))``, a wave that crosses the image once per clip
    (the same surface point is too near in some frames and too far in others)."""
    u = np.arange(seq.width)[None, :] / seq.width
    n = seq.num_frames
    return results_with_depth_error(
        seq, lambda t: np.broadcast_to(1.0 + amp * np.sin(2 * np.pi * (t / n + u)),
                                       seq.depth.shape[1:]))


def static_called_dynamic(seq, results, config):
    """Streaming: the fraction of visible tracks on static pixels that the tracker calls
    dynamic."""
    tracker = PointTracker(config)
    wrong = total = 0
    for i, r in enumerate(results):
        ts = tracker.update(r)
        v = ts.visible
        uvr = np.clip(np.rint(ts.uv[v]).astype(int), 0, [seq.width - 1, seq.height - 1])
        static = ~seq.dynamic[i, uvr[:, 1], uvr[:, 0]]
        wrong += int(np.sum(static & ts.dynamic[v]))
        total += int(np.sum(static))
    return wrong / total


@pytest.fixture(scope="module")
def clip():
    seq = make_sequence(seed=21, num_frames=24, height=120, width=160, num_tracks=192)
    return seq, run_stream(seq, OracleBackend(seq))


# ---------------------------------------------------------------------------- maths
def test_lift_project_round_trip_with_skew_and_pose():
    rng = np.random.default_rng(0)
    K = np.array([[120.0, 0.7, 80.0], [0.0, 118.0, 61.0], [0.0, 0.0, 1.0]])
    a = 0.3
    T = np.eye(4)
    T[:3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
    T[:3, 3] = [0.2, -0.1, 0.5]
    uv = rng.uniform(0, 150, size=(50, 2))
    z = rng.uniform(0.3, 3.0, size=50)
    xyz = lift(uv, z, K, T)
    uv2, z2 = project(xyz, K, T)
    np.testing.assert_allclose(uv2, uv, atol=1e-9)
    np.testing.assert_allclose(z2, z, atol=1e-12)
    # Principal point: straight down the optical axis of the camera.
    c = lift(np.array([[80.0, 61.0]]), np.array([2.0]), K, np.eye(4))
    np.testing.assert_allclose(c, [[0.0, 0.0, 2.0]], atol=1e-12)


def test_depth_is_not_blended_across_an_occlusion_edge():
    depth = np.full((10, 10), 2.0, np.float32)
    depth[:, :5] = 0.5  # a hand in front of a wall, edge between columns 4 and 5
    z = sample_depth(depth, np.array([[4.4, 3.0], [4.6, 3.0], [2.5, 2.5], [-1.0, 0.0]]))
    assert z[0] == pytest.approx(0.5) and z[1] == pytest.approx(2.0)  # nearest, not 1.2
    assert z[2] == pytest.approx(0.5)
    assert np.isnan(z[3])
    smooth = np.add.outer(np.arange(10.0), np.arange(10.0)).astype(np.float32) * 0.01 + 1
    assert sample_depth(smooth, np.array([[3.5, 2.25]]))[0] == pytest.approx(1.0575)


def test_scale_fit_recovers_a_global_scale():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(5, 7, 3)) + np.array([0.0, 0.0, 3.0])
    mask = rng.random((5, 7)) < 0.8
    assert scale_fit(gt / 2.5, gt, mask) == pytest.approx(2.5)
    pred = gt / 2.5
    pred[0, 0] = np.nan  # a NaN prediction is a miss, not an error
    gtd = {"xyz": gt, "visible": np.ones((5, 7), bool), "dynamic": np.arange(7) < 3}
    s = score_tracks(pred, gtd)
    assert s["dynamic"]["2cm"] == pytest.approx(14 / 15)
    assert s["static"]["2cm"] == 1.0 and s["static"]["count"] == 20


# ---------------------------------------------------------------------------- offline
def test_ground_truth_queries_hit_the_sim_points(clip):
    seq, _ = clip
    gt = ground_truth_tracks(seq)
    qf = gt["queries"][:, 0].astype(int)
    p = np.arange(qf.size)
    # The query pixel lifted with the exact depth is the exact point (first-camera frame).
    z = sample_depth(seq.depth[0], gt["queries"][:, 1:])  # shape check only
    assert z.shape == (qf.size,)
    for t in np.unique(qf):
        sel = qf == t
        zt = sample_depth(seq.depth[t], gt["queries"][sel, 1:])
        x = lift(gt["queries"][sel, 1:], zt, seq.K,
                 np.linalg.inv(seq.T_world_cam[0]) @ seq.T_world_cam[t])
        np.testing.assert_allclose(x, gt["xyz"][t, p[sel]], atol=1e-4)
    assert gt["visible"][qf, p].all()
    assert gt["dynamic"].any() and (~gt["dynamic"]).any()


def test_track_queries_contract(clip):
    seq, results = clip
    gt = ground_truth_tracks(seq)
    q = gt["queries"][:40]
    xyz, vis = track_queries(results, q)
    n = len(results)
    assert xyz.shape == (n, 40, 3) and xyz.dtype == np.float64
    assert vis.shape == (n, 40) and vis.dtype == bool
    qf = q[:, 0].astype(int)
    # In its query frame a point is seen where the query pixel lifts (exact oracle depth).
    np.testing.assert_allclose(xyz[qf, np.arange(40)], gt["xyz"][qf, np.arange(40)], atol=1e-3)
    assert vis[qf, np.arange(40)].all()
    with pytest.raises(ValueError):
        track_queries(results, np.array([[n, 3.0, 3.0]]))
    with pytest.raises(ValueError):
        track_queries(results, np.array([[0.5, 3.0, 3.0]]))
    with pytest.raises(ValueError):
        track_queries(results, np.zeros((3, 2)))
    e_xyz, e_vis = track_queries(results, np.zeros((0, 3)))
    assert e_xyz.shape == (n, 0, 3) and e_vis.shape == (n, 0)


def test_oracle_tracks_beat_holding_points_still(clip):
    """The acceptance lines of issue 17 on a small clip: dynamic within 2 cm >= 0.8 and
    >= 1.5x the no-tracking baseline; static within 5 cm >= 0.9x the baseline."""
    seq, results = clip
    ev = evaluate_tracks(results, seq)
    tr, hold = ev["tracker"], ev["hold"]
    assert tr["dynamic"]["count"] > 500 and tr["static"]["count"] > 500
    assert tr["dynamic"]["2cm"] >= 0.8
    assert tr["dynamic"]["2cm"] >= 1.5 * hold["dynamic"]["2cm"]
    assert tr["static"]["5cm"] >= 0.9 * hold["static"]["5cm"]
    assert abs(tr["scale"] - 1.0) < 0.01  # oracle depth is metric
    assert tr["occlusion_accuracy"] > 0.85
    # With exact depth and poses, holding a static point is exact.
    assert hold["static"]["2cm"] > 0.99


def test_lucas_kanade_setting_also_tracks(clip):
    seq, results = clip
    ev = evaluate_tracks(results, seq, TrackerConfig(method="lk+dense", lk_window=9))
    # Misses within 5 cm: measured 0.063 vs 0.238 for holding the points still.
    tracker_miss = 1.0 - ev["tracker"]["dynamic"]["5cm"]
    assert tracker_miss <= 0.5 * (1.0 - ev["hold"]["dynamic"]["5cm"])


def test_motion_alone_finds_the_dynamic_points(clip):
    """With no confidence hint every point starts static: 3D motion consistency in the world
    frame must still find the moving ones (else they would stay where first seen)."""
    seq, _ = clip
    results = run_stream(seq, UniformConfidence(OracleBackend(seq)))
    ev = evaluate_tracks(results, seq)
    # Measured 0.553 vs 0.490 (with the confidence hint: 0.906); without the motion rule
    # the tracker would equal the baseline. (Synthetic world version 1's clip: 0.59 vs
    # 0.50; across world-2 seeds 21-26 the ratio is 0.99-1.31: the hands of some clips
    # move too little within 2 cm for motion alone to tell.)
    assert ev["tracker"]["dynamic"]["2cm"] >= 1.08 * ev["hold"]["dynamic"]["2cm"]
    assert ev["tracker"]["static"]["5cm"] >= 0.9 * ev["hold"]["static"]["5cm"]


def test_static_points_average_out_per_frame_depth_noise(clip):
    """A static point is measured again in every frame that sees it where its anchor
    predicts; the anchor is the mean of those lifts, not the first lift alone, so per-frame
    depth noise averages out (issue 17: static not worse than holding the first lift).
    Exact poses and K, depth with a 3 % scale error per frame and 1 % per pixel (about
    1.5 cm per lift at the clip's 0.5 m)."""
    seq, _ = clip
    results = noisy_depth_results(seq, 0.03, 0.01)
    fused = evaluate_tracks(results, seq)
    first = evaluate_tracks(results, seq, TrackerConfig(fuse_static=False))
    hold = fused["hold"]["static"]
    # Measured 0.973 (fused) vs 0.731 (first lift) vs 0.737 (hold) within 2 cm; median
    # error 1.1 mm vs 11.2 mm.
    assert fused["tracker"]["static"]["2cm"] >= 0.95
    assert fused["tracker"]["static"]["2cm"] >= 1.08 * hold["2cm"]
    assert fused["tracker"]["static"]["median_m"] < 0.3 * hold["median_m"]
    # The first lift held for life is the baseline, up to a few points flagged dynamic.
    assert abs(first["tracker"]["static"]["2cm"] - hold["2cm"]) < 0.02
    # Dynamic points still follow their lifts.
    assert fused["tracker"]["dynamic"]["2cm"] >= 1.5 * fused["hold"]["dynamic"]["2cm"]


def test_streaming_static_anchor_converges_under_depth_noise(clip):
    """Live: a static track's position after 10 or more frames is nearer the truth than its
    first lift (the anchor fuses the lifts that agree with it)."""
    seq, _ = clip
    results = noisy_depth_results(seq, 0.03, 0.01, seed=1)
    tracker = PointTracker(TrackerConfig(max_tracks=96))
    t0_inv = np.linalg.inv(seq.T_world_cam[0])
    truth: dict[int, np.ndarray] = {}
    first: dict[int, np.ndarray] = {}
    for i, r in enumerate(results):
        ts = tracker.update(r)
        new = (ts.age == 0) & ~ts.following
        # The true surface point under the seed pixel (exact depth, exact pose).
        z = sample_depth(seq.depth[i], ts.uv[new])
        x = lift(ts.uv[new], z, seq.K, t0_inv @ seq.T_world_cam[i])
        for tid, xt, xf in zip(ts.ids[new], x, ts.xyz[new]):
            truth[int(tid)], first[int(tid)] = xt, xf
    old = ~ts.following & (ts.age >= 10) & np.isin(ts.ids, list(truth))
    assert old.sum() >= 20
    err_now = [np.linalg.norm(x - truth[int(t)]) for t, x in zip(ts.ids[old], ts.xyz[old])]
    err_first = [np.linalg.norm(first[int(t)] - truth[int(t)]) for t in ts.ids[old]]
    # Measured median 1.7 mm vs 7.8 mm (73 tracks).
    assert np.median(err_now) < 0.5 * np.median(err_first)


def test_motion_must_stand_out_of_the_depth_wander(clip):
    """A network's lifts of a static point wander by several per cent of its depth; a
    fixed tolerance (2 cm + 5 %) then calls static points dynamic, and they follow the
    wander. The tolerance rises with the stream's measured depth noise (``noise_k``):
    static points stay static and nearer the truth, while moving points are still found.
    Exact poses and K, depth with a +-10 % error wave that crosses the image."""
    seq, _ = clip
    results = wandering_depth_results(seq, 0.10)
    cfg = TrackerConfig(max_tracks=96)
    fixed = TrackerConfig(max_tracks=96, noise_k=0.0)
    # Measured 0.002 vs 0.091 (before the depth-segment and scale terms of the motion
    # test: 0.023 vs 0.400).
    assert static_called_dynamic(seq, results, cfg) < 0.02
    assert static_called_dynamic(seq, results, fixed) > 0.05
    ev = evaluate_tracks(results, seq)
    ev_fixed = evaluate_tracks(results, seq, TrackerConfig(noise_k=0.0))
    # Measured 0.965 vs 0.821 (fixed tolerance) vs 0.653 (hold) within 5 cm.
    assert ev["tracker"]["static"]["5cm"] >= 0.9
    assert ev["tracker"]["static"]["5cm"] >= 1.1 * ev["hold"]["static"]["5cm"]
    assert ev["tracker"]["static"]["5cm"] > ev_fixed["tracker"]["static"]["5cm"] + 0.02
    assert ev["tracker"]["dynamic"]["2cm"] >= 1.5 * ev["hold"]["dynamic"]["2cm"]


def test_hold_baseline_holds(clip):
    seq, results = clip
    gt = ground_truth_tracks(seq)
    held = hold_baseline(results, gt["queries"])
    assert np.all(held == held[:1])
    qf = gt["queries"][:, 0].astype(int)
    p = np.arange(qf.size)
    np.testing.assert_allclose(held[0], gt["xyz"][qf, p], atol=1e-3)


def test_queries_follow_a_resized_stream():
    seq = make_sequence(seed=22, num_frames=8, height=48, width=64, num_tracks=32)
    gt_small = ground_truth_tracks(seq, (96, 128))
    gt = ground_truth_tracks(seq)
    np.testing.assert_allclose((gt["queries"][:, 1:] + 0.5) * 2 - 0.5, gt_small["queries"][:, 1:])


# ---------------------------------------------------------------------------- streaming
def test_point_tracker_streams_bounded_stable_tracks(clip):
    seq, results = clip
    cfg = TrackerConfig(max_tracks=64, min_distance_px=8)
    tracker = PointTracker(cfg)
    t0_inv = np.linalg.inv(seq.T_world_cam[0])
    seen: dict[int, np.ndarray] = {}
    static_flagged, static_total, depth_err = 0, 0, []
    for i, r in enumerate(results):
        ts = tracker.update(r)
        assert len(ts) <= 64 and len(np.unique(ts.ids)) == len(ts)
        assert ts.ids.dtype == np.uint32 and ts.xyz.shape == (len(ts), 3)
        assert ts.rgb.dtype == np.uint8 and ts.uv.shape == (len(ts), 2)
        assert np.all(np.isfinite(ts.xyz))
        assert not np.any(ts.dynamic & ~ts.following)  # a dynamic track follows its lifts
        # An anchored track stays put: with exact depth, fusing its lifts moves it < 2 mm
        # (bilinear depth between pixel centres on slanted surfaces).
        for j, tid in enumerate(ts.ids):
            if not ts.following[j]:
                if int(tid) in seen:
                    np.testing.assert_allclose(ts.xyz[j], seen[int(tid)], atol=2e-3)
                seen[int(tid)] = ts.xyz[j]
        # Visible tracks sit on the surface seen at their pixel; static ones are not
        # called dynamic.
        v = ts.visible
        uvr = np.clip(np.rint(ts.uv[v]).astype(int), 0, [seq.width - 1, seq.height - 1])
        on_static = ~seq.dynamic[i, uvr[:, 1], uvr[:, 0]]
        static_flagged += int(np.sum(on_static & ts.dynamic[v]))
        static_total += int(on_static.sum())
        T = t0_inv @ seq.T_world_cam[i]
        _, z = project(ts.xyz[v], seq.K, T)
        depth_err.append(np.abs(z - seq.depth[i, uvr[:, 1], uvr[:, 0]]) / z)
        if i == 0:  # low-confidence cells first: they follow their lifts
            assert len(ts) == 64 and ts.following.sum() >= 16 and not ts.dynamic.any()
    # Measured 0.028 (the tracker before motion evidence was required: 0.034).
    assert static_flagged / static_total < 0.05
    assert np.median(np.concatenate(depth_err)) < 0.02
    # ids: some tracks live through the clip, new ones get fresh ids.
    assert np.max(ts.age) == len(results) - 1
    assert int(ts.ids.max()) >= 64


def test_point_tracker_new_stream_on_size_change(clip):
    _, results = clip
    tracker = PointTracker(TrackerConfig(max_tracks=32))
    a = tracker.update(results[0])
    small = make_sequence(seed=23, num_frames=2, height=48, width=64)
    b = tracker.update(run_stream(small, OracleBackend(small))[0])
    assert len(b) > 0 and np.all(b.age == 0)
    assert int(b.ids.min()) > int(a.ids.max())  # ids are never reused


def test_the_noise_raised_motion_tolerance_is_capped():
    """The tolerances grow with the measured noise (the depth's more where the confidence
    is low), but not without bound: a stream whose "static" tracks mostly move must still
    be able to call them moving."""
    from unihoi_ros.tracks.state import TrackArrays

    cfg = TrackerConfig()
    arrays = TrackArrays()
    z, conf = np.array([0.5, 2.0]), np.array([1.0, 1.0])
    floor = cfg.static_tol_m + cfg.static_tol_rel * z
    lat, dep = arrays.tolerances(z, conf, cfg)  # nothing measured yet: the floor
    np.testing.assert_allclose(lat, floor)
    np.testing.assert_allclose(dep, floor)
    arrays.noise_rel, arrays.noise_lat = 0.01, 0.02
    lat, dep = arrays.tolerances(z, conf, cfg)
    np.testing.assert_allclose(dep, cfg.static_tol_m + cfg.noise_k * 0.01 * z)
    np.testing.assert_allclose(lat, cfg.static_tol_m + cfg.lateral_k * 0.02 * z)
    _, dep_unsure = arrays.tolerances(z, np.array([0.5, 0.0]), cfg)
    np.testing.assert_allclose(dep_unsure, cfg.static_tol_m + cfg.noise_k * 0.01 * z * (
        1.0 + cfg.confidence_gain * np.array([0.5, 1.0])))
    arrays.noise_rel, arrays.noise_lat = 0.5, 0.5  # spread of moving points, not noise
    lat, dep = arrays.tolerances(z, conf, cfg)
    np.testing.assert_allclose(dep, cfg.static_tol_m + cfg.max_noise_rel * z)
    np.testing.assert_allclose(lat, cfg.static_tol_m + cfg.max_noise_rel * z)
    lat, dep = arrays.tolerances(z, conf, TrackerConfig(noise_k=0, lateral_k=0))
    np.testing.assert_allclose(dep, floor)
    np.testing.assert_allclose(lat, floor)


def test_tracking_stage_restarts_after_a_gap_and_with_the_stream():
    """The stage the node and ``unihoi process`` share: tracks carry on while wanted; a
    frame after a gap (not wanted: skipped) or a reset starts new tracks (all age 0), so no
    frame is linked to one from before the gap; ids keep counting."""
    from unihoi_ros.tracks.stage import TrackingStage

    seq = make_sequence(seed=3, num_frames=6, height=48, width=64)
    results = run_stream(seq, OracleBackend(seq))
    stage = TrackingStage(TrackerConfig(max_tracks=16))
    first = stage.update(results[0])
    second = stage.update(results[1])
    assert len(first.ids) and (second.age[np.isin(second.ids, first.ids)] == 1).all()
    assert stage.update(results[2], wanted=False) is None
    after_gap = stage.update(results[3])
    assert len(after_gap.ids) and (after_gap.age == 0).all()
    assert after_gap.ids.min() > second.ids.max()
    stage.reset()
    assert (stage.update(results[4]).age == 0).all()
