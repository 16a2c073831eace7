"""Offline depth refinement (:mod:`unihoi_ros.multiview_depth`) on real video: 7-Scenes
RedKitchen, the shared 400 frames, scored in the colour camera.

The whole recording is streamed once through the pipeline with the model and the colour K
(as ``unihoi process`` does); its depth is refined with the recording's own multi-view
geometry (DIS pairs, and RAFT-small pairs with ``--raft-weights``). Then per segment of
``bench/real.py`` (``--segments`` x ``--segment-frames``): the model alone (``model +
colour K``, streamed per segment as ``bench/real.py`` does) and each refined depth fed to
the same pipeline (its poses, points and metrics from that depth, the oracle backend's
path), scored against the registered true depth and poses: depth abs_rel median-scaled
and metric, delta1, ATE in % of the path and its ratio to the straight line; the fraction
of pixels the geometry measured; the refinement's cost. No frame of the recording is a
label: the model's training frames (300-599 for the bundled model) are in-sample for the
model, never for the refinement, so the held-out segments (600-699) are reported apart.

``--past-only``: the recording refined frame by frame by
:class:`~unihoi_ros.pipeline.past_refinement.PastRefinement` (the node's
``past_refinement``) instead: each frame from the frames that came before it only (its
pair with the frame ``offset`` earlier, shorter pairs where that fails; the scale chain
over the frames so far; fused with the R frames before it, ``--fuse-radius``, default 4).
The causal counterpart of ``refine_depths``, which pairs each frame with the frames 16
before and after, solves the scale over the whole recording and fuses 2 frames each side.

``--live``: one more row, each segment streamed through the pipeline with
``ReconstructorConfig.past_refinement`` from its first frame (the camera's 640x480 frames in,
processed at ``--process-size``, triangulated at twice that): what the live node would
publish, started at the segment.

``--pose-graph``: one more row per pair flow, the refined depth with the poses of a pose
graph over the refined range (:func:`~unihoi_ros.geometry.pose_graph.pose_graph_poses`:
what ``unihoi process --refine-depth`` does by default since the graph; the plain refined
row is ``--no-pose-graph``). The graph's pairs are DIS's in every row ("RAFT pairs, pose
graph": RAFT triangulated the depth).

``--every N``: every N-th frame only (N times the motion per frame: a fast head, as the
HOI4D example's every-4th-frame clips). ``--per-segment``: each segment is a recording of
its own (a short demonstration, as a user would process it): streamed and refined alone,
without the frames around it.

Usage: ``python bench/refine_real.py [--process-size 240x320] [--model unihoi-tiny] [--own-K]
[--every N] [--per-segment] [--past-only] [--live] [--raft-weights raft-small.pth]
[--json out.json]``
(about 10 min on 2 cores with RAFT).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from unihoi_ros.evaluation_real import DEFAULT_DATA

KEYS = (("abs_rel_scaled", "abs_rel med", "{:.3f}"), ("abs_rel", "abs_rel metric", "{:.3f}"),
        ("delta1_scaled", "δ1 med", "{:.3f}"), ("ate_pct", "ATE %path", "{:.2f}"),
        ("ate_vs_line", "/line", "{:.2f}"), ("geometric", "measured px", "{:.2f}"))


def refine_past_only(frames, depth, K, geometry_frames, settings):
    """``--past-only`` (module docstring): the network pass refined frame by frame through
    :class:`~unihoi_ros.pipeline.past_refinement.PastRefinement`, as
    ``ReconstructorConfig.past_refinement`` does inside the stream; ``(refined (N, h, w),
    measured (N, h, w) bool)`` as ``refine_depths`` returns them."""
    import numpy as np

    from unihoi_ros.geometry.multiview import PairFlows
    from unihoi_ros.pipeline.past_refinement import PastRefinement

    refiner, flows = PastRefinement(settings), PairFlows(frames)
    out = [refiner.refine(frames[i], g, depth[i], K, flows(i, i - 1) if i else None)
           for i, g in enumerate(geometry_frames)]
    return np.stack([d for d, _ in out]), np.stack([m for _, m in out])


def main(argv: list[str] | None = None) -> int:
    import cv2
    import torch
    from tqdm import tqdm

    from unihoi_ros.backends.factory import load_backend
    from unihoi_ros.evaluation_real import (
        RealBenchConfig,
        frames_trained_on,
        run_segment,
        segment_starts,
        segments_mean,
    )
    from unihoi_ros.flow import DISFlow
    from unihoi_ros.geometry.camera import scale_intrinsics
    from unihoi_ros.geometry.multiview import RefineSettings, refined_confidence
    from unihoi_ros.geometry.pose_graph import pose_graph_poses, poses_by_stamp
    from unihoi_ros.io.ground_truth import load_seven_scenes
    from unihoi_ros.io.sources import seven_scenes_files
    from unihoi_ros.model_info import model_metadata
    from unihoi_ros.multiview_depth import (
        RefinedDepthBackend,
        kept_frames,
        network_pass,
        refine_depths,
    )
    from unihoi_ros.pipeline.config import ReconstructorConfig
    from unihoi_ros.pipeline.past_refinement import PAST_REFINE_SETTINGS
    from unihoi_ros.pipeline.reconstructor import Reconstructor

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default="unihoi-tiny")
    ap.add_argument("--process-size", default="240x320", metavar="HxW")
    ap.add_argument("--segments", type=int, default=8)
    ap.add_argument("--segment-frames", type=int, default=50)
    ap.add_argument("--raft-weights", type=Path, default=None)
    ap.add_argument("--own-K", action="store_true",
                    help="no known K: the network's (unihoi process defaults); the "
                    "refinement triangulates with the stream's K")
    ap.add_argument("--every", type=int, default=1, metavar="N",
                    help="every N-th frame only (a faster head: N times the motion per "
                    "frame, as HOI4D's every-4th-frame clips)")
    ap.add_argument("--no-shorter-pairs", action="store_true",
                    help="the pairs 16 frames away only (RefineSettings.shorter_pairs off)")
    ap.add_argument("--per-segment", action="store_true",
                    help="stream and refine each segment alone (a short recording)")
    ap.add_argument("--past-only", action="store_true",
                    help="each frame refined from the frames before it only (the node's "
                    "past_refinement, run over the whole recording; DIS pairs)")
    ap.add_argument("--fuse-radius", type=int, default=None, metavar="R",
                    help="frames fused each side (--past-only: before) of each frame "
                    "(default 2; --past-only 4)")
    ap.add_argument("--geometry-at-processing-size", action="store_true",
                    help="triangulate at the processing size instead of twice it (the "
                    "refinement over the whole recording; --live follows the pipeline)")
    ap.add_argument("--live", action="store_true",
                    help="also each segment streamed with ReconstructorConfig.past_refinement")
    ap.add_argument("--pose-solver", default="pnp", choices=("pnp", "procrustes"),
                    help="the pose solver of every row's stream (unihoi process "
                    "--pose-solver; the refinement's own network pass keeps the default)")
    ap.add_argument("--pose-graph", action="store_true",
                    help="also the refined depth with a pose graph's poses (unihoi process "
                    "--refine-depth's default)")
    ap.add_argument("--mirror-average", action="store_true",
                    help="the network averaged with its mirror image (mirror_average)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.past_only and args.raft_weights:
        ap.error("--past-only triangulates DIS pairs (PastRefinement): no --raft-weights")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    hw = tuple(int(v) for v in args.process_size.lower().split("x"))
    t0 = time.perf_counter()

    stride = args.every
    files = seven_scenes_files(args.data)[::stride]
    gt_all = load_seven_scenes(args.data, frames=slice(None, None, stride))
    native = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for _, p in files]
    K_native = gt_all.K
    K = scale_intrinsics(K_native, gt_all.depth.shape[1:], hw)
    backend = load_backend(args.model, "torch", "cpu", mirror_average=args.mirror_average)

    known = None if args.own_K else K_native
    flows = {"DIS pairs": None}
    if args.raft_weights:
        from unihoi_ros.flow.raft import RAFTFlow

        flows["RAFT pairs"] = RAFTFlow(args.raft_weights)
    costs = {name: 0.0 for name in flows}
    graph_costs = {name: 0.0 for name in flows}
    refine_settings = dataclasses.replace(
        PAST_REFINE_SETTINGS if args.past_only else RefineSettings(),
        shorter_pairs=not args.no_shorter_pairs)
    if args.fuse_radius is not None:
        refine_settings = dataclasses.replace(refine_settings, fuse_radius=args.fuse_radius)

    def refine(part: slice) -> tuple:
        """Stream ``part`` of the recording as `unihoi process --refine-depth` does and
        refine it: ``(network pass, {pairs name: (depth, geometric)})``."""
        rec = Reconstructor(backend, DISFlow("medium"),
                            ReconstructorConfig(process_size=hw, build_points=False))
        stamped = ((int(s), f, known) for s, f in zip(gt_all.stamps_ns[part], native[part]))
        first = network_pass(rec, stamped, progress=not args.per_segment,
                             total=len(native[part]))
        if len(first.frames) != len(native[part]):
            raise SystemExit(f"the network pass kept {len(first.frames)} of "
                             f"{len(native[part])} frames")
        refined, graphs = {}, {}
        for name, pair_flow in flows.items():
            t = time.perf_counter()
            again = kept_frames(zip(gt_all.stamps_ns[part], native[part]), first.stamps_ns,
                                hw if args.geometry_at_processing_size
                                else first.geometry_hw)  # read again, as unihoi process does
            if args.past_only:
                refined[name] = refine_past_only(first.frames, first.depth, first.K, again,
                                                 refine_settings)
            else:
                refined[name] = refine_depths(first.frames, first.depth, first.K, again,
                                              pair_flow, refine_settings,
                                              progress=not args.per_segment)
            costs[name] += time.perf_counter() - t
            if args.pose_graph:  # the graph's poses on this refined depth
                t = time.perf_counter()
                depth, geometric = refined[name]
                graphs[name] = poses_by_stamp(first.stamps_ns, *pose_graph_poses(
                    first.frames, depth, first.K,
                    refined_confidence(first.confidence, geometric)))
                graph_costs[name] += time.perf_counter() - t
        return first, refined, graphs

    # The whole recording once (per segment with --per-segment: each its own recording).
    whole = None if args.per_segment else refine(slice(0, len(native)))

    cfg = RealBenchConfig(data=args.data, process_size=hw, reconstructor=ReconstructorConfig(
        pose_solver=args.pose_solver))
    starts = segment_starts(len(files), args.segments, args.segment_frames)
    baseline = "model" if args.own_K else "model + colour K"
    rows: dict[str, list[dict]] = {baseline: [], **{f"refined, {n}": [] for n in flows}}
    if args.pose_graph:
        rows.update({f"refined, {n}, pose graph": [] for n in flows})
    live = "live past-only, in the pipeline"
    if args.live:
        rows[live] = []
        live_cfg = dataclasses.replace(cfg, reconstructor=ReconstructorConfig(
            process_size=hw, past_refinement=True, pose_solver=args.pose_solver))
    for s in tqdm(starts, desc="segments", unit="segment"):
        seg = slice(s, s + args.segment_frames)
        gt = load_seven_scenes(args.data, frames=slice(s * stride, (s + args.segment_frames)
                                                       * stride, stride))
        if args.per_segment:  # indices within the segment's own recording
            (first, refined, graphs), at = refine(seg), slice(0, args.segment_frames)
        else:
            (first, refined, graphs), at = whole, seg
        frames = first.frames
        seg_frames = list(frames[at])
        row = run_segment(backend, seg_frames, gt.stamps_ns, gt, None if args.own_K else K,
                          cfg)
        rows[baseline].append({"start_frame": int(files[s][0]), **row,
                                         "geometric": 0.0})
        for name in flows:
            depth, geometric = refined[name]
            be = RefinedDepthBackend(frames[at], depth[at], first.K,
                                     refined_confidence(first.confidence[at], geometric[at]))
            row = run_segment(be, seg_frames, gt.stamps_ns, gt, None if args.own_K else K,
                              cfg)
            rows[f"refined, {name}"].append({"start_frame": int(files[s][0]), **row,
                                              "geometric": float(geometric[at].mean())})
            if args.pose_graph:  # a fresh backend: it serves repeated frames in order
                be = RefinedDepthBackend(frames[at], depth[at], first.K, refined_confidence(
                    first.confidence[at], geometric[at]))
                row = run_segment(be, seg_frames, gt.stamps_ns, gt,
                                  None if args.own_K else K, cfg, poses=graphs[name])
                rows[f"refined, {name}, pose graph"].append(
                    {"start_frame": int(files[s][0]), **row,
                     "geometric": float(geometric[at].mean())})
        if args.live:  # the camera's frames in, as the node gets them
            row = run_segment(backend, [native[i] for i in range(len(native))[seg]],
                              gt.stamps_ns, gt, None if args.own_K else K_native, live_cfg)
            rows[live].append({"start_frame": int(files[s][0]), **row,
                               "geometric": float("nan")})
    trained = frames_trained_on(model_metadata(args.model).get("recordings", []) or [],
                                args.data)
    # Segments that start at or after the model's last training frame (index in files).
    unseen = ([] if trained is None
              else [i for i, s in enumerate(starts) if s * stride >= trained])
    frames_refined = len(starts) * args.segment_frames if args.per_segment else len(files)
    costs = {name: c / frames_refined for name, c in costs.items()}
    graph_costs = {name: c / frames_refined for name, c in graph_costs.items()}
    out = {"benchmark": "refine_real", "date": time.strftime("%Y-%m-%d"),
           "settings": {"data": str(args.data), "model": args.model, "process_size": list(hw),
                        "K": "the network's" if args.own_K else "the colour camera's",
                        "every": stride, "shorter_pairs": not args.no_shorter_pairs,
                        "past_only": args.past_only, "live": args.live,
                        "mirror_average": args.mirror_average,
                        "pose_solver": args.pose_solver,
                        "geometry_at_processing_size": args.geometry_at_processing_size,
                        "fuse_radius": refine_settings.fuse_radius,
                        "refined": "each segment alone" if args.per_segment
                        else "the whole recording",
                        "start_frames": [int(files[s][0]) for s in starts],
                        "segment_frames": args.segment_frames,
                        "refine_s_per_frame": costs,
                        "pose_graph": args.pose_graph,
                        "pose_graph_s_per_frame": graph_costs if args.pose_graph else None,
                        "wall_s": time.perf_counter() - t0},
           "variants": {}}
    print(f"{args.data.name}: {len(files)} frames at {hw[1]}x{hw[0]}, model {args.model}, "
          f"{'own' if args.own_K else 'colour'} K, "
          f"{'each segment refined alone' if args.per_segment else 'refined whole'}; "
          "refinement s/frame: "
          + ", ".join(f"{n} {c:.2f}" for n, c in costs.items())
          + ("; pose graph s/frame: " + ", ".join(f"{n} {c:.3f}" for n, c in
                                                   graph_costs.items())
             if args.pose_graph else "") + "\n")
    print("| depth | segments | " + " | ".join(k[1] for k in KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for name, segs in rows.items():
        groups = {f"all {len(segs)}": segs}
        if unseen:
            groups["held out"] = [segs[i] for i in unseen]
        out["variants"][name] = {"segments": segs,
                                 **{g: segments_mean(v) for g, v in groups.items()}}
        for g, v in groups.items():
            m = segments_mean(v)
            print(f"| {name} | {g} | " + " | ".join(fmt.format(m[k]) for k, _, fmt in KEYS)
                  + " |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
