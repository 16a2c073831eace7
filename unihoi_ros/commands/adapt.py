"""``unihoi adapt INPUT... -o MODEL.safetensors``: fine-tune a model on your own video.

Self-supervised (no labels): the paper's objective with priors computed from the
recordings themselves, a depth teacher triangulated from the video's own multi-view
geometry, and the base model's prediction as a weak regulariser
(:mod:`unihoi_ros.train.adapt`). Exit status 2 on bad arguments, 1 when the run fails.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

log = logging.getLogger("unihoi.adapt")


def register(sub) -> None:
    p = sub.add_parser(
        "adapt", help="fine-tune the model self-supervised on your own unlabeled recordings",
        description="Fine-tune the bundled (or a given) model on unlabeled recordings "
        "(rosbag2 bags, videos, image folders, TUM / 7-Scenes folders) with the paper's "
        "self-supervised losses and a depth teacher triangulated from the video's own "
        "multi-view geometry. The result loads with --model in the node and in "
        "`unihoi process`. Writes MODEL.safetensors, MODEL.json, MODEL.report.json, "
        "MODEL.losses.png and a work folder MODEL.adapt/ (checkpoints, --resume).")
    p.add_argument("input", type=Path, nargs="+", help="recordings of one camera")
    p.add_argument("-o", "--out", type=Path, required=True, help="MODEL.safetensors to write")
    p.add_argument("--K", dest="K", default=None, metavar="FX,FY,CX,CY|dataset",
                   help="the camera's intrinsics in pixels of the input frames ('dataset': "
                   "the reader's, e.g. 7-Scenes / TUM); strongly recommended")
    p.add_argument("--camera-info", default=None, type=Path, metavar="FILE.yaml",
                   help="calibration YAML (camera_calibration / camera_info_manager)")
    p.add_argument("--minutes", type=float, default=30.0,
                   help="wall-time budget of the whole run, minutes (default 30)")
    p.add_argument("--model", default="unihoi-tiny", help="base model: bundled name or "
                   "weights path (default unihoi-tiny)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in MODEL.adapt/ from its last checkpoint")
    p.add_argument("--topic", default=None, help="image topic of bags (auto if one camera)")
    p.add_argument("--max-frames", type=int, default=None, help="frames read per recording")
    p.add_argument("--holdout", type=float, default=0.1,
                   help="fraction at the end of each recording kept out of training and "
                   "used for the before/after report (default 0.1)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--synthetic-pairs", type=int, default=0, metavar="N",
                   help="mix N synthetic clip pairs (labelled as unihoi-tiny-synthetic's last "
                   "training leg, unihoi_tiny_world2.yaml) into training, so the model keeps "
                   "its synthetic accuracy; built in MODEL.adapt/cache_synthetic "
                   "(default 0: none)")
    p.add_argument("--synthetic-every", type=int, default=2, metavar="K",
                   help="with --synthetic-pairs: one step in K trains on a synthetic pair, "
                   "the others on the recordings (default 2: every other step)")
    p.add_argument("--augment", action="store_true",
                   help="photometric jitter (exposure, contrast, saturation, white balance, "
                   "gamma, noise) of the recordings' clips as the network sees them")
    p.add_argument("--flip", action="store_true",
                   help="mirror half of the recordings' clips left-right (frames, teacher "
                   "depth, flow, tracks and K together)")
    p.add_argument("--zoom", type=float, default=0.0, metavar="S",
                   help="crop half of the recordings' clips, magnified by up to S (> 1) and "
                   "resized back, with their priors and K (a longer focal length): more "
                   "sizes and places of the room's things (default 0: off)")
    p.add_argument("--raft-weights", type=Path, default=None, metavar="raft-small.pth",
                   help="the depth teacher triangulates RAFT-small's flow (the authors' "
                   "checkpoint, princeton-vl/RAFT; not downloaded) instead of OpenCV DIS's: "
                   "a better teacher on real frames, about 1 s more per frame at 640x480")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    p.add_argument("--seed", type=int, default=0,
                   help="clip sampling, data order and augmentation draws (default 0)")
    p.add_argument("--no-truth", action="store_true",
                   help="skip the ground-truth scoring of held-out frames (7-Scenes inputs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _camera(args, first_input: Path):
    """``(K (3, 3) or None, size (H, W) or None)`` from ``--K`` / ``--camera-info``."""
    from unihoi_ros.errors import ConfigError
    from unihoi_ros.io.camera_info import choose_camera, has_distortion
    from unihoi_ros.io.sources import open_source

    if not args.K and not args.camera_info:
        return None, None
    source = open_source(first_input, topic=args.topic)
    cal = choose_camera(source, args.K, args.camera_info, False)
    if cal is None:
        return None, None
    if has_distortion(cal.d):
        raise ConfigError("adapt takes undistorted frames: the calibration has lens "
                          "distortion (rectify the recording first, or give --K of the "
                          "rectified images)")
    return cal.K, ((cal.height, cal.width) if cal.height > 0 else None)


def run(args) -> int:
    from unihoi_ros.errors import ConfigError, UnihoiError
    from unihoi_ros.train.adapt import AdaptConfig, adapt

    try:
        missing = [str(p) for p in args.input if not p.exists()]
        if missing:
            raise ConfigError(f"no such input: {', '.join(missing)}")
        if args.K and args.camera_info:
            raise ConfigError("give --K or --camera-info, not both")
        if args.max_steps is not None and args.max_steps < 1:
            raise ConfigError("--max-steps must be >= 1")
        K, K_size = _camera(args, args.input[0])
        cfg = AdaptConfig(inputs=list(args.input), output=args.out, K=K, K_size=K_size,
                          base=args.model, minutes=args.minutes, topic=args.topic,
                          max_frames=args.max_frames, holdout=args.holdout,
                          max_steps=args.max_steps, threads=args.threads, seed=args.seed,
                          synthetic_pairs=args.synthetic_pairs,
                          synthetic_every=args.synthetic_every,
                          augment=args.augment, flip=args.flip, zoom=args.zoom,
                          raft_weights=args.raft_weights,
                          resume=args.resume, progress=not args.no_progress,
                          evaluate_truth=not args.no_truth)
    except (ConfigError, ValueError) as exc:
        print(f"unihoi adapt: error: {exc}", file=sys.stderr)
        return 2
    if K is None:
        log.warning("no --K / --camera-info: K is the base model's (its stream median); "
                    "a calibrated K makes the geometric teacher far better")
    try:
        report = adapt(cfg)
    except ConfigError as exc:
        print(f"unihoi adapt: error: {exc}", file=sys.stderr)
        return 2
    except (UnihoiError, FileNotFoundError) as exc:
        print(f"unihoi adapt: error: {exc}", file=sys.stderr)
        return 1
    print(summary_lines(report))
    return 0


def summary_lines(report: dict) -> str:
    """The run's result in a few lines (the report JSON has everything)."""
    t = report["time"]
    lines = [f"adapted {report['base']} -> {report['output']}: {report['steps']} steps, "
             f"{t['total_s'] / 60:.1f} min wall ({t['prepare_s'] / 60:.1f} preparing, "
             f"{t['train_s'] / 60:.1f} training), {t['cpu_s'] / 60:.1f} min CPU"]
    hl = report.get("held_out_losses")
    if hl:
        lines.append(f"held-out self-supervised loss {hl['before']['total']:.4g} -> "
                     f"{hl['after']['total']:.4g}")
    syn = report.get("synthetic")
    if syn:
        lines.append(f"synthetic leg: {syn['clip_pairs']} clip pairs, {syn['steps']} of the "
                     f"steps, last loss {syn['last_losses'].get('total', float('nan')):.4g}")
    for vid, tr in report.get("held_out_truth", {}).items():
        b, a = tr["before"]["mean"], tr["after"]["mean"]
        starts = ", ".join(str(seg["start_frame"]) for seg in tr["after"]["segments"])
        lines.append(f"{vid} held-out frames {tr['frames'][0]}-{tr['frames'][1] - 1} of the "
                     f"recording (segments from frame {starts}): "
                     f"depth abs_rel (median-scaled) {b['abs_rel_scaled']:.3f} -> "
                     f"{a['abs_rel_scaled']:.3f}; ATE {b['ate_pct']:.2f} -> "
                     f"{a['ate_pct']:.2f} % of path (straight line {a['line_ate_pct']:.2f}; "
                     f"{len(tr['after']['segments'])} segment(s))")
    stem = Path(report["output"]).with_suffix("")
    lines.append(f"report: {stem}.report.json, {stem}.losses.png; use it with "
                 f"--model {report['output']}")
    return "\n".join(lines)
