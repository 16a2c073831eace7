"""How good ``unihoi adapt``'s depth teacher is on real frames, per way of building it.

On the shared 7-Scenes RedKitchen frames (``../shared/data/7scenes_redkitchen_300_699``,
the colour camera's K) the teacher's inputs are made once, as ``unihoi adapt --holdout
0.25 --K dataset`` makes them (:func:`unihoi_ros.train.adapt.teacher_inputs`: the base
model's predictions, the triangulated depth at the training size), then the teacher is
built each way (:func:`~unihoi_ros.train.adapt.teacher_from`) and scored against the true
depth registered into the colour camera (block median to the training size):

- ``scale step %``: std of the frame-to-frame change of ``log median(teacher / truth)``
  over the teacher's geometric pixels (within the training and held-out parts): scale
  jitter the ``scale`` loss passes on to the model;
- ``shape``: median-scaled abs_rel of the geometric part (each frame's median scale);
- ``coverage``: fraction of pixels with a geometric depth (the rest is the base model's,
  weight ``base_weight``);
- the base model alone (its depth read with the known K) on all pixels, for reference.

Usage: ``python bench/adapt_teacher.py [--model unihoi-tiny] [--json out.json]``
(about 5 min on 2 idle cores).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from unihoi_ros.evaluation_real import DEFAULT_DATA

#: (name, scale_anchor, fuse_radius): the ways of building the teacher compared.
VARIANTS = (("per frame from the base (before 2026-12-06 night)", None, 0),
            ("one scale along the recording", 0.01, 0),
            ("+ fused over +-2 frames (default)", 0.01, 2),
            ("+ fused over +-4 frames", 0.01, 4))


def score(teacher: np.ndarray, truth: np.ndarray, parts: list[slice]) -> dict:
    """``teacher``/``truth`` ``(N, h, w)`` metres (NaN / <= 0 invalid): the module
    docstring's figures."""
    n = len(teacher)
    log_ratio = np.full(n, np.nan)
    shape = []
    for i in range(n):
        ok = np.isfinite(teacher[i]) & np.isfinite(truth[i]) & (truth[i] > 0)
        if ok.sum() < 50:
            continue
        ratio = truth[i][ok] / teacher[i][ok]
        s = np.median(ratio)
        log_ratio[i] = -np.log(s)
        shape.append(np.mean(np.abs(teacher[i][ok] * s - truth[i][ok]) / truth[i][ok]))
    steps = np.concatenate([np.diff(log_ratio[p]) for p in parts])
    return {"scale_step_pct": 100 * float(np.nanstd(steps)),
            "shape_abs_rel": float(np.mean(shape)),
            "coverage": float(np.mean(np.isfinite(teacher)))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default="unihoi-tiny")
    ap.add_argument("--holdout", type=float, default=0.25)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--raft-weights", type=Path, default=None,
                    help="triangulate RAFT-small's flow instead of DIS's")
    args = ap.parse_args(argv)
    import dataclasses

    from unihoi_ros.geometry.multiview import block_median
    from unihoi_ros.io.ground_truth import load_seven_scenes
    from unihoi_ros.model import UniHOI
    from unihoi_ros.train.adapt import AdaptConfig, read_recording, teacher_from, teacher_inputs

    t0 = time.perf_counter()
    model = UniHOI.from_pretrained(args.model).eval()
    hw = tuple(int(v) for v in model.config.image_shape)
    cfg = AdaptConfig([args.data], Path("/nonexistent/x.safetensors"), base=args.model,
                      holdout=args.holdout, progress=True)
    rec = read_recording(args.data, 0, hw, cfg.teacher_max_side, None, None)
    gt = load_seven_scenes(args.data)
    cfg.K = gt.K
    n = len(rec.frames)
    pair_flow = None
    if args.raft_weights:
        from unihoi_ros.flow.raft import RAFTFlow

        pair_flow = RAFTFlow(args.raft_weights)
    inputs = teacher_inputs(rec, model, gt.K, cfg, n - round(cfg.holdout * n), pair_flow)
    truth = gt.depth.astype(np.float32)
    truth[~(truth > 0)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        truth = np.stack([block_median(d, hw) for d in truth])
    rows = {"base model alone": score(inputs["base_depth"], truth, inputs["parts"])}
    for name, anchor, radius in VARIANTS:
        variant = dataclasses.replace(cfg, scale_anchor=anchor, fuse_radius=radius)
        _, _, metric = teacher_from(inputs, variant)
        rows[name] = score(metric, truth, inputs["parts"])
    print(f"teacher of `unihoi adapt` on {args.data.name} ({n} frames at {hw[1]}x{hw[0]}, "
          f"base {args.model}, {time.perf_counter() - t0:.0f} s)\n")
    print("| teacher | scale step % | shape (median-scaled abs_rel) | coverage |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['scale_step_pct']:.2f} | {r['shape_abs_rel']:.3f} | "
              f"{100 * r['coverage']:.0f} % |")
    if args.json:
        args.json.write_text(json.dumps({"data": str(args.data), "model": args.model,
                                         "holdout": args.holdout, "rows": rows},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
