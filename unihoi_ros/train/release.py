"""Package a trained run as a bundled model and measure it against the references.

``python -m unihoi_ros.train.release RUN_DIR [--name unihoi-tiny]``:

1. copies ``RUN_DIR/model.safetensors`` (float32) to ``unihoi_ros/model/weights/<name>``
   ``.safetensors`` + ``.json`` (our format; the JSON carries the config it was trained
   with and the training provenance);
2. evaluates it, the untrained network (same size and seed as the run's initialisation) and
   the baselines (see :data:`unihoi_ros.train.benchmark.BASELINE`) on the held-out
   synthetic clips with :func:`unihoi_ros.train.benchmark.evaluate_on_synthetic`, long-term
   3D tracking included;
3. evaluates the bundled model alone on never-trained clips (:data:`UNSEEN_SEEDS`, 48
   frames) at 120x160 and 240x320, the sizes of the acceptance lines on intrinsics, unscaled
   depth, ATE against the constant-velocity line and tracking;
4. with ``--previous WEIGHTS``, evaluates the previous release on the same held-out and
   never-trained clips (``previous_release``: same clips, same pipeline, so a change of the
   synthetic world or of the pipeline does not pass for a better model);
5. measures the run's model on real video (:data:`REAL_GATE`: segments of the shared 7-Scenes
   RedKitchen frames, :func:`unihoi_ros.evaluation_real.evaluate_real`) beside the previous
   release (``--previous``, else the model bundled under ``name`` now) and **refuses** the
   release, before anything is copied, when it is worse there
   (:func:`~unihoi_ros.evaluation_real.real_regressions`; ``--allow-worse-real`` overrides;
   skipped with a warning where ``../shared`` is absent);
6. writes ``<name>.eval.json`` (per-clip and mean numbers, which the model card quotes, the
   real-video figures under ``real``, and a 12-frame ``quick_check`` clip that the test
   suite re-runs) and prints Markdown tables.

``python -m unihoi_ros.train.release --reevaluate [--name unihoi-tiny] [--previous W]``
repeats steps 2-5 for the model already bundled (after a change to the pipeline; training
provenance kept; the previous release recorded in the JSON is measured again when its
weights file is still there; the real-video figures are recorded, nothing is refused).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from unihoi_ros.errors import UnihoiError
from unihoi_ros.evaluation_real import (
    RealBenchConfig,
    evaluate_real,
    format_real_table,
    real_regressions,
)

from .benchmark import HELD_OUT_SEEDS, evaluate_on_synthetic, format_table

#: Clips no training config uses (training seeds < 10000, held-out 10000+).
UNSEEN_SEEDS = tuple(range(20_000, 20_010))
#: (height, width) of the never-trained evaluation.
UNSEEN_SIZES = ((120, 160), (240, 320))
UNSEEN_FRAMES = 48
#: The release's real-video check: the benchmark's cheap form (4 segments of 50 frames of
#: the shared RedKitchen recording at the ``unihoi process`` default size, the two model
#: variants; bench/real.py runs 8 and the oracle).
REAL_GATE = RealBenchConfig(segments=4, segment_frames=50, variants=("model", "model_known_K"))
#: A gate number may be this much (relative) worse than the previous release's.
REAL_TOLERANCE = 0.05


class ReleaseRefused(UnihoiError, RuntimeError):
    """The model is worse on the real-video check than the previous release."""


def real_check(model, reference: Path | None, config: RealBenchConfig = REAL_GATE,
               tolerance: float = REAL_TOLERANCE) -> dict:
    """The model (and the ``reference`` weights, if any) on the real-video check.

    Returns:
        ``{"settings", "model": {variant: mean}, "previous": {...} (with a reference),
        "previous_weights", "regressions": [...], "table"}``, or ``{"skipped": reason}``
        when the shared frames are not there.
    """
    if not Path(config.data).is_dir():
        return {"skipped": f"{config.data} not found (../shared absent): real-video check "
                           "not run"}
    from unihoi_ros.backends.torch_backend import TorchBackend
    from unihoi_ros.model import UniHOI

    new = evaluate_real(lambda: TorchBackend(model), config)
    out = {"settings": new["settings"],
           "model": {v: r["mean"] for v, r in new["variants"].items()},
           "table": format_real_table(new), "regressions": []}
    if reference is not None and Path(reference).is_file():
        old = evaluate_real(lambda: TorchBackend(UniHOI.from_pretrained(reference)), config)
        out["previous"] = {v: r["mean"] for v, r in old["variants"].items()}
        out["previous_weights"] = str(reference)
        out["previous_table"] = format_real_table(old)
        out["regressions"] = real_regressions(new, old, tolerance)
    return out


def _slim(result: dict) -> dict:
    """The benchmark result without the bulky full ``evaluate()`` dictionaries."""
    return {"clips": [{k: v for k, v in c.items() if k != "full"} for c in result["clips"]],
            "mean": result["mean"], "baseline_mean": result["baseline_mean"],
            "settings": result["settings"]}


def release(run_dir: Path, name: str = "unihoi-tiny", num_frames: int = 32, height: int = 120,
            width: int = 160, seeds=HELD_OUT_SEEDS,
            config_path: str = "unihoi_ros/train/configs/unihoi_tiny.yaml",
            earlier: tuple[Path, ...] = (), previous: Path | None = None,
            allow_worse_real: bool = False) -> dict:
    """Bundle ``run_dir``'s model as ``name`` and evaluate it (see the module docstring).

    Raises:
        ReleaseRefused: worse than the previous release on the real-video check (nothing
            copied), unless ``allow_worse_real``.
    """
    from unihoi_ros.model import UniHOI, save_pretrained
    from unihoi_ros.model.bundled import WEIGHTS_DIR

    from .config import load_config

    run_dir = Path(run_dir)
    model = UniHOI.from_pretrained(run_dir / "model.safetensors").float()
    # The real-video gate, before anything is copied: the previous release is --previous,
    # else the model bundled under this name now.
    current = WEIGHTS_DIR / f"{name}.safetensors"
    real = real_check(model, previous or (current if current.is_file() else None))
    if real.get("skipped"):
        print(f"warning: {real['skipped']}")
    elif real["regressions"]:
        lines = "; ".join(real["regressions"])
        if not allow_worse_real:
            raise ReleaseRefused(f"{name}: worse than the previous release "
                                 f"({real['previous_weights']}) on real video: {lines} "
                                 "(--allow-worse-real to release anyway)")
        print(f"warning: released although worse on real video: {lines}")
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = load_config(run_dir / "config.yaml")
    init = cfg["model"].get("init")
    provenance = (f"unihoi_ros.train, config {config_path}; "
                  f"{summary['steps']} steps, {summary['wall_time_s'] / 60:.1f} min; synthetic "
                  f"seeds {cfg['data']['seeds'][0]}..{cfg['data']['seeds'][1] - 1}"
                  + (f"; started from {init}" if init else ""))
    weights = save_pretrained(model, WEIGHTS_DIR / name, provenance=provenance)

    report = {"name": name, "weights_bytes": weights.stat().st_size,
              "training": {**summary, "config": cfg,
                           "earlier_legs": [earlier_leg(p) for p in earlier]},
              "real": real}
    return _evaluate(weights, report, num_frames, height, width, seeds, previous)


def earlier_leg(path: Path) -> dict:
    """The record of an earlier training leg the released run started from: a run directory
    (``summary.json`` + ``config.yaml``) or a previous release's ``.eval.json``."""
    from .config import load_config

    path = Path(path)
    if path.is_dir():
        return {**json.loads((path / "summary.json").read_text()),
                "config": load_config(path / "config.yaml")}
    previous = json.loads(path.read_text())["training"]
    return {k: v for k, v in previous.items() if k != "earlier_legs"}


def reevaluate(name: str = "unihoi-tiny", num_frames: int = 32, height: int = 120,
               width: int = 160, seeds=HELD_OUT_SEEDS,
               previous_weights: Path | None = None) -> dict:
    """Evaluate the bundled ``name`` again and rewrite its ``.eval.json`` (training kept;
    ``previous_weights``: the previous release, evaluated beside it)."""
    from unihoi_ros.model.bundled import WEIGHTS_DIR

    previous = json.loads((WEIGHTS_DIR / f"{name}.eval.json").read_text())
    if previous_weights is None and "previous_release" in previous:
        # Measure the same previous release again (same clips, today's pipeline).
        recorded = Path(previous["previous_release"]["weights"])
        if recorded.is_file():
            previous_weights = recorded
        else:
            print(f"warning: {recorded} (the previous release) is missing: its figures are "
                  "dropped; give --previous to measure it again")
    weights = WEIGHTS_DIR / f"{name}.safetensors"
    from unihoi_ros.model import UniHOI

    real = real_check(UniHOI.from_pretrained(weights), previous_weights)
    report = {"name": name, "weights_bytes": weights.stat().st_size,
              "training": previous["training"], "real": real}
    return _evaluate(weights, report, num_frames, height, width, seeds, previous_weights)


def _evaluate(weights: Path, report: dict, num_frames: int, height: int, width: int,
              seeds, previous: Path | None = None) -> dict:
    """Bundled vs untrained vs baseline, written to ``<name>.eval.json``; adds ``table``."""
    from unihoi_ros.model import UniHOI
    from unihoi_ros.model.bundled import WEIGHTS_DIR

    name, cfg = report["name"], report["training"]["config"]
    model = UniHOI.from_pretrained(weights)  # read once: every evaluation below is eval-mode
    bundled = evaluate_on_synthetic(model, seeds, num_frames, height, width, tracks=True)
    torch.manual_seed(int(cfg["seed"]))
    untrained = evaluate_on_synthetic(UniHOI.from_size(cfg["model"]["size"]), seeds,
                                      num_frames, height, width, tracks=True)
    # A short clip the test suite re-runs to check the shipped numbers reproduce.
    check = evaluate_on_synthetic(model, seeds[:1], 12, height, width)
    unseen = {f"{h}x{w}": _slim(evaluate_on_synthetic(
        model, UNSEEN_SEEDS, UNSEEN_FRAMES, h, w, tracks=True))
        for h, w in UNSEEN_SIZES}
    # A calibrated camera (camera_info): the true K replaces the predicted one and rescales
    # the depth by the focal ratio (ReconstructorConfig.known_k_rescales_depth).
    unseen_known_k = {f"{h}x{w}": _slim(evaluate_on_synthetic(
        model, UNSEEN_SEEDS, UNSEEN_FRAMES, h, w, tracks=True, known_K=True))
        for h, w in UNSEEN_SIZES}
    report.update({"bundled": _slim(bundled), "untrained": _slim(untrained),
                   "quick_check": _slim(check), "unseen": unseen,
                   "unseen_known_K": unseen_known_k})
    if previous is not None:
        report["previous_release"] = _evaluate_previous(previous, seeds, num_frames, height,
                                                        width)
    (WEIGHTS_DIR / f"{name}.eval.json").write_text(json.dumps(report, indent=1) + "\n")
    # One baseline column; format_table's legend says which baseline each row uses.
    report["table"] = format_table({name: bundled["mean"], "untrained": untrained["mean"],
                                    "baseline": bundled["baseline_mean"]})
    prev_unseen = report.get("previous_release", {}).get("unseen", {})
    report["unseen_table"] = format_table(
        {**{f"{name} {size}": r["mean"] for size, r in unseen.items()},
         **{f"{name} {size} known K": r["mean"] for size, r in unseen_known_k.items()},
         **{f"previous {size}": r["mean"] for size, r in prev_unseen.items()},
         **{f"baseline {size}": r["baseline_mean"] for size, r in unseen.items()}})
    return report


def _evaluate_previous(weights: Path, seeds, num_frames: int, height: int,
                       width: int) -> dict:
    """The previous release's held-out and never-trained means on today's clips."""
    import hashlib

    from unihoi_ros.model import UniHOI

    model = UniHOI.from_pretrained(weights)
    held_out = evaluate_on_synthetic(model, seeds, num_frames, height, width, tracks=True)
    unseen = {f"{h}x{w}": {"mean": evaluate_on_synthetic(
        model, UNSEEN_SEEDS, UNSEEN_FRAMES, h, w, tracks=True)["mean"]}
        for h, w in UNSEEN_SIZES}
    return {"weights": str(weights),
            "sha256": hashlib.sha256(Path(weights).read_bytes()).hexdigest(),
            "bundled": {"mean": held_out["mean"]}, "unseen": unseen}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, nargs="?", help="training run to bundle")
    p.add_argument("--reevaluate", action="store_true",
                   help="evaluate the bundled model again (no run directory)")
    p.add_argument("--name", default="unihoi-tiny")
    p.add_argument("--config", default="unihoi_ros/train/configs/unihoi_tiny.yaml",
                   help="the training config, as the provenance names it")
    p.add_argument("--earlier", type=Path, nargs="*", default=[],
                   help="earlier training legs, oldest first (run directories or a previous "
                   "release's .eval.json), recorded in the new .eval.json")
    p.add_argument("--previous", type=Path, default=None,
                   help="the previous release's .safetensors, evaluated on the same clips")
    p.add_argument("--allow-worse-real", action="store_true",
                   help="release even when the model is worse on the real-video check than "
                   "the previous release")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.reevaluate == (args.run_dir is not None):
        p.error("give either RUN_DIR or --reevaluate")
    if args.reevaluate:
        report = reevaluate(args.name, previous_weights=args.previous)
    else:
        try:
            report = release(args.run_dir, args.name, config_path=args.config,
                             earlier=tuple(args.earlier), previous=args.previous,
                             allow_worse_real=args.allow_worse_real)
        except ReleaseRefused as exc:
            print(f"release refused: {exc}")
            return 2
    print(report["table"])
    print(f"\nnever-trained clips {UNSEEN_SEEDS[0]}-{UNSEEN_SEEDS[-1]}, {UNSEEN_FRAMES} frames:")
    print(report["unseen_table"])
    real = report.get("real", {})
    if real.get("table"):
        print(f"\nreal video ({Path(real['settings']['data']).name}, "
              f"{real['settings']['segments']} x {real['settings']['segment_frames']} frames):")
        print(real["table"])
        if real.get("previous_table"):
            print("previous release:\n" + real["previous_table"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
