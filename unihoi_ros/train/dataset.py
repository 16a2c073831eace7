"""Training data: videos -> pairs of 4-frame clips -> labelled samples in an ``.npz`` cache.

Videos come from the synthetic world (:func:`synthetic_videos`, with ground truth) or from
recordings (:func:`recorded_videos`: image folders, video files, rosbag2 image topics,
through :func:`unihoi_ros.io.sources.open_source`). From each video
:func:`sample_clip_pair` draws two clips of F frames with a random frame interval in
``1..max_interval`` (the paper: 1-4); the pair is one training sample (``cc`` compares the
two clips' intrinsics). :func:`build_cache` labels each pair with the priors once and
writes ``<cache>/<video_id>_<k>.npz`` (one file per clip pair; arrays with a leading clip
axis of 2) plus ``index.json``; :class:`ClipCache` reads them back and stacks batches.

Data order is a pure function of ``(seed, step)``: :func:`global_batch_indices` gives the
samples of a global batch, and rank r of a data-parallel run takes its slice.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..sim.world import WORLD_VERSION
from .priors import Clip, Priors

log = logging.getLogger(__name__)

#: Video id prefix of synthetic clips (``sim000042``: seed 42).
SYNTHETIC_PREFIX = "sim"


def synthetic_video_id(seed: int) -> str:
    """The video id of synthetic seed ``seed`` (``sim000042``); its cache samples are
    ``<id>_<k>.npz``."""
    return f"{SYNTHETIC_PREFIX}{int(seed):06d}"

#: Arrays stored as float16 in the cache (flows, depth) to halve its size.
_HALF = ("flow_fwd", "flow_bwd")


@dataclass
class Video:
    """A decoded video: ``frames (N, H, W, 3)`` uint8 RGB and optional ground truth
    (``depth (N, H, W)``, ``K (3, 3)``, ``dynamic (N, H, W)``, ``T_world_cam (N, 4, 4)``)."""

    video_id: str
    frames: np.ndarray
    truth: dict | None = None

    def clip(self, indices: np.ndarray) -> Clip:
        """The frames ``indices`` as a :class:`Clip` (ground truth sliced alike)."""
        truth = None
        if self.truth is not None:
            truth = {k: (v if k == "K" else v[indices]) for k, v in self.truth.items()}
        return Clip(self.video_id, np.asarray(indices), self.frames[indices], truth)


def synthetic_videos(
    seeds: Iterable[int], num_frames: int, height: int, width: int
) -> Iterator[Video]:
    """Synthetic clips of :func:`unihoi_ros.sim.make_sequence`, one per seed."""
    from unihoi_ros.sim import make_sequence

    for seed in seeds:
        seq = make_sequence(int(seed), num_frames, height, width)
        truth = {"depth": seq.depth, "K": seq.K, "dynamic": seq.dynamic,
                 "T_world_cam": seq.T_world_cam}
        yield Video(synthetic_video_id(seed), seq.rgb, truth)


def recorded_videos(
    paths: Iterable[str | Path], height: int, width: int, topic: str | None = None,
    max_frames: int | None = None, every: int = 1,
) -> Iterator[Video]:
    """Recordings (image folders, video files, rosbag2 image topics) resized to
    ``height x width``; ``every`` keeps one frame in ``every``."""
    from unihoi_ros.io.sources import open_source

    for path in paths:
        src = open_source(path, topic)
        frames = []
        for i, (_, rgb) in enumerate(src):
            if i % every:
                continue
            if rgb.shape[:2] != (height, width):
                rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
            frames.append(rgb)
            if max_frames and len(frames) >= max_frames:
                break
        if frames:
            yield Video(Path(path).stem or Path(path).name, np.stack(frames))
        else:
            log.warning("no frames in %s: skipped", path)


def sample_clip_pair(
    num_frames: int, rng: np.random.Generator, frames: int = 4, max_interval: int = 4
) -> np.ndarray:
    """``(2, frames)`` frame indices of two clips of one video, each with its own random
    interval in ``1..max_interval`` (capped so the clip fits) and random start."""
    out = []
    for _ in range(2):
        top = max(1, min(max_interval, (num_frames - 1) // (frames - 1)))
        step = int(rng.integers(1, top + 1))
        span = step * (frames - 1)
        if span >= num_frames:
            raise ValueError(f"a video of {num_frames} frames cannot hold a {frames}-frame clip")
        start = int(rng.integers(0, num_frames - span))
        out.append(start + step * np.arange(frames))
    return np.stack(out)


def label_pair(video: Video, indices: np.ndarray, priors: Priors) -> dict[str, np.ndarray]:
    """The priors of both clips of a pair, stacked on a leading clip axis of 2; with ground
    truth (synthetic videos, for validation only) under ``gt_*``."""
    clips = [video.clip(ix) for ix in indices]
    labels = [priors.label(c) for c in clips]
    out = {k: np.stack([lab[k] for lab in labels]) for k in labels[0]}
    out["indices"] = np.asarray(indices)
    if video.truth is not None:
        out["gt_depth"] = np.stack([c.truth["depth"] for c in clips]).astype(np.float32)
        out["gt_K"] = np.asarray(video.truth["K"], np.float64)
    return out


def build_cache(
    videos: Iterable[Video], priors: Priors, cache_dir: str | Path, pairs_per_video: int = 1,
    seed: int = 0, frames: int = 4, max_interval: int = 4, progress: bool = True,
) -> Path:
    """Label ``pairs_per_video`` clip pairs per video and write them to ``cache_dir``.

    Existing files are kept (a cache is built once and can be extended). Returns the
    directory; ``index.json`` lists the sample files in order and the synthetic world's
    version (:data:`unihoi_ros.sim.world.WORLD_VERSION`); extending a cache of another
    world version raises ``ValueError``.
    """
    from tqdm import tqdm

    cache = Path(cache_dir)
    if (cache / "index.json").is_file():
        check_world_version(cache)
    elif any(_is_synthetic(p.name) for p in cache.glob("*.npz")):
        raise ValueError(f"{cache}: labelled synthetic clips without an index.json (of an "
                         "unknown world version): delete them or choose another cache_dir")
    cache.mkdir(parents=True, exist_ok=True)
    # The version goes down before any clip does, so an interrupted build can be resumed.
    if not (cache / "index.json").is_file():
        _write_index(cache, [])
    names = []
    for video in tqdm(videos, desc=f"priors -> {cache}", disable=not progress, unit="video"):
        rng = np.random.default_rng([seed, *[ord(c) for c in video.video_id]])
        for k in range(pairs_per_video):
            name = f"{video.video_id}_{k}.npz"
            names.append(name)
            if (cache / name).is_file():
                continue
            idx = sample_clip_pair(len(video.frames), rng, frames, max_interval)
            arrays = label_pair(video, idx, priors)
            arrays = {k2: (v.astype(np.float16) if k2 in _HALF else v)
                      for k2, v in arrays.items()}
            tmp = cache / f".{name}.tmp.npz"
            np.savez_compressed(tmp, **arrays)
            tmp.replace(cache / name)
    _write_index(cache, names)
    return cache


def _write_index(cache: Path, names: list[str]) -> None:
    index = {"world_version": WORLD_VERSION, "samples": names}
    (cache / "index.json").write_text(json.dumps(index, indent=1) + "\n")


def _is_synthetic(name: str) -> bool:
    """Whether a cache file name is a synthetic clip's (``sim000042_0.npz``)."""
    return re.fullmatch(rf"{SYNTHETIC_PREFIX}\d{{6}}_\d+\.npz", name) is not None


def check_world_version(cache_dir: str | Path) -> dict:
    """The cache's ``index.json``; ``ValueError`` when its synthetic clips were labelled from
    another version of the synthetic world than this code draws (an index without a version
    is version 1). Caches of recorded videos only pass.
    """
    index_path = Path(cache_dir) / "index.json"
    index = json.loads(index_path.read_text())
    if not any(_is_synthetic(name) for name in index["samples"]):
        return index
    version = int(index.get("world_version", 1))
    if version != WORLD_VERSION:
        raise ValueError(
            f"{index_path}: clips labelled from synthetic world version {version}, this code "
            f"draws version {WORLD_VERSION}: delete the cache or choose another cache_dir"
        )
    return index


class ClipCache:
    """Labelled clip pairs of a cache directory (see :func:`build_cache`).

    ``cache[i]`` is the dict of arrays of sample i; :meth:`batch` stacks samples into the
    torch tensors :func:`unihoi_ros.train.objective.compute_losses` takes (rgb as float in
    [0, 1] ``(B, 2, F, 3, H, W)``). ``memory=True`` keeps loaded samples in RAM.
    """

    def __init__(self, cache_dir: str | Path, memory: bool = True) -> None:
        self.root = Path(cache_dir)
        index = self.root / "index.json"
        if not index.is_file():
            raise FileNotFoundError(f"{index} missing: build the cache first (build_cache)")
        self.names = check_world_version(self.root)["samples"]
        self.memory = memory
        self._mem: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        if i in self._mem:
            return self._mem[i]
        with np.load(self.root / self.names[i]) as z:
            out = {k: z[k] for k in z.files}
        if self.memory:
            self._mem[i] = out
        return out

    def batch(self, indices: Iterable[int], dtype: torch.dtype = torch.float32) -> dict:
        """Tensors of the samples ``indices`` (see the class docstring)."""
        items = [self[int(i)] for i in indices]
        out = {}
        for key in items[0]:
            arr = np.stack([it[key] for it in items])
            t = torch.from_numpy(np.ascontiguousarray(arr))
            if key == "rgb":
                t = t.permute(0, 1, 2, 5, 3, 4).to(dtype) / 255.0
            elif t.is_floating_point():
                t = t.to(dtype)
            out[key] = t
        return out


def global_batch_indices(step: int, global_batch: int, num_samples: int, seed: int) -> np.ndarray:
    """Sample indices of global batch ``step``: consecutive slices of a per-epoch random
    permutation (epoch = ``step * global_batch // num_samples``), a pure function of its
    arguments (so resume and every data-parallel rank agree)."""
    out = []
    pos = step * global_batch
    while len(out) < global_batch:
        epoch, offset = divmod(pos, num_samples)
        perm = np.random.default_rng([seed, epoch]).permutation(num_samples)
        take = min(global_batch - len(out), num_samples - offset)
        out.extend(perm[offset:offset + take].tolist())
        pos += take
    return np.asarray(out, np.int64)
