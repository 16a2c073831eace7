"""Training pipeline: a 20-step smoke run with resume, and DDP (torchrun, gloo on the CPU)
equal to single-process training on the same global batch."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from unihoi_ros.sim.world import WORLD_VERSION
from unihoi_ros.train.config import load_config
from unihoi_ros.train.dataset import (
    ClipCache,
    build_cache,
    global_batch_indices,
    sample_clip_pair,
)
from unihoi_ros.train.trainer import train

REPO = Path(__file__).resolve().parents[1]


def _config(tmp: Path, **over) -> dict:
    base = {
        "output_dir": str(tmp / "run"),
        "seed": 0,
        "threads": 2,
        "device": "cpu",
        "model": {"overrides": {"token_bounds": [24, 48]}},  # 48x64 frames: 6x8 patches
        "data": {"seeds": [0, 2], "num_frames": 8, "height": 48, "width": 64,
                 "pairs_per_video": 2, "cache_dir": str(tmp / "cache" / "train")},
        "val": {"seeds": [10_000, 10_001], "cache_dir": str(tmp / "cache" / "val"),
                "max_samples": 1},
        "losses": {"scale": 1.0},
        "optim": {"lr": 1e-3, "steps": 20, "batch_size": 1, "num_pose_points": 200,
                  "warmup": 2, "min_lr_ratio": 0.1},
        "log": {"every": 1, "eval_every": 20, "ckpt_every": 10, "progress": False},
    }
    for key, value in over.items():
        if isinstance(value, dict):
            base[key] = {**base.get(key, {}), **value}
        else:
            base[key] = value
    return load_config(base)


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train")


def test_clip_sampling_and_data_order():
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = sample_clip_pair(16, rng)
        assert idx.shape == (2, 4)
        steps = np.diff(idx, axis=1)
        assert ((steps >= 1) & (steps <= 4)).all() and (steps == steps[:, :1]).all()
        assert idx.min() >= 0 and idx.max() < 16
    a = global_batch_indices(3, 4, 10, seed=1)
    assert np.array_equal(a, global_batch_indices(3, 4, 10, seed=1))
    seen = np.concatenate([global_batch_indices(s, 5, 10, seed=1) for s in range(2)])
    assert sorted(seen.tolist()) == list(range(10))  # one epoch = each sample once


def test_cache_of_another_synthetic_world_is_refused(tmp_path):
    """Clips labelled from an older synthetic world are not mixed into training."""
    old = tmp_path / "old"
    old.mkdir()
    (old / "index.json").write_text(json.dumps({"samples": ["sim000000_0.npz"]}))
    with pytest.raises(ValueError, match="world version 1"):
        ClipCache(old)
    with pytest.raises(ValueError, match="world version 1"):
        build_cache(iter(()), priors=None, cache_dir=old, progress=False)
    interrupted = tmp_path / "interrupted"  # clips of an old build that never wrote its index
    interrupted.mkdir()
    (interrupted / "sim000000_0.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="without an index"):
        build_cache(iter(()), priors=None, cache_dir=interrupted, progress=False)
    fresh = build_cache(iter(()), priors=None, cache_dir=tmp_path / "fresh", progress=False)
    assert json.loads((fresh / "index.json").read_text())["world_version"] == WORLD_VERSION
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    names = ["chess_0.npz", "simple_kitchen_0.npz"]
    (recorded / "index.json").write_text(json.dumps({"samples": names}))
    assert ClipCache(recorded).names == names  # real videos do not depend on it


@pytest.mark.slow
def test_smoke_20_steps_then_resume(workdir):
    from unihoi_ros.model import UniHOI

    cfg = _config(workdir)
    summary = train(cfg)
    out = Path(cfg["output_dir"])
    assert summary["steps"] == 20 and np.isfinite(summary["last"]["total"])
    rows = _rows(out / "train.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
    assert {"shape", "flow_3d", "tracking_3d", "dynamic_area", "cc"} <= set(rows[0])
    evals = _rows(out / "eval.csv")
    assert [int(r["step"]) for r in evals] == [0, 20]
    assert float(evals[-1]["total"]) < float(evals[0]["total"])
    assert (out / "losses.png").stat().st_size > 1000
    assert (out / "checkpoints" / "step_000010.safetensors").is_file()
    model = UniHOI.from_pretrained(out / "model.safetensors")
    assert model.config.size == "tiny"
    cache = ClipCache(cfg["data"]["cache_dir"])
    assert len(cache) == 4 and cache[0]["rgb"].shape == (2, 4, 48, 64, 3)
    index = json.loads((Path(cfg["data"]["cache_dir"]) / "index.json").read_text())
    assert index["world_version"] == WORLD_VERSION

    resumed = train(cfg, optim={**cfg["optim"], "steps": 22})
    assert resumed["steps"] == 22
    assert [int(r["step"]) for r in _rows(out / "train.csv")] == list(range(1, 23))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(workdir):
    from safetensors.torch import load_file

    over = {"model": {"dtype": "float64", "overrides": {"token_bounds": [24, 48]}},
            "threads": 1,
            "optim": {"steps": 3, "batch_size": 2, "warmup": 0, "min_lr_ratio": 1.0},
            # evaluation on (rank 0 only): it must leave the frozen BatchNorm frozen
            "log": {"every": 1, "eval_every": 2, "ckpt_every": 0, "progress": False}}
    single = _config(workdir, output_dir=str(workdir / "single"), **over)
    train(single)
    multi = _config(workdir, output_dir=str(workdir / "ddp"), **over)
    cfg_path = workdir / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(multi))
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO}{os.pathsep}"
           f"{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
           "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
           str(_free_port()), "-m", "unihoi_ros.cli", "train", str(cfg_path), "--no-progress"]
    proc = subprocess.run(cmd, env=env, cwd=workdir, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = load_file(str(workdir / "single" / "model.safetensors"))
    b = load_file(str(workdir / "ddp" / "model.safetensors"))
    torch.manual_seed(0)
    from unihoi_ros.model import UniHOI
    from unihoi_ros.model.config import ModelConfig, get_config

    small = ModelConfig.from_dict({**get_config("tiny").to_dict(), "token_bounds": [24, 48]})
    init = UniHOI(small).double().state_dict()
    moved = max(float((a[k] - init[k]).abs().max()) for k in a if a[k].is_floating_point())
    assert moved > 1e-4  # the three steps did train
    diff = max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point()
               and "running" not in k)
    assert diff < 1e-6, diff
    la = _rows(workdir / "single" / "train.csv")
    lb = _rows(workdir / "ddp" / "train.csv")
    assert np.allclose([float(r["total"]) for r in la], [float(r["total"]) for r in lb],
                       rtol=1e-6)
