"""Window scale chaining (``ReconstructorConfig.window_scale_chain``) on synthetic clips.

Never-trained selection clips (seeds 30000-30011 by default, the clips pipeline settings
are chosen on; not the model card's 20000+), streamed through
:func:`unihoi_ros.train.benchmark.evaluate_on_synthetic` once per setting, the settings
interleaved clip by clip in one process and sharing the network's window outputs
(``bench/pose_real.py``'s ``SharedNetwork``: same frames and flows, so the same answers).
Prints per setting the mean and median over clips of ATE (% of path), abs_rel metric and
median-scaled, fx error, and each mean's ratio to the first setting; writes JSON.
The real-video side of the experiment is ``bench/pose_real.py --configs ...``
(bench/RESULTS.md, "Window scale chaining").

Usage: ``python bench/scale_chain.py [--leaks 0 0.5 0.2 0.1] [--seeds 30000-30011]
[--frames 48] [--size 120x160] [--model unihoi-tiny] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

KEYS = ("ate_pct", "abs_rel", "abs_rel_scaled", "fx_rel")


def seed_range(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def summarize(rows: dict) -> dict:
    """Per setting and key: mean and median over the clips run so far."""
    out = {}
    for a, segs in rows.items():
        out[a] = {}
        for k in KEYS:
            v = np.array([s[k] for s in segs], float)
            out[a][k] = {"mean": float(np.nanmean(v)), "median": float(np.nanmedian(v))}
    return out


def write(args, rows: dict, summary: dict) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "scale_chain", "seeds": args.seeds,
                                     "frames": args.frames, "size": args.size,
                                     "model": args.model, "clips": {str(a): r for a, r in
                                                                     rows.items()},
                                     "summary": {str(a): m for a, m in summary.items()}},
                                    indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    import torch
    from pose_real import SharedNetwork

    from unihoi_ros.backends.factory import load_backend
    from unihoi_ros.pipeline.config import ReconstructorConfig
    from unihoi_ros.train.benchmark import evaluate_on_synthetic

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--leaks", nargs="+", type=float, default=[0.0, 0.5, 0.2, 0.1])
    ap.add_argument("--seeds", default="30000-30011")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", default="120x160", metavar="HxW")
    ap.add_argument("--model", default="unihoi-tiny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("bench/results/scale_chain.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.lower().split("x"))
    net = SharedNetwork(load_backend(args.model, "torch", "cpu"))
    rows = {a: [] for a in args.leaks}
    t0 = time.perf_counter()
    for seed in seed_range(args.seeds):
        for a in args.leaks:  # interleaved: every setting on the same clip, same load
            r = evaluate_on_synthetic(net, [seed], args.frames, h, w,
                                      ReconstructorConfig(window_scale_chain=a), tracks=False)
            rows[a].append({"seed": seed, **{k: r["clips"][0]["metrics"][k] for k in KEYS}})
        net.forget()
        print(f"seed {seed}: " + "; ".join(
            f"a={a} " + " ".join(f"{k} {rows[a][-1][k]:.4f}" for k in KEYS)
            for a in args.leaks), flush=True)
        write(args, rows, summarize(rows))  # partial results survive an interrupted run
    summary = summarize(rows)
    ref = args.leaks[0]
    print(f"\n{len(rows[ref])} clips (seeds {args.seeds}), {args.frames} frames, {w}x{h}, "
          f"{args.model}, DIS, tracks off ({time.perf_counter() - t0:.0f} s)\n")
    print("| window_scale_chain | ATE % mean (median) | x off | abs_rel | abs_rel med | fx err |")
    print("|---|---|---|---|---|---|")
    for a, m in summary.items():
        print(f"| {a:g} | {m['ate_pct']['mean']:.3f} ({m['ate_pct']['median']:.3f}) | "
              f"{m['ate_pct']['mean'] / summary[ref]['ate_pct']['mean']:.3f} | "
              f"{m['abs_rel']['mean']:.4f} | {m['abs_rel_scaled']['mean']:.4f} | "
              f"{m['fx_rel']['mean']:.4f} |")
    write(args, rows, summary)
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
