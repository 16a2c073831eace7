"""Long-term 3D point tracks (unihoi_ros.tracks): accuracy on the sim's exact tracks and cost.

Accuracy: never-trained synthetic clips (seeds >= 20000) streamed through ``Reconstructor``
with the oracle backend (exact depth and K: the tracker alone, poses from the pipeline's
DIS + PnP) and with the bundled ``unihoi-tiny`` model (as is, and with the clip's true K in place of
its own, to tell depth errors from intrinsics errors); the clip's ground-truth queries are
tracked with :func:`unihoi_ros.tracks.track_queries` and scored with
:func:`unihoi_ros.tracks.evaluate_tracks`: after one median-ratio scale fit per clip, the
fraction of visible points within 2 / 5 / 10 cm, dynamic and static apart, next to the
no-tracking baseline (each query held where it was first seen), both in the same process.

Cost: ms per ``PointTracker.update`` (median over frames, median of repeats) at each size
on one thread, for the default (accurate) and the fast setting, next to the ms per frame
of the tiny network in ``Reconstructor.push`` measured in the same process.

Usage: ``python bench/tracks.py [--seeds 20000-20003] [--frames 48] [--size 240x320]
[--cost-sizes 120x160,480x640] [--repeats 3] [--no-model]``
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

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.backends.factory import load_backend
from unihoi_ros.flow import DISFlow
from unihoi_ros.pipeline import OracleBackend, Reconstructor
from unihoi_ros.sim import make_sequence
from unihoi_ros.tracks import PointTracker, TrackerConfig, evaluate_tracks

KINDS = ("dynamic", "static")
KEYS = ("2cm", "5cm", "10cm")
#: The cheaper setting for a live tracker on a slow CPU (see bench/TRACKS.md).
FAST = TrackerConfig(method="lk+dense", lk_window=9, dense_max_side=160)


class KnownK(Backend):
    """Backend wrapper: the model's depth and confidence with the clip's true K (isolates
    the depth from the intrinsics, which the bundled model gets wrong)."""

    def __init__(self, inner, K) -> None:
        self.inner, self.K = inner, np.asarray(K, np.float64)
        self.name, self.device, self.num_frames = "known-K", "cpu", inner.num_frames

    def encode(self, rgb):
        return self.inner.encode(rgb)

    def infer_window(self, features, rgbs, flows):
        p = self.inner.infer_window(features, rgbs, flows)
        return WindowPrediction(p.depth, self.K, p.confidence)


def stream(backend, seq) -> tuple[list, float]:
    """All results of ``seq`` through a reconstructor, and the median ms per push."""
    rec = Reconstructor(backend, DISFlow())
    ms = []
    for stamp, rgb in zip(seq.stamps_ns, seq.rgb):
        t0 = time.perf_counter()
        rec.push(int(stamp), rgb)
        ms.append((time.perf_counter() - t0) * 1e3)
    return rec.flush(), float(np.median(ms[4:] if len(ms) > 8 else ms))


def accuracy(args, model) -> list[dict]:
    rows = []
    lo, hi = (int(v) for v in args.seeds.split("-"))
    h, w = (int(v) for v in args.size.split("x"))
    for seed in range(lo, hi + 1):
        seq = make_sequence(seed=seed, num_frames=args.frames, height=h, width=w)
        backends = [("oracle", OracleBackend(seq))]
        if model is not None:
            backends.append(("unihoi-tiny", model))
            backends.append(("tiny+true K", KnownK(model, seq.K)))
        for name, backend in backends:
            results, _ = stream(backend, seq)
            t0 = time.perf_counter()
            ev = evaluate_tracks(results, seq)
            rows.append({"seed": seed, "depth": name, "eval_s": time.perf_counter() - t0,
                         **ev})
            print(f"seed {seed} {name:12s} dyn@2cm {ev['tracker']['dynamic']['2cm']:.3f} "
                  f"(hold {ev['hold']['dynamic']['2cm']:.3f})  static@5cm "
                  f"{ev['tracker']['static']['5cm']:.3f} (hold "
                  f"{ev['hold']['static']['5cm']:.3f})  scale {ev['tracker']['scale']:.3f}",
                  flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    """Mean over clips per depth source, method, kind and threshold."""
    out: dict = {}
    for depth in sorted({r["depth"] for r in rows}):
        sel = [r for r in rows if r["depth"] == depth]
        out[depth] = {
            who: {k: {t: float(np.mean([r[who][k][t] for r in sel])) for t in KEYS}
                  for k in KINDS}
            for who in ("tracker", "hold")
        }
        out[depth]["scale"] = float(np.mean([r["tracker"]["scale"] for r in sel]))
        out[depth]["occlusion_accuracy"] = float(
            np.mean([r["tracker"]["occlusion_accuracy"] for r in sel]))
    return out


def cost(args, model) -> list[dict]:
    rows = []
    for size in args.cost_sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        seq = make_sequence(seed=20000, num_frames=args.cost_frames, height=h, width=w)
        results, _ = stream(OracleBackend(seq), seq)
        net_ms = None
        if model is not None:
            net_ms = float(np.median([stream(model, seq)[1] for _ in range(args.repeats)]))
        for name, cfg in (("default", TrackerConfig()), ("fast", FAST)):
            runs = []
            for _ in range(args.repeats):
                tracker = PointTracker(cfg)
                ms = []
                for r in results:
                    t0 = time.perf_counter()
                    tracker.update(r)
                    ms.append((time.perf_counter() - t0) * 1e3)
                runs.append(float(np.median(ms[2:])))
            row = {"height": h, "width": w, "setting": name, "tracker_ms": float(np.median(runs)),
                   "network_push_ms": net_ms}
            row["tracker_vs_network"] = row["tracker_ms"] / net_ms if net_ms else None
            rows.append(row)
            print(f"{w}x{h} {name:8s} tracker {row['tracker_ms']:.1f} ms/frame; tiny network "
                  f"push {net_ms if net_ms is None else round(net_ms, 1)} ms/frame", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="20000-20003")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", default="240x320", help="HxW of the accuracy clips")
    ap.add_argument("--cost-sizes", default="120x160,480x640", help="HxW list")
    ap.add_argument("--cost-frames", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-model", action="store_true", help="skip the bundled model")
    ap.add_argument("--cost-only", action="store_true", help="measure the cost only")
    ap.add_argument("--json", type=Path, default=Path("bench/results/tracks.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    model = None if args.no_model else load_backend("unihoi-tiny", "torch", "cpu")
    if args.cost_only:
        out = {"threads": args.threads, "machine": platform.machine(), "cost": cost(args, model)}
        path = args.json.with_name(args.json.stem + "_cost.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2))
        print(f"wrote {path}")
        return
    acc = accuracy(args, model)
    summ = summary(acc)
    print("\nmean over clips: fraction of visible points within d (tracker / no tracking)")
    print(f"{'depth':12s} {'kind':8s} " + " ".join(f"{k:>14s}" for k in KEYS))
    for depth, s in summ.items():
        for kind in KINDS:
            cells = " ".join(f"{s['tracker'][kind][k]:6.3f}/{s['hold'][kind][k]:6.3f} "
                             for k in KEYS)
            print(f"{depth:12s} {kind:8s} {cells}")
    costs = cost(args, model)
    out = {"seeds": args.seeds, "frames": args.frames, "size": args.size,
           "threads": args.threads, "machine": platform.machine(),
           "python": platform.python_version(), "summary": summ, "clips": acc,
           "cost": costs}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
