"""Live node throughput over Cyclone DDS: how many frames come back at a camera rate.

A client (this process) publishes ``--frames`` synthetic 120x160 frames at ``--rate`` Hz
(stamp = publish wall time) to ``unihoi run --transport dds`` (a subprocess, bundled model,
default settings unless ``--node-args``), and counts the ``depth/image`` messages that come
back; latency = receive wall time - stamp. In the same run the reconstructor alone
(``Reconstructor.feed`` on the same frames, this process, with the node's default backend
and thread policy; and with the torch backend for reference) gives the baseline per-frame
time, so the table shows node / alone as a ratio (a variant with ``--backend torch`` is
compared with torch alone).

The default backend on the CPU is the bundled model's any-size ONNX graph, shipped with the
package for 4:3 and 16:9 frames (``unihoi_ros.backends.onnx_graph_cache``); another size's is
exported once and cached: it is exported (or found) here first, its time reported as
``first_export_s``. ``--cold`` adds a ``cold`` row: the default node, each run with an
empty model cache (``UNIHOI_CACHE_DIR`` a new empty folder), as a lab's first launch.
The first ten frames' latency is reported beside the rest (``first10_p50_latency_ms``).

Each variant runs ``--repeats`` times; the table shows medians. All DDS traffic stays on
loopback (``unihoi_ros.ros.loopback``), on a domain of its own. Writes
``bench/results/node_rate.json``.

Usage::

    python bench/node_rate.py                                   # default settings
    python bench/node_rate.py --variant threads1="--threads 1"  # more variants
    python bench/node_rate.py --cold                            # + a fresh-cache row
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

from unihoi_ros.ros.loopback import unique_domain_id, use_loopback  # noqa: E402

use_loopback()


def frames(n: int, h: int, w: int) -> np.ndarray:
    from unihoi_ros.sim import make_sequence

    return make_sequence(7, n, h, w).rgb


def run_node_once(node_args: list[str], rgb: np.ndarray, rate: float, domain: int,
                  log_path: Path, cold: bool = False) -> dict:
    """One node run: frames in at ``rate``, depth images back; counts and latencies.
    ``cold``: the node starts with an empty model cache (a first launch)."""
    from unihoi_ros.ros import dds
    from unihoi_ros.ros import messages as M

    cmd = [sys.executable, "-m", "unihoi_ros.cli", "run", "--transport", "dds",
           "--domain-id", str(domain), "--namespace", "/bench", "--input-topic",
           "/bench/image", *node_args]
    log = open(log_path, "w")
    env = dict(os.environ)
    cache = tempfile.TemporaryDirectory(prefix="unihoi_cold_cache_") if cold else None
    if cache is not None:
        env["UNIHOI_CACHE_DIR"] = cache.name
    t_start = time.monotonic()
    node = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    received: list[tuple[int, int]] = []
    lock = threading.Lock()

    def on_depth(msg) -> None:
        with lock:
            received.append((M.stamp_to_ns(msg.header.stamp), time.time_ns()))

    participant = dds.create_participant(domain)
    sub = dds.Subscriber(participant, "/bench/depth/image", M.IMAGE, callback=on_depth,
                         qos="DEFAULT")
    pub = dds.Publisher(participant, "/bench/image", M.IMAGE, qos="SENSOR_DATA")
    try:
        if not (pub.wait_for_subscribers(1, timeout=120) and
                sub.wait_for_publishers(1, timeout=60)):
            raise RuntimeError(f"node did not come up: {log_path.read_text()[-2000:]}")
        ready_s = time.monotonic() - t_start
        time.sleep(0.5)
        period = 1.0 / rate
        t_next = time.monotonic()
        sent = []
        for f in rgb:
            stamp = time.time_ns()
            pub.publish(M.rgb_to_image(f, stamp, "bench_camera_optical"))
            sent.append(stamp)
            t_next += period
            time.sleep(max(0.0, t_next - time.monotonic()))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                if len(received) >= len(sent):
                    break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        node.send_signal(2)
        try:
            node.wait(30)
        except subprocess.TimeoutExpired:
            node.kill()
        log.close()
        sub.close()
        pub.close()
        exported = sorted(p.name for p in Path(cache.name).rglob("*.onnx")) if cache else []
        if cache is not None:
            cache.cleanup()
    summary = {}
    for line in log_path.read_text().splitlines():
        if line.startswith("unihoi run summary: "):
            summary = json.loads(line[len("unihoi run summary: "):])
    with lock:
        got = [(s, r) for s, r in received if s in set(sent)]
    lat = np.array([(r - s) / 1e6 for s, r in got]) if got else np.zeros(0)
    first = np.array([(r - s) / 1e6 for s, r in got if s in set(sent[:10])])
    return {"sent": len(sent), "published": len(got), "cold": cold,
            "ready_s": ready_s, "exported_into_cache": exported,
            "first10_p50_latency_ms": float(np.median(first)) if first.size else None,
            "p50_latency_ms": float(np.median(lat)) if lat.size else None,
            "p95_latency_ms": float(np.percentile(lat, 95)) if lat.size else None,
            "node_inference_ms": summary.get("mean_inference_ms"),
            "stages_ms": summary.get("stages_ms", {}),
            "drops": summary.get("drops", {})}


def reconstructor_alone(rgb: np.ndarray, backend: str = "auto", full_window: bool = False
                        ) -> tuple[float, str, float]:
    """Median ms per frame of ``Reconstructor.feed`` with the node's default settings and
    thread policy on ``backend``, the backend's description, and the seconds it took to
    get ready for the frames' size (a cached ONNX graph: exported if missing, so the node
    runs find it in the cache). ``full_window``: decode every frame of each window
    (``ReconstructorConfig.decode_full_window``; by default a window decodes only its new
    frame and the one before)."""
    from unihoi_ros.flow import DISFlow
    from unihoi_ros.pipeline import Reconstructor
    from unihoi_ros.ros.params import NodeParams
    from unihoi_ros.threads import apply_thread_policy

    params = dataclasses.replace(NodeParams.load(), backend=backend, device="cpu")
    apply_thread_policy(params.thread_policy())
    loaded = params.load_backend()
    t0 = time.perf_counter()
    loaded.prepare(rgb.shape[1:3])
    prepare_s = time.perf_counter() - t0
    config = dataclasses.replace(params.reconstructor_config(), decode_full_window=full_window)
    rec = Reconstructor(loaded, DISFlow(params.flow_preset), config)
    times = []
    for i, f in enumerate(rgb):
        t0 = time.perf_counter()
        rec.feed(1_000_000_000 + i * 66_666_667, f)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times[4:])), loaded.describe(), prepare_s


def _backend_flag(flags: list[str]) -> str:
    """The ``--backend`` value among ``unihoi run`` flags (``auto`` when absent)."""
    for i, flag in enumerate(flags):
        if flag == "--backend" and i + 1 < len(flags):
            return flags[i + 1]
        if flag.startswith("--backend="):
            return flag.split("=", 1)[1]
    return "auto"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rate", type=float, default=15.0)
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=ARGS",
                    help="extra node variant: a name and `unihoi run` flags")
    ap.add_argument("--cold", action="store_true",
                    help="add a `cold` row: the default node on an empty model cache")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "node_rate.json")
    args = ap.parse_args(argv)
    variants = {"default": []}
    if args.cold:
        variants["cold"] = []
    for v in args.variant:
        name, _, flags = v.partition("=")
        variants[name] = shlex.split(flags)
    rgb = frames(args.frames, args.height, args.width)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from unihoi_ros.backends import onnx_graph_cache

    before = set(onnx_graph_cache.onnx_cache_dir().glob("*.onnx"))
    alone, alone_backend, prepare_s = reconstructor_alone(rgb)  # exports the graph if new
    new = set(onnx_graph_cache.onnx_cache_dir().glob("*.onnx")) - before
    first_export_s = prepare_s if new else None
    alone_torch, _, _ = reconstructor_alone(rgb, "torch")
    alone_full, _, _ = reconstructor_alone(rgb, full_window=True)
    rows = {}
    for name, flags in variants.items():
        runs = [run_node_once(flags, rgb, args.rate, unique_domain_id(17 + k),
                              args.out.with_suffix(f".{name}.{k}.log"), cold=name == "cold")
                for k in range(args.repeats)]
        pub = [r["published"] for r in runs]
        p50 = [r["p50_latency_ms"] for r in runs if r["p50_latency_ms"] is not None]
        inf = [r["node_inference_ms"] for r in runs if r["node_inference_ms"]]
        stage_names = sorted({k for r in runs for k in r["stages_ms"]})
        stages = {k: float(np.median([r["stages_ms"][k] for r in runs if k in r["stages_ms"]]))
                  for k in stage_names}
        first10 = [r["first10_p50_latency_ms"] for r in runs
                   if r["first10_p50_latency_ms"] is not None]
        rows[name] = {"flags": flags, "runs": runs, "stages_ms": stages,
                      "published_median": float(np.median(pub)), "published_min": min(pub),
                      "ready_s": float(np.median([r["ready_s"] for r in runs])),
                      "first10_p50_latency_ms": float(np.median(first10)) if first10 else None,
                      "p50_latency_ms": float(np.median(p50)) if p50 else None,
                      "node_inference_ms": float(np.median(inf)) if inf else None}
        base = alone_torch if _backend_flag(flags) == "torch" else alone
        if rows[name]["node_inference_ms"]:
            rows[name]["ratio_to_alone"] = rows[name]["node_inference_ms"] / base
    result = {"frames": args.frames, "rate_hz": args.rate, "size": [args.height, args.width],
              "reconstructor_alone_ms": alone, "reconstructor_alone_backend": alone_backend,
              "reconstructor_alone_torch_ms": alone_torch,
              "reconstructor_alone_full_window_ms": alone_full,
              "first_export_s": first_export_s, "variants": rows}
    args.out.write_text(json.dumps(result, indent=2))
    print(f"{args.frames} frames of {args.width}x{args.height} at {args.rate:g} Hz over "
          f"Cyclone DDS; reconstructor alone: {alone:.1f} ms/frame (median; {alone_backend}); "
          f"torch alone: {alone_torch:.1f} ms/frame; default backend decoding every frame of "
          f"each window: {alone_full:.1f} ms/frame ({alone / alone_full:.2f}x)")
    if first_export_s is not None:
        print(f"(the cached ONNX graph was exported first: ready in {first_export_s:.1f} s)")
    print(f"{'variant':<14}{'published (median, min)':>26}{'p50 latency':>14}"
          f"{'first 10':>10}{'node ms/frame':>15}{'x alone':>9}{'ready':>8}")
    for name, r in rows.items():
        lat = "-" if r["p50_latency_ms"] is None else f"{r['p50_latency_ms']:.0f} ms"
        lat10 = ("-" if r["first10_p50_latency_ms"] is None
                 else f"{r['first10_p50_latency_ms']:.0f} ms")
        inf = "-" if r["node_inference_ms"] is None else f"{r['node_inference_ms']:.1f}"
        ratio = f"{r['ratio_to_alone']:.2f}" if "ratio_to_alone" in r else "-"
        print(f"{name:<14}{r['published_median']:>18.0f} / {args.frames} ({r['published_min']})"
              f"{lat:>14}{lat10:>10}{inf:>15}{ratio:>9}{r['ready_s']:>7.1f}s")
    for name, r in rows.items():
        exported = sorted({p for run in r["runs"] for p in run["exported_into_cache"]})
        if r["flags"] == [] and name == "cold":
            print(f"cold: graphs exported into the empty cache: {exported or 'none'}")
    print("median ms per frame of each stage in the node (node_*: the node's own work; the "
          "rest: Reconstructor.feed's stages):")
    for name, r in rows.items():
        print(f"  {name:<12}" + ", ".join(f"{k} {v:.2f}" for k, v in r["stages_ms"].items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
