"""``unihoi eval PRED_DIR GT``: metrics of a processed run against ground truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from unihoi_ros.commands import non_negative_int, positive_int, usage_error
from unihoi_ros.evaluation_result import EvaluationResult, PrincipalPointScores


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="evaluate `unihoi process` output against ground truth, or a model on "
        "held-out synthetic clips (--model NAME --synthetic N)")
    p.add_argument("pred_dir", type=Path, nargs="?", help="output directory of `unihoi process`")
    p.add_argument("gt", type=Path, nargs="?", help="ground truth: TUM RGB-D folder, 7-Scenes "
                   "folder or .npz (synthetic)")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="where to write eval.json / eval.png (default: PRED_DIR)")
    p.add_argument("--model", default=None, help="with --synthetic: model to evaluate "
                   "(bundled name, weights path, random:<size>)")
    p.add_argument("--synthetic", type=non_negative_int, default=0, metavar="N",
                   help="evaluate --model on N held-out synthetic clips (seeds 10000+), next to "
                   "the untrained network and the baselines (constant depth, identity / "
                   "constant-velocity poses, centred principal point, no tracking)")
    p.add_argument("--frames", type=positive_int, default=32, help="frames per synthetic clip")
    p.add_argument("--no-tracks", action="store_true",
                   help="with --synthetic: skip the long-term 3D tracking rows (faster)")
    p.set_defaults(func=run)


def format_table(result: EvaluationResult) -> str:
    """Human-readable lines for the main numbers (and the baselines next to them)."""
    nan = float("nan")
    lines = [f"frames evaluated: {result.frames_evaluated}"]
    tr = result.trajectory
    if tr:
        base = result.baseline_identity_pose
        cv, line = result.baseline_constant_velocity, result.baseline_straight_line
        lines.append(f"ATE (Sim3)     {tr.ate:.4f} m     identity-pose baseline "
                     f"{base.ate:.4f} m")
        path = nan if result.gt_path_length_m is None else result.gt_path_length_m
        lines.append(f"ATE / path     {tr.ate_pct_path:.2f} %       constant-velocity "
                     f"baseline {cv.ate_pct_path if cv else nan:.2f} %, straight "
                     f"line {line.ate_pct_path if line else nan:.2f} % (path {path:.3f} m)")
        lines.append(f"RPE trans      {tr.rpe_trans:.4f} m     baseline "
                     f"{base.rpe_trans:.4f} m")
        lines.append(f"RPE rot        {tr.rpe_rot_deg:.3f} deg   baseline "
                     f"{base.rpe_rot_deg:.3f} deg")
    d = result.depth
    if d:
        b, ms = result.baseline_constant_depth, d.median_scaled
        lines.append(f"depth abs_rel  {d.abs_rel:.4f}       constant-depth baseline "
                     f"{b.abs_rel:.4f}   (metric, no rescaling)")
        if ms:
            lines.append(f"  median-scaled {ms.abs_rel:.4f}      (per-frame median scaling, "
                         f"rmse {ms.rmse:.4f} m, delta1 {ms.delta1:.4f})")
        lines.append(f"depth rmse     {d.rmse:.4f} m     baseline {b.rmse:.4f} m")
        lines.append(f"depth delta1   {d.delta1:.4f}       baseline {b.delta1:.4f}")
    k = result.intrinsics
    if k:
        c = result.baseline_centred_principal_point or PrincipalPointScores(nan, nan, nan)
        lines.append(f"K fx, fy       rel. error {k.fx_rel_err:.4f}, {k.fy_rel_err:.4f}   "
                     f"(pred/true {k.fx_ratio:.3f}, {k.fy_ratio:.3f})")
        lines.append(f"K cx, cy       {k.cx_err_px:.2f}, {k.cy_err_px:.2f} px      "
                     f"image-centre baseline {c.cx_err_px:.2f}, {c.cy_err_px:.2f} px")
        lines.append(f"K principal pt {100 * k.pp_err_frac:.2f} % of the image    baseline "
                     f"{100 * c.pp_err_frac:.2f} %"
                     + ("   (GT size assumed = prediction's)" if k.gt_size_assumed else ""))
    if result.pointcloud:
        lines.append("points: " + ", ".join(f"{k} {v:.4f}"
                                            for k, v in result.pointcloud.to_dict().items()))
    return "\n".join(lines)


def run_synthetic(args) -> int:
    """``--model NAME --synthetic N``: the model, the untrained network and the baseline."""
    from unihoi_ros.backends.factory import load_backend
    from unihoi_ros.train.benchmark import BASELINE_LEGEND, evaluate_on_synthetic, format_table

    seeds = range(10_000, 10_000 + args.synthetic)
    backend = load_backend(args.model)
    size = backend.model.config.size
    columns, full = {}, {}
    for name, be in ((args.model, backend), ("untrained", load_backend(f"random:{size}"))):
        res = evaluate_on_synthetic(be, seeds, num_frames=args.frames,
                                    tracks=not args.no_tracks)
        columns[name] = res["mean"]
        full[name] = res
    # One baseline column; which baseline each row uses is the legend under the table.
    columns["baseline"] = full[args.model]["baseline_mean"]
    table = format_table(columns)
    print(f"{args.synthetic} held-out synthetic clips (seeds {seeds.start}-{seeds.stop - 1}, "
          f"{args.frames} frames, 120x160, DIS flow); means:")
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "eval_synthetic.json").write_text(json.dumps(
            {"columns": columns, "baseline_legend": BASELINE_LEGEND, "runs": full}, indent=2,
            default=float))
    return 0


def run(args) -> int:
    import numpy as np

    if args.synthetic:
        if not args.model:
            return usage_error("eval", ValueError("--synthetic needs --model"))
        return run_synthetic(args)
    if args.pred_dir is None or args.gt is None:
        return usage_error("eval", ValueError("give PRED_DIR and GT, or --model NAME "
                                              "--synthetic N"))

    from unihoi_ros.errors import UnihoiError
    from unihoi_ros.evaluation import associate, evaluate
    from unihoi_ros.geometry.metrics import align_trajectory
    from unihoi_ros.io import load_run
    from unihoi_ros.io.ground_truth import load_ground_truth
    from unihoi_ros.io.pictures import evaluation_png, pictures_enabled

    pictures = pictures_enabled(["eval.png"])
    out = args.out or args.pred_dir
    try:
        pred = load_run(args.pred_dir)
        gt = load_ground_truth(args.gt)
        result = evaluate(pred, gt)
    except (UnihoiError, FileNotFoundError, ValueError, KeyError) as exc:
        print(f"unihoi eval: error: {exc}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result.to_dict(), indent=2))
    if pictures and gt.T_world_cam is not None and result.trajectory is not None:
        ip, ig = associate(pred.stamps_ns, gt.stamps_ns)
        aligned = align_trajectory(pred.T_world_cam[ip], gt.T_world_cam[ig], mode="sim3")
        evaluation_png(out / "eval.png", np.asarray(aligned), gt.T_world_cam[ig],
                       result.per_frame_translation_error_m,
                       None if result.depth is None else result.depth.per_frame_abs_rel,
                       title=f"{args.pred_dir.name} vs {gt.source}")
    print(format_table(result))
    print(f"wrote {out / 'eval.json'}" + (f" and {out / 'eval.png'}"
                                           if (out / "eval.png").exists() else ""))
    return 0
