"""Soak test of ``unihoi run --transport dds``: a fast stream for a long time.

Starts the node (a subprocess, ``random:tiny`` by default), publishes synthetic frames over
Cyclone DDS at ``--rate`` Hz (default 60, faster than the CPU model: live mode must drop
and keep latency bounded) for ``--seconds``, and records per window of ``--window``
seconds: input and output rates, missed frames (node diagnostics, by reason), p50/p99
frame-to-topic latency (``depth/image`` receive time minus the input stamp, which is the
publish wall time) and the node's resident memory (``/proc/<pid>/status``).

After ``--warmup`` seconds the run passes when resident memory grows less than 5 % and
the p50 latency of the last third is not above the first third's (+20 % + 5 ms).

Writes ``<out>.json`` and ``<out>.png`` (matplotlib) and prints a table. All DDS traffic
stays on loopback (``unihoi_ros.ros.loopback``), on a domain of its own.

Usage::

    python bench/soak.py --seconds 600                      # the record run
    python bench/soak.py --seconds 5 --warmup 2 --window 1  # CI smoke
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

from unihoi_ros.ros.loopback import unique_domain_id, use_loopback  # noqa: E402

use_loopback()  # before any participant: this process and the node stay on loopback


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB (Linux), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class Collector:
    """Thread-safe record of publishes, receptions and diagnostics."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.published: list[int] = []  # publish wall times (= stamps), ns
        self.received: list[tuple[int, int]] = []  # (receive ns, stamp ns) of depth/image
        self.diagnostics: list[tuple[float, dict[str, str]]] = []  # (monotonic, values)

    def on_depth(self, msg) -> None:
        from unihoi_ros.ros.messages import stamp_to_ns

        now = time.time_ns()
        with self.lock:
            self.received.append((now, stamp_to_ns(msg.header.stamp)))

    def on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith("unihoi_node"):
                with self.lock:
                    self.diagnostics.append(
                        (time.monotonic(), {kv.key: kv.value for kv in status.values}))


def start_node(args, domain: int, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "unihoi_ros.cli", "run", "--transport", "dds",
           "--domain-id", str(domain), "--input-topic", "image", "--model", args.model,
           "--threads", str(args.threads)]
    if args.process_height:
        cmd += ["--process-height", str(args.process_height),
                "--process-width", str(args.process_width)]
    env = use_loopback(dict(os.environ))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    with open(log_path, "w") as fh:
        return subprocess.Popen(cmd, env=env, cwd=str(REPO), stdout=fh,
                                stderr=subprocess.STDOUT, text=True)


def publish_loop(pub, frames: list, rate: float, stop: threading.Event, col: Collector) -> None:
    """Publish ``frames`` cyclically at ``rate`` Hz (absolute schedule, no drift)."""
    from unihoi_ros.ros.messages import rgb_to_image

    t0, i = time.monotonic(), 0
    while not stop.is_set():
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1.0:  # fell far behind (machine overloaded): resynchronise
            t0, i = time.monotonic(), 0
        stamp = time.time_ns()
        pub.publish(rgb_to_image(frames[i % len(frames)], stamp, "camera"))
        with col.lock:
            col.published.append(stamp)
        i += 1


def window_stats(col: Collector, t_start_ns: int, t0_mono: float, window_s: float,
                 rss: list[tuple[float, float]], seconds: float) -> list[dict]:
    """Per-window rates, latency percentiles, missed frames and memory.

    Publish/receive times are wall-clock ns (relative to ``t_start_ns``); memory samples
    ``(monotonic s, MiB)`` and diagnostics are relative to ``t0_mono`` (the same instant).
    """
    with col.lock:
        pub = np.asarray(col.published, np.int64)
        rec = np.asarray(col.received, np.int64).reshape(-1, 2)
        diags = list(col.diagnostics)
    if pub.size == 0:
        return []
    n_win = max(1, int(seconds // window_s))  # whole windows of the streaming time only
    rows = []
    for w in range(n_win):
        lo, hi = t_start_ns + int(w * window_s * 1e9), t_start_ns + int((w + 1) * window_s * 1e9)
        n_in = int(((pub >= lo) & (pub < hi)).sum())
        sel = (rec[:, 0] >= lo) & (rec[:, 0] < hi) if rec.size else np.zeros(0, bool)
        lat = (rec[sel, 0] - rec[sel, 1]) / 1e6 if rec.size else np.zeros(0)
        mem = [m for t, m in rss if w * window_s <= t - t0_mono < (w + 1) * window_s]
        d = [v for t, v in diags if t - t0_mono < (w + 1) * window_s]  # latest report so far
        rows.append({
            "t_s": round((w + 1) * window_s, 3),
            "input_fps": n_in / window_s,
            "output_fps": int(sel.sum()) / window_s,
            "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
            "latency_p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
            "rss_mb": float(np.mean(mem)) if mem else None,
            "missed_total": int(d[-1].get("# of Missed Frames", 0)) if d else None,
        })
    return rows


def summarise(rows: list[dict], warmup_s: float, col: Collector, node_summary: dict) -> dict:
    steady = [r for r in rows if r["t_s"] > warmup_s and r["latency_p50_ms"] is not None]
    with col.lock:
        rec = np.asarray(col.received, np.int64).reshape(-1, 2)
        n_pub = len(col.published)
    lat_all = (rec[:, 0] - rec[:, 1]) / 1e6 if rec.size else np.zeros(0)
    out: dict = {"frames_published": n_pub, "frames_received": int(rec.shape[0])}
    if lat_all.size:
        out["latency_p50_ms"] = float(np.percentile(lat_all, 50))
        out["latency_p99_ms"] = float(np.percentile(lat_all, 99))
    if steady:
        third = max(1, len(steady) // 3)
        first = float(np.median([r["latency_p50_ms"] for r in steady[:third]]))
        last = float(np.median([r["latency_p50_ms"] for r in steady[-third:]]))
        mem = [r["rss_mb"] for r in steady if r["rss_mb"] is not None]
        growth = (mem[-1] - mem[0]) / mem[0] * 100 if len(mem) >= 2 else 0.0
        out.update({
            "steady_input_fps": float(np.mean([r["input_fps"] for r in steady])),
            "steady_output_fps": float(np.mean([r["output_fps"] for r in steady])),
            "latency_p50_first_third_ms": first,
            "latency_p50_last_third_ms": last,
            "rss_after_warmup_mb": mem[0] if mem else None,
            "rss_end_mb": mem[-1] if mem else None,
            "rss_max_mb": max(mem) if mem else None,
            "rss_growth_pct": growth,
            "memory_flat": bool(growth < 5.0),
            "latency_not_growing": bool(last <= first * 1.2 + 5.0),
        })
    out["node"] = node_summary
    return out


def plot(rows: list[dict], warmup_s: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t_s"] for r in rows]
    fig, ax = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    ax[0].plot(t, [r["input_fps"] for r in rows], label="input")
    ax[0].plot(t, [r["output_fps"] for r in rows], label="output (depth/image)")
    ax[0].set_ylabel("frames / s")
    ax[0].legend()
    for key, lab in (("latency_p50_ms", "p50"), ("latency_p99_ms", "p99")):
        ax[1].plot(t, [np.nan if r[key] is None else r[key] for r in rows], label=lab)
    ax[1].set_ylabel("frame-to-topic latency (ms)")
    ax[1].legend()
    ax[2].plot(t, [np.nan if r["rss_mb"] is None else r["rss_mb"] for r in rows])
    ax[2].set_ylabel("node RSS (MiB)")
    ax[2].set_xlabel("time (s)")
    for a in ax:
        a.axvline(warmup_s, color="grey", ls=":", lw=1)
        a.grid(alpha=0.3)
    fig.suptitle("unihoi run --transport dds: soak")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_table(rows: list[dict], summary: dict) -> None:
    def f(v, fmt="{:.1f}"):
        return "-" if v is None else fmt.format(v)

    print(f"{'t (s)':>7} {'in fps':>7} {'out fps':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'missed':>7} {'RSS MiB':>8}")
    for r in rows:
        print(f"{r['t_s']:>7.1f} {r['input_fps']:>7.1f} {r['output_fps']:>7.1f} "
              f"{f(r['latency_p50_ms']):>7} {f(r['latency_p99_ms']):>7} "
              f"{f(r['missed_total'], '{:d}'):>7} {f(r['rss_mb']):>8}")
    keys = ("steady_input_fps", "steady_output_fps", "latency_p50_ms", "latency_p99_ms",
            "latency_p50_first_third_ms", "latency_p50_last_third_ms", "rss_after_warmup_mb",
            "rss_end_mb", "rss_growth_pct", "memory_flat", "latency_not_growing")
    for k in keys:
        if k in summary:
            v = summary[k]
            print(f"  {k:28s} {v:.2f}" if isinstance(v, float) else f"  {k:28s} {v}")
    node = summary.get("node", {})
    if node:
        print(f"  node: received {node.get('received')}, published {node.get('published')}, "
              f"missed {node.get('drops')}, inference {node.get('mean_inference_ms')} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="streaming time")
    ap.add_argument("--rate", type=float, default=60.0, help="input frame rate (Hz)")
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--process-height", type=int, default=60)
    ap.add_argument("--process-width", type=int, default=80)
    ap.add_argument("--model", default="random:tiny")
    ap.add_argument("--threads", type=int, default=1, help="node's torch/OpenCV threads")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds excluded from checks")
    ap.add_argument("--window", type=float, default=5.0, help="seconds per table row")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "soak")
    args = ap.parse_args(argv)

    from unihoi_ros.ros import dds
    from unihoi_ros.ros import messages as M
    from unihoi_ros.ros.qos import qos_profile
    from unihoi_ros.sim import make_sequence

    args.out.parent.mkdir(parents=True, exist_ok=True)
    domain = unique_domain_id(7)
    frames = list(make_sequence(0, 30, args.height, args.width).rgb)
    node = start_node(args, domain, args.out.with_suffix(".node.log"))
    col = Collector()
    participant = dds.create_participant(domain)
    stop = threading.Event()
    subs = []
    rss: list[tuple[float, float]] = []
    streamed_s = 0.0
    try:
        subs.append(dds.Subscriber(participant, "depth/image", M.IMAGE, callback=col.on_depth,
                                   qos=qos_profile("DEFAULT", 50)))
        subs.append(dds.Subscriber(participant, "/diagnostics", M.DIAGNOSTIC_ARRAY,
                                   callback=col.on_diagnostics, qos="DEFAULT"))
        pub = dds.Publisher(participant, "image", M.IMAGE, qos="SENSOR_DATA")
        deadline = time.monotonic() + 120
        while pub.subscription_count == 0 or subs[0].publisher_count == 0:
            if node.poll() is not None or time.monotonic() > deadline:
                print("node did not come up; see", args.out.with_suffix(".node.log"))
                return 1
            time.sleep(0.1)
        time.sleep(0.5)
        t_start_ns = time.time_ns()
        t0 = time.monotonic()
        thread = threading.Thread(target=publish_loop, args=(pub, frames, args.rate, stop, col),
                                  daemon=True)
        thread.start()
        while time.monotonic() - t0 < args.seconds and node.poll() is None:
            m = rss_mb(node.pid)
            if m is not None:
                rss.append((time.monotonic(), m))
            time.sleep(1.0 if args.seconds > 30 else 0.25)
        stop.set()
        streamed_s = time.monotonic() - t0
        thread.join(5)
        time.sleep(1.0)  # last outputs in flight
    finally:
        stop.set()
        if node.poll() is None:
            node.send_signal(signal.SIGINT)
            try:
                node.wait(30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait(10)
        for s in subs:
            s.close()
    node_summary = {}
    from unihoi_ros.commands.run import SUMMARY_PREFIX

    for line in args.out.with_suffix(".node.log").read_text().splitlines():
        if line.startswith(SUMMARY_PREFIX):
            node_summary = json.loads(line[len(SUMMARY_PREFIX):])
    rows = window_stats(col, t_start_ns, t0, args.window, rss, streamed_s)
    summary = summarise(rows, args.warmup, col, node_summary)
    result = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "windows": rows, "summary": summary}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    plot(rows, args.warmup, args.out.with_suffix(".png"))
    print_table(rows, summary)
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")
    ok = summary.get("memory_flat", False) and summary.get("latency_not_growing", False)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
