"""Streaming latency of each available inference backend.

Per backend, precision, model size and input resolution: the per-frame latency of the
network in streaming steady state (one new frame in: its encoder pass plus the window
network on cached encodings), median and p95 over repeated frames, and frames per second,
with the device name. ``onnxruntime`` runs the fused window graph, so it pays F encoder
passes per window (the table says so in ``enc/frame``); ``onnxruntime-anysize`` is the same
graph exported once per encoder input for every frame size (the default CPU backend's,
:func:`~unihoi_ros.model.export.export_any_size_onnx`); ``onnxruntime-split`` and the torch
variants pay one. Ratios are against torch fp32 on the same device, measured in the same
process; ``x per-size`` compares the any-size graph with the per-size one.

Usage::

    python bench/backends.py --sizes tiny --resolutions 120x160,480x640
    python bench/backends.py --sizes vits14,vitl14 --resolutions 288x384 --device cuda \
        --precisions fp32,fp16,bf16 --frames 50 \
        --backends torch,torch-channels-last,torch-compile,torch-cudagraphs,onnxruntime-split
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from unihoi_ros.backends import TorchBackend
from unihoi_ros.model import UniHOI

DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def stream_latency(backend, h: int, w: int, frames: int, warmup: int, sync) -> np.ndarray:
    """Per-frame seconds of ``encode(new) + infer_window(last 4)`` after ``warmup``."""
    rng = np.random.default_rng(0)
    rgbs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(8)]
    flows = rng.normal(0, 1, (backend.num_frames - 1, h, w, 2)).astype(np.float32)
    cache = [backend.encode(rgbs[i]) for i in range(backend.num_frames)]
    times = []
    for i in range(frames + warmup):
        rgb = rgbs[i % len(rgbs)]
        sync()
        t0 = time.perf_counter()
        cache = [*cache[1:], backend.encode(rgb)]
        backend.infer_window(cache, [rgb] * backend.num_frames, flows)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return np.asarray(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="tiny")
    ap.add_argument("--resolutions", default="120x160,480x640", help="HxW list")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precisions", default="fp32")
    ap.add_argument("--backends", default="torch,onnxruntime,onnxruntime-anysize,"
                    "onnxruntime-split",
                    help="of torch, torch-channels-last, torch-compile, torch-cudagraphs "
                         "(CUDA), onnxruntime, onnxruntime-anysize, onnxruntime-split")
    ap.add_argument("--model", default=None,
                    help="trained weights (path or bundled name; default: random weights)")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: default)")
    ap.add_argument("--json", type=Path, default=Path("bench/results/backends.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="unihoi_bench_"))
    for size in args.sizes.split(","):
        model = (UniHOI.from_pretrained(args.model) if args.model
                 else UniHOI.from_size(size)).eval()
        for res in args.resolutions.split(","):
            h, w = (int(v) for v in res.split("x"))
            for bname in args.backends.split(","):
                for prec in args.precisions.split(","):
                    if prec != "fp32" and not cuda:
                        continue
                    try:
                        backend, enc = make_backend(bname, model, args.device, prec, h, w, tmp)
                    except Exception as exc:  # report unavailable backends, keep going
                        print(f"skip {bname} {prec} {size} {res}: {exc}")
                        continue
                    t = stream_latency(backend, h, w, args.frames, args.warmup, sync)
                    rows.append({"backend": bname, "precision": prec, "size": size,
                                 "height": h, "width": w, "encoder_passes_per_frame": enc,
                                 "median_ms": float(np.median(t) * 1e3),
                                 "p95_ms": float(np.percentile(t, 95) * 1e3),
                                 "fps": float(1.0 / np.median(t)),
                                 "device": device_name(args.device)})
    base = {(r["size"], r["height"], r["width"]): r["median_ms"] for r in rows
            if r["backend"] == "torch" and r["precision"] == "fp32"}
    per_size = {(r["size"], r["height"], r["width"], r["precision"]): r["median_ms"]
                for r in rows if r["backend"] == "onnxruntime"}
    for r in rows:
        ref = base.get((r["size"], r["height"], r["width"]))
        r["speedup_vs_torch_fp32"] = None if ref is None else ref / r["median_ms"]
        if r["backend"] == "onnxruntime-anysize":
            fixed = per_size.get((r["size"], r["height"], r["width"], r["precision"]))
            r["time_vs_per_size_graph"] = None if fixed is None else r["median_ms"] / fixed
    cols = ["backend", "precision", "size", "HxW", "enc/frame", "median_ms", "p95_ms", "fps",
            "x torch32", "x per-size"]
    print(f"device: {device_name(args.device)}")
    print(" | ".join(f"{c:>11s}" for c in cols))
    for r in rows:
        sp = r["speedup_vs_torch_fp32"]
        cells = [r["backend"], r["precision"], r["size"], f"{r['height']}x{r['width']}",
                 str(r["encoder_passes_per_frame"]), f"{r['median_ms']:.1f}",
                 f"{r['p95_ms']:.1f}", f"{r['fps']:.1f}", "-" if sp is None else f"{sp:.2f}",
                 "-" if r.get("time_vs_per_size_graph") is None
                 else f"{r['time_vs_per_size_graph']:.2f}"]
        print(" | ".join(f"{c:>11s}" for c in cells))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "backends", "date": time.strftime("%Y-%m-%d"),
                                     "device": device_name(args.device),
                                     "torch_threads": torch.get_num_threads(), "rows": rows},
                                    indent=2))
    print(f"wrote {args.json}")


#: torch backend options benchmarked as their own rows (the first call compiles: warm-up).
TORCH_VARIANTS = {
    "torch-channels-last": {"channels_last": True},
    "torch-compile": {"compile": True},
    "torch-cudagraphs": {"cuda_graphs": True},
}


def make_backend(name: str, model, device: str, precision: str, h: int, w: int, tmp: Path):
    """``(backend, encoder passes per new frame)``."""
    if name == "torch":
        return TorchBackend(model, device, DTYPES[precision]), 1
    if name in TORCH_VARIANTS:  # on a copy: channels-last rewrites the weights in place
        return TorchBackend(copy.deepcopy(model), device, DTYPES[precision],
                            **TORCH_VARIANTS[name]), 1
    if name == "onnxruntime":
        from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
        from unihoi_ros.model.export import export_onnx

        path = export_onnx(model, tmp / f"{model.config.size}_{h}x{w}.onnx", h, w)
        provs = (("CUDAExecutionProvider", "CPUExecutionProvider") if device.startswith("cuda")
                 else ("CPUExecutionProvider",))
        return OnnxRuntimeBackend(path, provs), model.config.frames
    if name == "onnxruntime-anysize":
        from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
        from unihoi_ros.model.export import export_any_size_onnx

        hh, ww = model.network_input_shape(h, w)
        path = export_any_size_onnx(model, tmp / f"{model.config.size}_net{hh}x{ww}.onnx",
                                    hh, ww)
        provs = (("CUDAExecutionProvider", "CPUExecutionProvider") if device.startswith("cuda")
                 else ("CPUExecutionProvider",))
        return OnnxRuntimeBackend(path, provs), model.config.frames
    if name == "onnxruntime-split":
        from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
        from unihoi_ros.model.export import export_split_onnx

        enc, _ = export_split_onnx(model, tmp / f"{model.config.size}_{h}x{w}.onnx", h, w)
        provs = (("CUDAExecutionProvider", "CPUExecutionProvider") if device.startswith("cuda")
                 else ("CPUExecutionProvider",))
        return OnnxRuntimeBackend(enc, provs), 1
    raise ValueError(f"unknown backend {name}")


if __name__ == "__main__":
    main()
