"""Per-stage latency of the streaming reconstructor on the CPU.

Streams synthetic clips through ``Reconstructor`` with the tiny UniHOI model (random
weights: timing does not depend on them) and, as the same-process baseline, the oracle
backend (ground truth in, no network), and reports the median per-frame milliseconds of
each stage: preprocess, encoder, network (adaptor + heads), flow, poses (Procrustes +
window stitching), points. Target: everything but the network under 10 ms per frame at
640x480 on one core.

Usage: ``python bench/streaming.py [--threads 1] [--frames 40] [--repeats 3] [--json PATH]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from unihoi_ros.backends import TorchBackend
from unihoi_ros.flow import DISFlow
from unihoi_ros.model import UniHOI
from unihoi_ros.pipeline import OracleBackend, Reconstructor, ReconstructorConfig
from unihoi_ros.sim import make_sequence

STAGES = ("preprocess", "encoder", "network", "flow", "poses", "points")
HOST_STAGES = ("preprocess", "flow", "poses", "points")  # everything but the network


def stream_once(backend, seq, flow_preset: str, warmup: int) -> dict[str, float]:
    """Median ms per frame of each stage over one pass (after ``warmup`` frames)."""
    rec = Reconstructor(backend, DISFlow(flow_preset), ReconstructorConfig())
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    for i, (stamp, rgb) in enumerate(zip(seq.stamps_ns, seq.rgb)):
        before = _totals(rec)
        rec.push(int(stamp), rgb)
        after = _totals(rec)
        if i >= warmup:
            for s in STAGES:
                per_stage[s].append(after.get(s, 0.0) - before.get(s, 0.0))
    return {s: float(np.median(v)) for s, v in per_stage.items()}


def _totals(rec) -> dict[str, float]:
    return {s: v["mean_ms"] * v["count"] for s, v in rec.stats()["stages_ms"].items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--flow-preset", default="fast", help="DIS preset (fast: live setting)")
    ap.add_argument("--sizes", default="120x160,480x640", help="HxW list")
    ap.add_argument("--json", type=Path, default=Path("bench/results/streaming.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    model = UniHOI.from_size("tiny")
    rows = []
    for size in args.sizes.split(","):
        h, w = (int(x) for x in size.split("x"))
        seq = make_sequence(seed=0, num_frames=args.frames, height=h, width=w)
        for name, backend in (("tiny", TorchBackend(model, "cpu")),
                              ("oracle", OracleBackend(seq))):
            runs = [stream_once(backend, seq, args.flow_preset, warmup=5)
                    for _ in range(args.repeats)]
            med = {s: float(np.median([r[s] for r in runs])) for s in STAGES}
            med["host_total"] = sum(med[s] for s in HOST_STAGES)
            med["total"] = sum(med[s] for s in STAGES)
            rows.append({"backend": name, "height": h, "width": w, **med})
    by_key = {(r["height"], r["width"], r["backend"]): r for r in rows}
    for r in rows:
        base = by_key[(r["height"], r["width"], "oracle")]
        r["total_vs_oracle"] = r["total"] / max(base["total"], 1e-9)

    header = ["backend", "size", *STAGES, "host_total", "total", "x oracle"]
    print(" | ".join(f"{c:>10s}" for c in header))
    for r in rows:
        cells = [r["backend"], f"{r['width']}x{r['height']}"]
        cells += [f"{r[s]:.2f}" for s in (*STAGES, "host_total", "total")]
        cells.append(f"{r['total_vs_oracle']:.2f}")
        print(" | ".join(f"{c:>10s}" for c in cells))
    print("(median ms per frame; host_total = everything but the network; target < 10 ms "
          "at 640x480 on one core)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "streaming",
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "frames": args.frames,
        "repeats": args.repeats,
        "flow_preset": args.flow_preset,
        "rows": rows,
    }, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
