"""Real-video benchmark: segments of a 7-Scenes RGB-D recording through the streaming
pipeline, scored in the colour camera.

Each segment is a fresh stream (its own world frame, tracker and stream K) of
``segment_frames`` consecutive frames; the recording's frames are split into ``segments``
evenly spaced segments. Frames are resized to ``process_size`` once (OpenCV area, as the
reconstructor does) and fed at that size, so every variant sees the same pixels:

- ``model``: the model alone, K predicted (``unihoi process`` defaults);
- ``model_known_K``: the model with the colour camera's K (``--K dataset``);
- ``oracle``: :class:`~unihoi_ros.pipeline.oracle.OracleBackend` fed the true depth
  registered into the colour camera (holes filled from the nearest valid pixel and given
  confidence 0) and the colour K: what the geometry (flow, pose solver, chaining) makes of
  perfect depth.

Ground truth is the colour camera's (:func:`unihoi_ros.io.ground_truth.load_seven_scenes`:
registered depth, colour poses, colour K; each colour frame paired with the depth frame that
shows the same moment, where the recording repeats frames). Per segment
(:func:`segment_metrics`): ATE in per cent of the path (Sim(3), evo definitions,
:mod:`unihoi_ros.evaluation`), RPE, the
same for the best-fit uniform straight line and for constant velocity from the first two
true poses, and the ATE's ratio to each; depth abs_rel metric and median-scaled and
delta1 against the registered depth; fx / fy relative errors against the colour camera;
the fraction of track rows flagged dynamic (:class:`unihoi_ros.tracks.PointTracker`, one
row per track per frame, as ``tracks.csv``); per-stage costs (ms per frame: flow, network
(encoder + window), poses, tracks).

:func:`evaluate_real` is the core (``bench/real.py`` prints and writes it; the release
refuses a model worse on it than the previous release: :func:`real_regressions`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from unihoi_ros.evaluation_result import EvaluationResult

#: Variants :func:`evaluate_real` runs (module docstring).
VARIANTS = ("model", "model_known_K", "oracle")
#: The shared recording the benchmark is defined on (``../shared`` beside the checkout).
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / \
    "7scenes_redkitchen_300_699"
#: Per-segment numbers, in table order: (key, column title, format).
COLUMNS = (
    ("ate_pct", "ATE %path", "{:.2f}"),
    ("line_ate_pct", "line %", "{:.2f}"),
    ("cv_ate_pct", "const-vel %", "{:.2f}"),
    ("ate_vs_line", "/line", "{:.2f}"),
    ("ate_vs_cv", "/cv", "{:.2f}"),
    ("rpe_trans_mm", "RPE mm", "{:.1f}"),
    ("line_rpe_trans_mm", "line RPE mm", "{:.1f}"),
    ("cv_rpe_trans_mm", "cv RPE mm", "{:.1f}"),
    ("rpe_rot_deg", "RPE deg", "{:.2f}"),
    ("abs_rel", "abs_rel", "{:.3f}"),
    ("abs_rel_scaled", "abs_rel med", "{:.3f}"),
    ("delta1", "δ1", "{:.3f}"),
    ("delta1_scaled", "δ1 med", "{:.3f}"),
    ("fx_rel", "fx err", "{:.3f}"),
    ("fy_rel", "fy err", "{:.3f}"),
    ("dynamic_rows", "dyn rows", "{:.3f}"),
    ("ms_flow", "flow ms", "{:.1f}"),
    ("ms_network", "net ms", "{:.1f}"),
    ("ms_poses", "poses ms", "{:.1f}"),
    ("ms_tracks", "tracks ms", "{:.1f}"),
)
#: Headline numbers :func:`real_regressions` compares between two models (lower is better):
#: (variant, key).
GATE = (("model", "ate_pct"), ("model_known_K", "ate_pct"), ("model", "abs_rel"),
        ("model", "abs_rel_scaled"), ("model", "fx_rel"))


@dataclass
class RealBenchConfig:
    """What :func:`evaluate_real` runs.

    Attributes:
        data: a 7-Scenes sequence folder (default: the shared RedKitchen 300-699).
        segments: how many segments, evenly spaced over the recording.
        segment_frames: frames per segment.
        segments_from: run only the segments from this index on (e.g. those a model was
            not adapted on); the others are skipped, not computed.
        process_size: ``(height, width)`` the frames are processed at, pixels.
        flow_preset: OpenCV DIS preset.
        variants: which of :data:`VARIANTS`.
        fps: the recording's frame rate (stamps).
        reconstructor: settings of the reconstructor (``max_side`` is overridden: frames
            arrive at ``process_size``; unless it sets its own ``process_size``, for frames
            that arrive at the camera's size).
    """

    data: Path = DEFAULT_DATA
    segments: int = 8
    segment_frames: int = 50
    segments_from: int = 0
    process_size: tuple[int, int] = (480, 640)
    flow_preset: str = "medium"
    variants: tuple[str, ...] = VARIANTS
    fps: float = 30.0
    reconstructor: object = field(default=None)

    def __post_init__(self) -> None:
        from unihoi_ros.errors import ConfigError

        unknown = set(self.variants) - set(VARIANTS)
        if unknown:
            raise ConfigError(f"unknown variants {sorted(unknown)} (known: {VARIANTS})")
        if self.segments < 1 or self.segment_frames < 3:
            raise ConfigError("need >= 1 segment of >= 3 frames")


def segment_starts(total: int, segments: int, length: int) -> list[int]:
    """Start indices of ``segments`` segments of ``length`` frames spread evenly over
    ``total`` frames (back to back when they fill it; overlapping when they must).

    Raises:
        ValueError: ``length`` > ``total``.
    """
    if length > total:
        raise ValueError(f"segments of {length} frames do not fit in {total}")
    if segments == 1:
        return [0]
    return [round(i * (total - length) / (segments - 1)) for i in range(segments)]


def fill_holes(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(filled, valid)``: a ``(H, W)`` depth map (metres, NaN / <= 0 invalid) with each
    invalid pixel given its nearest valid pixel's depth, and the ``(H, W)`` valid mask."""
    from scipy.ndimage import distance_transform_edt

    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        raise ValueError("a depth map without a valid pixel")
    _, (ri, ci) = distance_transform_edt(~valid, return_indices=True)
    return depth[ri, ci].astype(np.float32), valid


def _resize(img: np.ndarray, hw: tuple[int, int], interpolation: int) -> np.ndarray:
    import cv2

    if img.shape[:2] == tuple(hw):
        return img
    return cv2.resize(img, (hw[1], hw[0]), interpolation=interpolation)


def oracle_backend(frames: Sequence[np.ndarray], depth: np.ndarray, K: np.ndarray):
    """An :class:`~unihoi_ros.pipeline.oracle.OracleBackend` answering with ``depth``.

    Args:
        frames: the ``(h, w, 3)`` uint8 frames exactly as they will be fed.
        depth: ``(N, H, W)`` true depth, metres, NaN invalid (any size: resized nearest).
        K: ``(3, 3)`` intrinsics of the frames, pixels.
    """
    import cv2

    from unihoi_ros.pipeline.oracle import OracleBackend

    hw = frames[0].shape[:2]
    filled, valid = zip(*(fill_holes(d) for d in depth))
    d = np.stack([_resize(x, hw, cv2.INTER_NEAREST) for x in filled])
    v = np.stack([_resize(x.astype(np.uint8), hw, cv2.INTER_NEAREST) > 0 for x in valid])
    return OracleBackend(SimpleNamespace(rgb=list(frames), depth=d, K=np.asarray(K, float),
                                         dynamic=~v))


def segment_metrics(result: EvaluationResult, dynamic_rows: float, costs: dict) -> dict:
    """The benchmark's numbers of one segment from an :func:`unihoi_ros.evaluation.
    evaluate` result (:data:`COLUMNS`)."""
    tr, cv = result.trajectory, result.baseline_constant_velocity
    line, d, k = result.baseline_straight_line, result.depth, result.intrinsics
    ms = d.median_scaled
    nan = float("nan")
    return {
        "ate_pct": tr.ate_pct_path, "line_ate_pct": line.ate_pct_path,
        "cv_ate_pct": cv.ate_pct_path,
        "ate_vs_line": tr.ate_pct_path / line.ate_pct_path,
        "ate_vs_cv": tr.ate_pct_path / cv.ate_pct_path,
        "ate_m": tr.ate, "path_m": result.gt_path_length_m,
        "rpe_trans_mm": 1e3 * tr.rpe_trans, "line_rpe_trans_mm": 1e3 * line.rpe_trans,
        "cv_rpe_trans_mm": 1e3 * cv.rpe_trans, "rpe_rot_deg": tr.rpe_rot_deg,
        "abs_rel": d.abs_rel, "abs_rel_scaled": ms.abs_rel if ms else nan,
        "delta1": d.delta1, "delta1_scaled": ms.delta1 if ms else nan,
        "fx_rel": k.fx_rel_err if k else nan, "fy_rel": k.fy_rel_err if k else nan,
        "dynamic_rows": dynamic_rows, **costs,
    }


def run_segment(backend, frames, stamps, gt, K: np.ndarray | None, config: RealBenchConfig,
                poses: dict | None = None) -> dict:
    """Stream one segment through ``Reconstructor(backend, DISFlow)`` and the tracker,
    and score it against ``gt`` (:func:`segment_metrics`); ``poses``: given poses by
    stamp, as the reconstructor takes them (None: the stream's own)."""
    from unihoi_ros.evaluation import evaluate
    from unihoi_ros.flow import DISFlow
    from unihoi_ros.io.predictions import Predictions
    from unihoi_ros.pipeline.config import ReconstructorConfig
    from unihoi_ros.pipeline.reconstructor import Reconstructor
    from unihoi_ros.tracks import PointTracker

    base = config.reconstructor or ReconstructorConfig()
    # Frames arrive at the processing size, unless the settings name one (camera frames in).
    rcfg = base if base.process_size else dataclasses.replace(base, max_side=None)
    rec = Reconstructor(backend, DISFlow(config.flow_preset), rcfg, poses=poses)
    tracker = PointTracker()
    results, rows, dynamic, t_tracks = [], 0, 0, 0.0

    def take(batch):
        nonlocal rows, dynamic, t_tracks
        for r in batch:
            results.append(r)
            t0 = time.perf_counter()
            ts = tracker.update(r)
            t_tracks += time.perf_counter() - t0
            rows += len(ts)
            dynamic += int(np.count_nonzero(ts.dynamic))

    for stamp, rgb in zip(stamps, frames):
        rec.push(int(stamp), rgb, K=K)
        take(rec.drain())
    take(rec.flush())
    stages = rec.stats()["stages_ms"]
    n = max(len(results), 1)

    def per_frame(*names):
        return sum(stages[s]["mean_ms"] * stages[s]["count"] for s in names if s in stages) / n

    costs = {"ms_flow": per_frame("flow"), "ms_network": per_frame("encoder", "network"),
             "ms_poses": per_frame("poses"), "ms_tracks": 1e3 * t_tracks / n}
    if "refinement" in stages:  # ReconstructorConfig.past_refinement
        costs["ms_refinement"] = per_frame("refinement")
    result = evaluate(Predictions.from_results(results), gt, clouds=False)
    return segment_metrics(result, dynamic / rows if rows else float("nan"), costs)


def segments_mean(rows: list[dict]) -> dict:
    """Per-key mean of the segments' finite values (``start_frame`` is not averaged)."""
    out = {}
    for k in (k for k in rows[0] if k != "start_frame"):
        v = np.asarray([r[k] for r in rows], np.float64)
        v = v[np.isfinite(v)]
        out[k] = float(v.mean()) if v.size else float("nan")
    return out


def frames_trained_on(recordings: list[dict], data: Path) -> int | None:
    """How many leading frames of the recording ``data`` a model was trained on, from its
    metadata's ``recordings`` (an adapted model's: ``{"path", "frames", "train_frames": [0,
    n)}``); None when it did not train on ``data``. A record without ``train_frames`` (models
    adapted before the split was recorded) counts as trained on all its ``frames``: nothing
    of it is held out unless the model says so."""
    for rec in recordings:
        if Path(rec["path"]).resolve() == Path(data).resolve():
            if "train_frames" in rec:
                return int(rec["train_frames"][1])
            return int(rec.get("frames", 2**31 - 1))
    return None


def segments_from_frame(result: dict, first_frame: int) -> dict:
    """:func:`evaluate_real`'s ``result`` restricted to the segments that start at or after
    file frame number ``first_frame`` (``frame-NNNNNN``; e.g. those a model did not train
    on), means recomputed."""
    variants = {}
    for v, res in result["variants"].items():
        rows = [r for r in res["segments"] if r["start_frame"] >= first_frame]
        if rows:
            variants[v] = {"segments": rows, "mean": segments_mean(rows)}
    return {**result, "variants": variants}


def evaluate_real(backend_factory: Callable[[], object] | None,
                  config: RealBenchConfig | None = None, progress: bool = True) -> dict:
    """Run the benchmark (module docstring).

    Args:
        backend_factory: makes the model's backend (called once); None runs only the
            ``oracle`` variant.
        config: what to run (:class:`RealBenchConfig`).
        progress: tqdm bars.

    Returns:
        ``{"settings": {...}, "variants": {name: {"segments": [metrics per segment],
        "mean": {...}}}}`` with :func:`segment_metrics`' keys plus ``start_frame``.

    Raises:
        SourceError: the data folder cannot be read.
    """
    import cv2
    from tqdm import tqdm

    from unihoi_ros.geometry.camera import scale_intrinsics
    from unihoi_ros.io.ground_truth import load_seven_scenes
    from unihoi_ros.io.sources import SourceError, seven_scenes_files

    cfg = config or RealBenchConfig()
    variants = [v for v in cfg.variants if v == "oracle" or backend_factory is not None]
    files = seven_scenes_files(Path(cfg.data))
    if not files:
        raise SourceError(f"{cfg.data}: no 7-Scenes frames (frame-N.color.*)")
    starts = segment_starts(len(files), cfg.segments, cfg.segment_frames)[cfg.segments_from:]
    backend = backend_factory() if backend_factory is not None and any(
        v != "oracle" for v in variants) else None
    hw = tuple(cfg.process_size)
    out = {v: [] for v in variants}
    bar = tqdm(total=len(starts) * len(variants), desc="real segments", unit="run",
               disable=not progress)
    for s in starts:
        seg = slice(s, s + cfg.segment_frames)
        gt = load_seven_scenes(Path(cfg.data), cfg.fps, frames=seg)
        K = scale_intrinsics(gt.K, gt.depth.shape[1:], hw)
        frames = [_resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), hw,
                          cv2.INTER_AREA) for _, p in files[seg]]
        for v in variants:
            if v == "oracle":
                be, known = oracle_backend(frames, gt.depth, K), K
            else:
                be, known = backend, (K if v == "model_known_K" else None)
            row = run_segment(be, frames, gt.stamps_ns, gt, known, cfg)
            out[v].append({"start_frame": int(files[s][0]), **row})
            bar.update(1)
    bar.close()
    settings = {"data": str(cfg.data), "segments": len(starts),
                "segment_frames": cfg.segment_frames,
                "start_frames": [int(files[s][0]) for s in starts],
                "process_size": list(hw), "flow_preset": cfg.flow_preset, "fps": cfg.fps,
                "reconstructor": dataclasses.asdict(cfg.reconstructor)
                if cfg.reconstructor is not None else "defaults"}
    return {"settings": settings, "variants": {
        v: {"segments": rows, "mean": segments_mean(rows)} for v, rows in out.items()}}


def format_real_table(result: dict, columns=COLUMNS) -> str:
    """Markdown tables, one per variant: a row per segment and the mean."""
    lines = []
    for v, res in result["variants"].items():
        lines += [f"**{v}**", "",
                  "| segment | " + " | ".join(t for _, t, _ in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for row in [*res["segments"], {**res["mean"], "start_frame": "mean"}]:
            cells = []
            for key, _, fmt in columns:
                x = row.get(key, float("nan"))
                cells.append("–" if not np.isfinite(x) else fmt.format(x))
            label = row["start_frame"]
            label = label if label == "mean" else (
                f"{label}-{label + result['settings']['segment_frames'] - 1}")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def real_regressions(new: dict, previous: dict, tolerance: float = 0.05,
                     gate=GATE) -> list[str]:
    """Where ``new`` is worse than ``previous`` (two :func:`evaluate_real` results on the
    same settings) by more than ``tolerance`` (relative) on a :data:`GATE` number (lower
    is better); empty when it is no worse. A number missing on either side is skipped."""
    out = []
    for variant, key in gate:
        try:
            a = float(new["variants"][variant]["mean"][key])
            b = float(previous["variants"][variant]["mean"][key])
        except KeyError:
            continue
        if np.isfinite(a) and np.isfinite(b) and a > b * (1.0 + tolerance) + 1e-12:
            out.append(f"{variant} {key}: {a:.4f} vs previous {b:.4f} "
                       f"(+{100 * (a / b - 1):.1f} %, tolerance {100 * tolerance:.0f} %)")
    return out
