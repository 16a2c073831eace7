"""Training configuration: one YAML file, nested sections with defaults.

Every key has a default (:data:`DEFAULTS`); a YAML file or a mapping overrides any subset,
and :func:`load_config` rejects unknown keys so typos fail early. Relative paths are taken
relative to the current directory.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from .losses import PAPER_WEIGHTS

DEFAULTS: dict = {
    "output_dir": "runs/unihoi",
    "seed": 0,
    "threads": 0,  # torch.set_num_threads; 0 leaves torch's default
    "device": "auto",  # auto | cpu | cuda
    "model": {
        "size": "tiny",
        "init": None,  # our safetensors weights (or bundled name) to start from
        "freeze_batchnorm": True,  # BatchNorm uses running stats: batch-independent
        "dtype": "float32",  # float32 | float64 (tests)
        "overrides": {},  # ModelConfig fields replaced (e.g. token_bounds for tiny tests)
    },
    "data": {
        "kind": "synthetic",  # synthetic | recorded
        "seeds": [0, 64],  # synthetic: range(start, stop)
        "paths": [],  # recorded: folders, videos, rosbag2 bags
        "topic": None,
        "every": 1,
        "max_frames": None,
        "num_frames": 16,  # synthetic video length
        "height": 96,
        "width": 128,
        "frames": 4,
        "max_interval": 4,
        "pairs_per_video": 1,
        "cache_dir": "cache/unihoi/train",
    },
    "val": {
        "seeds": [10_000, 10_004],
        "paths": [],
        "pairs_per_video": 1,
        "cache_dir": "cache/unihoi/val",
        "max_samples": 8,
    },
    "priors": {"depth": "synthetic", "flow": "dis", "tracks": "lk", "masks": "synthetic"},
    "losses": dict(PAPER_WEIGHTS),
    "optim": {
        "lr": 5e-5,  # the paper's
        "steps": 1000,
        "batch_size": 2,  # global batch, in clip pairs
        "grad_clip": 10.0,
        "warmup": 0,
        "min_lr_ratio": 1.0,  # cosine decay to lr * ratio (1 = constant)
        "num_pose_points": 1000,
        "max_minutes": None,  # stop (and save) after this wall time
    },
    "log": {"every": 10, "eval_every": 100, "ckpt_every": 100, "progress": True},
}

# Sections whose keys are free (prior options, loss names, model config fields).
_OPEN_SECTIONS = ("priors", "losses", "model.overrides")


def _merge(base: dict, over: dict, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        where = f"{path}{key}"
        if key not in base and path.rstrip(".") not in _OPEN_SECTIONS:
            raise ValueError(f"unknown training config key {where!r}")
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _merge(base[key], value, where + ".")
        else:
            out[key] = value
    return out


def load_config(source: str | Path | dict | None = None, **overrides) -> dict:
    """Full configuration from a YAML path or a mapping, plus keyword overrides of whole
    sections or top-level keys (``load_config(path, output_dir="x")``)."""
    if source is None:
        raw: dict = {}
    elif isinstance(source, dict):
        raw = source
    else:
        raw = yaml.safe_load(Path(source).read_text()) or {}
    cfg = _merge(DEFAULTS, raw)
    return _merge(cfg, overrides) if overrides else cfg


def dump_config(cfg: dict, path: str | Path) -> None:
    """Write ``cfg`` as YAML."""
    Path(path).write_text(yaml.safe_dump(cfg, sort_keys=False))
