"""Real-video benchmark on 7-Scenes RedKitchen (the shared 400 frames), in the colour camera.

Runs :func:`unihoi_ros.evaluation_real.evaluate_real`: segments of the recording through
the streaming pipeline with the bundled model (K predicted), the model with the colour
camera's K, and an oracle backend fed the registered true depth and the colour K; per
segment and mean: ATE in % of the path (Sim(3)) and RPE beside the best-fit uniform
straight line and constant velocity, depth abs_rel (metric and median-scaled) and delta1
against the registered depth, fx / fy errors, the fraction of track rows flagged dynamic,
and per-stage costs (ms per frame). Prints Markdown tables; ``--json`` writes the result
(with the commit measured). For a model trained on frames of this recording (an adapted
model's metadata names them; the bundled ``unihoi-tiny`` is one) the segments it never saw
are also scored alone (``held_out`` in the JSON: their means are the honest figures).

Usage: ``python bench/real.py [--segments 8] [--segment-frames 50] [--process-size 480x640]
[--variants model model_known_K oracle] [--mirror-average] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import torch

from unihoi_ros.evaluation_real import (
    DEFAULT_DATA,
    VARIANTS,
    RealBenchConfig,
    evaluate_real,
    format_real_table,
    frames_trained_on,
    segments_from_frame,
)
from unihoi_ros.io.sources import seven_scenes_files
from unihoi_ros.model_info import model_metadata


def _commit() -> str:
    try:
        root = Path(__file__).resolve().parents[1]
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="7-Scenes sequence folder")
    ap.add_argument("--segments", type=int, default=8)
    ap.add_argument("--segment-frames", type=int, default=50)
    ap.add_argument("--process-size", default="480x640", metavar="HxW")
    ap.add_argument("--flow-preset", default="medium")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--model", default="unihoi-tiny", help="bundled name or weights path")
    ap.add_argument("--mirror-average", action="store_true",
                    help="the network averaged with its mirror image (mirror_average)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.process_size.lower().split("x"))
    cfg = RealBenchConfig(data=args.data, segments=args.segments,
                          segment_frames=args.segment_frames, process_size=(h, w),
                          flow_preset=args.flow_preset, variants=tuple(args.variants))

    def backend():
        from unihoi_ros.backends.factory import load_backend

        return load_backend(args.model, "torch", "cpu", mirror_average=args.mirror_average)

    t0 = time.perf_counter()
    result = evaluate_real(backend, cfg)
    result["settings"].update(model=args.model, mirror_average=args.mirror_average,
                              commit=_commit(),
                              wall_time_s=time.perf_counter() - t0, threads=args.threads)
    s = result["settings"]
    print(f"7-Scenes {Path(s['data']).name}: {s['segments']} segments x {s['segment_frames']} "
          f"frames at {w}x{h}, DIS {s['flow_preset']}, model {args.model}, commit "
          f"{s['commit']} ({s['wall_time_s']:.0f} s)\n")
    print(format_real_table(result))
    n_train = frames_trained_on(model_metadata(args.model).get("recordings", []), args.data)
    if n_train is not None:
        files = seven_scenes_files(args.data)  # positions -> file frame numbers
        held = segments_from_frame(result, files[n_train][0] if n_train < len(files)
                                   else files[-1][0] + 1)
        s["trained_frames"] = [0, n_train]
        result["held_out"] = {v: r["mean"] for v, r in held["variants"].items()}
        print(f"model {args.model} trained on frames 0-{n_train - 1} of this recording; the "
              "segments it never saw:\n")
        print(format_real_table(held) if held["variants"] else "(none)\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
