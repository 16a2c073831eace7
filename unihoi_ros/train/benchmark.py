"""Evaluation of a model on held-out synthetic clips, through the streaming pipeline.

Each clip (``unihoi_ros.sim.make_sequence(seed, ...)``) is streamed frame by frame through
``Reconstructor(TorchBackend(model), DISFlow())`` exactly as the demo runs it, the results
are collected with ``Predictions.from_results`` and scored by
:func:`unihoi_ros.evaluation.evaluate` against the clip's exact ground truth. Everything is
deterministic (fixed seeds; DIS is deterministic), so numbers reproduce.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: Held-out seeds of the bundled model's evaluation (training uses seeds < 10000).
HELD_OUT_SEEDS = tuple(range(10_000, 10_005))

#: The headline numbers: (name, path in the evaluate() result, higher is better).
HEADLINE = (
    ("abs_rel", ("depth", "abs_rel"), False),
    ("rmse_m", ("depth", "rmse"), False),
    ("delta1", ("depth", "delta1"), True),
    ("ate_m", ("trajectory", "ate"), False),
    ("rpe_trans_m", ("trajectory", "rpe_trans"), False),
    ("rpe_rot_deg", ("trajectory", "rpe_rot_deg"), False),
    ("chamfer_m", ("pointcloud", "chamfer"), False),
    ("fscore_2.5cm", ("pointcloud", "fscore@0.025"), True),
    ("fscore_5cm", ("pointcloud", "fscore@0.05"), True),
    ("fscore_10cm", ("pointcloud", "fscore@0.1"), True),
)
#: The same numbers for the constant-depth + identity-pose baseline.
BASELINE = {
    "abs_rel": ("baseline_constant_depth", "abs_rel"),
    "rmse_m": ("baseline_constant_depth", "rmse"),
    "delta1": ("baseline_constant_depth", "delta1"),
    "ate_m": ("baseline_identity_pose", "ate"),
    "rpe_trans_m": ("baseline_identity_pose", "rpe_trans"),
    "rpe_rot_deg": ("baseline_identity_pose", "rpe_rot_deg"),
    "chamfer_m": ("baseline_pointcloud", "chamfer"),
    "fscore_2.5cm": ("baseline_pointcloud", "fscore@0.025"),
    "fscore_5cm": ("baseline_pointcloud", "fscore@0.05"),
    "fscore_10cm": ("baseline_pointcloud", "fscore@0.1"),
}


def _get(d: dict, path: tuple[str, ...]) -> float:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return float("nan")
        d = d[key]
    return float(d)


def headline(result: dict) -> tuple[dict[str, float], dict[str, float]]:
    """``(model, baseline)`` headline metrics of one ``evaluate()`` result."""
    model, base = {}, {}
    for name, path, _ in HEADLINE:
        model[name] = _get(result, path)
        base[name] = _get(result, BASELINE[name])
    return model, base


def evaluate_on_synthetic(
    backend_or_model, seeds: Iterable[int] = HELD_OUT_SEEDS, num_frames: int = 32,
    height: int = 120, width: int = 160, reconstructor_config=None,
) -> dict:
    """Stream held-out synthetic clips through the pipeline and score them.

    Args:
        backend_or_model: a backend (anything with ``encode``/``infer_window``) or a
            ``UniHOI`` network (wrapped in a CPU ``TorchBackend``).
        seeds: ``make_sequence`` seeds (keep them outside the training seeds).
        num_frames, height, width: clip length and image size, pixels.
        reconstructor_config: a ``ReconstructorConfig`` (None: defaults).

    Returns:
        ``{"clips": [{"seed", "metrics" (headline), "baseline" (constant depth +
        identity pose), "full" (the whole evaluate() result)}, ...], "mean": {...},
        "baseline_mean": {...}, "settings": {...}}``.
    """
    from unihoi_ros.evaluation import evaluate
    from unihoi_ros.flow import DISFlow
    from unihoi_ros.io.ground_truth import GroundTruth
    from unihoi_ros.io.predictions import Predictions
    from unihoi_ros.pipeline.reconstructor import Reconstructor
    from unihoi_ros.sim import make_sequence

    backend = backend_or_model
    if not hasattr(backend, "infer_window"):
        from unihoi_ros.backends.torch_backend import TorchBackend

        backend = TorchBackend(backend_or_model)
    clips = []
    for seed in seeds:
        seq = make_sequence(int(seed), num_frames, height, width)
        rec = Reconstructor(backend, DISFlow(), reconstructor_config)
        for stamp, rgb in zip(seq.stamps_ns, seq.rgb):
            rec.push(int(stamp), rgb)
        results = rec.flush()
        pred = Predictions.from_results(results)
        gt = GroundTruth(seq.stamps_ns, seq.T_world_cam, seq.depth, seq.K,
                         f"synthetic seed {seed}")
        full = evaluate(pred, gt)
        m, b = headline(full)
        clips.append({"seed": int(seed), "metrics": m, "baseline": b, "full": full})
    names = [n for n, _, _ in HEADLINE]
    mean = {n: float(np.nanmean([c["metrics"][n] for c in clips])) for n in names}
    base = {n: float(np.nanmean([c["baseline"][n] for c in clips])) for n in names}
    return {"clips": clips, "mean": mean, "baseline_mean": base,
            "settings": {"seeds": [int(s) for s in seeds], "num_frames": num_frames,
                         "height": height, "width": width, "flow": "dis"}}


def format_table(columns: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per headline metric, one column per named result."""
    names = list(columns)
    lines = ["| metric | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for metric, _, higher in HEADLINE:
        arrow = "↑" if higher else "↓"
        cells = " | ".join(f"{columns[n].get(metric, float('nan')):.4f}" for n in names)
        lines.append(f"| {metric} {arrow} | {cells} |")
    return "\n".join(lines)
