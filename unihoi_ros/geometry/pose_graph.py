"""Camera poses of a whole recording from pairs near and far: a pose graph.

Why: the stream chains each frame's pose from its pair with the frame before
(:mod:`unihoi_ros.geometry.pnp`), so every pair's error stays in all later poses. Offline,
with a depth that has one scale over the recording (``unihoi process --refine-depth``), a
frame can also be placed against frames several steps back (``offsets``, e.g. 4 and 16),
whose error does not grow with the number of steps between them. All relative poses are
then fitted at once (:func:`fit_pose_graph`, a robust least-squares fit): the long pairs
hold the chain's drift, the short ones its detail. On the shared 7-Scenes frames this
lowers the offline ATE from 2.13 to 1.97 % of the path (bench/RESULTS.md, "A pose graph
for --refine-depth's second pass").

The network's own per-frame depth is not suited: its scale differs from frame to frame,
so long pairs pull against the chain (measured worse, same section).

Conventions: poses ``(N, 4, 4)`` float64, ``T_world_cam`` (REP-103 optical camera frames,
metres); a relative pose ``T_ab`` is camera ``b`` in camera ``a`` (``p_a = T_ab @ p_b``,
:func:`~unihoi_ros.geometry.pnp.relative_pose_pnp`'s ``T``); flows ``(H, W, 2)`` pixels
from one frame into another (:meth:`unihoi_ros.flow.DISFlow.backward` order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PoseEdge", "PoseGraphSettings", "chain_edges", "edge_residuals", "fit_pose_graph",
           "graph_edges", "pair_edge", "placed_frames", "pose_graph_poses", "poses_by_stamp",
           "solve_graph"]


@dataclass(frozen=True)
class PoseGraphSettings:
    """How :func:`pose_graph_poses` builds and fits the graph.

    Attributes:
        offsets: frame distances of the pairs; 1 (consecutive frames) must be among them
            (it gives the initial chain).
        num_points: pixels sampled per pair (a regular grid).
        min_confidence: pixels of the later frame below this confidence are not used.
        inlier_factor: each pair's RANSAC threshold is this times the reprojection noise
            of a first solve at ``first_inlier_px``, within ``[inlier_floor_px,
            inlier_cap_px]``: the stream's rule (``ReconstructorConfig.pnp_noise_factor``,
            ``pnp_inlier_px``, ``pnp_max_inlier_px``) applied per pair.
        first_inlier_px: the first solve's threshold, pixels.
        inlier_floor_px, inlier_cap_px: bounds of the threshold, pixels.
        step_sigma_m: the expected error of a consecutive pair's translation, metres; a
            pair ``g`` frames apart is given ``sqrt(g)`` times it (measured on real
            frames: the error of a direct pair grows about as the root of its gap).
            Rotations are weighed as the translation they move the scene's median depth by.
        robust_scale: a pair whose residual (the norm of its 6 components, each over its
            sigma) exceeds this counts linearly (Huber; 1-5 measured alike on real frames).
        gap_sigma_factor: a consecutive pair that failed is replaced by "no motion" (the
            stream's rule) with this many times ``step_sigma_m``: it keeps the recording in
            one piece where no pair bridges a break, and gives way to any pair that does.
        min_inlier_fraction: a pair more than one frame apart is left out where PnP kept
            fewer than this fraction of ``num_points`` (its flow failed on most of the
            frame: large motion, occlusion, moving hands); consecutive pairs always count.
    """

    offsets: tuple[int, ...] = (1, 4, 16)
    num_points: int = 2000
    min_confidence: float = 0.5
    inlier_factor: float = 2.5
    first_inlier_px: float = 2.0
    inlier_floor_px: float = 0.5
    inlier_cap_px: float = 4.0
    step_sigma_m: float = 0.005
    robust_scale: float = 2.0
    min_inlier_fraction: float = 0.4
    gap_sigma_factor: float = 1000.0


@dataclass(frozen=True)
class PoseEdge:
    """One solved pair: camera ``j`` in camera ``i`` (``T (4, 4)``, ``p_i = T @ p_j``),
    from ``inliers`` correspondences."""

    i: int
    j: int
    T: np.ndarray
    inliers: int


def pair_edge(depth_i: np.ndarray, K: np.ndarray, flow_ji: np.ndarray, flow_ij: np.ndarray,
              confidence_j: np.ndarray, i: int, j: int,
              settings: PoseGraphSettings = PoseGraphSettings()) -> PoseEdge | None:
    """Camera ``j`` in camera ``i`` by PnP: frame ``i``'s depth at the pixels frame ``j``'s
    grid pixels flow to, against those grid pixels.

    Args:
        depth_i: ``(H, W)`` frame ``i``'s depth, metres.
        K: ``(3, 3)`` intrinsics of both frames, pixels.
        flow_ji, flow_ij: ``(H, W, 2)`` flows from frame ``j`` into ``i`` and back; pixels
            where the two disagree are not used (occlusions, moving hands).
        confidence_j: ``(H, W)`` frame ``j``'s confidence in [0, 1].
        i, j: the frames' indices (kept in the edge).
        settings: :class:`PoseGraphSettings`.

    Returns:
        The :class:`PoseEdge`, or None where PnP fails (too few consistent pixels).
    """
    import torch

    from unihoi_ros.flow.consistency import consistency_mask
    from unihoi_ros.geometry.correspondences import flow_correspondences, grid_pixels
    from unihoi_ros.geometry.pnp import (
        adaptive_inlier_px,
        relative_pose_pnp,
        reprojection_errors,
        reprojection_noise_px,
    )

    h, w = depth_i.shape
    uv = grid_pixels(h, w, settings.num_points, dtype=torch.float64)
    cols, rows = uv[:, 0].long().numpy(), uv[:, 1].long().numpy()
    usable = (consistency_mask(flow_ji, flow_ij)[rows, cols]
              & (confidence_j[rows, cols] >= settings.min_confidence))
    K64 = np.asarray(K, np.float64)
    # Frame j's own depth is not read: the grid's points come from frame i alone (PnP).
    K_t = torch.from_numpy(K64)
    _, points_i, ok = flow_correspondences(
        torch.ones(h, w, dtype=torch.float64), torch.from_numpy(np.asarray(depth_i, np.float64)),
        K_t, K_t, torch.from_numpy(np.ascontiguousarray(flow_ji)), uv)
    points_i = points_i.numpy()
    weights = (usable & ok.numpy()).astype(np.float64)
    pixels = uv.numpy()
    T, good, _ = relative_pose_pnp(points_i, pixels, K64, weights, settings.first_inlier_px)
    if not good:
        return None
    used = weights > 0
    noise = reprojection_noise_px(reprojection_errors(T, points_i[used], pixels[used], K64))
    T, good, inliers = relative_pose_pnp(
        points_i, pixels, K64, weights,
        adaptive_inlier_px(noise, settings.inlier_factor, settings.inlier_floor_px,
                           settings.inlier_cap_px))
    return PoseEdge(i, j, T, inliers) if good else None


def chain_edges(n: int, edges: list[PoseEdge]) -> np.ndarray:
    """``(n, 4, 4)`` poses in frame 0 chained from the consecutive edges (``j = i + 1``);
    a frame without one keeps the previous frame's pose."""
    from unihoi_ros.geometry.poses import chain_relative_np

    if n == 0:
        return np.zeros((0, 4, 4))
    steps = np.broadcast_to(np.eye(4), (n - 1, 4, 4)).copy()
    for e in edges:
        if e.j == e.i + 1:
            steps[e.i] = e.T
    return chain_relative_np(steps)


def _retract(poses: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``poses (N, 4, 4)`` each moved by its ``delta (N, 6)`` (rotation vector, radians;
    translation, metres) in its own camera frame: ``T @ [[R(w), u], [0, 1]]``."""
    from scipy.spatial.transform import Rotation

    step = np.broadcast_to(np.eye(4), poses.shape).copy()
    step[:, :3, :3] = Rotation.from_rotvec(delta[:, :3]).as_matrix()
    step[:, :3, 3] = delta[:, 3:]
    return poses @ step


def edge_residuals(poses: np.ndarray, i: np.ndarray, j: np.ndarray, T_meas: np.ndarray
                   ) -> np.ndarray:
    """``(E, 6)`` each edge's disagreement with ``poses (N, 4, 4)``: the rotation vector
    (radians) and translation (metres) of ``T_meas^-1 T_i^-1 T_j``, zero where the poses
    reproduce the measured ``T_meas (E, 4, 4)`` of camera ``j`` in camera ``i``."""
    from scipy.spatial.transform import Rotation

    E = np.linalg.solve(T_meas, np.linalg.solve(poses[i], poses[j]))
    return np.concatenate([Rotation.from_matrix(E[:, :3, :3]).as_rotvec(), E[:, :3, 3]], 1)


def _adjoint_of_inverse(A: np.ndarray) -> np.ndarray:
    """``(E, 6, 6)`` adjoint of ``A^-1`` for ``A (E, 4, 4)``, in (rotation, translation)
    order: for ``A = T_i^-1 T_j`` it carries a right perturbation of pose ``i`` into
    frame ``j`` (``Exp(d) A = A Exp(Ad(A^-1) d)``)."""
    R = np.swapaxes(A[:, :3, :3], 1, 2)  # A^-1 = (R^T, -R^T t)
    t = -np.einsum("eij,ej->ei", R, A[:, :3, 3])
    tx = np.zeros_like(R)
    tx[:, 0, 1], tx[:, 0, 2], tx[:, 1, 2] = -t[:, 2], t[:, 1], -t[:, 0]
    tx[:, 1, 0], tx[:, 2, 0], tx[:, 2, 1] = t[:, 2], -t[:, 1], t[:, 0]
    out = np.zeros((len(A), 6, 6))
    out[:, :3, :3] = R
    out[:, 3:, 3:] = R
    out[:, 3:, :3] = tx @ R
    return out


def fit_pose_graph(initial: np.ndarray, edges: list[PoseEdge], sigma_m: np.ndarray | float,
                   depth_scale_m: float, robust_scale: float = 2.0, iterations: int = 20
                   ) -> np.ndarray:
    """The poses that best agree with all ``edges`` (robust least squares, frame 0 held).

    Each edge's residual is its disagreement with the poses (:func:`edge_residuals`): the
    rotation vector times ``depth_scale_m`` (the metres a point at the scene's depth moves
    by) and the translation, over the edge's sigma. Gauss-Newton on right perturbations
    of the poses with the edges' analytic Jacobians (``r ~ r0 + d_j - Ad(A^-1) d_i``,
    ``A = T_i^-1 T_j``), each edge reweighted by Huber on its residual's norm (an edge
    is an outlier as a whole, e.g. a pair PnP placed wrongly).

    Args:
        initial: ``(N, 4, 4)`` starting poses (e.g. :func:`chain_edges`), frame 0 kept.
        edges: the solved pairs.
        sigma_m: ``(E,)`` or scalar expected error of each edge, metres.
        depth_scale_m: the scene's typical depth, metres.
        robust_scale: Huber threshold on the norm of an edge's 6 sigma-scaled residuals.
        iterations: at most this many Gauss-Newton steps (stops when a step moves no
            pose by more than 1e-9).

    Returns:
        ``(N, 4, 4)`` float64 poses in frame 0's coordinates.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    poses = np.asarray(initial, np.float64).copy()
    n = len(poses)
    if n < 2 or not edges:
        return poses
    i = np.array([e.i for e in edges])
    j = np.array([e.j for e in edges])
    T_meas = np.stack([e.T for e in edges])
    m = len(edges)
    unit = np.concatenate([np.full(3, depth_scale_m), np.ones(3)])  # radians -> metres
    inv_sigma = 1.0 / np.broadcast_to(np.asarray(sigma_m, np.float64), (m,))
    rows = np.repeat(np.arange(6 * m).reshape(m, 6, 1), 6, 2)  # (m, 6, 6) row indices
    for _ in range(iterations):
        r = edge_residuals(poses, i, j, T_meas) * unit * inv_sigma[:, None]
        norm = np.linalg.norm(r, axis=1)
        huber = np.where(norm <= robust_scale, 1.0, robust_scale / np.maximum(norm, 1e-12))
        w = np.sqrt(huber) * inv_sigma  # per edge: robust weight over sigma
        A = np.linalg.solve(poses[i], poses[j])
        block_i = -_adjoint_of_inverse(A)
        block_j = np.broadcast_to(np.eye(6), (m, 6, 6))
        cols_i = np.broadcast_to(6 * i[:, None, None] + np.arange(6), rows.shape)
        cols_j = np.broadcast_to(6 * j[:, None, None] + np.arange(6), rows.shape)
        scale = (unit * w[:, None])[:, :, None]
        data = np.concatenate([(block_i * scale).ravel(), (block_j * scale).ravel()])
        J = sp.csr_matrix((data, (np.concatenate([rows.ravel(), rows.ravel()]),
                                  np.concatenate([cols_i.ravel(), cols_j.ravel()]))),
                          shape=(6 * m, 6 * n))[:, 6:]  # frame 0 held
        b = (r * np.sqrt(huber)[:, None]).ravel()
        H = (J.T @ J).tocsc() + sp.identity(6 * (n - 1), format="csc") * 1e-9
        step = -spsolve(H, J.T @ b)
        poses = _retract(poses, np.concatenate([np.zeros((1, 6)), step.reshape(n - 1, 6)]))
        if np.abs(step).max() < 1e-9:
            break
    return poses


def graph_edges(depth: np.ndarray, K: np.ndarray, confidence: np.ndarray, flows,
                settings: PoseGraphSettings = PoseGraphSettings(), progress: bool = False
                ) -> list[PoseEdge]:
    """The solved pairs ``settings.offsets`` apart (:func:`pair_edge`), in frame order;
    a pair more than one frame apart only with enough inliers (``min_inlier_fraction``).

    Args:
        depth: ``(N, H, W)`` metres.
        K: ``(3, 3)`` intrinsics, pixels.
        confidence: ``(N, H, W)`` in [0, 1].
        flows: ``flows(i, j)`` -> ``(H, W, 2)`` flow from frame ``i`` into frame ``j``
            (e.g. :class:`~unihoi_ros.geometry.multiview.PairFlows`).
        settings: :class:`PoseGraphSettings`.
        progress: a tqdm bar over the frames.
    """
    from tqdm import tqdm

    from unihoi_ros.geometry.correspondences import grid_pixels

    min_inliers = settings.min_inlier_fraction * len(grid_pixels(*depth.shape[1:],
                                                                 settings.num_points))
    edges: list[PoseEdge] = []
    for j in tqdm(range(1, len(depth)), desc="pose graph", unit="frame", disable=not progress):
        for g in (g for g in settings.offsets if j - g >= 0):
            edge = pair_edge(depth[j - g], K, flows(j, j - g), flows(j - g, j), confidence[j],
                             j - g, j, settings)
            if edge is not None and (g == 1 or edge.inliers >= min_inliers):
                edges.append(edge)
    return edges


def placed_frames(n: int, edges: list[PoseEdge]) -> np.ndarray:
    """``(n,)`` bool, False for the first frame of each part of the recording that no pair
    ties to the frames before it (a break no pair bridges): that frame hangs on the
    previous one by "no motion" and the rest of its part follows it, as the stream hangs a
    window on the frame before a failed pair."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return np.zeros(0, bool)
    links = coo_matrix((np.ones(len(edges)), ([e.i for e in edges], [e.j for e in edges])),
                       shape=(n, n))
    _, part = connected_components(links, directed=False)
    placed = np.ones(n, bool)
    seen = {part[0]}
    for k in range(1, n):
        if part[k] not in seen:  # the first frame of a part not tied to frame 0
            placed[k] = False
            seen.add(part[k])
    return placed


def pose_graph_poses(frames: np.ndarray, depth: np.ndarray, K: np.ndarray,
                     confidence: np.ndarray, settings: PoseGraphSettings = PoseGraphSettings(),
                     flows=None, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The recording's camera poses from a pose graph over its pairs ``settings.offsets``
    apart (module docstring): :func:`graph_edges`, then :func:`solve_graph`.

    Args:
        frames: ``(N, H, W, 3)`` uint8 RGB, consecutive frames of one camera.
        depth: ``(N, H, W)`` metres, one scale over the recording (e.g. refined).
        K: ``(3, 3)`` intrinsics, pixels.
        confidence: ``(N, H, W)`` in [0, 1].
        settings: :class:`PoseGraphSettings`.
        flows: ``flows(i, j)`` as :func:`graph_edges` takes it; None: DIS ``medium`` on
            ``frames`` (:class:`~unihoi_ros.geometry.multiview.PairFlows`).
        progress: a tqdm bar over the frames.

    Returns:
        ``(poses (N, 4, 4) float64 T_world_cam with frame 0 the world, placed (N,) bool)``;
        ``placed`` (:func:`placed_frames`) is False for the first frame after a break no
        pair bridges (it and the part after it hang on the previous frame's pose).

    Raises:
        ValueError: ``settings.offsets`` lacks 1.
    """
    from unihoi_ros.geometry.multiview import PairFlows

    if 1 not in settings.offsets:
        raise ValueError(f"offsets {settings.offsets} must include 1 (the initial chain)")
    n = len(frames)
    edges = graph_edges(depth, K, confidence, flows if flows is not None else PairFlows(frames),
                        settings, progress)
    sample = depth[:, ::8, ::8]  # the scene's depth scale; a sample spares a copy
    finite = sample[np.isfinite(sample) & (sample > 0)]
    return solve_graph(n, edges, float(np.median(finite)) if finite.size else 1.0, settings)


def solve_graph(n: int, edges: list[PoseEdge], depth_scale_m: float,
                settings: PoseGraphSettings = PoseGraphSettings()
                ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` frames' poses from their solved pairs: each failed consecutive pair replaced
    by a loose "no motion" pair (``gap_sigma_factor``), the chain of consecutive pairs as
    the start, then :func:`fit_pose_graph` with sigmas ``step_sigma_m * sqrt(gap)``.

    Returns:
        ``(poses (n, 4, 4) float64 in frame 0, placed (n,) bool)`` (:func:`placed_frames`).
    """
    placed = placed_frames(n, edges)
    edges = list(edges)
    sigma = list(settings.step_sigma_m * np.sqrt([e.j - e.i for e in edges]))
    stepped = {e.i for e in edges if e.j == e.i + 1}
    for k in (k for k in range(n - 1) if k not in stepped):  # a failed consecutive pair
        edges.append(PoseEdge(k, k + 1, np.eye(4), 0))
        sigma.append(settings.gap_sigma_factor * settings.step_sigma_m)
    return fit_pose_graph(chain_edges(n, edges), edges, np.asarray(sigma), depth_scale_m,
                          settings.robust_scale), placed


def poses_by_stamp(stamps_ns, poses: np.ndarray, placed: np.ndarray) -> dict:
    """``{stamp_ns: (4, 4) pose, or None where not placed}``: :func:`pose_graph_poses`'s
    result as :class:`~unihoi_ros.pipeline.reconstructor.Reconstructor` takes given poses
    (a frame without one keeps the previous frame's pose, flagged)."""
    return {int(s): (T if ok else None) for s, T, ok in zip(stamps_ns, poses, placed)}
