"""Pose solvers of the streaming pipeline with the bundled network (not an oracle).

Streams held-out synthetic clips through ``Reconstructor(TorchBackend(unihoi-tiny),
DISFlow())`` once per solver and scores them as ``unihoi eval --synthetic`` does
(:func:`unihoi_ros.train.benchmark.evaluate_on_synthetic`):

- ``pnp``: the default (frame t-1's points against frame t's flow pixels);
- ``procrustes``: 3D-3D weighted rigid fit with our trimmed refit and confidence erosion;
- ``paper``: the paper's plain confidence-weighted Procrustes;

next to the constant-depth + identity-pose baseline. It also times the pose stage
(median ms per window over all windows, and its ratio to ``procrustes`` measured in the
same process). Prints a table and writes JSON.

Usage: ``python bench/pose_solver.py [--seeds 10000-10004] [--extra-seeds 20000-20009]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from unihoi_ros.backends.torch_backend import TorchBackend
from unihoi_ros.model.unihoi import UniHOI
from unihoi_ros.pipeline.config import ReconstructorConfig
from unihoi_ros.train.benchmark import evaluate_on_synthetic

SOLVERS = {
    "pnp": ReconstructorConfig(),
    "procrustes": ReconstructorConfig(pose_solver="procrustes"),
    "paper": ReconstructorConfig(pose_solver="procrustes", robust_iterations=0,
                                 confidence_erosion_px=0),
}
METRICS = (("ate_m", 1000, "ATE mm"), ("rpe_trans_m", 1000, "RPE-trans mm"),
           ("rpe_rot_deg", 1, "RPE-rot deg"), ("abs_rel", 1, "abs_rel"),
           ("chamfer_m", 1000, "Chamfer mm"))


def _seeds(text: str) -> list[int]:
    lo, hi = (int(v) for v in text.split("-"))
    return list(range(lo, hi + 1))


def _pose_ms(backend, seeds, cfg) -> float:
    """Median over clips of the pose stage's median time per window (ms)."""
    from unihoi_ros.flow import DISFlow
    from unihoi_ros.pipeline.reconstructor import Reconstructor
    from unihoi_ros.sim import make_sequence

    times = []
    for seed in seeds:
        seq = make_sequence(seed, 32, 120, 160)
        rec = Reconstructor(backend, DISFlow(), cfg)
        for stamp, rgb in zip(seq.stamps_ns, seq.rgb):
            rec.push(int(stamp), rgb)
        times.append(rec.stats()["stages_ms"]["poses"]["median_ms"])
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="10000-10004", help="held-out clips (unihoi eval's)")
    ap.add_argument("--extra-seeds", default="20000-20009",
                    help="more clips never used in training, as a check ('' to skip)")
    ap.add_argument("--json", type=Path, default=Path("bench/results/pose_solver.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    backend = TorchBackend(UniHOI.from_pretrained("unihoi-tiny").eval())
    groups = {"held-out": _seeds(args.seeds)}
    if args.extra_seeds:
        groups["extra"] = _seeds(args.extra_seeds)
    out = {"benchmark": "pose_solver", "date": time.strftime("%Y-%m-%d"), "groups": {}}
    for group, seeds in groups.items():
        cols = {}
        for name, cfg in SOLVERS.items():
            result = evaluate_on_synthetic(backend, seeds=seeds, reconstructor_config=cfg)
            cols[name] = result["mean"]
            baseline = result["baseline_mean"]  # the same for every solver
        cols["baseline"] = baseline
        out["groups"][group] = {"seeds": seeds, "mean": cols}
        print(f"\n{group} clips {seeds[0]}-{seeds[-1]} (mean over {len(seeds)}; baseline = "
              "constant GT-median depth + identity pose)")
        print(f"{'metric':14s}" + "".join(f"{n:>12s}" for n in cols))
        for key, factor, label in METRICS:
            print(f"{label:14s}" + "".join(f"{factor * cols[n][key]:12.3f}" for n in cols))
    timing = {name: _pose_ms(backend, groups["held-out"][:2], cfg)
              for name, cfg in SOLVERS.items()}
    out["pose_stage_ms_median"] = timing
    out["pose_stage_ratio_vs_procrustes"] = {n: timing[n] / timing["procrustes"]
                                             for n in timing}
    print("\npose stage per window, median ms (ratio to procrustes): " + ", ".join(
        f"{n} {t:.2f} ({t / timing['procrustes']:.2f}x)" for n, t in timing.items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
