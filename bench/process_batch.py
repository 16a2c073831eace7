"""Throughput of ``unihoi process`` over a corpus on one machine: inputs per hour.

Writes ``--inputs`` synthetic videos (``--size``, ``--frames`` each, MJPG) and processes
them all with the bundled tiny model, as one process and under ``torchrun
--nproc_per_node N`` (gloo on loopback) for each N of ``--ranks``; threads per rank are the
machine's cores divided by N. Each configuration runs ``--repeats`` times into a fresh
output folder; the wall time of the whole command (start-up, model load, planning, the
index) is what counts, and the table gives the median. Outputs are checked: every input
done.

Usage: ``python bench/process_batch.py [--inputs 8] [--frames 30] [--size 120x160]
[--ranks 1,2] [--repeats 3] [--json bench/results/process_batch.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from unihoi_ros.sim import make_sequence

REPO = Path(__file__).resolve().parents[1]


def write_corpus(root: Path, inputs: int, frames: int, height: int, width: int) -> Path:
    """``inputs`` synthetic videos and a manifest listing them; returns the manifest."""
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for k in range(inputs):
        seq = make_sequence(seed=k, num_frames=frames, height=height, width=width)
        path = root / f"clip{k:03d}.avi"
        vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), seq.fps,
                             (width, height))
        for f in seq.rgb:
            vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        vw.release()
        names.append(path.name)
    manifest = root / "manifest.txt"
    manifest.write_text("\n".join(names) + "\n")
    return manifest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(manifest: Path, out: Path, ranks: int, threads: int, model: str) -> float:
    """Wall seconds of one ``unihoi process`` over the manifest with ``ranks`` processes."""
    args = ["process", str(manifest), "-o", str(out), "--model", model, "--threads",
            str(threads), "--no-progress"]
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo",
           "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if ranks == 1:
        cmd = [sys.executable, "-m", "unihoi_ros.cli", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
               "--nproc_per_node", str(ranks), "--master_addr", "127.0.0.1", "--master_port",
               str(_free_port()), "-m", "unihoi_ros.cli", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    summary = json.loads((out / "index.json").read_text())["summary"]
    if summary["done"] != summary["inputs"]:
        raise RuntimeError(f"not every input was processed: {summary}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=8)
    ap.add_argument("--frames", type=int, default=30, help="frames per input")
    ap.add_argument("--size", default="120x160", help="HxW of the videos")
    ap.add_argument("--ranks", default="1,2", help="process counts to compare")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="unihoi-tiny")
    ap.add_argument("--json", type=Path, default=Path("bench/results/process_batch.json"))
    args = ap.parse_args()
    h, w = (int(x) for x in args.size.split("x"))
    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="unihoi_bench_") as tmp:
        manifest = write_corpus(Path(tmp) / "corpus", args.inputs, args.frames, h, w)
        for ranks in (int(r) for r in args.ranks.split(",")):
            threads = max(1, cores // ranks)
            walls = []
            for rep in range(args.repeats):
                out = Path(tmp) / f"out_{ranks}_{rep}"
                walls.append(run_once(manifest, out, ranks, threads, args.model))
                shutil.rmtree(out)
            med = float(np.median(walls))
            rows.append({"ranks": ranks, "threads_per_rank": threads, "wall_s": walls,
                         "median_wall_s": med, "inputs_per_hour": args.inputs / med * 3600,
                         "frames_per_s": args.inputs * args.frames / med})
    print(f"{args.inputs} inputs of {args.frames} frames at {h}x{w} ({args.model}, "
          f"{cores} cores, median of {args.repeats}):")
    print(f"{'ranks':>5} {'threads':>7} {'wall s':>8} {'inputs/h':>9} {'frames/s':>9}")
    for r in rows:
        print(f"{r['ranks']:>5} {r['threads_per_rank']:>7} {r['median_wall_s']:>8.1f} "
              f"{r['inputs_per_hour']:>9.0f} {r['frames_per_s']:>9.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "inputs": args.inputs, "frames": args.frames, "height": h, "width": w,
        "model": args.model, "repeats": args.repeats, "cpu_count": cores,
        "machine": platform.machine(), "processor": platform.processor(),
        "python": platform.python_version(), "rows": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
