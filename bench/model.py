"""Benchmark the window network: parameters, GFLOPs, CPU time and peak memory.

For each size and input size: parameter count, estimated GFLOPs per window (4 frames) and
per new frame with encoder caching (one encoder pass + the rest of the window), CPU
milliseconds per window (median of repeated runs, random weights, ``torch.inference_mode``)
and the peak resident memory of a fresh process. Printed as a table beside the authors'
published cost (``reference/egomono4d/README.md``: 2 CPU threads, 288x384, random weights),
and written as JSON with ``--json PATH``.

    python bench/model.py --sizes tiny vits14 --inputs 288x384 --threads 2 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

# Authors' code on this machine kind (2 threads, 288x384, model only, no flow).
AUTHORS = {
    "vitl14": {"ms_per_window": 36000.0, "peak_gib": 9.8},
    "vits14": {"ms_per_window": 16000.0, "peak_gib": 8.5},
}


def _flops(size: str, h: int, w: int) -> tuple[float, float]:
    """GFLOPs per window and per new frame (FlopCounterMode on the meta device)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from unihoi_ros.model import UniHOI

    with torch.device("meta"):
        model = UniHOI.from_size(size).eval()
        frames = torch.rand(1, 4, 3, h, w)
        flows = torch.zeros(1, 3, 2, h, w)
        with FlopCounterMode(display=False) as total, torch.no_grad():
            model(frames, flows)
        with FlopCounterMode(display=False) as enc, torch.no_grad():
            model.encode(frames[:, 0])
    t, e = total.get_total_flops() / 1e9, enc.get_total_flops() / 1e9
    return t, t - 3 * e  # a cached stream: one encoder pass + everything after it


def _linear_rates(dim: int, runs: int) -> dict[str, float]:
    """This CPU's fp32 rate (GFLOP/s) on the encoder's largest product (tokens of a 4-frame
    window x D @ D x 4D): MKL's sgemm (``torch.addmm``) and the oneDNN path the network's
    linear layers take on the CPU (:mod:`unihoi_ros.model.linear`)."""
    import torch

    from unihoi_ros.model.linear import linear

    x, w, b = torch.randn(4 * 1201, dim), torch.randn(4 * dim, dim), torch.randn(4 * dim)
    flop = 2 * x.shape[0] * dim * 4 * dim
    out = {}
    for name, fn in (("mkl_sgemm", lambda: torch.addmm(b, x, w.T)),
                     ("onednn_linear", lambda: linear(x, w, b))):
        with torch.inference_mode():
            fn()
            rates = []
            for _ in range(max(3, runs)):
                t = time.perf_counter()
                fn()
                rates.append(flop / (time.perf_counter() - t) / 1e9)
        out[name] = statistics.median(rates)
    return out


def _measure(size: str, h: int, w: int, threads: int, runs: int, tuned: bool) -> dict:
    """Run inside a fresh process: timings and peak RSS."""
    import torch

    import unihoi_ros  # noqa: F401  (sets THP_MEM_ALLOC_ENABLE before torch allocates)
    from unihoi_ros.model import UniHOI
    from unihoi_ros.model.cpu_memory import allocator_settings, limit_heap_retention

    if tuned:
        limit_heap_retention()  # what TorchBackend does on the CPU for ViT sizes
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = UniHOI.from_size(size).eval()
    frames = torch.rand(1, 4, 3, h, w)
    flows = torch.randn(1, 3, 2, h, w)
    times, stream = [], []
    with torch.inference_mode():
        model(frames, flows)  # warm-up
        for _ in range(runs):
            t = time.perf_counter()
            model(frames, flows)
            times.append(1000 * (time.perf_counter() - t))
        cache = [model.encode(frames[:, i]) for i in range(4)]
        for _ in range(runs):
            t = time.perf_counter()
            cache = [*cache[1:], model.encode(frames[:, 3])]
            model.forward_window(cache, flows)
            stream.append(1000 * (time.perf_counter() - t))
    return {
        "linear_gflops": _linear_rates(model.config.embed_dim, runs),
        "ms_per_window": statistics.median(times),
        "ms_per_new_frame_cached": statistics.median(stream),
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "runs": runs,
        "threads": threads,
        "allocator": allocator_settings(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["tiny", "vits14"])
    ap.add_argument("--inputs", nargs="+", default=["288x384"], help="HxW")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--allocator", nargs="+", default=["tuned"], choices=["tuned", "default"],
                    help="tuned: the package's CPU memory settings (unihoi_ros.model."
                         "cpu_memory); default: PyTorch's and glibc's defaults")
    ap.add_argument("--json", default=None, help="write results here")
    ap.add_argument("--_child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        size, h, w, runs, alloc = args._child
        print(json.dumps(_measure(size, int(h), int(w), args.threads, int(runs),
                                  alloc == "tuned")))
        return 0

    from unihoi_ros.commands.model import model_info

    rows = []
    for size in args.sizes:
        params = model_info(size)["parameters"]
        for hw in args.inputs:
            h, w = (int(x) for x in hw.lower().split("x"))
            gflops, gflops_frame = _flops(size, h, w)
            for alloc in args.allocator:
                env = dict(os.environ, THP_MEM_ALLOC_ENABLE="1" if alloc == "tuned" else "0")
                child = subprocess.run(
                    [sys.executable, __file__, "--threads", str(args.threads),
                     "--_child", size, str(h), str(w), str(args.runs), alloc],
                    capture_output=True, text=True, check=True, env=env,
                )
                m = json.loads(child.stdout.strip().splitlines()[-1])
                row = {"size": size, "input": [h, w], "parameters": params,
                       "gflops_per_window": gflops,
                       "gflops_per_s": gflops / m["ms_per_window"] * 1e3,
                       "gflops_per_new_frame_cached": gflops_frame,
                       "allocator_mode": alloc, **m}
                ref = AUTHORS.get(size) if (h, w) == (288, 384) else None
                if ref:
                    row["authors"] = ref
                    row["speedup"] = ref["ms_per_window"] / m["ms_per_window"]
                    row["memory_ratio"] = ref["peak_gib"] / m["peak_gib"]
                rows.append(row)
                print(f"{size:>7} {h}x{w} [{alloc:>7}]: {params / 1e6:8.1f} M params, "
                      f"{gflops:8.1f} GFLOP/window, {gflops_frame:8.1f} GFLOP/new frame, "
                      f"{m['ms_per_window']:9.1f} ms/window "
                      f"({gflops / m['ms_per_window'] * 1e3:.0f} GFLOP/s; products alone: "
                      f"MKL {m['linear_gflops']['mkl_sgemm']:.0f}, oneDNN "
                      f"{m['linear_gflops']['onednn_linear']:.0f} GFLOP/s), "
                      f"{m['ms_per_new_frame_cached']:9.1f} ms/new frame (cached), "
                      f"peak {m['peak_gib']:.2f} GiB"
                      + (f" | authors {ref['ms_per_window']:.0f} ms, {ref['peak_gib']} GiB: "
                         f"{row['speedup']:.2f}x faster, {row['memory_ratio']:.2f}x less memory"
                         if ref else ""), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
