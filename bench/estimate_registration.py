"""Estimate a 7-Scenes colour camera (K_color, T_color_depth) from the shared RGB-D frames.

7-Scenes gives only the depth camera's nominal intrinsics (585, 320, 240) and its poses;
its depth is not registered to colour. The colour camera is found here by the property a
correct registration has: the occluding contours of the depth map
(:func:`unihoi_ros.geometry.registration.edge_points`, near side of a depth jump), projected
into the colour camera, lie on colour edges (Canny). The objective is the mean truncated
distance (pixels) from the projected contours to the nearest colour edge over many frames
(:func:`~unihoi_ros.geometry.registration.edge_alignment_cost`); it is minimised over the
colour focal length ``f`` (``fx = fy``), the principal point ``(cx, cy)`` and the baseline
``tx`` along x (no rotation, as for a Kinect v1 rig): a coarse grid over ``(f, tx)``, then
coordinate descent over all four with halving steps.

Usage: ``python bench/estimate_registration.py [--data DIR] [--every 8] [--json out.json]``
Prints the objective at the depth camera's nominal parameters (no registration), at the
estimate, and the estimate; ``unihoi_ros/io/registration.py`` records its figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from unihoi_ros.geometry.registration import (
    edge_alignment_cost,
    edge_points,
    project_depth_points,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / \
    "7scenes_redkitchen_300_699"
K_DEPTH = np.array([[585.0, 0, 320.0], [0, 585.0, 240.0], [0, 0, 1]])


def load_frames(data: Path, every: int, max_points: int, seed: int = 0):
    """Per frame: contour points ``(uv (N, 2), z (N,))`` and the colour edge distance map."""
    rng = np.random.default_rng(seed)
    colours = sorted(data.glob("frame-*.color.*"))[::every]
    frames = []
    for cpath in tqdm(colours, desc="frames", unit="frame"):
        stem = cpath.name.split(".")[0]
        depth = cv2.imread(str(data / f"{stem}.depth.png"), cv2.IMREAD_UNCHANGED)
        depth = depth.astype(np.float32) / 1000.0
        depth[depth >= 65.535] = 0.0
        uv, z = edge_points(depth)
        if len(z) > max_points:
            pick = rng.choice(len(z), max_points, replace=False)
            uv, z = uv[pick], z[pick]
        grey = cv2.cvtColor(cv2.imread(str(cpath)), cv2.COLOR_BGR2GRAY)
        edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 1.0), 40, 120)
        dist = cv2.distanceTransform((edges == 0).astype(np.uint8), cv2.DIST_L2, 5)
        frames.append((uv, z, dist))
    return frames


def objective(frames, f: float, cx: float, cy: float, tx: float, truncate: float) -> float:
    """Mean over frames of the truncated contour-to-colour-edge distance, pixels."""
    K_color = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]])
    T = np.eye(4)
    T[0, 3] = tx
    costs = [edge_alignment_cost(project_depth_points(uv, z, K_DEPTH, K_color, T)[0], dist,
                                 truncate) for uv, z, dist in frames]
    return float(np.mean(costs))


def estimate(frames, truncate: float = 8.0) -> dict:
    """Coarse grid over (f, tx) at the nominal centre, then coordinate descent."""
    cost = lambda p: objective(frames, *p, truncate=truncate)  # noqa: E731
    grid = list(itertools.product(np.arange(500.0, 591.0, 10.0), np.arange(-0.06, 0.061, 0.02)))
    scores = [cost((f, 320.0, 240.0, tx)) for f, tx in tqdm(grid, desc="grid", unit="pt")]
    f0, tx0 = grid[int(np.argmin(scores))]
    p = np.array([f0, 320.0, 240.0, tx0])
    best = cost(p)
    steps = np.array([5.0, 4.0, 4.0, 0.01])
    with tqdm(desc="descent", unit="round") as bar:
        while steps[0] > 0.1:
            improved = False
            for i in range(4):
                for sign in (1, -1):
                    q = p.copy()
                    q[i] += sign * steps[i]
                    c = cost(q)
                    if c < best - 1e-6:
                        p, best, improved = q, c, True
            if not improved:
                steps = steps / 2
            bar.update(1)
            bar.set_postfix(cost=f"{best:.4f}", f=f"{p[0]:.1f}", tx=f"{p[3]:.4f}")
    return {"f": float(p[0]), "cx": float(p[1]), "cy": float(p[2]), "tx_m": float(p[3]),
            "cost_px": best}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--every", type=int, default=8, help="use every n-th frame")
    ap.add_argument("--max-points", type=int, default=3000, help="contour points per frame")
    ap.add_argument("--truncate", type=float, default=8.0, help="distance cap, pixels")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    frames = load_frames(args.data, args.every, args.max_points)
    unregistered = objective(frames, 585.0, 320.0, 240.0, 0.0, args.truncate)
    est = estimate(frames, args.truncate)
    # sensitivity: the objective one step away from the optimum along f and tx
    around = {
        "f-10": objective(frames, est["f"] - 10, est["cx"], est["cy"], est["tx_m"], args.truncate),
        "f+10": objective(frames, est["f"] + 10, est["cx"], est["cy"], est["tx_m"], args.truncate),
        "tx-1cm": objective(frames, est["f"], est["cx"], est["cy"], est["tx_m"] - 0.01,
                            args.truncate),
        "tx+1cm": objective(frames, est["f"], est["cx"], est["cy"], est["tx_m"] + 0.01,
                            args.truncate),
    }
    out = {"frames": len(frames), "every": args.every, "truncate_px": args.truncate,
           "unregistered_cost_px": unregistered, "estimate": est, "around_estimate": around}
    print(f"frames: {len(frames)} (every {args.every}), distance cap {args.truncate:g} px")
    print(f"objective, unregistered (585, 320, 240, tx 0): {unregistered:.4f} px")
    print(f"objective, estimate: {est['cost_px']:.4f} px at f {est['f']:.2f} cx {est['cx']:.2f} "
          f"cy {est['cy']:.2f} tx {est['tx_m'] * 100:+.2f} cm")
    print("objective around the estimate: " + ", ".join(f"{k} {v:.4f}" for k, v in around.items()))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
