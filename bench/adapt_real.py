"""Models adapted with ``unihoi adapt`` against their base on the 7-Scenes benchmark.

Runs :func:`unihoi_ros.evaluation_real.evaluate_real` (the segments of ``bench/real.py``,
640x480, DIS medium, scored in the colour camera) for the base model and each adapted one
in the same process, and prints per segment and mean: median-scaled and metric depth
abs_rel, ATE in % of the path and its ratio to the best-fit straight line, fx error. The
segments a run adapted on are in-sample; ``--segments-from`` runs only the held-out ones
(e.g. ``--segments-from 6`` for an adaptation on the first 300 frames).

Then the depth's scale over time on the same frames (:func:`scale_over_time`): each
model's network depth at its input size (windows of 4 frames back to back, as ``unihoi
adapt`` predicts them) against the registered true depth: the std of ``log median(pred /
true)`` over the frames, and of its frame-to-frame change within a window and across window
boundaries. With PnP poses a step's translation takes its scale from the previous frame's
depth, so a scale that jumps between windows makes step lengths jump.

Usage: ``python bench/adapt_real.py ADAPTED.safetensors [MORE.safetensors ...]
[--base unihoi-tiny] [--variants model_known_K model] [--segments-from 0]
[--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from unihoi_ros.evaluation_real import RealBenchConfig, evaluate_real, segments_mean

KEYS = (("abs_rel_scaled", "abs_rel med", "{:.3f}"), ("abs_rel", "abs_rel metric", "{:.3f}"),
        ("ate_pct", "ATE %path", "{:.2f}"), ("ate_vs_line", "/line", "{:.2f}"),
        ("fx_rel", "fx err", "{:.3f}"))


def scale_frames(data: Path, frames: slice, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``frames`` of the 7-Scenes folder ``data`` at the network's input size ``hw``:
    ``(rgb (N, h, w, 3) uint8, truth (N, h, w) metres, NaN where none)``, the registered
    true depth reduced by a block median (read once for every model)."""
    import cv2

    from unihoi_ros.geometry.multiview import block_median
    from unihoi_ros.io.ground_truth import load_seven_scenes
    from unihoi_ros.io.sources import seven_scenes_files

    h, w = hw
    files = seven_scenes_files(data)[frames]
    rgb = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (w, h),
                               interpolation=cv2.INTER_AREA) for _, p in files])
    truth = load_seven_scenes(data, frames=frames).depth.astype(np.float32)
    truth[~(truth > 0)] = np.nan
    return rgb, np.stack([block_median(t, hw) for t in truth])


def scale_over_time(model, rgb: np.ndarray, truth: np.ndarray) -> dict:
    """The module docstring's scale figures (per cent) of ``model`` (a loaded
    :class:`~unihoi_ros.model.UniHOI`) on the frames of :func:`scale_frames`."""
    from unihoi_ros.train.adapt import base_predictions

    depth, _ = base_predictions(model, rgb)
    log_scale = []
    for pred, true in zip(depth, truth):
        ok = np.isfinite(true) & (pred > 0)
        log_scale.append(float(np.log(np.median(pred[ok] / true[ok]))))
    steps = np.diff(log_scale)
    window = model.config.frames
    across = (np.arange(len(steps)) % window) == window - 1  # last frame -> next window
    return {"scale_std_pct": 100 * float(np.std(log_scale)),
            "step_within_window_pct": 100 * float(np.std(steps[~across])),
            "step_across_windows_pct": 100 * float(np.std(steps[across]))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("adapted", type=Path, nargs="+")
    ap.add_argument("--base", default="unihoi-tiny")
    ap.add_argument("--variants", nargs="+", default=["model_known_K"],
                    choices=("model", "model_known_K"))
    ap.add_argument("--segments-from", type=int, default=0,
                    help="score only segments from this index on (held-out ones)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from unihoi_ros.backends.factory import load_backend

    out = {}
    t0 = time.perf_counter()
    models = [("base", args.base)] + [(p.stem, str(p)) for p in args.adapted]
    for name, model in models:
        cfg = RealBenchConfig(variants=tuple(args.variants), segments_from=args.segments_from)
        res = evaluate_real(lambda m=model: load_backend(m, "torch", "cpu"), cfg)
        for v, r in res["variants"].items():
            rows = r["segments"]
            out.setdefault(v, {})[name] = {"segments": rows, "mean": segments_mean(rows)}
    print(f"7-Scenes segments from #{args.segments_from}; base {args.base}, adapted "
          f"{', '.join(map(str, args.adapted))} ({time.perf_counter() - t0:.0f} s)\n")
    for v, by_model in out.items():
        print(f"**{v}**\n\n| model | segment | " + " | ".join(t for _, t, _ in KEYS) + " |")
        print("|---|---|" + "---|" * len(KEYS))
        for name, r in by_model.items():
            for row in [*r["segments"], {**r["mean"], "start_frame": "mean"}]:
                cells = [("–" if not np.isfinite(row.get(k, np.nan)) else f.format(row[k]))
                         for k, _, f in KEYS]
                print(f"| {name} | {row['start_frame']} | " + " | ".join(cells) + " |")
        print()
    from unihoi_ros.evaluation_real import segment_starts
    from unihoi_ros.io.sources import seven_scenes_files

    cfg = RealBenchConfig()
    starts = segment_starts(len(seven_scenes_files(cfg.data)), cfg.segments,
                            cfg.segment_frames)[args.segments_from:]
    frames = slice(starts[0], starts[-1] + cfg.segment_frames)  # the scored segments
    from unihoi_ros.model import UniHOI

    print("| model | depth scale std % | step within a window % | step across windows % |")
    print("|---|---|---|---|")
    scale_inputs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for name, model in models:
        net = UniHOI.from_pretrained(model).eval()
        hw = tuple(int(v) for v in net.config.image_shape)
        if hw not in scale_inputs:
            scale_inputs[hw] = scale_frames(cfg.data, frames, hw)
        sc = scale_over_time(net, *scale_inputs[hw])
        out.setdefault("scale_over_time", {})[name] = sc
        print(f"| {name} | {sc['scale_std_pct']:.1f} | {sc['step_within_window_pct']:.1f} | "
              f"{sc['step_across_windows_pct']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"segments_from": args.segments_from,
                                         "base": args.base,
                                         "adapted": [str(p) for p in args.adapted],
                                         "variants": out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
