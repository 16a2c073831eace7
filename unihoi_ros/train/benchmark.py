"""Evaluation of a model on held-out synthetic clips, through the streaming pipeline.

Each clip (``unihoi_ros.sim.make_sequence(seed, ...)``) is streamed frame by frame through
``Reconstructor(TorchBackend(model), DISFlow())`` exactly as the demo runs it, the results
are collected with ``Predictions.from_results`` and scored by
:func:`unihoi_ros.evaluation.evaluate` against the clip's exact ground truth. Everything is
deterministic (fixed seeds; DIS is deterministic), so numbers reproduce. With
``tracks=True`` (the default) the clip's exact query points are also tracked through the
results (:func:`unihoi_ros.tracks.evaluate_tracks`).

Rows (:data:`HEADLINE`): depth as predicted (``abs_rel``, no rescaling) and after
per-frame median scaling (``abs_rel_scaled``); intrinsics errors (``fx_rel``, ``fy_rel``,
``cx_px``, ``cy_px``, ``pp_frac``); poses (``ate_m``, ``ate_pct`` = ATE in per cent of
the path, RPE); clouds; long-term tracking (``dyn_*``, ``static_*``).

There is one baseline column, but its reference differs by row (:data:`BASELINE`,
printed as a legend under :func:`format_table`): constant depth at the true median for
depth; the image-centre principal point for cx / cy / pp (none, NaN, for fx / fy);
identity poses for ``ate_m`` and RPE, but the constant-velocity path (the first two true
poses' motion repeated) for ``ate_pct``, the line the acceptance compares ATE with;
constant depth + identity poses for the cloud; no tracking (each point held where first
seen) for the tracking rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from unihoi_ros.backends.base import Backend
from unihoi_ros.evaluation_result import EvaluationResult, MetricPath

#: Held-out seeds of the bundled model's evaluation (training uses seeds < 10000).
HELD_OUT_SEEDS = tuple(range(10_000, 10_005))

#: The headline numbers: (name, the number in the evaluate() result, higher is better).
#: ``abs_rel`` is the metric depth as predicted (no rescaling), ``abs_rel_scaled`` the same
#: after per-frame median scaling; ``fx_rel`` / ``fy_rel`` are mean ``|pred / true - 1|``,
#: ``cx_px`` / ``cy_px`` mean principal-point errors (pixels of the clip) and ``pp_frac``
#: the larger of them over the image's width / height; ``ate_pct`` is the ATE in per cent
#: of the true path length. ``dyn_*`` / ``static_*`` (with ``tracks=True``) are the
#: fractions of visible points on moving bodies / the static scene that the 3D tracker
#: puts within 2 / 5 / 10 cm after one metric-scale fit per clip
#: (:func:`unihoi_ros.tracks.evaluate_tracks`).
HEADLINE = (
    ("abs_rel", MetricPath("depth", "abs_rel"), False),
    ("abs_rel_scaled", MetricPath("depth", "median_scaled", ("abs_rel",)), False),
    ("rmse_m", MetricPath("depth", "rmse"), False),
    ("delta1", MetricPath("depth", "delta1"), True),
    ("fx_rel", MetricPath("intrinsics", "fx_rel_err"), False),
    ("fy_rel", MetricPath("intrinsics", "fy_rel_err"), False),
    ("cx_px", MetricPath("intrinsics", "cx_err_px"), False),
    ("cy_px", MetricPath("intrinsics", "cy_err_px"), False),
    ("pp_frac", MetricPath("intrinsics", "pp_err_frac"), False),
    ("ate_m", MetricPath("trajectory", "ate"), False),
    ("ate_pct", MetricPath("trajectory", "ate_pct_path"), False),
    ("rpe_trans_m", MetricPath("trajectory", "rpe_trans"), False),
    ("rpe_rot_deg", MetricPath("trajectory", "rpe_rot_deg"), False),
    ("chamfer_m", MetricPath("pointcloud", "chamfer"), False),
    ("fscore_2.5cm", MetricPath("pointcloud", "fscore", (0.025,)), True),
    ("fscore_5cm", MetricPath("pointcloud", "fscore", (0.05,)), True),
    ("fscore_10cm", MetricPath("pointcloud", "fscore", (0.1,)), True),
    *((f"{short}_{d}", MetricPath("tracks", "tracker", (kind, d)), True)
      for short, kind in (("dyn", "dynamic"), ("static", "static"))
      for d in ("2cm", "5cm", "10cm")),
)
#: Each row's baseline (a number in the evaluate() result; None: no baseline, NaN):
#:
#: - depth rows and ``abs_rel_scaled``: constant depth at the clip's true median (an
#:   oracle's scale, so it is a fair reference for the scaled row too);
#: - ``cx_px`` / ``cy_px`` / ``pp_frac``: the principal point guessed at the image centre;
#:   ``fx_rel`` / ``fy_rel``: none (no focal-length guess is meaningful);
#: - ``ate_m`` and RPE: identity poses; ``ate_pct``: the constant-velocity path (the first
#:   two true poses' motion repeated), the line a pose estimate has to beat;
#: - cloud rows: the constant-depth + identity-pose cloud;
#: - tracking rows: holding each query point where it was first seen (no tracking).
BASELINE = {
    "abs_rel": MetricPath("baseline_constant_depth", "abs_rel"),
    "abs_rel_scaled": MetricPath("baseline_constant_depth", "abs_rel"),
    "rmse_m": MetricPath("baseline_constant_depth", "rmse"),
    "delta1": MetricPath("baseline_constant_depth", "delta1"),
    "fx_rel": None,
    "fy_rel": None,
    "cx_px": MetricPath("baseline_centred_principal_point", "cx_err_px"),
    "cy_px": MetricPath("baseline_centred_principal_point", "cy_err_px"),
    "pp_frac": MetricPath("baseline_centred_principal_point", "pp_err_frac"),
    "ate_m": MetricPath("baseline_identity_pose", "ate"),
    "ate_pct": MetricPath("baseline_constant_velocity", "ate_pct_path"),
    "rpe_trans_m": MetricPath("baseline_identity_pose", "rpe_trans"),
    "rpe_rot_deg": MetricPath("baseline_identity_pose", "rpe_rot_deg"),
    "chamfer_m": MetricPath("baseline_pointcloud", "chamfer"),
    "fscore_2.5cm": MetricPath("baseline_pointcloud", "fscore", (0.025,)),
    "fscore_5cm": MetricPath("baseline_pointcloud", "fscore", (0.05,)),
    "fscore_10cm": MetricPath("baseline_pointcloud", "fscore", (0.1,)),
    **{f"{short}_{d}": MetricPath("tracks", "hold", (kind, d))
       for short, kind in (("dyn", "dynamic"), ("static", "static"))
       for d in ("2cm", "5cm", "10cm")},
}
#: One line per baseline, printed under :func:`format_table`'s table.
BASELINE_LEGEND = (
    "baseline column: depth rows = constant depth at the true median; cx/cy/pp = principal "
    "point at the image centre; fx/fy = none; ate_m, rpe = identity poses; ate_pct = "
    "constant velocity from the first two true poses; cloud rows = constant depth + "
    "identity poses; dyn/static = no tracking (each point held where first seen)")


def headline(result: EvaluationResult | dict) -> tuple[dict[str, float], dict[str, float]]:
    """``(model, baseline)`` headline metrics of one ``evaluate()`` result (a record, or its
    ``to_dict()`` layout); a block that was not evaluated gives NaN."""
    result = EvaluationResult.coerce(result)
    model, base = {}, {}
    for name, path, _ in HEADLINE:
        model[name] = path.read(result)
        base[name] = float("nan") if BASELINE[name] is None else BASELINE[name].read(result)
    return model, base


def _nanmean(values) -> float:
    """Mean of the finite values; NaN (without numpy's warning) when there is none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def clip_spread(clips: list[dict], names: Iterable[str] | None = None
                ) -> dict[str, dict[str, float]]:
    """Per-clip spread of headline metrics (the card quotes a range, not only a mean).

    Args:
        clips: ``evaluate_on_synthetic(...)["clips"]`` (each with ``metrics``).
        names: headline metrics (None: all of :data:`HEADLINE`).

    Returns:
        ``{metric: {"median", "p10", "p90", "min", "max", "clips"}}`` over the clips whose
        value is finite (``clips`` how many; percentiles linearly interpolated, NaN when
        none is finite).
    """
    out = {}
    for name in (names if names is not None else [n for n, _, _ in HEADLINE]):
        v = np.asarray([c["metrics"][name] for c in clips], np.float64)
        v = v[np.isfinite(v)]
        if v.size:
            p10, med, p90 = np.percentile(v, [10, 50, 90])
            out[name] = {"median": float(med), "p10": float(p10), "p90": float(p90),
                         "min": float(v.min()), "max": float(v.max()), "clips": int(v.size)}
        else:
            out[name] = {**dict.fromkeys(("median", "p10", "p90", "min", "max"),
                                         float("nan")), "clips": 0}
    return out


def evaluate_on_synthetic(
    backend_or_model, seeds: Iterable[int] = HELD_OUT_SEEDS, num_frames: int = 32,
    height: int = 120, width: int = 160, reconstructor_config=None, tracks: bool = True,
    known_K: bool = False,
) -> dict:
    """Stream held-out synthetic clips through the pipeline and score them.

    Args:
        backend_or_model: a :class:`~unihoi_ros.backends.base.Backend` or a ``UniHOI``
            network (wrapped in a CPU ``TorchBackend``).
        seeds: ``make_sequence`` seeds (keep them outside the training seeds).
        num_frames, height, width: clip length and image size, pixels.
        reconstructor_config: a ``ReconstructorConfig`` (None: defaults).
        tracks: also track the clip's exact query points through the results with the
            default tracker and score them and the no-tracking baseline
            (:func:`unihoi_ros.tracks.evaluate_tracks`; cheap: 0.8 s on top of 7 s for a
            32-frame 120x160 clip with the tiny model on 2 CPU cores, and ``unihoi eval
            --synthetic`` took 1.04x as long). False leaves the tracking rows NaN.
        known_K: give the pipeline the clip's true K with every frame (a calibrated
            camera: camera_info), instead of letting the network predict it.

    Returns:
        ``{"clips": [{"seed", "metrics" (headline), "baseline" (each row's baseline, see
        :data:`BASELINE`), "tracks" (the evaluate_tracks result, with ``tracks``), "full"
        (the whole evaluate() result, with "tracks" added)}, ...], "mean": {...},
        "baseline_mean": {...}, "settings": {...}}``; means skip NaN clips.
    """
    from unihoi_ros.evaluation import evaluate
    from unihoi_ros.flow import DISFlow
    from unihoi_ros.io.ground_truth import GroundTruth
    from unihoi_ros.io.predictions import Predictions
    from unihoi_ros.pipeline.config import ReconstructorConfig
    from unihoi_ros.pipeline.reconstructor import Reconstructor
    from unihoi_ros.sim import make_sequence

    config = reconstructor_config or ReconstructorConfig()

    backend = backend_or_model
    if not isinstance(backend, Backend):
        from unihoi_ros.backends.torch_backend import TorchBackend

        backend = TorchBackend(backend_or_model)
    from tqdm import tqdm

    clips = []
    seeds = list(seeds)
    label = f"synthetic clips {height}x{width}" + (", known K" if known_K else "")
    for seed in tqdm(seeds, desc=label, unit="clip", leave=False):
        seq = make_sequence(int(seed), num_frames, height, width)
        rec = Reconstructor(backend, DISFlow(), config)
        K = np.asarray(seq.K) if known_K else None
        for stamp, rgb in zip(seq.stamps_ns, seq.rgb):
            rec.push(int(stamp), rgb, K=K)
        results = rec.flush()
        pred = Predictions.from_results(results)
        gt = GroundTruth(seq.stamps_ns, seq.T_world_cam, seq.depth, seq.K,
                         f"synthetic seed {seed}")
        full = evaluate(pred, gt)
        clip = {"seed": int(seed)}
        if tracks:
            from unihoi_ros.tracks import evaluate_tracks

            full.tracks = clip["tracks"] = evaluate_tracks(results, seq)
        clip["metrics"], clip["baseline"] = headline(full)
        clips.append({**clip, "full": full.to_dict()})
    names = [n for n, _, _ in HEADLINE]
    mean = {n: _nanmean([c["metrics"][n] for c in clips]) for n in names}
    base = {n: _nanmean([c["baseline"][n] for c in clips]) for n in names}
    return {"clips": clips, "mean": mean, "baseline_mean": base,
            "settings": {"seeds": [int(s) for s in seeds], "num_frames": num_frames,
                         "height": height, "width": width, "flow": "dis",
                         "tracks": bool(tracks), "known_K": bool(known_K),
                         "stream_intrinsics": bool(config.stream_intrinsics)}}


def _cell(value: float) -> str:
    """A table cell: 4 decimals, "–" for NaN (no number: no baseline, or not measured)."""
    return "–" if not np.isfinite(value) else f"{value:.4f}"


def format_table(columns: dict[str, dict[str, float]], legend: bool = True) -> str:
    """Markdown table: one row per headline metric, one column per named result.

    NaN cells print as "–"; with ``legend`` a line under the table says what each row's
    baseline is (for a column holding ``baseline_mean``).
    """
    names = list(columns)
    lines = ["| metric | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for metric, _, higher in HEADLINE:
        arrow = "↑" if higher else "↓"
        cells = " | ".join(_cell(columns[n].get(metric, float("nan"))) for n in names)
        lines.append(f"| {metric} {arrow} | {cells} |")
    if legend:
        lines += ["", BASELINE_LEGEND + "."]
    return "\n".join(lines)
