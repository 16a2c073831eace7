"""``nanmedian_first_axis`` against ``np.nanmedian`` (the baseline, same process).

The multi-view depth (``--refine-depth``, ``past_refinement``, ``unihoi adapt``'s teacher)
takes per-pixel medians of a few maps: the 4 pixels of each 2x2 block (``block_median``,
640x480 -> 320x240) and 2-5 views of a frame (``fuse_views``, ``fuse_depths``). Both
implementations on the same random 240x320 float32 stacks with 40 % NaN; median of
``--repeats`` timings; checks the results are equal bit for bit.

Usage: ``python bench/median.py [--repeats 20] [--json bench/results/median.json]``
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from unihoi_ros.geometry.reductions import nanmedian_first_axis


def _median_ms(fn, x, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def _numpy(x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(x, axis=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", type=Path, default=Path("bench/results/median.json"))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for k in (2, 3, 4, 5):
        x = rng.uniform(0.3, 5.0, (k, 240, 320)).astype(np.float32)
        x[rng.uniform(size=x.shape) < 0.4] = np.nan
        same = bool(np.array_equal(_numpy(x), nanmedian_first_axis(x), equal_nan=True))
        base, new = _median_ms(_numpy, x, args.repeats), _median_ms(nanmedian_first_axis, x,
                                                                    args.repeats)
        rows.append({"maps": k, "numpy_ms": base, "ours_ms": new, "ratio": new / base,
                     "equal": same})
    print("| maps (240x320) | np.nanmedian ms | nanmedian_first_axis ms | ratio | equal |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['maps']} | {r['numpy_ms']:.1f} | {r['ours_ms']:.1f} | {r['ratio']:.2f} | "
              f"{r['equal']} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "median", "repeats": args.repeats,
                                     "rows": rows}, indent=1) + "\n")
    return 0 if all(r["equal"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
