"""Render-speed benchmark of the synthetic world (``unihoi_ros.sim``), on one CPU core.

For each resolution it measures, as the median over repeated runs:

- ``render``: one frame's ray casting + texturing + shading (RGB, depth, body ids);
- ``full``: ``make_sequence`` per frame, i.e. everything a clip costs (world draw and
  coverage preview, rendering, analytic flow with occlusion re-casting, point tracks).

Usage: ``python bench/sim.py [--sizes 160x120 640x480] [--frames 30] [--repeats 5]
[--json bench/results/sim.json]``. Prints a table and writes the numbers as JSON.
"""

from __future__ import annotations

import os

# One core: keep BLAS/OpenMP single-threaded (must precede the numpy import).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from unihoi_ros.sim import make_sequence  # noqa: E402
from unihoi_ros.sim.render import render  # noqa: E402


def _pin_one_core() -> str:
    """Pin this process to a single CPU where the OS allows it; says which."""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"cpu {cpu}"
    return "unpinned"


def bench_size(
    width: int, height: int, frames: int, repeats: int, seed: int
) -> dict[str, float | int]:
    """Median per-frame times (ms) and rates (frames/s) at one resolution."""
    seq = make_sequence(seed, frames, height, width, num_tracks=64)
    render_ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(frames):
            render(seq.world, seq.T_world_body[i], seq.K, seq.T_world_cam[i], height, width)
        render_ms.append((time.perf_counter() - t0) / frames * 1e3)
    full_ms = []
    for r in range(repeats):
        t0 = time.perf_counter()
        make_sequence(seed + 1 + r, frames, height, width)
        full_ms.append((time.perf_counter() - t0) / frames * 1e3)
    render_med, full_med = statistics.median(render_ms), statistics.median(full_ms)
    # The minimum is the least disturbed run (useful on a shared machine); the median is
    # the headline number.
    return {
        "width": width,
        "height": height,
        "frames": frames,
        "repeats": repeats,
        "render_ms": round(render_med, 3),
        "render_fps": round(1e3 / render_med, 2),
        "render_ms_min": round(min(render_ms), 3),
        "full_ms": round(full_med, 3),
        "full_fps": round(1e3 / full_med, 2),
        "full_ms_min": round(min(full_ms), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["160x120", "640x480"], help="WxH list")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=Path("bench/results/sim.json"))
    args = ap.parse_args()
    pinned = _pin_one_core()
    rows = []
    for size in args.sizes:
        w, h = (int(x) for x in size.lower().split("x"))
        rows.append(bench_size(w, h, args.frames, args.repeats, args.seed))
    print(f"unihoi_ros.sim render speed, one core ({pinned}), median of {args.repeats} runs")
    print(
        f"{'size':>9} | {'render ms':>9} | {'render fps':>10} | {'(min ms)':>8}"
        f" | {'full ms':>8} | {'full fps':>8} | {'(min ms)':>8}"
    )
    for r in rows:
        print(
            f"{r['width']:>4}x{r['height']:<4} | {r['render_ms']:>9.2f} | {r['render_fps']:>10.1f}"
            f" | {r['render_ms_min']:>8.2f} | {r['full_ms']:>8.2f} | {r['full_fps']:>8.1f}"
            f" | {r['full_ms_min']:>8.2f}"
        )
    result = {
        "benchmark": "unihoi_ros.sim",
        "date": time.strftime("%Y-%m-%d"),
        "cpu": platform.processor() or platform.machine(),
        "pinned": pinned,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "results": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
