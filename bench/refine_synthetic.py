"""``unihoi process --refine-depth`` on synthetic clips with exact ground truth: the network
alone, the refined depth with the stream's poses (``--no-pose-graph``) and with the pose
graph's (the default), side by side.

Each clip (the model card's never-trained seeds 20000+, ``--frames`` frames at ``--size``,
fed at that size, so the refinement triangulates at 1x) is streamed through the network
once (:func:`~unihoi_ros.multiview_depth.network_pass`), refined
(:func:`~unihoi_ros.multiview_depth.refine_depths`, DIS pairs), its poses fitted by
:func:`~unihoi_ros.geometry.pose_graph.pose_graph_poses`, and each row streamed through the
pipeline and scored (:func:`~unihoi_ros.evaluation_real.run_segment`: ATE in % of the path
and / the straight line, depth abs_rel metric and median-scaled). The real-video
counterpart is ``bench/refine_real.py --pose-graph``.

Usage: ``python bench/refine_synthetic.py [--model unihoi-tiny] [--clips 10] [--frames 48]
[--size 240x320] [--known-K] [--json out.json]`` (about 40 s per clip on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

KEYS = (("abs_rel", "abs_rel metric", "{:.3f}"), ("abs_rel_scaled", "abs_rel med", "{:.3f}"),
        ("ate_pct", "ATE %path", "{:.2f}"), ("ate_vs_line", "/line", "{:.2f}"))
ROWS = ("network", "refined, stream poses (--no-pose-graph)", "refined, pose graph")


def main(argv: list[str] | None = None) -> int:
    from unihoi_ros.backends.factory import load_backend
    from unihoi_ros.evaluation_real import RealBenchConfig, run_segment, segments_mean
    from unihoi_ros.flow import DISFlow
    from unihoi_ros.geometry.multiview import refined_confidence
    from unihoi_ros.geometry.pose_graph import pose_graph_poses, poses_by_stamp
    from unihoi_ros.io.ground_truth import GroundTruth
    from unihoi_ros.multiview_depth import RefinedDepthBackend, network_pass, refine_depths
    from unihoi_ros.pipeline.config import ReconstructorConfig
    from unihoi_ros.pipeline.reconstructor import Reconstructor
    from unihoi_ros.sim import make_sequence

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="unihoi-tiny")
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=20000)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", default="240x320", metavar="HxW")
    ap.add_argument("--known-K", action="store_true", help="give the clips' true K")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    hw = tuple(int(v) for v in args.size.lower().split("x"))
    t0 = time.perf_counter()
    backend = load_backend(args.model, "torch", "cpu")
    cfg = RealBenchConfig(process_size=hw)
    rows: dict[str, list[dict]] = {name: [] for name in ROWS}
    graph_s = []
    for seed in tqdm(range(args.first_seed, args.first_seed + args.clips), desc="clips",
                     unit="clip"):
        seq = make_sequence(seed, args.frames, *hw)
        gt = GroundTruth(seq.stamps_ns, seq.T_world_cam, seq.depth, seq.K,
                         f"synthetic seed {seed}")
        known = seq.K if args.known_K else None
        rec = Reconstructor(backend, DISFlow("medium"),
                            ReconstructorConfig(build_points=False, max_side=None))
        first = network_pass(rec, ((int(s), f, known) for s, f in zip(seq.stamps_ns, seq.rgb)))
        depth, geometric = refine_depths(first.frames, first.depth, first.K)
        confidence = refined_confidence(first.confidence, geometric)
        t = time.perf_counter()
        given = poses_by_stamp(first.stamps_ns,
                               *pose_graph_poses(first.frames, depth, first.K, confidence))
        graph_s.append((time.perf_counter() - t) / len(first.frames))
        frames, stamps = list(first.frames), first.stamps_ns
        for name, given_poses in ((ROWS[0], None), (ROWS[1], None), (ROWS[2], given)):
            if name == ROWS[0]:
                row = run_segment(backend, list(seq.rgb), seq.stamps_ns, gt, known, cfg)
            else:  # a fresh backend per row: it serves repeated frames in order
                refined = RefinedDepthBackend(first.frames, depth, first.K, confidence)
                row = run_segment(refined, frames, stamps, gt, known, cfg, poses=given_poses)
            rows[name].append({"seed": seed, **row, "measured": float(geometric.mean())})
    print(f"{args.clips} synthetic clips (seeds {args.first_seed}+), {args.frames} frames at "
          f"{hw[1]}x{hw[0]}, model {args.model}, {'true' if args.known_K else 'own'} K; "
          f"pose graph {1e3 * np.median(graph_s):.0f} ms per frame\n")
    print("| depth, poses | " + " | ".join(k[1] for k in KEYS) + " | clips better ATE |")
    print("|---|" + "---|" * (len(KEYS) + 1))
    base = [r["ate_pct"] for r in rows[ROWS[1]]]
    out = {"benchmark": "refine_synthetic", "date": time.strftime("%Y-%m-%d"),
           "settings": {"model": args.model, "clips": args.clips,
                        "first_seed": args.first_seed, "frames": args.frames,
                        "size": list(hw), "known_K": args.known_K,
                        "pose_graph_s_per_frame": float(np.median(graph_s)),
                        "wall_s": time.perf_counter() - t0},
           "variants": {}}
    for name, segs in rows.items():
        m = segments_mean(segs)
        better = sum(r["ate_pct"] < b for r, b in zip(segs, base))
        out["variants"][name] = {"clips": segs, "mean": m}
        print(f"| {name} | " + " | ".join(fmt.format(m[k]) for k, _, fmt in KEYS)
              + f" | {better if name == ROWS[2] else '–'} |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
