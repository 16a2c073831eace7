"""Synthetic accuracy of stream-setting variants, side by side, on the model card's
never-trained clips (seeds 20000+, 48 frames), each through the streaming pipeline with the
node's defaults (:func:`unihoi_ros.train.benchmark.evaluate_on_synthetic`).

A variant is ``name=field=value[,field=value...]`` of
:class:`~unihoi_ros.pipeline.settings.StreamSettings` (e.g. ``mirror=mirror_average=true``,
``past=past_refinement=true``); the default settings always run first, as ``default``.

Usage: ``python bench/synthetic_variants.py [--model unihoi-tiny] [--clips 40] [--size
120x160] [--known-K] --variant mirror=mirror_average=true [--json out.json]``. Prints the
headline table (one column per variant) and the per-clip ATE wins against the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from unihoi_ros.pipeline.settings import StreamSettings
from unihoi_ros.train.benchmark import evaluate_on_synthetic, format_table


def parse_variant(text: str) -> tuple[str, dict]:
    """``name=field=value,...`` -> ``(name, {field: value})`` (``true``/``false``, numbers
    and strings as they read)."""
    name, _, fields = text.partition("=")
    values = {}
    for item in filter(None, fields.split(",")):
        key, _, raw = item.partition("=")
        low = raw.strip().lower()
        value: object = raw
        if low in ("true", "false"):
            value = low == "true"
        else:
            try:
                value = float(raw) if "." in raw else int(raw)
            except ValueError:
                pass
        values[key.strip()] = value
    if not name or not values:
        raise argparse.ArgumentTypeError(f"a variant is name=field=value[,...], got {text!r}")
    return name, values


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="unihoi-tiny")
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--first-seed", type=int, default=20000)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", default="120x160", metavar="HxW")
    ap.add_argument("--known-K", action="store_true", help="give the clips' true K")
    ap.add_argument("--variant", type=parse_variant, action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    h, w = (int(v) for v in args.size.lower().split("x"))
    seeds = range(args.first_seed, args.first_seed + args.clips)
    base = StreamSettings(model=args.model, backend="torch", device="cpu")
    runs, columns = {}, {}
    for name, fields in [("default", {}), *args.variant]:
        settings = dataclasses.replace(base, **fields)
        t0 = time.perf_counter()
        result = evaluate_on_synthetic(
            settings.load_backend(), seeds=seeds, num_frames=args.frames, height=h, width=w,
            reconstructor_config=settings.reconstructor_config(), known_K=args.known_K)
        runs[name] = {"fields": fields, "mean": result["mean"],
                      "per_clip": [c["metrics"] for c in result["clips"]],
                      "wall_time_s": time.perf_counter() - t0}
        columns[name] = result["mean"]
    print(f"{args.clips} never-trained clips (seeds {seeds.start}-{seeds.stop - 1}), "
          f"{args.frames} frames at {w}x{h}, model {args.model}"
          + (", known K" if args.known_K else "") + "\n")
    print(format_table(columns))
    default_ate = np.array([m["ate_pct"] for m in runs["default"]["per_clip"]])
    for name in list(runs)[1:]:
        ate = np.array([m["ate_pct"] for m in runs[name]["per_clip"]])
        print(f"\n{name}: ATE lower than the default's on {int((ate < default_ate).sum())} "
              f"of {len(ate)} clips; {runs[name]['wall_time_s']:.0f} s against "
              f"{runs['default']['wall_time_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(
            {"benchmark": "synthetic_variants", "date": time.strftime("%Y-%m-%d"),
             "settings": {"model": args.model, "seeds": [seeds.start, seeds.stop - 1],
                          "frames": args.frames, "size": [h, w], "known_K": args.known_K},
             "runs": runs}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
