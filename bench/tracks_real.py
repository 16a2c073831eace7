"""The tracks' dynamic flag on a static real scene, and the synthetic track figures, for
the current tracker and (optionally) a baseline revision's, in the same process.

Real: segments of 7-Scenes RedKitchen (``../shared/data/7scenes_redkitchen_300_699``,
nothing in it moves) streamed through ``Reconstructor`` with the bundled model at the
``unihoi process`` default size (longer side ``MAX_SIDE``; ``--max-side``), with
the network's K and with the colour camera's K
(``unihoi_ros.io.registration.SEVEN_SCENES_K_COLOR``); per segment the fraction of track
rows flagged dynamic (every row a ``PointTracker`` reports, as ``tracks.csv`` holds them)
and of tracks ever flagged.

Synthetic: never-trained clips (seeds >= 20000) through the oracle backend, the bundled
model and the model with the clip's true K (as ``bench/tracks.py``): the accuracy
figures of ``evaluate_tracks`` (within 2 / 5 / 10 cm, dynamic and static, beside the
no-tracking baseline) and the flag's figures of ``flag_scores`` (sustained movers
flagged, static points flagged, rows flagged).

Variants: ``current``; ``current, pipeline flow``: the same tracker fed each result's
backward flow from the reconstructor (``Reconstructor.backward_flow``), as ``unihoi
process`` runs it (the streaming figures change; ``evaluate_tracks``' offline queries
compute their own flows, so its figures are the current's).

``--baseline-rev REV`` loads ``unihoi_ros/tracks`` as it was at git revision REV into a
temporary package and measures it on the same results.

Usage: ``python bench/tracks_real.py [--segments 300,400,500,600] [--frames 50]
[--max-side 320] [--baseline-rev 922b1d1] [--seeds 20000-20003]
[--json bench/results/tracks_real.json]``
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from unihoi_ros.backends.factory import load_backend
from unihoi_ros.flow import DISFlow
from unihoi_ros.io.registration import SEVEN_SCENES_K_COLOR
from unihoi_ros.io.sources import open_seven_scenes
from unihoi_ros.pipeline import OracleBackend, Reconstructor, ReconstructorConfig
from unihoi_ros.pipeline.settings import MAX_SIDE
from unihoi_ros.sim import make_sequence

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "7scenes_redkitchen_300_699"
KEYS = ("2cm", "5cm", "10cm")


def commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "unihoi_ros/tracks"], cwd=REPO, text=True,
                               capture_output=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def tracks_at(rev: str):
    """``unihoi_ros.tracks`` as at git revision ``rev``, imported as a package of its own
    (its absolute imports of ``unihoi_ros.tracks`` point at itself)."""
    names = subprocess.run(["git", "ls-tree", "--name-only", rev, "unihoi_ros/tracks/"],
                           cwd=REPO, text=True, capture_output=True, check=True).stdout.split()
    root = Path(tempfile.mkdtemp(prefix="tracks_baseline_"))
    pkg = f"tracks_{rev.replace('/', '_')}"
    (root / pkg).mkdir()
    for name in names:
        if not name.endswith(".py"):
            continue
        text = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=REPO, text=True,
                              capture_output=True, check=True).stdout
        text = text.replace("unihoi_ros.tracks.", f"{pkg}.").replace(
            "from unihoi_ros.tracks import", f"from {pkg} import")
        (root / pkg / Path(name).name).write_text(text)
    sys.path.insert(0, str(root))
    return importlib.import_module(pkg)


def bench_tracks():
    """``bench/tracks.py`` (beside this script) as a module: its ``KnownK`` wrapper."""
    spec = importlib.util.spec_from_file_location("bench_tracks",
                                                  Path(__file__).with_name("tracks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The current tracker fed each result's backward flow from the reconstructor, as
#: ``unihoi process`` runs it (it then computes only the forward flow).
REUSED = "current, pipeline flow"


def variants(baseline_rev: str | None) -> dict:
    import unihoi_ros.tracks as current

    out = {"current": current, REUSED: current}
    if baseline_rev:
        out[f"baseline {baseline_rev}"] = tracks_at(baseline_rev)
    return out


class Results(list):
    """A stream's results; ``flows``: stamp -> the reconstructor's ``backward_flow``."""

    flows: dict


def stream(backend, frames, K=None, config: ReconstructorConfig | None = None) -> Results:
    rec = Reconstructor(backend, DISFlow(), config)
    results = Results()
    results.flows = {}

    def take(batch):
        for r in batch:
            results.append(r)
            results.flows[r.stamp_ns] = rec.backward_flow(r.stamp_ns)

    for stamp, rgb in frames:
        rec.push(int(stamp), rgb, K=K)
        take(rec.drain())
    take(rec.flush())
    return results


class FedTracker:
    """A ``PointTracker`` fed the reconstructor's flow of each result (by stamp)."""

    def __init__(self, tracker, flows: dict) -> None:
        self.tracker, self.flows = tracker, flows

    def update(self, result):
        return self.tracker.update(result, self.flows.get(result.stamp_ns))


def tracker_for(name: str, module, results: Results):
    tracker = module.PointTracker()
    return FedTracker(tracker, results.flows) if name == REUSED else tracker


def dynamic_rows(tracker, results) -> dict:
    rows = dyn = 0
    ever: set[int] = set()
    ids: set[int] = set()
    t0 = time.perf_counter()
    for r in results:
        ts = tracker.update(r)
        rows += len(ts)
        dyn += int(np.count_nonzero(ts.dynamic))
        ids.update(int(i) for i in ts.ids)
        ever.update(int(i) for i in ts.ids[ts.dynamic])
    return {"rows": rows, "rows_dynamic": dyn / rows if rows else float("nan"),
            "tracks": len(ids), "tracks_ever_dynamic": len(ever) / max(len(ids), 1),
            "tracker_ms": 1e3 * (time.perf_counter() - t0) / max(len(results), 1)}


def real(args, model, mods) -> list[dict]:
    src = open_seven_scenes(args.data)
    frames = list(src)
    number = {stamp: round(stamp * 30 / 1e9) for stamp, _ in frames}
    rows = []
    cfg = ReconstructorConfig(max_side=args.max_side or None)
    jobs = [(s, k) for s in args.segments for k in ("network K", "colour K")]
    for start, kname in tqdm(jobs, desc="real segments", unit="segment"):
        seg = [(s, rgb) for s, rgb in frames if start <= number[s] < start + args.frames]
        K = SEVEN_SCENES_K_COLOR if kname == "colour K" else None
        results = stream(model, seg, K, cfg)
        for name, mod in mods.items():
            rows.append({"segment": f"{start}-{start + len(seg) - 1}", "K": kname,
                         "variant": name, "size": f"{results[0].width}x{results[0].height}",
                         **dynamic_rows(tracker_for(name, mod, results), results)})
    return rows


def synthetic(args, model, mods) -> list[dict]:
    from unihoi_ros.tracks.evaluate import flag_scores

    KnownK = bench_tracks().KnownK
    lo, hi = (int(v) for v in args.seeds.split("-"))
    h, w = (int(v) for v in args.synthetic_size.split("x"))
    rows = []
    for seed in tqdm(range(lo, hi + 1), desc="synthetic clips", unit="clip"):
        seq = make_sequence(seed=seed, num_frames=args.synthetic_frames, height=h, width=w)
        frames = list(zip(seq.stamps_ns, seq.rgb))
        for depth, backend in (("oracle", OracleBackend(seq)), ("unihoi-tiny", model),
                               ("tiny+true K", KnownK(model, seq.K))):
            results = stream(backend, frames)
            for name, mod in mods.items():
                ev = mod.evaluate_tracks(results, seq)
                fl = flag_scores(results, seq, tracker=tracker_for(name, mod, results))
                rows.append({"seed": seed, "depth": depth, "variant": name, **ev, "flag": fl})
    return rows


def print_real(rows: list[dict]) -> None:
    print("\nreal: fraction of track rows flagged dynamic (tracks ever flagged)")
    names = sorted({r["variant"] for r in rows}, key=lambda n: n != "current")
    print(f"{'segment':10s} {'K':10s} " + " ".join(f"{n:>26s}" for n in names))
    for seg in dict.fromkeys(r["segment"] for r in rows):
        for k in ("network K", "colour K"):
            cells = []
            for n in names:
                r = next(x for x in rows if (x["segment"], x["K"], x["variant"]) == (seg, k, n))
                cells.append(f"{r['rows_dynamic']:.3f} ({r['tracks_ever_dynamic']:.3f})")
            print(f"{seg:10s} {k:10s} " + " ".join(f"{c:>26s}" for c in cells))
    for n in names:
        sel = [r["rows_dynamic"] for r in rows if r["variant"] == n]
        print(f"{n}: mean {np.mean(sel):.3f}, max {np.max(sel):.3f} over {len(sel)} runs")


def nanmean(values) -> float:
    v = np.asarray(values, np.float64)
    return float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else float("nan")


def summarise_synthetic(rows: list[dict]) -> dict:
    out: dict = {}
    for depth in dict.fromkeys(r["depth"] for r in rows):
        for name in dict.fromkeys(r["variant"] for r in rows):
            sel = [r for r in rows if r["depth"] == depth and r["variant"] == name]
            s = {who: {kind: {k: float(np.mean([r[who][kind][k] for r in sel])) for k in KEYS}
                       for kind in ("dynamic", "static")} for who in ("tracker", "hold")}
            s["flag"] = {k: nanmean([r["flag"][k] for r in sel])
                         for k in ("moving_flagged", "static_flagged", "rows_dynamic")}
            out.setdefault(depth, {})[name] = s
    return out


def print_synthetic(summ: dict) -> None:
    print("\nsynthetic: mean over clips; within 2 / 5 / 10 cm (tracker vs no tracking), "
          "and the flag")
    for depth, by in summ.items():
        for name, s in by.items():
            t, h, f = s["tracker"], s["hold"], s["flag"]
            dyn = "/".join(f"{t['dynamic'][k]:.3f}" for k in KEYS)
            sta = "/".join(f"{t['static'][k]:.3f}" for k in KEYS)
            ratio = t["dynamic"]["5cm"] / max(h["dynamic"]["5cm"], 1e-9)
            print(f"{depth:12s} {name:18s} dynamic {dyn} (hold 5 cm {h['dynamic']['5cm']:.3f},"
                  f" {ratio:.2f}x)  static {sta} (hold 5 cm {h['static']['5cm']:.3f})  "
                  f"flag: movers {f['moving_flagged']:.3f}, static {f['static_flagged']:.3f},"
                  f" rows {f['rows_dynamic']:.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="7-Scenes sequence folder")
    ap.add_argument("--segments", default="300,400,500,600", help="first frame numbers")
    ap.add_argument("--frames", type=int, default=50, help="frames per segment")
    ap.add_argument("--max-side", type=int, default=MAX_SIDE,
                    help="longer side the frames are processed at (0: the input's); "
                    "default: `unihoi process`'s")
    ap.add_argument("--baseline-rev", default=None, help="git revision to compare with")
    ap.add_argument("--seeds", default="20000-20003", help="synthetic clips ('' skips)")
    ap.add_argument("--synthetic-frames", type=int, default=48)
    ap.add_argument("--synthetic-size", default="240x320", help="HxW")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=Path("bench/results/tracks_real.json"))
    args = ap.parse_args(argv)
    args.segments = [int(s) for s in args.segments.split(",") if s]
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    model = load_backend("unihoi-tiny", "torch", "cpu")
    mods = variants(args.baseline_rev)
    out = {"commit": commit(), "baseline_rev": args.baseline_rev, "frames": args.frames,
           "max_side": args.max_side,
           "threads": args.threads, "machine": platform.machine(),
           "date": time.strftime("%Y-%m-%d")}
    if args.segments:
        out["real"] = real(args, model, mods)
        print_real(out["real"])
    if args.seeds:
        clips = synthetic(args, model, mods)
        out["synthetic"] = {"seeds": args.seeds, "frames": args.synthetic_frames,
                            "size": args.synthetic_size, "summary": summarise_synthetic(clips),
                            "clips": clips}
        print_synthetic(out["synthetic"]["summary"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, default=float))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
