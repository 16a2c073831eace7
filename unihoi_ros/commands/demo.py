"""``unihoi demo``: the README's main job on the bundled default (no ROS, no GPU, no downloads).

A synthetic head-camera clip with exact ground truth goes through the real node over Cyclone
DDS on loopback (publisher -> node -> recorder and subscriber), with the bundled model; the
outputs land in ``demo_out/``: the MCAP bag, pictures, a fused cloud and the evaluation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from unihoi_ros.commands import positive_int


def register(sub) -> None:
    p = sub.add_parser("demo", help="synthetic clip -> node over DDS -> bag, pictures and "
                       "evaluation (no ROS, no GPU needed)")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output directory")
    p.add_argument("--model", default="unihoi-tiny",
                   help="bundled model name or weights path (random:tiny: untrained)")
    p.add_argument("--seed", type=int, default=10_000, help="synthetic clip (held-out seed)")
    p.add_argument("--frames", type=positive_int, default=60)
    p.add_argument("--height", type=positive_int, default=120)
    p.add_argument("--width", type=positive_int, default=160)
    p.add_argument("--force", action="store_true",
                   help="overwrite a non-empty --out that is not an earlier demo output")
    p.set_defaults(func=run)


def _fmt(summary: dict) -> list[str]:
    m = summary["metrics"]
    lines = []
    if "trajectory" in m:
        t, b = m["trajectory"], m["baseline_identity_pose"]
        lines.append(f"  camera ATE (Sim3)    {100 * t['ate']:.2f} cm   (identity-pose "
                     f"baseline {100 * b['ate']:.2f} cm)")
        lines.append(f"  camera RPE rot       {t['rpe_rot_deg']:.3f} deg/frame (baseline "
                     f"{b['rpe_rot_deg']:.3f})")
    if "intrinsics" in m:
        k, b = m["intrinsics"], m["baseline_centred_principal_point"]
        lines.append(f"  camera fx / fy       {100 * k['fx_rel_err']:.1f} / "
                     f"{100 * k['fy_rel_err']:.1f} % error; principal point "
                     f"{100 * k['pp_err_frac']:.1f} % of the size (image centre "
                     f"{100 * b['pp_err_frac']:.1f} %)")
    if "depth" in m:
        d, b = m["depth"], m["baseline_constant_depth"]
        scaled = d.get("median_scaled", {}).get("abs_rel")
        lines.append(f"  depth abs_rel        {d['abs_rel']:.3f}     metric (constant-depth "
                     f"baseline {b['abs_rel']:.3f})"
                     + (f"; {scaled:.3f} after median scaling" if scaled is not None else ""))
        lines.append(f"  depth delta<1.25     {d['delta1']:.3f}     (baseline {b['delta1']:.3f})")
    if "pointcloud" in m:
        p, b = m["pointcloud"], m["baseline_pointcloud"]
        cd = next(k for k in p if k.startswith("chamfer"))
        lines.append(f"  points Chamfer       {100 * p[cd]:.2f} cm   (baseline "
                     f"{100 * b[cd]:.2f} cm)")
    return lines


def run(args) -> int:
    from unihoi_ros.demo import DemoConfig, run_demo
    from unihoi_ros.offline import OutputExistsError

    force = args.force or (args.out / "demo.json").is_file()  # replace our own old output
    cfg = DemoConfig(out=args.out, model=args.model, seed=args.seed, frames=args.frames,
                     height=args.height, width=args.width, force=force)
    try:
        summary = run_demo(cfg)
    except (OutputExistsError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"unihoi demo: error: {exc}", file=sys.stderr)
        return 1
    out = args.out
    print(f"\nunihoi demo: {summary['frames_received']}/{summary['frames_published']} frames "
          f"reconstructed by '{summary['model']}' ({summary['backend']}) over Cyclone DDS "
          f"(loopback, domain {summary['dds_domain']}) in {summary['wall_s']:.0f} s")
    print("against the clip's exact ground truth:")
    print("\n".join(_fmt(summary)))
    print(f"\noutputs in {out}/:")
    print("  bag/             rosbag2 MCAP: input images, depth, camera_info, confidence, "
          "points, trajectory, /tf, /diagnostics")
    if summary.get("pictures", True):
        print("  summary.png      RGB / depth / confidence strip and top view of trajectory + "
              "cloud")
        print("  eval.png         aligned trajectories and per-frame errors; eval.json: all "
              "metrics")
    else:
        print("  eval.json        every metric (summary.png, eval.png: need matplotlib)")
    print("  depth/, confidence/, frames.json   what the subscriber received: 16-bit mm and "
          "8-bit PNGs, stamps, K, poses (unihoi_ros.io.load_run reads them)")
    print("  cloud.ply        fused static point cloud; ground_truth.npz")
    mcap = next((out / "bag").glob("*.mcap"), out / "bag")
    print(f"\nopen the bag: drag {mcap} into Foxglove (foxglove.dev, 'Open local file'), "
          f"or `ros2 bag play {out / 'bag'}` with ROS 2")
    return 0 if summary["complete"] else 1
