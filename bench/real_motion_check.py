"""Why camera motions read from the real 7-Scenes frames disagree with the ground truth.

Issue #24: rotations about x and y read from the colour frames come out ~0.9x the ground
truth's. This script measures each candidate cause on the shared frames
(``../shared/data/7scenes_redkitchen_300_699``) with estimators that are not the package's
pose solver (SIFT matches, OpenCV PnP, depth contours), and prints one table plus JSON:

1. **the recording's repeated frames** (colour and depth files byte-identical to the
   previous one) and how :func:`~unihoi_ros.io.ground_truth.load_seven_scenes` pairs
   them; where that changes a colour frame's depth, the depth's occluding contours against
   the colour edges (``edge_alignment_cost``, no poses involved), own vs matched;
2. **timing**: correlation of per-frame rotation (consecutive-frame SIFT-PnP on the
   registered true depth) with the ground truth's at frame lags -2..2;
3. **colour**: SIFT-PnP with the registered true depth and the colour K on ``--gap``-frame
   pairs, per-axis ratio to the ground truth (total least squares through 0; x, y: the
   rotations that move pixels by ``f * angle``, z: roll, which does not depend on ``f``);
   the same PnP on observations made from the ground-truth motion itself (0.4 px noise,
   10 % depth noise), the estimator's own bias; the ground-truth motion's reprojection
   error (median px) under several colour focal lengths;
4. **depth alone** (no colour, no registration; the depth camera's K 585): per-pair
   6-DoF fits of the depth contours of frame ``i`` to those of ``i + 2 * gap`` (cap 4 px),
   per-axis ratio to the ground truth; the ground truth's contour distance (cap 8 px) under
   several depth focal lengths;
5. **what it costs**: the ground truth's own steps, changed by the systematic relation
   measured in 3 (linear maps fitted on the pairs), chained over the benchmark's segments:
   the ATE (% of path) a pose solver that reproduced the frames' motion exactly would score.

Usage: ``python bench/real_motion_check.py [--gap 5] [--depth-step 6] [--pair-by-number]
[--json out.json]``
(about 3 minutes on 2 idle cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from unihoi_ros.evaluation_real import DEFAULT_DATA, segment_starts
from unihoi_ros.geometry.metrics import ate, path_length
from unihoi_ros.geometry.registration import (
    edge_alignment_cost,
    edge_points,
    project_depth_points,
)
from unihoi_ros.io.ground_truth import (
    load_seven_scenes,
    match_repeated_streams,
    repeat_run_starts,
)
from unihoi_ros.io.registration import SEVEN_SCENES
from unihoi_ros.io.sources import seven_scenes_files


def tls_ratio(gt: np.ndarray, est: np.ndarray) -> float:
    """Slope through the origin of ``est`` against ``gt`` ``(N,)``, total least squares
    (noise on both sides; the ordinary slope is biased low by noise in ``gt``)."""
    _, v = np.linalg.eigh(np.stack([gt, est]) @ np.stack([gt, est]).T)
    return float(v[1, 1] / v[0, 1])


def axis_ratios(gt: np.ndarray, est: np.ndarray) -> list[float]:
    """Per-axis :func:`tls_ratio` of ``(N, 3)`` arrays."""
    return [tls_ratio(gt[:, a], est[:, a]) for a in range(3)]


def rotvec(T: np.ndarray) -> np.ndarray:
    return Rotation.from_matrix(T[:3, :3]).as_rotvec()


def read_depth(path: Path) -> np.ndarray:
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return np.where(raw == 65535, 0, raw).astype(np.float32) / 1000.0


def edge_distance(bgr: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 1.0), 40, 120)
    return cv2.distanceTransform((edges == 0).astype(np.uint8), cv2.DIST_L2, 5)


class Matches:
    """SIFT features of every colour frame; ratio-test + fundamental-matrix matches."""

    def __init__(self, grey: list[np.ndarray]) -> None:
        sift = cv2.SIFT_create(nfeatures=3000)
        self.feats = []
        for g in grey:
            kp, des = sift.detectAndCompute(g, None)
            self.feats.append((np.array([k.pt for k in kp], np.float64).reshape(-1, 2), des))
        self.bf = cv2.BFMatcher(cv2.NORM_L2)

    def __call__(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        (p1, d1), (p2, d2) = self.feats[i], self.feats[j]
        if d1 is None or d2 is None or len(p1) < 20 or len(p2) < 20:
            return np.zeros((0, 2)), np.zeros((0, 2))
        good = [a for a, b in self.bf.knnMatch(d1, d2, k=2) if a.distance < 0.7 * b.distance]
        a = p1[[m.queryIdx for m in good]]
        b = p2[[m.trainIdx for m in good]]
        if len(a) < 20:
            return a[:0], b[:0]
        _, mask = cv2.findFundamentalMat(a, b, cv2.FM_RANSAC, 1.5, 0.999)
        keep = mask.ravel() == 1 if mask is not None else np.zeros(len(a), bool)
        return a[keep], b[keep]


def back_project(uv: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    return np.column_stack([(uv[:, 0] - K[0, 2]) / K[0, 0] * z,
                            (uv[:, 1] - K[1, 2]) / K[1, 1] * z, z])


def project(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    return np.column_stack([K[0, 0] * X[:, 0] / X[:, 2] + K[0, 2],
                            K[1, 1] * X[:, 1] / X[:, 2] + K[1, 2]])


def pnp(X: np.ndarray, uv: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """RANSAC EPnP (1.5 px) then Levenberg-Marquardt on the inliers: ``(rotvec, t)``."""
    if len(X) < 30:
        return None
    ok, rv, tv, inl = cv2.solvePnPRansac(X, uv, K, None, iterationsCount=200,
                                         reprojectionError=1.5, flags=cv2.SOLVEPNP_EPNP)
    if not ok or inl is None or len(inl) < 20:
        return None
    rv, tv = cv2.solvePnPRefineLM(X[inl[:, 0]], uv[inl[:, 0]], K, None, rv, tv)
    return rv.ravel(), tv.ravel()


def colour_pairs(matches: Matches, gt, gap: int):
    """Per pair ``(i, i + gap)``: matched pixels, registered depth at the first, and the
    true colour-camera motion (points of frame i into frame i + gap)."""
    out = []
    for i in range(len(gt.stamps_ns) - gap):
        a, b = matches(i, i + gap)
        r = np.clip(np.rint(a[:, 1]).astype(int), 0, gt.depth.shape[1] - 1)
        c = np.clip(np.rint(a[:, 0]).astype(int), 0, gt.depth.shape[2] - 1)
        z = gt.depth[i][r, c]
        keep = np.isfinite(z) & (z > 0.3)
        T = np.linalg.inv(gt.T_world_cam[i + gap]) @ gt.T_world_cam[i]
        out.append((i, a[keep], b[keep], z[keep].astype(np.float64), T))
    return out


def depth_contour_fit(uv, z, dist, K, p0, cap=4.0):
    """6-DoF motion ``(rotvec, t)`` moving contour points ``(uv, z)`` (depth camera) onto
    the contours whose distance map is ``dist``: least squares on the capped distance."""
    X = back_project(uv, z, K)
    dm = np.minimum(dist, cap).astype(np.float32)

    def resid(p):
        q = project(X @ Rotation.from_rotvec(p[:3]).as_matrix().T + p[3:], K).astype(np.float32)
        return cv2.remap(dm, q[:, :1], q[:, 1:], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=cap).ravel()

    res = least_squares(resid, p0, diff_step=1e-3, x_scale=0.01)
    return res.x[:3], res.x[3:]


def chain_ate(steps_r, steps_t, T_true, starts, length):
    """ATE (% of path, Sim(3)) per segment of poses chained from per-step motions
    (points of frame i into i + 1) from each segment's true first pose."""
    out = []
    for s in starts:
        P = [T_true[s]]
        for i in range(s, s + length - 1):
            M = np.eye(4)
            M[:3, :3] = Rotation.from_rotvec(steps_r[i]).as_matrix()
            M[:3, 3] = steps_t[i]
            P.append(P[-1] @ np.linalg.inv(M))
        g = T_true[s:s + length]
        out.append(100 * ate(np.array(P), g) / path_length(g))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--gap", type=int, default=5, help="frames between colour pairs")
    ap.add_argument("--depth-step", type=int, default=6, help="every n-th depth pair")
    ap.add_argument("--pair-by-number", action="store_true",
                    help="colour frames get the truth of their own number (repeats not "
                    "matched) in 2, 3 and 5")
    ap.add_argument("--json", type=Path, default=Path("bench/results/real_motion_check.json"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rig, data, gap = SEVEN_SCENES, args.data, args.gap
    files = seven_scenes_files(data)
    numbers = [n for n, _ in files]
    out: dict = {"data": str(data), "gap": gap, "pair_by_number": args.pair_by_number}

    # 1. repeats and pairing
    cf = repeat_run_starts([p for _, p in files])
    df = repeat_run_starts([data / f"frame-{n:06d}.depth.png" for n in numbers])
    n = np.arange(len(files))
    match = match_repeated_streams(cf, df)
    changed = [i for i in n if df[match[i]] != df[i]]
    own = [edge_alignment_cost(project_depth_points(
        *edge_points(read_depth(data / f"frame-{numbers[j]:06d}.depth.png")), rig.K_depth,
        rig.K_color, rig.T_color_depth)[0], edge_distance(cv2.imread(str(files[i][1]))))
        for i in changed for j in (i, match[i])]
    own, matched = np.array(own[0::2]), np.array(own[1::2])
    out["repeats"] = {
        "colour": int((cf != n).sum()), "depth": int((df != n).sum()),
        "same_index": int(((cf != n) & (df != n)).sum()), "frames_moved": int((match != n).sum()),
        "depth_changed": len(changed), "matched_depth_closer": int((matched < own).sum()),
        "edge_cost_own_px": float(own.mean()), "edge_cost_matched_px": float(matched.mean())}

    gt = load_seven_scenes(data, match_repeats=not args.pair_by_number)  # colour camera
    grey = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for _, p in files]
    matches = Matches(grey)
    K = np.asarray(gt.K, np.float64)

    # 2. timing: consecutive-frame rotations against the truth's, at lags
    step_r, step_g = [], []
    for _, a, b, z, T in colour_pairs(matches, gt, 1):
        r = pnp(back_project(a, z, K), b, K)
        step_r.append(r[0] if r else np.full(3, np.nan))
        step_g.append(rotvec(T))
    step_r, step_g = np.array(step_r), np.array(step_g)
    ok = np.isfinite(step_r).all(1)
    lags = {}
    for lag in range(-2, 3):
        x = np.roll(step_r, -lag, axis=0)
        m = ok & np.roll(ok, -lag) & (np.arange(len(ok)) + lag >= 0) & (
            np.arange(len(ok)) + lag < len(ok))
        lags[lag] = [float(np.corrcoef(x[m, a], step_g[m, a])[0, 1]) for a in range(3)]
    out["lag_correlation_xyz"] = lags

    # 3. colour PnP on gap-frame pairs; the estimator on the truth's own motion; focal
    rng = np.random.default_rng(0)
    pairs = colour_pairs(matches, gt, gap)
    rows = {"real": ([], [], [], []), "synthetic": ([], [], [], [])}
    focals = (474.0, 500.0, 526.6, 560.0, 585.0)
    reproj = {f: [] for f in focals}
    for _, a, b, z, T in pairs:
        X = back_project(a, z, K)
        r = pnp(X, b, K)
        if r is None:
            continue
        for key, res in (("real", r), ("synthetic", pnp(
                back_project(a, z * (1 + rng.normal(0, 0.1, len(z))), K),
                project(X @ T[:3, :3].T + T[:3, 3], K) + rng.normal(0, 0.4, (len(z), 2)), K))):
            if res is not None:
                for lst, v in zip(rows[key], (rotvec(T), res[0], T[:3, 3], res[1])):
                    lst.append(v)
        for f in focals:
            Kf = K.copy()
            Kf[0, 0] = Kf[1, 1] = f
            Xf = back_project(a, z, Kf)
            reproj[f].append(float(np.median(np.linalg.norm(
                project(Xf @ T[:3, :3].T + T[:3, 3], Kf) - b, axis=1))))
    for key, (g, e, gt_t, et) in rows.items():
        g, e, gt_t, et = map(np.array, (g, e, gt_t, et))
        out[f"colour_pnp_{key}"] = {"pairs": len(g), "rotation_xyz": axis_ratios(g, e),
                                    "translation_xyz": axis_ratios(gt_t, et)}
        if key == "real":
            R_map = np.linalg.lstsq(g, e, rcond=None)[0].T
            t_map = np.linalg.lstsq(np.column_stack([gt_t, g]), et, rcond=None)[0].T
    out["gt_reprojection_median_px_by_colour_focal"] = {
        str(f): float(np.median(v)) for f, v in reproj.items()}

    # 4. depth alone: contour fits between depth frames, depth K, depth-camera poses
    T_depth = np.stack([np.loadtxt(data / f"frame-{m:06d}.pose.txt") for m in numbers])
    contours = {}

    def depth_contours(i):
        if i not in contours:
            uv, z = edge_points(read_depth(data / f"frame-{numbers[i]:06d}.depth.png"))
            e = np.zeros((480, 640), np.uint8)
            e[uv[:, 1].astype(int), uv[:, 0].astype(int)] = 1
            contours[i] = (uv, z, cv2.distanceTransform((e == 0).astype(np.uint8),
                                                          cv2.DIST_L2, 5))
        return contours[i]

    dgap, Kd = 2 * gap, rig.K_depth
    g_r, e_r, g_t, e_t, by_f = [], [], [], [], {f: [] for f in (527.0, 555.0, 585.0, 615.0)}
    for i in range(0, len(numbers) - dgap, args.depth_step):
        (uv, z, _), (_, _, dist) = depth_contours(i), depth_contours(i + dgap)
        T = np.linalg.inv(T_depth[i + dgap]) @ T_depth[i]
        r, t = depth_contour_fit(uv, z, dist, Kd, np.r_[rotvec(T), T[:3, 3]])
        for lst, v in zip((g_r, e_r, g_t, e_t), (rotvec(T), r, T[:3, 3], t)):
            lst.append(v)
        for f in by_f:
            Kf = Kd.copy()
            Kf[0, 0] = Kf[1, 1] = f
            X = back_project(uv, z, Kf) @ T[:3, :3].T + T[:3, 3]
            by_f[f].append(edge_alignment_cost(project(X, Kf), dist))
    g_r, e_r, g_t, e_t = map(np.array, (g_r, e_r, g_t, e_t))
    out["depth_contours"] = {"pairs": len(g_r), "gap": dgap,
                             "rotation_xyz": axis_ratios(g_r, e_r),
                             "translation_xyz": axis_ratios(g_t, e_t),
                             "gt_contour_distance_px_by_depth_focal": {
                                 str(f): float(np.mean(v)) for f, v in by_f.items()}}

    # 5. the truth's steps through the measured relation, chained per benchmark segment
    steps = [np.linalg.inv(gt.T_world_cam[i + 1]) @ gt.T_world_cam[i]
             for i in range(len(numbers) - 1)]
    sr = np.array([rotvec(T) for T in steps])
    st = np.array([T[:3, 3] for T in steps])
    starts = segment_starts(len(numbers), 8, 50)
    out["bound_ate_pct"] = chain_ate(sr @ R_map.T, st @ t_map[:, :3].T + sr @ t_map[:, 3:].T,
                                     gt.T_world_cam, starts, 50)
    out["maps"] = {"rotation": R_map.tolist(), "translation_and_rotation": t_map.tolist()}
    out["wall_time_s"] = time.perf_counter() - t0

    rep = out["repeats"]
    fmt = lambda v: " / ".join(f"{x:.3f}" for x in v)  # noqa: E731
    print(f"7-Scenes {data.name}, {len(numbers)} frames ({out['wall_time_s']:.0f} s)\n")
    print("| measurement | x / y / z (or value) |\n|---|---|")
    print(f"| repeated files: colour, depth, at the same index | {rep['colour']}, "
          f"{rep['depth']}, {rep['same_index']} |")
    print(f"| frames given another frame's truth; of them with other depth | "
          f"{rep['frames_moved']}; {rep['depth_changed']} |")
    print(f"| depth contours to colour edges, own -> matched (closer in) | "
          f"{rep['edge_cost_own_px']:.2f} -> {rep['edge_cost_matched_px']:.2f} px "
          f"({rep['matched_depth_closer']} of {rep['depth_changed']}) |")
    for lag, v in lags.items():
        print(f"| per-frame rotation vs truth, correlation at lag {lag:+d} | {fmt(v)} |")
    for key in ("real", "synthetic"):
        c = out[f"colour_pnp_{key}"]
        what = "colour frames" if key == "real" else "the truth's own motion (+noise)"
        print(f"| SIFT-PnP on {what}, {gap}-frame pairs: rotation / truth | "
              f"{fmt(c['rotation_xyz'])} |")
        print(f"| ... translation / truth | {fmt(c['translation_xyz'])} |")
    print("| truth's reprojection error (median px) by colour focal | " + ", ".join(
        f"{f}: {v:.2f}" for f, v in out["gt_reprojection_median_px_by_colour_focal"].items())
        + " |")
    d = out["depth_contours"]
    print(f"| depth contours alone, {dgap}-frame pairs: rotation / truth | "
          f"{fmt(d['rotation_xyz'])} |")
    print(f"| ... translation / truth | {fmt(d['translation_xyz'])} |")
    print("| truth's contour distance (px) by depth focal | " + ", ".join(
        f"{f}: {v:.3f}" for f, v in d["gt_contour_distance_px_by_depth_focal"].items()) + " |")
    print("| truth's steps through the measured relation, chained: ATE % path | "
          + " ".join(f"{v:.2f}" for v in out["bound_ate_pct"])
          + f" (mean {np.mean(out['bound_ate_pct']):.2f}) |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
