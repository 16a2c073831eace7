"""Pose accuracy of the streaming geometry path on synthetic clips (oracle depth, DIS flow).

The oracle backend returns exact depth and K and a confidence of 1 on static, 0 on moving
pixels, so the numbers isolate flow + pose solver + window stitching. Five estimators per
clip, on the same DIS flow: our default (PnP + confidence erosion) with confidence weights
and with uniform weights, our Procrustes (trimmed refit + erosion), and the paper's plain
weighted Procrustes with both weightings. With exact depth PnP has no advantage (its gain
is robustness to depth that disagrees between frames: bench/pose_solver.py). Prints a
table and writes JSON.

Usage: ``python bench/pose_accuracy.py [--seeds 100-104] [--frames 60] [--size 240x320]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.flow import DISFlow
from unihoi_ros.geometry.metrics import ate, rpe
from unihoi_ros.pipeline import OracleBackend, Reconstructor, ReconstructorConfig
from unihoi_ros.sim import make_sequence


class Uniform(Backend):
    """Backend wrapper replacing the confidence with ones."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.device, self.num_frames = inner, "uniform", "cpu", 4

    def encode(self, rgb):
        return self.inner.encode(rgb)

    def infer_window(self, f, r, fl):
        p = self.inner.infer_window(f, r, fl)
        return WindowPrediction(p.depth, p.K, np.ones_like(p.confidence))


class Cached:
    """DIS flow computed once per frame pair, shared by the estimators of a clip."""

    name = "dis"

    def __init__(self, preset: str) -> None:
        self.inner, self.cache = DISFlow(preset), {}

    def backward(self, curr, prev, cs, ps):
        if (cs, ps) not in self.cache:
            self.cache[(cs, ps)] = self.inner.backward(curr, prev)
        return self.cache[(cs, ps)]


PAPER = ReconstructorConfig(pose_solver="procrustes", robust_iterations=0,
                            confidence_erosion_px=0)
ESTIMATORS = {
    "default, confidence": (False, ReconstructorConfig()),
    "default, uniform": (True, ReconstructorConfig()),
    "procrustes, confidence": (False, ReconstructorConfig(pose_solver="procrustes")),
    "paper, confidence": (False, PAPER),
    "paper, uniform": (True, PAPER),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="100-104")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", default="240x320", help="HxW")
    ap.add_argument("--preset", default="medium", help="DIS preset")
    ap.add_argument("--json", type=Path, default=Path("bench/results/pose_accuracy.json"))
    args = ap.parse_args()
    lo, hi = (int(v) for v in args.seeds.split("-"))
    h, w = (int(v) for v in args.size.split("x"))
    rows = []
    for seed in range(lo, hi + 1):
        seq = make_sequence(seed, args.frames, h, w)
        gt = np.linalg.inv(seq.T_world_cam[0]) @ seq.T_world_cam
        length = float(np.linalg.norm(np.diff(gt[:, :3, 3], axis=0), axis=1).sum())
        flow = Cached(args.preset)
        row = {"seed": seed, "path_length_m": length}
        for name, (uniform, cfg) in ESTIMATORS.items():
            backend = Uniform(OracleBackend(seq)) if uniform else OracleBackend(seq)
            rec = Reconstructor(backend, flow, cfg)
            for s, f in zip(seq.stamps_ns, seq.rgb):
                rec.push(int(s), f)
            est = np.stack([r.T_world_cam for r in rec.flush()])
            row[name] = {"ate_m": ate(est, gt), "ate_pct_path": 100 * ate(est, gt) / length,
                         "rpe_rot_deg": rpe(est, gt).rot_deg}
        rows.append(row)
    print(f"ATE (Sim3) in % of path length, {len(rows)} clips {args.size} x {args.frames} "
          f"frames, oracle depth, DIS {args.preset}")
    print("seed  path_m  " + "  ".join(f"{n:>20s}" for n in ESTIMATORS))
    for r in rows:
        print(f"{r['seed']:4d}  {r['path_length_m']:6.3f}  " + "  ".join(
            f"{r[n]['ate_pct_path']:19.2f}%" for n in ESTIMATORS))
    means = {n: float(np.mean([r[n]["ate_m"] for r in rows])) for n in ESTIMATORS}
    print("mean ATE [mm]  " + "  ".join(f"{1000 * means[n]:20.2f}" for n in ESTIMATORS))
    print("max RPE rot [deg/frame] (default, confidence): "
          f"{max(r['default, confidence']['rpe_rot_deg'] for r in rows):.3f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "pose_accuracy",
                                     "date": time.strftime("%Y-%m-%d"), "rows": rows,
                                     "mean_ate_m": means}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
