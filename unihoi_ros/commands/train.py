"""``unihoi train CONFIG``: self-supervised training (one process or ``torchrun`` DDP)."""

from __future__ import annotations

import json
from pathlib import Path

from unihoi_ros.commands import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train the network self-supervised from a YAML config",
        description="Train UniHOI from unlabeled video with the paper's losses. Multi-GPU / "
        "multi-node: torchrun --nproc_per_node N -m unihoi_ros.cli train CONFIG.")
    p.add_argument("config", type=Path, help="training config (YAML), e.g. "
                   "unihoi_ros/train/configs/unihoi_tiny.yaml")
    p.add_argument("--output-dir", default=None, help="override the config's output_dir")
    p.add_argument("--steps", type=positive_int, default=None, help="override optim.steps")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from unihoi_ros.train.config import load_config
    from unihoi_ros.train.trainer import train

    cfg = load_config(args.config)
    if args.output_dir:
        cfg["output_dir"] = args.output_dir
    if args.steps is not None:
        cfg["optim"]["steps"] = args.steps
    if args.no_progress:
        cfg["log"]["progress"] = False
    summary = train(cfg)
    print(json.dumps(summary, indent=2))
    return 0
