"""Throughput and accuracy of ``unihoi process`` on real 640x480 frames: a baseline commit
against the working tree, in the same run.

The shared 7-Scenes RedKitchen recording (400 frames, 640x480) is cut into ``--segments``
evenly spaced segments of ``--frames`` frames (each a folder of links, the 7-Scenes
layout). The baseline commit (default ``1c2734d``, issue #28's start) is checked out with
``git worktree add`` into a temporary folder and run with ``PYTHONPATH`` pointing at it (the
same venv); the working tree is run as it is. Both run every segment once as a whole
command (``python -m unihoi_ros.cli process SEGMENT -o OUT --no-progress``), alternating
(the order swaps every segment), after one warm-up run each (graphs exported / cached,
files in the page cache). Per command: frames / wall seconds of the whole command
(start-up, model load, writing and pictures included), its CPU seconds (all threads; less
sensitive than wall time to other work on the machine), and the reconstructor's per-stage
costs from its ``report.json`` (ms per frame). The frames/s figure is the median over the
segments; the ratio is current / baseline.

Accuracy of both, per segment and mean, against the colour camera's ground truth
(:func:`unihoi_ros.io.ground_truth.load_seven_scenes`: depth registered into the colour
camera, colour-camera poses), read back with :func:`unihoi_ros.io.load_run` (either
layout) and scored by :func:`unihoi_ros.evaluation.evaluate`: ATE in % of the path
(Sim(3)), depth abs_rel metric and median-scaled (the prediction resized to 640x480,
nearest).

Usage: ``python bench/process_real.py [--segments 4] [--frames 100] [--baseline 1c2734d]
[--args "--max-side 0"] [--baseline-args ""] [--json bench/process_real.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from unihoi_ros.evaluation import evaluate
from unihoi_ros.evaluation_real import DEFAULT_DATA, segment_starts
from unihoi_ros.io import load_run
from unihoi_ros.io.ground_truth import load_seven_scenes
from unihoi_ros.io.sources import seven_scenes_files

REPO = Path(__file__).resolve().parents[1]
#: Reconstructor stages reported per frame (``report.json``: ``reconstructor.stages_ms``).
STAGES = ("preprocess", "encoder", "flow", "network", "poses", "points")


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, text=True, capture_output=True,
                          check=True).stdout.strip()


def describe_tree() -> str:
    """The working tree's commit, ``+dirty`` when tracked files differ from it."""
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def link_segment(data: Path, files: list[tuple[int, Path]], dest: Path) -> Path:
    """A 7-Scenes folder at ``dest`` linking ``files``' colour, depth and pose files (and the
    sequence's ``camera-intrinsics.txt``)."""
    dest.mkdir(parents=True)
    names = ["camera-intrinsics.txt"] if (data / "camera-intrinsics.txt").is_file() else []
    for n, color in files:
        names += [color.name, f"frame-{n:06d}.depth.png", f"frame-{n:06d}.pose.txt"]
    for name in names:
        (dest / name).symlink_to((data / name).resolve())
    return dest


def run_process(code: Path, segment: Path, out: Path, extra: list[str]) -> dict:
    """One whole ``unihoi process`` command of the package at ``code``: wall seconds and
    its ``report.json``."""
    cmd = [sys.executable, "-m", "unihoi_ros.cli", "process", str(segment), "-o", str(out),
           "--force", "--no-progress", *extra]
    env = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=code)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} (PYTHONPATH={code}) failed:\n{proc.stderr[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    return {"wall_s": wall, "cpu_s": cpu, "report": report, "log": proc.stderr[-4000:]}


def stage_costs(report: dict, frames: int) -> dict:
    """ms per frame of each reconstructor stage (mean x count / frames)."""
    stages = report.get("reconstructor", {}).get("stages_ms", {})
    return {s: stages[s]["mean_ms"] * stages[s]["count"] / frames for s in STAGES
            if s in stages}


def accuracy(out: Path, gt) -> dict:
    """ATE % of path (Sim(3)) and depth abs_rel (metric, median-scaled) of a run."""
    pred = load_run(out)
    res = evaluate(pred, gt, clouds=False)
    d, k = res.depth, res.intrinsics
    return {"ate_pct": res.trajectory.ate_pct_path,
            "rpe_trans_mm": 1e3 * res.trajectory.rpe_trans,
            "abs_rel": d.abs_rel, "abs_rel_scaled": d.median_scaled.abs_rel,
            "delta1": d.delta1, "fx_rel": None if k is None else k.fx_rel_err,
            "frames": res.frames_evaluated, "size": list(pred.depth.shape[1:])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="7-Scenes sequence folder")
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--frames", type=int, default=100, help="frames per segment")
    ap.add_argument("--baseline", default="1c2734d", help="commit to compare against")
    ap.add_argument("--args", default="", help="extra flags of the current code's command")
    ap.add_argument("--baseline-args", default="", help="extra flags of the baseline's")
    ap.add_argument("--warmup-frames", type=int, default=8)
    ap.add_argument("--current-code", type=Path, default=REPO,
                    help="folder holding the current unihoi_ros package (default: this "
                    "checkout; a copy lets the checkout change while the bench runs)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    files = seven_scenes_files(args.data)
    starts = segment_starts(len(files), args.segments, args.frames)
    codes = {"baseline": None, "current": args.current_code}
    extra = {"baseline": shlex.split(args.baseline_args), "current": shlex.split(args.args)}
    rows: dict[str, list] = {"baseline": [], "current": []}
    with tempfile.TemporaryDirectory(prefix="unihoi_process_real_") as tmp:
        tmp = Path(tmp)
        base_tree = tmp / "baseline"
        git("worktree", "add", "--detach", str(base_tree), args.baseline)
        try:
            codes["baseline"] = base_tree
            warm = link_segment(args.data, files[:args.warmup_frames], tmp / "warmup")
            for name, code in codes.items():
                print(f"warm-up: {name}", flush=True)
                run_process(code, warm, tmp / f"warm_{name}", extra[name])
            for k, s in enumerate(starts):
                seg_files = files[s:s + args.frames]
                seg = link_segment(args.data, seg_files, tmp / f"seg{k}")
                gt = load_seven_scenes(seg)
                order = ["baseline", "current"] if k % 2 == 0 else ["current", "baseline"]
                for name in order:
                    out = tmp / f"out_{name}_{k}"
                    r = run_process(codes[name], seg, out, extra[name])
                    n = r["report"]["frames_out"]
                    row = {"segment": f"{seg_files[0][0]}-{seg_files[-1][0]}",
                           "frames": n, "wall_s": r["wall_s"], "frames_per_s": n / r["wall_s"],
                           "cpu_s": r["cpu_s"],
                           "stages_ms_per_frame": stage_costs(r["report"], n),
                           **accuracy(out, gt)}
                    rows[name].append(row)
                    print(f"segment {row['segment']} {name:8s}: {row['frames_per_s']:.2f} "
                          f"frames/s, ATE {row['ate_pct']:.2f} %, abs_rel "
                          f"{row['abs_rel']:.3f} (median-scaled {row['abs_rel_scaled']:.3f}), "
                          f"{row['size'][1]}x{row['size'][0]}", flush=True)
                    shutil.rmtree(out)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO,
                           capture_output=True)

    summary = {}
    for name, rs in rows.items():
        stages = {s: float(np.mean([r["stages_ms_per_frame"].get(s, 0.0) for r in rs]))
                  for s in STAGES}
        summary[name] = {
            "frames_per_s_median": float(np.median([r["frames_per_s"] for r in rs])),
            "cpu_ms_per_frame": float(np.mean([1e3 * r["cpu_s"] / r["frames"] for r in rs])),
            **{k: float(np.mean([r[k] for r in rs])) for k in
               ("ate_pct", "rpe_trans_mm", "abs_rel", "abs_rel_scaled", "delta1")},
            "stages_ms_per_frame": stages,
            "other_ms_per_frame": float(np.mean([1e3 * r["wall_s"] / r["frames"] for r in rs]))
            - sum(stages.values()),
            "size": rs[0]["size"]}
    b, c = summary["baseline"], summary["current"]
    ratio = c["frames_per_s_median"] / b["frames_per_s_median"]
    current = describe_tree()
    print(f"\n7-Scenes {args.data.name}: {len(starts)} segments x {args.frames} frames at "
          f"640x480; baseline {args.baseline} {args.baseline_args!r}, current {current} "
          f"{args.args!r}; {os.cpu_count()} cores; frames/s of the whole command, median of "
          "the segments; accuracy: mean of the segments\n")
    keys = [("frames_per_s_median", "frames/s", "{:.2f}"), ("ate_pct", "ATE %path", "{:.2f}"),
            ("rpe_trans_mm", "RPE mm", "{:.1f}"), ("abs_rel", "abs_rel", "{:.3f}"),
            ("abs_rel_scaled", "abs_rel med", "{:.3f}"), ("delta1", "δ1", "{:.3f}")]
    stage_cols = [s for s in STAGES if b["stages_ms_per_frame"][s] + c["stages_ms_per_frame"][s]
                  >= 0.5]
    print("| code | processed at | " + " | ".join(t for _, t, _ in keys) + " | "
          + " | ".join(f"{s} ms" for s in stage_cols) + " | other ms |")
    print("|---|---|" + "---|" * (len(keys) + len(stage_cols) + 1))
    for name, s in summary.items():
        print(f"| {name} | {s['size'][1]}x{s['size'][0]} | "
              + " | ".join(f.format(s[k]) for k, _, f in keys) + " | "
              + " | ".join(f"{s['stages_ms_per_frame'][st]:.0f}" for st in stage_cols)
              + f" | {s['other_ms_per_frame']:.0f} |")
    rel = {k: c[k] / b[k] for k in ("ate_pct", "abs_rel", "abs_rel_scaled")}
    per_segment = [rc["frames_per_s"] / rb["frames_per_s"]
                   for rb, rc in zip(rows["baseline"], rows["current"])]
    cpu_ratio = b["cpu_ms_per_frame"] / c["cpu_ms_per_frame"]
    print(f"\nratio (current / baseline): frames/s {ratio:.2f}x (per segment "
          + ", ".join(f"{x:.2f}x" for x in per_segment) + f"; frames per CPU second "
          f"{cpu_ratio:.2f}x: {c['cpu_ms_per_frame']:.0f} vs {b['cpu_ms_per_frame']:.0f} ms "
          f"of CPU per frame); ATE {rel['ate_pct']:.2f}, abs_rel {rel['abs_rel']:.2f}, "
          f"median-scaled {rel['abs_rel_scaled']:.2f}; load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "data": str(args.data), "segments": len(starts), "frames": args.frames,
            "baseline": args.baseline, "baseline_args": args.baseline_args,
            "current": current, "args": args.args, "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(),
            "ratio_frames_per_s": ratio, "ratio_per_segment": per_segment,
            "ratio_frames_per_cpu_s": cpu_ratio, "load_average_end": os.getloadavg()[0],
            "accuracy_ratio": rel, "summary": summary,
            "rows": rows}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
