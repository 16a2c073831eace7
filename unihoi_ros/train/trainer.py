"""The training loop: ``unihoi train CONFIG`` (one process, or ``torchrun`` DDP).

Per run directory (``output_dir``): ``config.yaml`` (the resolved config), ``train.csv``
(step, wall time, lr, every loss term), ``eval.csv`` (held-out losses and depth metrics),
``losses.png`` (curves), ``checkpoints/step_<n>.safetensors`` + ``.json`` (our weight
format, loadable with ``UniHOI.from_pretrained``), ``checkpoints/last.json`` and
``last_optimizer.pt`` (resume state), and ``model.safetensors`` / ``model.json`` at the
end. Re-running the same config resumes from ``last``.

Data-parallel semantics: every loss is a per-sample mean, the step loss is the mean over
the global batch, and each rank takes a contiguous slice of the global batch
(:func:`dataset.global_batch_indices`); with BatchNorm frozen (the default) the network
is batch-independent, so N ranks compute the single-process gradient (up to rounding).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from unihoi_ros.geometry import metrics

from . import ddp
from .config import dump_config, load_config
from .dataset import (
    ClipCache,
    build_cache,
    global_batch_indices,
    recorded_videos,
    synthetic_video_id,
    synthetic_videos,
)
from .objective import compute_losses
from .priors import make_priors

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float64": torch.float64}


# --------------------------------------------------------------------------- pieces
def lr_at(step: int, optim: dict, time_fraction: float = 0.0) -> float:
    """Learning rate of ``step``: linear warm-up, then cosine from ``lr`` to
    ``lr * min_lr_ratio`` over the remaining steps, or over the wall-time budget when that
    runs out first (``time_fraction``: elapsed / ``max_minutes``, 0 without a budget)."""
    lr, warm, total = float(optim["lr"]), int(optim["warmup"]), int(optim["steps"])
    if warm and step < warm:
        return lr * (step + 1) / warm
    ratio = float(optim["min_lr_ratio"])
    progress = min(1.0, max((step - warm) / max(1, total - warm), time_fraction))
    return lr * (ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def freeze_batchnorm(model: torch.nn.Module) -> None:
    """Put every BatchNorm in eval mode (running statistics; parameters still train)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def _videos(section: dict, data: dict):
    """The videos of a cache section: its recordings (``paths``) or its synthetic seeds
    (``seeds = [start, stop)``) drawn as ``data`` says (``num_frames``, ``height``,
    ``width``)."""
    if section.get("paths"):
        return recorded_videos(section["paths"], data["height"], data["width"],
                               data.get("topic"), data.get("max_frames"), data.get("every", 1))
    lo, hi = section["seeds"]
    return synthetic_videos(range(int(lo), int(hi)), data["num_frames"], data["height"],
                            data["width"])


def _complete(section: dict, cache_dir: str, pairs: int) -> bool:
    """True when a synthetic cache already holds every sample of ``section``'s seeds."""
    if section.get("paths") or not (Path(cache_dir) / "index.json").is_file():
        return False
    lo, hi = section["seeds"]
    return all((Path(cache_dir) / f"{synthetic_video_id(s)}_{k}.npz").is_file()
               for s in range(int(lo), int(hi)) for k in range(pairs))


def ensure_cache(section: dict, data: dict, priors, seed: int, progress: bool) -> Path:
    """Build the clip-pair cache of one section (``cache_dir``, ``pairs_per_video``, and
    ``seeds`` or ``paths``; see :func:`_videos`) unless it already holds every sample;
    ``data`` gives the clips' ``frames`` and ``max_interval``, ``seed`` the pairs' draw
    (:func:`dataset.build_cache`). Returns the cache directory."""
    if not _complete(section, section["cache_dir"], section["pairs_per_video"]):
        build_cache(_videos(section, data), priors, section["cache_dir"],
                    section["pairs_per_video"], seed, data["frames"], data["max_interval"],
                    progress)
    return Path(section["cache_dir"])


def prepare_caches(cfg: dict, info: ddp.DistInfo) -> tuple[ClipCache, ClipCache | None]:
    """Build (rank 0) or open the training and validation caches."""
    data, val = cfg["data"], cfg["val"]
    if info.is_main:
        priors = make_priors(cfg["priors"])
        progress = bool(cfg["log"]["progress"])
        train_src = dict(data, paths=data["paths"] if data["kind"] == "recorded" else [])
        ensure_cache(train_src, data, priors, cfg["seed"], progress)
        if val.get("seeds") or val.get("paths"):
            ensure_cache(val, data, priors, cfg["seed"] + 1, progress)
    ddp.barrier(info)
    val_cache = (ClipCache(val["cache_dir"]) if (val.get("seeds") or val.get("paths"))
                 else None)
    return ClipCache(data["cache_dir"]), val_cache


def build_model(cfg: dict, dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    """The network to train: a fresh ``size`` (seeded; ``overrides`` replace config fields)
    or ``init`` weights."""
    from unihoi_ros.model import UniHOI
    from unihoi_ros.model.config import ModelConfig, get_config

    mc = cfg["model"]
    torch.manual_seed(int(cfg["seed"]))
    if mc.get("init"):
        model = UniHOI.from_pretrained(mc["init"])
    else:
        size = get_config(mc["size"])
        if mc.get("overrides"):
            size = ModelConfig.from_dict({**size.to_dict(), **mc["overrides"]})
        model = UniHOI(size)
    return model.to(device=device, dtype=dtype)


@torch.no_grad()
def evaluate_cache(model, cache: ClipCache, weights: dict, dtype, device, num_pose_points: int,
                   max_samples: int) -> dict[str, float]:
    """Mean losses and (with ground truth) metric depth abs_rel / delta1 of held-out
    samples, one sample at a time.

    The depth metrics are :func:`unihoi_ros.geometry.metrics.depth_metrics` (float64, over
    pixels with finite positive ground truth and a finite prediction; NaN when none).
    """
    from .objective import _clips

    # Each module's own mode is restored afterwards: model.train(True) would also put the
    # frozen BatchNorms back into training mode (and, since only rank 0 evaluates, make
    # the DDP ranks diverge).
    modes = {m: m.training for m in model.modules()}
    model.eval()
    sums: dict[str, float] = {}
    n = min(len(cache), int(max_samples))
    for i in range(n):
        batch = {k: v.to(device) for k, v in cache.batch([i], dtype).items()}
        terms = compute_losses(model, batch, weights, num_pose_points)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.mean())
        if "gt_depth" in batch:
            out = model(_clips(batch["rgb"]), _clips(batch["flow_bwd"]).permute(0, 1, 4, 2, 3))
            depth = metrics.depth_metrics(out.depth, _clips(batch["gt_depth"]))
            for name in ("abs_rel", "delta1"):
                sums[name] = sums.get(name, 0.0) + depth[name]
    for m, mode in modes.items():
        m.training = mode
    return {k: v / max(n, 1) for k, v in sums.items()}


def plot_curves(train_csv: Path, eval_csv: Path, png: Path) -> None:
    """Loss curves (log scale, moving average) of every term, and the held-out ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def read(path: Path) -> dict[str, np.ndarray]:
        if not path.is_file():
            return {}
        with open(path) as f:
            rows = list(csv.DictReader(f))
        if not rows:
            return {}
        return {k: np.array([float(r[k]) if r[k] not in ("", None) else np.nan for r in rows])
                for k in rows[0]}

    tr, ev = read(train_csv), read(eval_csv)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    skip = {"step", "time_s", "lr"}
    for key in (k for k in tr if k not in skip):
        # Rows of a mixed run hold one leg's terms each (the other's cells are empty).
        ok = np.isfinite(tr[key])
        y, x = tr[key][ok], tr["step"][ok]
        if not len(y):
            continue
        k = max(1, len(y) // 50)
        smooth = np.convolve(y, np.ones(k) / k, mode="valid")
        axes[0].plot(x[k - 1:], smooth, label=key)
    axes[0].set(title="training losses (moving average)", xlabel="step", yscale="log")
    axes[0].legend(fontsize=8)
    for key in (k for k in ev if k not in skip):
        axes[1].plot(ev["step"], ev[key], marker="o", label=key)
    axes[1].set(title="held-out clips", xlabel="step", yscale="log")
    if ev:
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


class _CsvLog:
    """Appending CSV writer with a fixed header (kept when resuming)."""

    def __init__(self, path: Path, fields: list[str]) -> None:
        self.path, self.fields = path, fields
        if not path.is_file():
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(fields)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([_fmt(row.get(k, "")) for k in self.fields])


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _truncate_csv(path: Path, step: int) -> None:
    """Drop rows after ``step`` (a resumed run rewrites them)."""
    if not path.is_file():
        return
    with open(path) as f:
        rows = list(csv.reader(f))
    keep = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= step]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(keep)


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(model, optimizer, step: int, ckpt_dir: Path, elapsed_s: float,
                    provenance: str) -> Path:
    """Weights in our format (``step_<n>.safetensors`` + JSON) and the resume state."""
    from unihoi_ros.model import save_pretrained

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    weights = save_pretrained(model, ckpt_dir / f"step_{step:06d}", provenance=provenance)
    torch.save(optimizer.state_dict(), ckpt_dir / "last_optimizer.pt")
    (ckpt_dir / "last.json").write_text(json.dumps(
        {"step": step, "weights": weights.name, "elapsed_s": elapsed_s}) + "\n")
    return weights


def load_resume(model, optimizer, ckpt_dir: Path) -> tuple[int, float]:
    """Restore the last checkpoint into ``model``/``optimizer``; ``(step, elapsed_s)``."""
    from safetensors.torch import load_file

    from unihoi_ros.model.checkpoint import load_network_state

    meta = json.loads((ckpt_dir / "last.json").read_text())
    state = load_file(str(ckpt_dir / meta["weights"]))
    p = next(model.parameters())
    state = {k: v.to(device=p.device, dtype=p.dtype if v.is_floating_point() else v.dtype)
             for k, v in state.items()}
    load_network_state(model, state, source=str(ckpt_dir / meta["weights"]))
    optimizer.load_state_dict(torch.load(ckpt_dir / "last_optimizer.pt", map_location=p.device,
                                         weights_only=True))
    return int(meta["step"]), float(meta.get("elapsed_s", 0.0))


# --------------------------------------------------------------------------- main loop
def train(config=None, **overrides) -> dict:
    """Run (or resume) training; returns a summary (steps, wall time, last losses, paths).

    Args:
        config: a YAML path, a mapping, or None for the defaults.
        overrides: top-level keys or whole sections replacing the config's.
    """
    cfg = load_config(config, **overrides)
    info = ddp.init_distributed(cfg["device"])
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    seed = int(cfg["seed"])
    random.seed(seed)
    dtype = DTYPES[cfg["model"]["dtype"]]
    optim_cfg, log_cfg, weights = cfg["optim"], cfg["log"], cfg["losses"]
    out = Path(cfg["output_dir"])
    ckpt_dir = out / "checkpoints"
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / "config.yaml")
    train_cache, val_cache = prepare_caches(cfg, info)

    model = build_model(cfg, dtype, info.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(optim_cfg["lr"]))
    step, elapsed0 = 0, 0.0
    if (ckpt_dir / "last.json").is_file():
        step, elapsed0 = load_resume(model, optimizer, ckpt_dir)
        log.info("resuming from step %d", step)
    net = ddp.wrap_model(model, info)
    total_steps = int(optim_cfg["steps"])
    global_batch = int(optim_cfg["batch_size"])
    if global_batch % info.world_size:
        raise ValueError(f"batch_size {global_batch} is not divisible by the "
                         f"{info.world_size} ranks")
    local = global_batch // info.world_size
    terms_names = [k for k, v in weights.items() if float(v)]
    train_log = eval_log = None
    if info.is_main:
        _truncate_csv(out / "train.csv", step)
        _truncate_csv(out / "eval.csv", step)
        train_log = _CsvLog(out / "train.csv", ["step", "time_s", "lr", "total", *terms_names])
        eval_log = _CsvLog(out / "eval.csv", ["step", "time_s", "total", *terms_names,
                                              "abs_rel", "delta1"])
    from tqdm import tqdm

    bar = tqdm(total=total_steps, initial=step, desc="train", unit="step",
               disable=not (info.is_main and log_cfg["progress"]))
    t0 = time.monotonic() - elapsed0
    max_s = float(optim_cfg["max_minutes"]) * 60 if optim_cfg.get("max_minutes") else None
    provenance = f"unihoi_ros.train: {cfg['data']['kind']} data, config {cfg['output_dir']}"
    last_terms: dict[str, float] = {}

    def do_eval() -> None:
        if info.is_main and val_cache is not None:
            res = evaluate_cache(model, val_cache, weights, dtype, info.device,
                                 int(optim_cfg["num_pose_points"]), cfg["val"]["max_samples"])
            eval_log.write({"step": step, "time_s": time.monotonic() - t0, **res})
            bar.write(f"[eval step {step}] " + ", ".join(f"{k} {v:.4g}" for k, v in res.items()))
        ddp.barrier(info)

    model.train()
    if cfg["model"]["freeze_batchnorm"]:
        freeze_batchnorm(model)
    if step == 0 and log_cfg["eval_every"]:
        do_eval()
    stopped_early = False
    while step < total_steps:
        idx = global_batch_indices(step, global_batch, len(train_cache), seed)
        mine = idx[info.rank * local:(info.rank + 1) * local]
        batch = {k: v.to(info.device) for k, v in train_cache.batch(mine, dtype).items()}
        lr = lr_at(step, optim_cfg, (time.monotonic() - t0) / max_s if max_s else 0.0)
        for group in optimizer.param_groups:
            group["lr"] = lr
        terms = compute_losses(net, batch, weights, int(optim_cfg["num_pose_points"]))
        loss = terms["total"].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if optim_cfg["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(optim_cfg["grad_clip"]))
        optimizer.step()
        step += 1
        means = ddp.all_reduce_mean(torch.stack([terms[k].mean() for k in ["total",
                                                                            *terms_names]]), info)
        last_terms = dict(zip(["total", *terms_names], means.tolist()))
        bar.update(1)
        bar.set_postfix(loss=f"{last_terms['total']:.4g}")
        if info.is_main and (step % int(log_cfg["every"]) == 0 or step == total_steps):
            train_log.write({"step": step, "time_s": time.monotonic() - t0, "lr": lr,
                             **last_terms})
        out_of_time = max_s is not None and time.monotonic() - t0 > max_s
        if log_cfg["eval_every"] and (step % int(log_cfg["eval_every"]) == 0):
            do_eval()
        if (log_cfg["ckpt_every"] and step % int(log_cfg["ckpt_every"]) == 0) or out_of_time:
            if info.is_main:
                save_checkpoint(model, optimizer, step, ckpt_dir, time.monotonic() - t0,
                                provenance)
                plot_curves(out / "train.csv", out / "eval.csv", out / "losses.png")
            ddp.barrier(info)
        if out_of_time:
            log.warning("max_minutes reached: stopping at step %d", step)
            stopped_early = True
            break
    bar.close()
    elapsed = time.monotonic() - t0
    summary = {"steps": step, "wall_time_s": elapsed, "last": last_terms,
               "stopped_early": stopped_early, "output_dir": str(out)}
    if info.is_main:
        from unihoi_ros.model import save_pretrained

        if log_cfg["eval_every"] and step % int(log_cfg["eval_every"]):
            do_eval()
        save_checkpoint(model, optimizer, step, ckpt_dir, elapsed, provenance)
        summary["weights"] = str(save_pretrained(model, out / "model", provenance=provenance))
        plot_curves(out / "train.csv", out / "eval.csv", out / "losses.png")
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    elif log_cfg["eval_every"] and step % int(log_cfg["eval_every"]):
        do_eval()
    ddp.barrier(info)
    ddp.shutdown(info)
    return summary
