"""The pose graph of ``unihoi process --refine-depth`` (:mod:`unihoi_ros.geometry.pose_graph`):
the fit's maths against exact and noisy relative poses, pairs against a synthetic clip's
exact geometry, and given poses in the reconstructor."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from unihoi_ros.geometry.pose_graph import (
    PoseEdge,
    PoseGraphSettings,
    _adjoint_of_inverse,
    chain_edges,
    edge_residuals,
    fit_pose_graph,
    graph_edges,
    pair_edge,
    placed_frames,
    pose_graph_poses,
    solve_graph,
)


def _rigid(rng, rot_sigma, trans_sigma):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rng.normal(0, rot_sigma, 3)).as_matrix()
    T[:3, 3] = rng.normal(0, trans_sigma, 3)
    return T


def _walk(n, seed=0):
    """``(n, 4, 4)`` a random camera path: 2 cm and ~1 degree steps, frame 0 the world."""
    rng = np.random.default_rng(seed)
    poses = [np.eye(4)]
    for _ in range(n - 1):
        poses.append(poses[-1] @ _rigid(rng, 0.02, 0.02))
    return np.stack(poses)


def _edges(truth, offsets, noise=None, seed=1):
    """Edges ``offsets`` apart, exact or each moved by noise of ``noise * sqrt(gap)``."""
    rng = np.random.default_rng(seed)
    edges = []
    for j in range(1, len(truth)):
        for g in offsets:
            if j - g >= 0:
                T = np.linalg.inv(truth[j - g]) @ truth[j]
                if noise is not None:
                    s = noise * np.sqrt(g)
                    T = T @ _rigid(rng, s, s)
                edges.append(PoseEdge(j - g, j, T, 100))
    return edges


def _position_error(poses, truth):
    return float(np.linalg.norm(poses[:, :3, 3] - truth[:, :3, 3], axis=1).mean())


def test_fit_recovers_exact_poses_from_a_wrong_start():
    """Exact edges and a start 1 cm and 1 degree off per frame: the fit lands on the truth
    (measured 4e-15)."""
    truth = _walk(40)
    rng = np.random.default_rng(3)
    start = np.stack([truth[0]] + [T @ _rigid(rng, 0.02, 0.01) for T in truth[1:]])
    fitted = fit_pose_graph(start, _edges(truth, (1, 4, 16)), 0.005, 1.5)
    np.testing.assert_allclose(fitted, truth, atol=1e-9)


def test_long_pairs_hold_the_chains_drift():
    """Noisy pairs (error growing as the root of the gap, as measured on real frames): the
    consecutive chain drifts, the graph with pairs 4 and 16 apart stays closer to the truth
    (measured 0.66 cm against the chain's 2.2 cm mean position error over 80 frames)."""
    truth = _walk(80)
    edges = _edges(truth, (1, 4, 16), noise=0.002)
    chain = chain_edges(len(truth), edges)
    fitted = fit_pose_graph(chain, edges, 0.002 * np.sqrt([e.j - e.i for e in edges]), 1.0)
    errors = _position_error(fitted, truth), _position_error(chain, truth)
    assert errors[0] < 0.4 * errors[1], errors


def test_a_wrong_pair_is_outvoted():
    """One pair placed 30 cm off (a PnP on a moving hand): Huber moves the poses 1.2 mm
    from the fit without it, plain least squares 48 mm."""
    truth = _walk(40)
    edges = _edges(truth, (1, 4, 16), noise=0.001)
    sigma = 0.001 * np.sqrt([e.j - e.i for e in edges])
    clean = fit_pose_graph(chain_edges(40, edges), edges, sigma, 1.0)
    k = next(n for n, e in enumerate(edges) if (e.i, e.j) == (20, 24))
    bad = edges[k].T.copy()
    bad[:3, 3] += [0.3, 0.0, 0.0]
    edges[k] = PoseEdge(20, 24, bad, 100)
    robust = fit_pose_graph(chain_edges(40, edges), edges, sigma, 1.0)
    plain = fit_pose_graph(chain_edges(40, edges), edges, sigma, 1.0, robust_scale=np.inf)
    moved = {name: np.abs(fit[:, :3, 3] - clean[:, :3, 3]).max()
             for name, fit in (("robust", robust), ("plain", plain))}
    assert moved["robust"] < 2e-3 and moved["robust"] < 0.2 * moved["plain"], moved


def test_a_break_no_pair_bridges_hangs_on_the_frame_before():
    """Every pair across frames 19 -> 20 failed: frame 20 is not placed and sits at frame
    19's pose ("no motion", the stream's rule), the frames after it follow it exactly; a
    frame whose pairs back failed but whose pairs forward hold is placed (pairs tie it)."""
    truth = _walk(40)
    edges = [e for e in _edges(truth, (1, 4, 16)) if not (e.i < 20 <= e.j)]
    poses, placed = solve_graph(40, edges, 1.5)
    assert np.flatnonzero(~placed).tolist() == [20]
    np.testing.assert_allclose(poses[:20], truth[:20], atol=1e-9)
    hung = poses[19] @ np.linalg.inv(truth[20]) @ truth[20:]
    np.testing.assert_allclose(poses[20:], hung, atol=1e-9)
    # Frame 10's pairs to earlier frames failed; its pairs to later ones hold.
    edges = [e for e in _edges(truth, (1, 4, 16)) if e.j != 10]
    assert placed_frames(40, edges).all()
    poses, _ = solve_graph(40, edges, 1.5)
    # The loose "no motion" pair 9 -> 10 pulls by (1/1000)^2 of the 2 cm step: 4e-8 m.
    np.testing.assert_allclose(poses, truth, atol=1e-6)


def test_edge_jacobian_is_the_adjoint():
    """The fit's linearisation ``r(d) ~ r0 + d_j - Ad(A^-1) d_i`` against finite
    differences of :func:`edge_residuals` at a pose pair that disagrees with its edge."""
    rng = np.random.default_rng(5)
    poses = np.stack([_rigid(rng, 0.5, 0.5), _rigid(rng, 0.5, 0.5)])
    T_meas = (np.linalg.inv(poses[0]) @ poses[1] @ _rigid(rng, 1e-4, 1e-4))[None]
    i, j = np.array([0]), np.array([1])

    def r(moved):
        return edge_residuals(moved, i, j, T_meas)[0]

    def move(k, d):
        step = np.eye(4)
        step[:3, :3] = Rotation.from_rotvec(d[:3]).as_matrix()
        step[:3, 3] = d[3:]
        out = poses.copy()
        out[k] = poses[k] @ step
        return out

    eps = 1e-6
    A = np.linalg.inv(poses[0]) @ poses[1]
    expected = {0: -_adjoint_of_inverse(A[None])[0], 1: np.eye(6)}
    for k in (0, 1):
        numeric = np.stack([(r(move(k, eps * e)) - r(move(k, -eps * e))) / (2 * eps)
                            for e in np.eye(6)], 1)
        np.testing.assert_allclose(numeric, expected[k], atol=1e-3)


@pytest.fixture(scope="module")
def clip():
    from unihoi_ros.sim import make_sequence

    return make_sequence(4, 20, 120, 160, motion_speed=3.0, dynamic_fraction=(0.02, 0.05))


def _exact_flow(clip):
    """``flows(i, j)``: the clip's exact flow from frame i into frame j (any pair)."""
    from unihoi_ros.sim.flow import backward_flow

    def flows(i, j):
        flow, _, _ = backward_flow(clip.depth[i].astype(np.float64), clip.instance[i], clip.K,
                                   clip.T_world_cam[i], clip.T_world_cam[j],
                                   clip.T_world_body[i], clip.T_world_body[j])
        return flow.astype(np.float32)

    return flows


def test_pair_edge_reads_the_true_motion(clip):
    """True depth and exact flow 6 frames apart, hands masked: PnP gives the true relative
    pose (a 2.6 cm motion, read to 4e-7 m and 4e-5 degrees)."""
    flows = _exact_flow(clip)
    static = (~clip.dynamic).astype(np.float32)
    edge = pair_edge(clip.depth[2], clip.K, flows(8, 2), flows(2, 8), static[8], 2, 8)
    truth = np.linalg.inv(clip.T_world_cam[2]) @ clip.T_world_cam[8]
    assert (edge.i, edge.j) == (2, 8) and edge.inliers > 500
    np.testing.assert_allclose(edge.T[:3, 3], truth[:3, 3], atol=1e-5)
    angle = Rotation.from_matrix(edge.T[:3, :3].T @ truth[:3, :3]).magnitude()
    assert np.degrees(angle) < 1e-3


def test_pose_graph_poses_on_exact_geometry(clip):
    """The whole recipe (pairs 1, 4 and 16 apart, the fit) on true depth and exact flow:
    every frame placed, within 0.01 mm of the true 6.6 cm path relative to frame 0
    (measured 1.3e-6 m)."""
    truth = np.linalg.inv(clip.T_world_cam[0]) @ clip.T_world_cam
    poses, placed = pose_graph_poses(clip.rgb, clip.depth, clip.K,
                                     (~clip.dynamic).astype(np.float32),
                                     flows=_exact_flow(clip))
    assert placed.all()
    np.testing.assert_allclose(poses[:, :3, 3], truth[:, :3, 3], atol=1e-5)


def test_pairs_whose_flow_failed_are_left_out(clip):
    """Long pairs whose flow holds on only the top fifth of the frame (noise elsewhere, as
    DIS's across a large motion or a hand): PnP still solves them, on too few inliers, so
    they are left out (``min_inlier_fraction``); consecutive pairs stay, and the graph's
    poses are then their chain. Without the rule the long pairs are used."""
    import dataclasses

    exact = _exact_flow(clip)
    rng = np.random.default_rng(0)
    h = clip.depth.shape[1]

    def flows(i, j):
        flow = exact(i, j)
        if abs(i - j) > 1:
            flow[h // 5:] = rng.normal(0, 20, flow[h // 5:].shape)
        return flow

    static = (~clip.dynamic).astype(np.float32)
    consecutive = [(i, i + 1) for i in range(len(clip.rgb) - 1)]
    kept = graph_edges(clip.depth, clip.K, static, flows,
                       dataclasses.replace(PoseGraphSettings(), min_inlier_fraction=0.0))
    assert len(kept) > len(consecutive)
    edges = graph_edges(clip.depth, clip.K, static, flows)
    assert sorted((e.i, e.j) for e in edges) == consecutive
    poses, _ = pose_graph_poses(clip.rgb, clip.depth, clip.K, static, flows=flows)
    np.testing.assert_allclose(poses, chain_edges(len(clip.rgb), edges), atol=1e-12)


def test_pose_graph_needs_consecutive_pairs(clip):
    with pytest.raises(ValueError, match="must include 1"):
        pose_graph_poses(clip.rgb, clip.depth, clip.K, np.ones_like(clip.depth),
                         PoseGraphSettings(offsets=(4, 16)))


def test_reconstructor_places_frames_at_given_poses(clip):
    """Given poses by stamp: every result is at its given pose (bit for bit), a frame whose
    pose is None keeps the previous frame's and is flagged ``pose_degenerate``."""
    from unihoi_ros.flow.ground_truth import GroundTruthFlow
    from unihoi_ros.pipeline.config import ReconstructorConfig
    from unihoi_ros.pipeline.oracle import OracleBackend
    from unihoi_ros.pipeline.reconstructor import Reconstructor
    from unihoi_ros.pipeline.results import ResultFlag

    given = {int(s): T for s, T in zip(clip.stamps_ns, _walk(len(clip.rgb), seed=9))}
    missing = int(clip.stamps_ns[7])
    given[missing] = None
    rec = Reconstructor(OracleBackend(clip), GroundTruthFlow(clip),
                        ReconstructorConfig(build_points=False), poses=given)
    results = []
    for s, rgb in zip(clip.stamps_ns, clip.rgb):
        rec.push(int(s), rgb)
        results += rec.drain()
    results += rec.flush()
    assert [r.stamp_ns for r in results] == [int(s) for s in clip.stamps_ns]
    for prev, r in zip([None, *results], results):
        if r.stamp_ns == missing:
            np.testing.assert_array_equal(r.T_world_cam, prev.T_world_cam)
            assert not r.pose_ok and ResultFlag.POSE_DEGENERATE in r.flags
        else:
            np.testing.assert_array_equal(r.T_world_cam, given[r.stamp_ns])
            assert r.pose_ok
