"""Evaluation metrics: depth, camera trajectory (evo definitions) and point clouds.

Inputs may be numpy arrays or torch tensors (any float dtype; computed in float64);
results are Python floats, tuples or dicts. Nothing here is differentiable.

Definitions:

- Depth, over valid pixels (``gt`` finite and > 0, ``pred`` finite, and the optional
  mask): ``abs_rel = mean(|pred - gt| / gt)``, ``rmse = sqrt(mean((pred - gt)^2))`` (m),
  ``delta1 = mean(max(pred / gt, gt / pred) < 1.25)`` (``pred <= 0`` counts as a miss).
  Non-finite predictions are excluded, not penalised: check ``coverage`` in
  :func:`depth_metrics`.
- Trajectories: poses are ``(N, 4, 4)`` camera-to-world, matched by index. Alignment is
  Umeyama on the positions, exactly as evo's ``PosePath3D.align`` (``"sim3"`` =
  ``correct_scale=True``: translations scaled by s, then ``G = [R | t]`` applied on the
  left; ``"se3"`` without scale; ``"none"``). ATE = statistic of
  ``|t_est_aligned,i - t_gt,i|`` (evo APE, translation part). RPE over index pairs
  ``(i, j = i + delta)`` (evo's ``all_pairs=False`` takes ``i = 0, delta, 2 delta, ...``):
  ``E = inv(inv(gt_i) gt_j) @ (inv(est_i) est_j)``, translation error ``|t(E)|`` (m),
  rotation error ``angle(R(E))`` (degrees). The default statistic is RMSE; the UniHOI
  authors' reported numbers use evo's ``mean`` (pass ``stat="mean"``).
- Point clouds (non-finite rows dropped): with ``d(x, Y) = min_y |x - y|``,
  ``chamfer = (mean_a d(a, B) + mean_b d(b, A)) / 2`` (metres; ``squared=True`` uses
  ``d^2``); the authors' kaolin number is ``2 * chamfer_distance(pred, gt, squared=True)``.
  F-score at threshold t: precision = share of pred points with ``d(pred, GT) <= t``,
  recall = share of GT points with ``d(gt, Pred) <= t``, ``F = 2PR / (P + R)`` (0 when
  both are 0).
- Intrinsics (:func:`intrinsics_errors`): each predicted ``K`` is first rescaled to the
  ground truth's image size (:func:`unihoi_ros.geometry.camera.scale_intrinsics`), then per
  frame ``fx_pred / fx_true`` (``fx_ratio``, its mean; below 1 = too short a focal length,
  too wide a field of view), ``|fx_pred / fx_true - 1|`` (``fx_rel_err``), likewise for fy,
  and ``|cx_pred - cx_true|`` (``cx_err_px``, ground-truth pixels), likewise for cy, each
  averaged over frames; ``pp_err_frac = max(cx_err_px / W, cy_err_px / H)``.
- Constant-velocity path (:func:`constant_velocity_path`): the first two poses' relative
  motion ``D = inv(T_0) T_1`` repeated, ``T_k = T_0 D^k`` (a constant twist, the usual
  visual-odometry motion model; fractional powers when the stamps are uneven). Path length
  (:func:`path_length`): sum of the distances between consecutive positions, metres.

Empty inputs (no valid pixel, no pose pair, an empty cloud) give NaN.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from unihoi_ros.options import Alignment, parse

from .camera import scale_intrinsics
from .poses import invert_se3, rotation_angle, se3_from_rt
from .procrustes import weighted_rigid, weighted_sim3

__all__ = [
    "RPEResult",
    "abs_rel",
    "align_trajectory",
    "ate",
    "chamfer_distance",
    "constant_velocity_path",
    "delta1",
    "depth_metrics",
    "fscore",
    "intrinsics_errors",
    "nearest_distances",
    "path_length",
    "pointcloud_metrics",
    "rmse",
    "rpe",
    "straight_line_path",
    "trajectory_metrics",
    "umeyama",
]

ArrayLike = np.ndarray | Tensor  # accepted everywhere; any float dtype
_STATS = ("rmse", "mean", "median", "max")


def _numpy64(x: ArrayLike) -> np.ndarray:
    """Any array-like (torch included) as a float64 numpy array."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _stat(errors: np.ndarray, stat: str) -> float:
    """One statistic of a 1-D error array (NaN when empty)."""
    if stat not in _STATS:
        raise ValueError(f"stat must be one of {_STATS}, got {stat!r}")
    if errors.size == 0:
        return math.nan
    if stat == "rmse":
        return float(np.sqrt(np.mean(errors**2)))
    return float(getattr(np, stat)(errors))


# ----------------------------------------------------------------------------- depth


def _depth_pairs(
    pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the valid ``(pred, gt)`` values as 1-D float64 arrays."""
    p, g = _numpy64(pred), _numpy64(gt)
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} differ in shape")
    valid = np.isfinite(g) & (g > 0) & np.isfinite(p)
    if mask is not None:
        valid &= np.broadcast_to(_numpy64(mask) != 0, valid.shape)
    return p[valid], g[valid]


def abs_rel(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean absolute relative depth error.

    Args:
        pred: ``(..., H, W)`` predicted depth, metres.
        gt: same shape, ground-truth depth, metres (invalid: non-finite or <= 0).
        mask: optional, broadcastable to ``gt``; nonzero = evaluate.

    Returns:
        ``mean(|pred - gt| / gt)`` over valid pixels (unitless), NaN if none.
    """
    p, g = _depth_pairs(pred, gt, mask)
    return float(np.mean(np.abs(p - g) / g)) if g.size else math.nan


def rmse(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Root-mean-square depth error, metres (arguments as :func:`abs_rel`)."""
    p, g = _depth_pairs(pred, gt, mask)
    return float(np.sqrt(np.mean((p - g) ** 2))) if g.size else math.nan


def _delta(p: np.ndarray, g: np.ndarray, threshold: float) -> float:
    with np.errstate(divide="ignore"):
        ratio = np.where(p > 0, np.maximum(p / g, g / np.where(p > 0, p, 1.0)), np.inf)
    return float(np.mean(ratio < threshold)) if g.size else math.nan


def delta1(
    pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None, threshold: float = 1.25
) -> float:
    """Share of valid pixels with ``max(pred/gt, gt/pred) < threshold`` (in [0, 1]).

    Arguments as :func:`abs_rel`; non-positive predictions count as misses.
    """
    p, g = _depth_pairs(pred, gt, mask)
    return _delta(p, g, threshold)


def depth_metrics(
    pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None
) -> dict[str, float]:
    """All depth metrics at once.

    Returns:
        ``{"abs_rel", "rmse" (m), "delta1", "num_valid", "coverage"}``; coverage is the
        share of valid-ground-truth pixels where the prediction is finite.
    """
    p, g = _depth_pairs(pred, gt, mask)
    gt_ok = _numpy64(gt)
    gt_valid = np.isfinite(gt_ok) & (gt_ok > 0)
    if mask is not None:
        gt_valid &= np.broadcast_to(_numpy64(mask) != 0, gt_valid.shape)
    n_gt = int(gt_valid.sum())
    return {
        "abs_rel": float(np.mean(np.abs(p - g) / g)) if g.size else math.nan,
        "rmse": float(np.sqrt(np.mean((p - g) ** 2))) if g.size else math.nan,
        "delta1": _delta(p, g, 1.25),
        "num_valid": float(g.size),
        "coverage": g.size / n_gt if n_gt else math.nan,
    }


# ------------------------------------------------------------------------ trajectory


def _poses(x: ArrayLike, name: str) -> Tensor:
    """``(N, 4, 4)`` float64 CPU tensor, validated."""
    T = torch.from_numpy(_numpy64(x))
    if T.ndim != 3 or T.shape[-2:] != (4, 4):
        raise ValueError(f"{name} must be (N, 4, 4), got {tuple(T.shape)}")
    return T


def umeyama(
    x: ArrayLike, y: ArrayLike, with_scale: bool = True
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Least-squares ``y ~= s R x + t`` on point sets (evo's ``umeyama_alignment``).

    Unlike evo it does not raise on collinear points (their rotation about the line is
    arbitrary but the fit is still optimal); with fewer than 2 distinct points it returns
    the identity and ``ok = False``.

    Args:
        x: ``(N, 3)`` source points (e.g. estimated positions).
        y: ``(N, 3)`` target points (e.g. ground-truth positions).
        with_scale: fit s (Sim(3)); else s = 1 (SE(3)).

    Returns:
        ``R (3, 3)``, ``t (3,)``, ``s`` and ``ok``.
    """
    xs = torch.from_numpy(_numpy64(x))
    ys = torch.from_numpy(_numpy64(y))
    w = torch.ones(xs.shape[:-1], dtype=torch.float64)
    if with_scale:
        T, s, ok = weighted_sim3(xs, ys, w, True, min_rank=1)
    else:
        T, ok = weighted_rigid(xs, ys, w, True, min_rank=1)
        s = torch.ones(())
    return T[:3, :3].numpy(), T[:3, 3].numpy(), float(s), bool(ok)


def _align(est: Tensor, gt: Tensor, mode: str) -> tuple[Tensor, float, bool]:
    """Aligned copy of ``est``, the scale and the fit's ok flag."""
    if est.shape != gt.shape:
        raise ValueError(f"est {tuple(est.shape)} and gt {tuple(gt.shape)} differ in shape")
    align = parse(Alignment, mode)
    if align is None:
        raise ValueError(f"align must be 'sim3', 'se3' or 'none', got {mode!r}")
    if align is Alignment.NONE:
        return est.clone(), 1.0, True
    R, t, s, ok = umeyama(est[:, :3, 3], gt[:, :3, 3], with_scale=align is Alignment.SIM3)
    if not ok:
        # All estimated positions coincide (e.g. an identity-pose baseline): rotation and
        # scale change nothing, so the least-squares alignment is the centroid shift.
        R, s = np.eye(3), 1.0
        t = (gt[:, :3, 3].mean(dim=0) - est[:, :3, 3].mean(dim=0)).numpy()
    scaled = se3_from_rt(est[:, :3, :3], s * est[:, :3, 3])
    G = se3_from_rt(torch.from_numpy(R), torch.from_numpy(t))
    return G @ scaled, s, ok


def align_trajectory(est: ArrayLike, gt: ArrayLike, mode: str = "sim3") -> np.ndarray:
    """Align an estimated trajectory to ground truth (as evo ``align``).

    Args:
        est: ``(N, 4, 4)`` estimated camera-to-world poses.
        gt: ``(N, 4, 4)`` ground-truth poses, metres.
        mode: ``"sim3"`` (scale + rigid), ``"se3"`` (rigid) or ``"none"``.

    Returns:
        ``(N, 4, 4)`` float64 aligned estimate: ``[[R_a R_i, s R_a t_i + t_a], [0, 1]]``.
        Degenerate positions (fewer than 2 distinct) are only shifted onto the ground
        truth's centroid (the least-squares optimum then; evo raises instead).
    """
    return _align(_poses(est, "est"), _poses(gt, "gt"), mode)[0].numpy()


def _ate_errors(est: Tensor, gt: Tensor) -> np.ndarray:
    return torch.linalg.vector_norm(est[:, :3, 3] - gt[:, :3, 3], dim=-1).numpy()


def _pairs(n: int, delta: int, all_pairs: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs as evo's ``filter_pairs_by_index``."""
    if delta < 1:
        raise ValueError(f"delta must be >= 1 frame, got {delta}")
    if all_pairs:
        i = np.arange(max(n - delta, 0))
        return i, i + delta
    ids = np.arange(0, n, delta)
    return ids[:-1], ids[1:]


def _rpe_errors(
    est: Tensor, gt: Tensor, delta: int, all_pairs: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair translation (m) and rotation (deg) errors."""
    i, j = _pairs(est.shape[0], delta, all_pairs)
    rel_gt = invert_se3(gt[i]) @ gt[j]
    rel_est = invert_se3(est[i]) @ est[j]
    E = invert_se3(rel_gt) @ rel_est
    trans = torch.linalg.vector_norm(E[:, :3, 3], dim=-1).numpy()
    rot = torch.rad2deg(rotation_angle(E[:, :3, :3])).numpy()
    return trans, rot


class RPEResult(NamedTuple):
    """Relative pose error: translation (metres) and rotation (degrees) statistics.

    A tuple ``(trans, rot_deg)`` that also reads by name: ``r.rot_deg == r["rot_deg"]``.
    """

    trans: float
    rot_deg: float

    def __getitem__(self, key):  # type: ignore[override]
        """Index by position or by field name."""
        return getattr(self, key) if isinstance(key, str) else tuple.__getitem__(self, key)


def ate(est: ArrayLike, gt: ArrayLike, align: str = "sim3", stat: str = "rmse") -> float:
    """Absolute trajectory error (evo APE, translation part), metres.

    Args:
        est: ``(N, 4, 4)`` estimated camera-to-world poses.
        gt: ``(N, 4, 4)`` ground-truth poses, metres.
        align: ``"sim3"``, ``"se3"`` or ``"none"`` (see :func:`align_trajectory`).
        stat: ``"rmse"`` (default), ``"mean"``, ``"median"`` or ``"max"``.
    """
    gt = _poses(gt, "gt")
    aligned, _, _ = _align(_poses(est, "est"), gt, align)
    return _stat(_ate_errors(aligned, gt), stat)


def rpe(
    est: ArrayLike,
    gt: ArrayLike,
    delta: int = 1,
    align: str = "sim3",
    stat: str = "rmse",
    all_pairs: bool = False,
) -> RPEResult:
    """Relative pose error (evo RPE, delta in frames).

    Args:
        est: ``(N, 4, 4)`` estimated camera-to-world poses.
        gt: ``(N, 4, 4)`` ground-truth poses, metres.
        delta: frame distance of the pairs.
        align: alignment before the error (only scale matters for RPE): see :func:`ate`.
        stat: statistic over the pairs (default RMSE).
        all_pairs: every ``(i, i + delta)`` instead of evo's default non-overlapping
            ``i = 0, delta, 2 delta, ...``.

    Returns:
        ``RPEResult(trans, rot_deg)``: translation (m) and rotation (degrees); NaN when
        there is no pair.
    """
    gt = _poses(gt, "gt")
    aligned, _, _ = _align(_poses(est, "est"), gt, align)
    trans, rot = _rpe_errors(aligned, gt, delta, all_pairs)
    return RPEResult(_stat(trans, stat), _stat(rot, stat))


def trajectory_metrics(
    est: ArrayLike, gt: ArrayLike, align: str = "sim3", delta: int = 1, stat: str = "rmse"
) -> dict[str, float | bool]:
    """ATE, RPE translation and RPE rotation with one alignment.

    Returns:
        ``{"ate" (m), "rpe_trans" (m), "rpe_rot_deg", "scale" (alignment scale, 1 unless
        sim3), "align_ok", "num_poses"}``.
    """
    gt = _poses(gt, "gt")
    aligned, scale, ok = _align(_poses(est, "est"), gt, align)
    trans, rot = _rpe_errors(aligned, gt, delta, False)
    return {
        "ate": _stat(_ate_errors(aligned, gt), stat),
        "rpe_trans": _stat(trans, stat),
        "rpe_rot_deg": _stat(rot, stat),
        "scale": scale,
        "align_ok": ok,
        "num_poses": gt.shape[0],
    }


def path_length(T: ArrayLike) -> float:
    """Length of the path through the positions of ``T`` ``(N, 4, 4)``, metres (0 if N < 2)."""
    t = _numpy64(T)[:, :3, 3]
    return float(np.linalg.norm(np.diff(t, axis=0), axis=1).sum())


def _skew(w: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def _so3_V(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``exp([w]x)`` and the SE(3) left Jacobian ``V(w)`` (``t = V u``), Taylor near 0."""
    th = float(np.linalg.norm(w))
    W = _skew(w)
    W2 = W @ W
    if th < 1e-6:  # series; keeps the ratios finite for (near) pure translation
        a, b, c = 1.0 - th**2 / 6, 0.5 - th**2 / 24, 1.0 / 6 - th**2 / 120
    else:
        a, b, c = math.sin(th) / th, (1 - math.cos(th)) / th**2, (th - math.sin(th)) / th**3
    R = np.eye(3) + a * W + b * W2
    V = np.eye(3) + b * W + c * W2
    return R, V


def constant_velocity_path(T: ArrayLike, stamps_ns: ArrayLike | None = None) -> np.ndarray:
    """The first two poses' motion extrapolated at constant velocity (constant twist).

    Args:
        T: ``(N, 4, 4)`` camera-to-world poses (only ``T[0]`` and ``T[1]`` are used), N >= 2.
        stamps_ns: optional ``(N,)`` stamps; frame k is then ``(t_k - t_0) / (t_1 - t_0)``
            steps from the start (frame indices when None or when ``t_1 == t_0``).

    Returns:
        ``(N, 4, 4)`` float64 ``T_0 D^a_k`` with ``D = inv(T_0) T_1`` (so rows 0 and 1
        equal ``T[0]`` and ``T[1]``; ``D^a`` through SE(3) log / exp).
    """
    T = _numpy64(T)
    n = T.shape[0]
    if n < 2:
        raise ValueError(f"a constant-velocity path needs >= 2 poses, got {n}")
    steps = np.arange(n, dtype=np.float64)
    if stamps_ns is not None:
        t = np.asarray(stamps_ns, dtype=np.float64)
        if t[1] != t[0]:
            steps = (t - t[0]) / (t[1] - t[0])
    D = np.linalg.inv(T[0]) @ T[1]
    from scipy.spatial.transform import Rotation  # lazy, as nearest_distances

    w = Rotation.from_matrix(D[:3, :3]).as_rotvec()
    u = np.linalg.solve(_so3_V(w)[1], D[:3, 3])  # twist (w, u): D = exp([w, u])
    out = np.empty((n, 4, 4))
    for k, a in enumerate(steps):
        R, V = _so3_V(a * w)
        step = np.eye(4)
        step[:3, :3], step[:3, 3] = R, V @ (a * u)
        out[k] = T[0] @ step
    return out


def straight_line_path(T: ArrayLike, stamps_ns: ArrayLike | None = None) -> np.ndarray:
    """The best-fit uniform straight line through the true positions (a pose baseline).

    Positions ``a + b s_k`` with ``a, b`` the least-squares fit of the positions of ``T``
    against the step ``s_k`` (time when ``stamps_ns`` are given, else the frame index):
    uniform motion along one line, as close to the truth as such a path gets (no
    alignment can bring any uniform straight line closer, so score it with
    ``align="none"``); orientation held at ``T[0]``'s.

    Args:
        T: ``(N, 4, 4)`` camera-to-world poses, N >= 2.
        stamps_ns: optional ``(N,)`` stamps.

    Returns:
        ``(N, 4, 4)`` float64 poses.
    """
    T = _numpy64(T)
    n = T.shape[0]
    if n < 2:
        raise ValueError(f"a straight-line path needs >= 2 poses, got {n}")
    s = (np.asarray(stamps_ns, np.float64) - float(np.asarray(stamps_ns)[0])
         if stamps_ns is not None else np.arange(n, dtype=np.float64))
    A = np.stack([np.ones(n), s], axis=1)
    coef, *_ = np.linalg.lstsq(A, T[:, :3, 3], rcond=None)  # (2, 3): a, b
    out = np.repeat(T[:1], n, axis=0)
    out[:, :3, 3] = A @ coef
    return out


# ------------------------------------------------------------------------ intrinsics


def intrinsics_errors(
    pred_K: ArrayLike, gt_K: ArrayLike, pred_hw: tuple[int, int], gt_hw: tuple[int, int]
) -> dict[str, float]:
    """Errors of predicted intrinsics against the truth, in the ground truth's pixels.

    Args:
        pred_K: ``(N, 3, 3)`` predicted intrinsics, pixels of a ``pred_hw`` image.
        gt_K: ``(3, 3)`` or ``(N, 3, 3)`` true intrinsics, pixels of a ``gt_hw`` image.
        pred_hw: ``(height, width)`` the prediction's K belongs to.
        gt_hw: ``(height, width)`` the truth's K belongs to (the errors' pixels).

    Returns:
        ``{"fx_rel_err", "fy_rel_err"`` (mean over frames of ``|pred / true - 1|``),
        ``"fx_ratio", "fy_ratio"`` (mean ``pred / true``), ``"cx_err_px", "cy_err_px"``
        (mean ``|pred - true|``, pixels), ``"pp_err_frac"`` (``max(cx_err_px / W,
        cy_err_px / H)``), ``"num_frames"}``; see the module doc.
    """
    pk = _numpy64(pred_K)
    if pk.ndim != 3 or pk.shape[-2:] != (3, 3):
        raise ValueError(f"pred_K must be (N, 3, 3), got {pk.shape}")
    pk = np.stack([scale_intrinsics(k, pred_hw, gt_hw) for k in pk])
    gk = np.broadcast_to(_numpy64(gt_K), pk.shape)
    fx, fy = pk[:, 0, 0] / gk[:, 0, 0], pk[:, 1, 1] / gk[:, 1, 1]
    cx = np.abs(pk[:, 0, 2] - gk[:, 0, 2])
    cy = np.abs(pk[:, 1, 2] - gk[:, 1, 2])
    h, w = gt_hw
    return {
        "fx_rel_err": float(np.mean(np.abs(fx - 1.0))),
        "fy_rel_err": float(np.mean(np.abs(fy - 1.0))),
        "fx_ratio": float(np.mean(fx)),
        "fy_ratio": float(np.mean(fy)),
        "cx_err_px": float(np.mean(cx)),
        "cy_err_px": float(np.mean(cy)),
        "pp_err_frac": float(max(np.mean(cx) / w, np.mean(cy) / h)),
        "num_frames": int(pk.shape[0]),
    }


# ----------------------------------------------------------------------- point cloud


def _cloud(x: ArrayLike, name: str) -> np.ndarray:
    """``(N, 3)`` float64 with non-finite rows dropped."""
    c = _numpy64(x)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"{name} must be (N, 3), got {c.shape}")
    return c[np.isfinite(c).all(axis=1)]


def nearest_distances(src: ArrayLike, dst: ArrayLike, workers: int = 1) -> np.ndarray:
    """Distance from each ``src (N, 3)`` point to its nearest ``dst (M, 3)`` point.

    Returns:
        ``(N,)`` metres (after dropping non-finite rows of both).
    """
    from scipy.spatial import cKDTree  # lazy: keeps `import unihoi_ros.geometry` light

    s, d = _cloud(src, "src"), _cloud(dst, "dst")
    if len(d) == 0:
        return np.full(len(s), np.inf)
    return cKDTree(d).query(s, k=1, workers=workers)[0]


def chamfer_distance(a: ArrayLike, b: ArrayLike, squared: bool = False, workers: int = 1) -> float:
    """Symmetric Chamfer distance: mean of the two directed mean NN distances.

    Args:
        a: ``(N, 3)`` points, metres.
        b: ``(M, 3)`` points, metres.
        squared: average squared distances instead (m^2).
        workers: threads for the KD-tree queries.

    Returns:
        ``(mean_a d(a, B) + mean_b d(b, A)) / 2``, NaN if a cloud is empty.
    """
    a, b = _cloud(a, "a"), _cloud(b, "b")
    if len(a) == 0 or len(b) == 0:
        return math.nan
    d_ab = nearest_distances(a, b, workers)
    d_ba = nearest_distances(b, a, workers)
    k = 2 if squared else 1
    return float(0.5 * (np.mean(d_ab**k) + np.mean(d_ba**k)))


def fscore(
    pred: ArrayLike,
    gt: ArrayLike,
    thresholds: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1),
    workers: int = 1,
) -> dict[float, dict[str, float]]:
    """Precision, recall and F-score at distance thresholds.

    Args:
        pred: ``(N, 3)`` predicted points, metres.
        gt: ``(M, 3)`` ground-truth points, metres.
        thresholds: distances in metres; a point within ``<= t`` of the other cloud hits.
        workers: threads for the KD-tree queries.

    Returns:
        ``{t: {"precision", "recall", "fscore"}}`` (values in [0, 1]; NaN for empty clouds).
    """
    p, g = _cloud(pred, "pred"), _cloud(gt, "gt")
    if len(p) == 0 or len(g) == 0:
        nan = {"precision": math.nan, "recall": math.nan, "fscore": math.nan}
        return {float(t): dict(nan) for t in thresholds}
    d_pg = nearest_distances(p, g, workers)
    d_gp = nearest_distances(g, p, workers)
    out = {}
    for t in thresholds:
        prec, rec = float(np.mean(d_pg <= t)), float(np.mean(d_gp <= t))
        f = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
        out[float(t)] = {"precision": prec, "recall": rec, "fscore": f}
    return out


def pointcloud_metrics(
    pred: ArrayLike,
    gt: ArrayLike,
    thresholds: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1),
    workers: int = 1,
) -> dict[str, float]:
    """Chamfer distance and F-scores in one flat dict.

    Returns:
        ``{"chamfer": m, "fscore@<t>", "precision@<t>", "recall@<t>" for each t}``.
    """
    out = {"chamfer": chamfer_distance(pred, gt, workers=workers)}
    for t, vals in fscore(pred, gt, thresholds, workers).items():
        for key, value in vals.items():
            out[f"{key}@{t:g}"] = value
    return out
