"""Camera poses on real video: pose-solver settings side by side on 7-Scenes RedKitchen.

The segments, registration and oracle of ``bench/real.py``
(:mod:`unihoi_ros.evaluation_real`: the shared 400 frames, ``--segments`` segments of
``--segment-frames`` frames, depth registered into the colour camera, colour poses and
colour K), streamed through the :class:`~unihoi_ros.pipeline.Reconstructor` once per pose
setting (``--configs``), for two depth sources:

- ``oracle``: the registered true depth and the colour K (what the geometry makes of
  perfect depth);
- ``model_known_K``: the bundled model (or ``--model``) with the colour K (``--K dataset``);
- ``model``: the same model with its own K (``unihoi process`` defaults).

The network's outputs are computed once per window and shared by the settings (the pose
stage only reads them; the flow, hence the network's input, is the same for all), so a
setting costs its flow and pose stages only. Per segment and mean: ATE in % of the path
(Sim(3), evo), its ratio to the best-fit uniform straight line and to constant velocity,
RPE; the ratio of each setting's mean ATE to the first setting's (the old solver) in the
same run; per-stage costs in ms per frame (flow, network, poses: the median over
``--repeats`` runs of each stage's mean per frame). Also two facts about the recording
that bound any colour-only pose estimate against its ground truth: colour frames that
repeat the previous one exactly, and the ground truth's own frame-to-frame roughness (RMS
distance of the true positions from a 9-frame quadratic fit, in % of the path).

Usage::

    python bench/pose_real.py [--process-size 480x640] [--variants oracle model_known_K model]
        [--model unihoi-tiny | ADAPTED.safetensors] [--segments-from 0] [--depth]
        [--configs fixed="pnp_noise_factor=0" adaptive="" procrustes="pose_solver=procrustes"]
        [--json bench/results/pose_real.json]

A setting is ``name=field=value,field=value`` over :class:`ReconstructorConfig` fields
(empty: the defaults).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import time
from pathlib import Path

import numpy as np

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.evaluation_real import DEFAULT_DATA, oracle_backend, segment_starts
from unihoi_ros.pipeline.config import ReconstructorConfig

VARIANTS = ("oracle", "model_known_K", "model")
DEFAULT_VARIANTS = ("oracle", "model_known_K")
DEFAULT_CONFIGS = ("fixed=pnp_noise_factor=0", "adaptive=", "procrustes=pose_solver=procrustes")
STAGES = ("flow", "network", "poses")


class SharedNetwork(Backend):
    """A backend whose window outputs are computed once and replayed for later settings.

    Keyed by the window's frames (their bytes) and how many frames were decoded; the
    backward flows are the same for every setting (same frames, same DIS), so the network
    would answer the same. The first setting's network time is recorded per frame.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.device = f"shared {inner.name}", inner.device
        self.num_frames = inner.num_frames
        self.decodes_last = inner.decodes_last
        self._features: dict[bytes, object] = {}
        self._windows: dict[tuple, WindowPrediction] = {}

    @staticmethod
    def _key(rgb: np.ndarray) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16).digest()

    def encode(self, rgb: np.ndarray):
        return self._key(rgb), rgb

    def infer_window(self, features, rgbs, flows_bwd, decode_last=None):
        key = (tuple(k for k, _ in features), decode_last)
        if key not in self._windows:
            feats = []
            for k, rgb in features:
                if k not in self._features:
                    self._features[k] = self.inner.encode(rgb)
                feats.append(self._features[k])
            extra = {} if decode_last is None else {"decode_last": decode_last}
            self._windows[key] = self.inner.infer_window(feats, rgbs, flows_bwd, **extra)
        p = self._windows[key]
        return WindowPrediction(p.depth.copy(), np.array(p.K), p.confidence.copy(),
                                p.first_frame)

    def forget(self) -> None:
        self._features.clear()
        self._windows.clear()


def parse_config(text: str) -> tuple[str, ReconstructorConfig]:
    """``name=field=value,field=value`` to ``(name, ReconstructorConfig)``."""
    name, _, body = text.partition("=")
    fields = {f.name: f.type for f in dataclasses.fields(ReconstructorConfig)}
    kw = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"{text!r}: {key!r} is not a ReconstructorConfig field")
        kind = str(fields[key])
        kw[key] = (value if "str" in kind else value.lower() in ("1", "true", "yes")
                   if "bool" in kind else float(value) if "float" in kind else int(value))
    return name, ReconstructorConfig(**kw)


def repeated_frames(frames: list[np.ndarray]) -> int:
    """How many frames are byte-identical to the frame before them."""
    return sum(int(np.array_equal(a, b)) for a, b in itertools.pairwise(frames))


def roughness_pct(T: np.ndarray, window: int = 9) -> float:
    """RMS distance of the positions of ``T (N, 4, 4)`` from a sliding ``window``-frame
    quadratic (Savitzky-Golay) fit, in % of the path length."""
    from scipy.signal import savgol_filter

    from unihoi_ros.geometry.metrics import path_length

    p = T[:, :3, 3]
    resid = p - savgol_filter(p, window, 2, axis=0)
    return float(100 * np.sqrt((resid ** 2).sum(1).mean()) / path_length(T))


def run_segment(backend, flow, cfg: ReconstructorConfig, frames, gt, K,
                depth: bool = False) -> dict:
    """One segment through a fresh reconstructor: pose metrics and stage costs (and with
    ``depth``, abs_rel metric and median-scaled against the registered depth)."""
    from unihoi_ros.evaluation import evaluate
    from unihoi_ros.io.ground_truth import GroundTruth
    from unihoi_ros.io.predictions import Predictions
    from unihoi_ros.pipeline.reconstructor import Reconstructor

    cfg = dataclasses.replace(cfg, process_size=None, max_side=None, build_points=False)
    rec = Reconstructor(backend, flow, cfg)
    results = []
    for stamp, rgb in zip(gt.stamps_ns, frames):
        rec.push(int(stamp), rgb, K=K)
        results.extend(rec.drain())
    results.extend(rec.flush())
    stages = rec.stats()["stages_ms"]
    n = max(len(results), 1)
    cost = {s: sum(stages[x]["mean_ms"] * stages[x]["count"] for x in names if x in stages) / n
            for s, names in (("flow", ("flow",)), ("network", ("encoder", "network")),
                             ("poses", ("poses",)))}
    r = evaluate(Predictions.from_results(results),
                 GroundTruth(gt.stamps_ns, gt.T_world_cam, gt.depth if depth else None, gt.K),
                 clouds=False)
    tr, line, cv = r.trajectory, r.baseline_straight_line, r.baseline_constant_velocity
    extra = {}
    if depth and r.depth is not None:
        ms = r.depth.median_scaled
        extra = {"abs_rel": r.depth.abs_rel,
                 "abs_rel_scaled": ms.abs_rel if ms else float("nan")}
    return {**extra, "ate_pct": tr.ate_pct_path, "ate_vs_line": tr.ate_pct_path / line.ate_pct_path,
            "ate_vs_cv": tr.ate_pct_path / cv.ate_pct_path,
            "line_ate_pct": line.ate_pct_path, "cv_ate_pct": cv.ate_pct_path,
            "rpe_trans_mm": 1e3 * tr.rpe_trans, "rpe_rot_deg": tr.rpe_rot_deg,
            "path_m": r.gt_path_length_m, "pose_degenerate": sum(not x.pose_ok for x in results),
            "ms": cost}


def main(argv: list[str] | None = None) -> int:
    import cv2
    import torch
    from tqdm import tqdm

    from unihoi_ros.evaluation_real import _resize
    from unihoi_ros.geometry.camera import scale_intrinsics
    from unihoi_ros.io.ground_truth import load_seven_scenes
    from unihoi_ros.io.sources import seven_scenes_files

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--segments", type=int, default=8)
    ap.add_argument("--segment-frames", type=int, default=50)
    ap.add_argument("--process-size", default="480x640", metavar="HxW")
    ap.add_argument("--flow-preset", default="medium")
    ap.add_argument("--raft-weights", type=Path, default=None,
                    help="RAFT-small checkpoint: its flow instead of DIS (poses and the "
                    "network's input)")
    ap.add_argument("--raft-iters", type=int, default=12)
    ap.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=VARIANTS)
    ap.add_argument("--segments-from", type=int, default=0,
                    help="run only segments from this index on (held-out ones after an "
                    "adaptation on the first frames)")
    ap.add_argument("--depth", action="store_true",
                    help="also score depth (abs_rel metric and median-scaled)")
    ap.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                    help="name=field=value,... (first = the reference for ratios)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per setting (timings)")
    ap.add_argument("--model", default="unihoi-tiny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pair-by-number", action="store_true",
                    help="ground truth of each colour frame's own number (the recording's "
                    "repeated frames not matched: load_seven_scenes(match_repeats=False))")
    ap.add_argument("--json", type=Path, default=Path("bench/results/pose_real.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    hw = tuple(int(v) for v in args.process_size.lower().split("x"))
    configs = [parse_config(c) for c in args.configs]
    files = seven_scenes_files(args.data)
    if args.raft_weights:
        from unihoi_ros.flow.raft import RAFTFlow

        flow = RAFTFlow(args.raft_weights, args.raft_iters)
        flow_name = f"RAFT-small {args.raft_iters} iterations"
    else:
        from unihoi_ros.flow import DISFlow

        flow, flow_name = DISFlow(args.flow_preset), f"DIS {args.flow_preset}"
    starts = segment_starts(len(files), args.segments, args.segment_frames)[args.segments_from:]
    model = None
    if {"model_known_K", "model"} & set(args.variants):
        from unihoi_ros.backends.factory import load_backend

        model = SharedNetwork(load_backend(args.model, "torch", "cpu"))
    rows = {v: {name: [] for name, _ in configs} for v in args.variants}
    facts = []
    bar = tqdm(total=len(starts) * len(args.variants) * len(configs) * args.repeats,
               desc="pose settings", unit="run")
    t0 = time.perf_counter()
    for s in starts:
        seg = slice(s, s + args.segment_frames)
        gt = load_seven_scenes(args.data, 30.0, frames=seg,
                                match_repeats=not args.pair_by_number)
        K = scale_intrinsics(gt.K, gt.depth.shape[1:], hw)
        full = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for _, p in files[seg]]
        frames = [_resize(f, hw, cv2.INTER_AREA) for f in full]
        facts.append({"start_frame": int(files[s][0]), "repeated_frames": repeated_frames(full),
                      "gt_roughness_pct": roughness_pct(gt.T_world_cam)})
        for v in args.variants:
            backend = (SharedNetwork(oracle_backend(frames, gt.depth, K)) if v == "oracle"
                       else model)
            for name, cfg in configs:
                runs = []
                for _ in range(args.repeats):
                    runs.append(run_segment(backend, flow, cfg, frames, gt,
                                            None if v == "model" else K, args.depth))
                    bar.update(1)
                row = dict(runs[0], start_frame=int(files[s][0]))
                row["ms"] = {k: float(np.median([r["ms"][k] for r in runs])) for k in STAGES}
                # the network ran in the first setting's first run only: its time is there
                if name == configs[0][0]:
                    row["ms"]["network"] = runs[0]["ms"]["network"]
                rows[v][name].append(row)
        if model is not None:  # the model's variants share its windows (same frames, flows)
            model.forget()
    bar.close()
    out = {"benchmark": "pose_real", "date": time.strftime("%Y-%m-%d"),
           "settings": {"data": str(args.data), "start_frames": [f["start_frame"] for f in facts],
                        "segment_frames": args.segment_frames, "process_size": list(hw),
                        "flow_preset": args.flow_preset, "flow": flow_name, "repeats": args.repeats,
                        "pair_by_number": args.pair_by_number,
                        "configs": {n: dataclasses.asdict(c) for n, c in configs},
                        "wall_time_s": time.perf_counter() - t0},
           "recording": facts, "variants": {}}
    ref = configs[0][0]
    print(f"7-Scenes {args.data.name}: {len(starts)} x {args.segment_frames} frames at "
          f"{hw[1]}x{hw[0]}, {flow_name}; colour frames repeating the previous one: "
          f"{sum(f['repeated_frames'] for f in facts)} of {len(starts) * (args.segment_frames - 1)}"
          "; ground-truth roughness (9-frame quadratic fit, % of path): "
          + ", ".join(f"{f['gt_roughness_pct']:.2f}" for f in facts) + "\n")
    for v, by_cfg in rows.items():
        means = {}
        for name, segs in by_cfg.items():
            keys = ("ate_pct", "ate_vs_line", "ate_vs_cv", "rpe_trans_mm", "rpe_rot_deg",
                    "abs_rel", "abs_rel_scaled")
            means[name] = {k: float(np.mean([r[k] for r in segs])) for k in keys if k in segs[0]}
            means[name]["ate_pct_median"] = float(np.median([r["ate_pct"] for r in segs]))
            means[name]["ate_pct_max"] = float(np.max([r["ate_pct"] for r in segs]))
            means[name]["ms"] = {k: float(np.mean([r["ms"][k] for r in segs])) for k in STAGES}
        for name in means:
            means[name]["ate_vs_reference"] = means[name]["ate_pct"] / means[ref]["ate_pct"]
            means[name]["poses_ms_vs_reference"] = (means[name]["ms"]["poses"]
                                                    / means[ref]["ms"]["poses"])
        out["variants"][v] = {"segments": by_cfg, "mean": means}
        print(f"**{v}** (ATE % of path per segment; mean; /line, /const-vel, x{ref}; ms per "
              "frame: flow, network, poses)\n")
        starts_txt = " | ".join(str(f["start_frame"]) for f in facts)
        print(f"| setting | {starts_txt} | mean | median | max | /line | /cv | x{ref} | "
              "abs_rel med | flow ms | net ms | poses ms |")
        print("|---|" + "---|" * (len(facts) + 10))
        for name, segs in by_cfg.items():
            m = means[name]
            print(f"| {name} | " + " | ".join(f"{r['ate_pct']:.2f}" for r in segs)
                  + f" | {m['ate_pct']:.2f} | {m['ate_pct_median']:.2f} | {m['ate_pct_max']:.2f}"
                  f" | {m['ate_vs_line']:.2f} | {m['ate_vs_cv']:.2f} | {m['ate_vs_reference']:.2f}"
                  f" | {m.get('abs_rel_scaled', float('nan')):.3f} | {m['ms']['flow']:.1f} | "
                  f"{means[ref]['ms']['network']:.1f} | {m['ms']['poses']:.2f} |")
        print()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
