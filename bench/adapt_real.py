"""Models adapted with ``unihoi adapt`` against their base on the 7-Scenes benchmark.

Runs :func:`unihoi_ros.evaluation_real.evaluate_real` (the segments of ``bench/real.py``,
640x480, DIS medium, scored in the colour camera) for the base model and each adapted one
in the same process, and prints per segment and mean: median-scaled and metric depth
abs_rel, ATE in % of the path and its ratio to the best-fit straight line, fx error. The
segments a run adapted on are in-sample; ``--segments-from`` runs only the held-out ones
(e.g. ``--segments-from 6`` for an adaptation on the first 300 frames).

Usage: ``python bench/adapt_real.py ADAPTED.safetensors [MORE.safetensors ...]
[--base unihoi-tiny] [--variants model_known_K model] [--segments-from 0]
[--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from unihoi_ros.evaluation_real import RealBenchConfig, _mean, evaluate_real

KEYS = (("abs_rel_scaled", "abs_rel med", "{:.3f}"), ("abs_rel", "abs_rel metric", "{:.3f}"),
        ("ate_pct", "ATE %path", "{:.2f}"), ("ate_vs_line", "/line", "{:.2f}"),
        ("fx_rel", "fx err", "{:.3f}"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("adapted", type=Path, nargs="+")
    ap.add_argument("--base", default="unihoi-tiny")
    ap.add_argument("--variants", nargs="+", default=["model_known_K"],
                    choices=("model", "model_known_K"))
    ap.add_argument("--segments-from", type=int, default=0,
                    help="score only segments from this index on (held-out ones)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from unihoi_ros.backends.factory import load_backend

    out = {}
    t0 = time.perf_counter()
    models = [("base", args.base)] + [(p.stem, str(p)) for p in args.adapted]
    for name, model in models:
        cfg = RealBenchConfig(variants=tuple(args.variants), segments_from=args.segments_from)
        res = evaluate_real(lambda m=model: load_backend(m, "torch", "cpu"), cfg)
        for v, r in res["variants"].items():
            rows = r["segments"]
            out.setdefault(v, {})[name] = {"segments": rows, "mean": _mean(rows)}
    print(f"7-Scenes segments from #{args.segments_from}; base {args.base}, adapted "
          f"{', '.join(map(str, args.adapted))} ({time.perf_counter() - t0:.0f} s)\n")
    for v, models in out.items():
        print(f"**{v}**\n\n| model | segment | " + " | ".join(t for _, t, _ in KEYS) + " |")
        print("|---|---|" + "---|" * len(KEYS))
        for name, r in models.items():
            for row in [*r["segments"], {**r["mean"], "start_frame": "mean"}]:
                cells = [("–" if not np.isfinite(row.get(k, np.nan)) else f.format(row[k]))
                         for k, _, f in KEYS]
                print(f"| {name} | {row['start_frame']} | " + " | ".join(cells) + " |")
        print()
    if args.json:
        args.json.write_text(json.dumps({"segments_from": args.segments_from,
                                         "base": args.base,
                                         "adapted": [str(p) for p in args.adapted],
                                         "variants": out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
