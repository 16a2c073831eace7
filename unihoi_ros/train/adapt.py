"""``unihoi adapt``: fine-tune a model on a lab's own unlabeled recordings.

The paper's self-supervised objective (:mod:`.objective`) with every prior computed from
the recordings themselves (no network teacher, no labels). The teacher's maths (the
functions named below) is :mod:`unihoi_ros.geometry.multiview`, shared with ``unihoi
process --refine-depth``:

- **depth teacher from multi-view geometry** (:func:`geometric_depths`): for each frame
  ``i``, the frames ``i - k`` and ``i + k`` (``k = offset``, 16 by default: enough
  parallax at a hand-held walking pace); DIS flow both ways (RAFT-small's with
  ``raft_weights``), forward-backward checked (a pair whose flow is trusted on < 30 % of
  the frame gives nothing: there a hand can pass for the camera's motion; where the pair
  ``k`` away gives nothing, ``k // 2, k // 4, ..., 1`` are tried; shorter recordings use
  ``k = (N - 1) // 2``); the relative pose from the essential
  matrix with the known K (RANSAC); every consistent pixel triangulated; pixels kept with
  >= 1 deg parallax and <= 1 px reprojection error;
  the two maps fused by their median after a median scale fit, pixels whose estimates
  disagree by > 5 % dropped (:mod:`unihoi_ros.geometry.two_view`). Computed at up to 640
  px on the longer side (finer angles than the training size), then reduced to the
  training size by a block median.
- **metric scale kept, consistent over time** (:func:`consistent_log_scales`): the
  geometric depth has no scale, and each frame's is its own. Consecutive frames are tied
  by the median log ratio of their triangulated depths at flow-corresponding pixels
  (:func:`step_log_ratios`); the base model's median on the same pixels (its depth read
  with the known K, as the node does with ``camera_info``: times known / predicted fx)
  anchors the whole chain with a weak weight (``scale_anchor``). Setting each frame's scale
  from the base alone copied the base's frame-to-frame scale jitter into the labels: on
  the shared 7-Scenes frames the teacher's scale against the truth then moved 5.7 % (std
  of log steps) from one frame to the next, more than the base's own 3.6 %; tied, 2.7 %.
- **fused over time** (:func:`fuse_over_time`): each frame's teacher is the median of its
  own and its neighbours' (``fuse_radius`` frames each side) triangulated depths warped
  into it by DIS flow: their errors are independent (each frame has its own pairs), so the
  scale steps fall to 1.3 %, the shape improves and more pixels get a depth.
- **the base model's own prediction as a weak regulariser**: where the geometric teacher
  has no depth, the teacher is the (scaled) base depth with weight ``base_weight`` in the
  ``shape`` loss (batch key ``teacher_weight``), so regions without parallax do not drift.
- **K**: the camera's when given (``--K`` / ``--camera-info``), with the ``intrinsics``
  loss to it; otherwise the base model's stream K (the median of its windows' K).
- flow (:class:`~.priors.DISFlowPrior`) and tracks (:class:`~.priors.LucasKanadeTracks`)
  as in training; no hand masks (:class:`~.priors.NoMasks`: the scene is taken as static;
  the ``dynamic_area`` term is off so the confidence head is left as it was).

**Synthetic leg** (``synthetic_pairs > 0``, :func:`prepare_synthetic_leg`): so that the
model keeps what it learned on the synthetic world, clip pairs of synthetic world clips are
mixed in, labelled exactly as ``unihoi-tiny-synthetic``'s last training leg labelled its own
(:data:`SYNTHETIC_LEG_CONFIG`: its ``priors``, i.e. the synthetic teacher with noise, DIS
flow, LK tracks, synthetic masks; 16-frame clips, 2 pairs per clip, the same pair draw),
from seeds ``0 .. ceil(synthetic_pairs / 2) - 1`` (training seeds stay below 10000: the
evaluation seeds are 10000+, 20000+, 30000+) at the base model's input size (120x160 for
``unihoi-tiny``, as that leg). One step in ``synthetic_every`` (the last of each group)
trains on a synthetic pair with that leg's loss weights (``dynamic_area`` on: the synthetic
clips have hand masks), the others on the recordings with :data:`ADAPT_WEIGHTS`; each leg
walks its own permutation of its cache (:func:`mixed_step`). ``train.csv`` gives the real
steps' terms under their names and the synthetic steps' as ``synthetic_<term>`` (a row
holds one leg). ``synthetic_pairs = 0`` (the default) trains exactly as without the leg.

Held-out frames: the last ``holdout`` fraction of each recording is never trained on; the
report gives the self-supervised losses on clip pairs of them before and after, and where
the input has ground truth (a 7-Scenes folder) the real-data metrics of
:mod:`unihoi_ros.evaluation_real` on them (ATE against a straight line, median-scaled
depth abs_rel), base against adapted.

Work directory ``<output stem>.adapt/``: teacher arrays, the clip caches
(``cache_train``, ``cache_val``, ``cache_synthetic``), checkpoints
(every ``ckpt_minutes``), ``train.csv``; ``--resume`` continues from the last checkpoint
(the wall-time budget counts the time already spent). Outputs: ``MODEL.safetensors`` +
``MODEL.json`` (its ``trained_on`` names the base and the recordings), ``MODEL.report.json``
and ``MODEL.losses.png``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from unihoi_ros.errors import ConfigError
from unihoi_ros.geometry.camera import scale_intrinsics
from unihoi_ros.geometry.multiview import (
    PairFlows,
    block_median,
    geometric_depths,
    scaled_geometry,
    usable_pixels,
)
from unihoi_ros.geometry.two_view import TwoViewSettings

from .augment import horizontal_flip, photometric_jitter, random_zoom
from .dataset import ClipCache, Video, build_cache, global_batch_indices
from .priors import Clip, DISFlowPrior, LucasKanadeTracks, NoMasks, Priors

log = logging.getLogger(__name__)

#: Loss weights of an adaptation run: the paper's, our ``scale`` and ``intrinsics``
#: anchors (as ``unihoi-tiny-synthetic``'s last stage), ``dynamic_area`` off (no hand masks).
ADAPT_WEIGHTS: dict[str, float] = {"shape": 4.0, "flow_3d": 5.0, "tracking_3d": 5.0,
                                   "dynamic_area": 0.0, "cc": 1.0, "scale": 1.0,
                                   "intrinsics": 2.0}

#: ``unihoi-tiny-synthetic``'s last training leg (synthetic world version 2): the synthetic leg's
#: clips, priors, pair draw (its ``seed``) and loss weights are this file's.
SYNTHETIC_LEG_CONFIG = Path(__file__).parent / "configs" / "unihoi_tiny_world2.yaml"

#: Synthetic training seeds stay below this: the evaluation clips' seeds start here
#: (10000+, 20000+, 30000+).
FIRST_EVAL_SEED = 10_000


@dataclass
class AdaptConfig:
    """What :func:`adapt` does (see the module docstring).

    Attributes:
        inputs: recordings (bags, videos, image folders, 7-Scenes / TUM folders).
        output: the adapted model's weights path (``.safetensors``).
        K: ``(3, 3)`` the camera's intrinsics at ``K_size``, pixels; None: predicted.
        K_size: ``(H, W)`` the size K belongs to; None: the recordings' frame size.
        base: the model to start from (bundled name or weights path).
        minutes: wall-time budget of the whole run (preparation, training, evaluation).
        topic: image topic of bags.
        max_frames: frames read per recording (None: all).
        holdout: fraction of each recording (its end) kept out of training.
        offset: frame distance of the geometric teacher's pairs.
        teacher_max_side: longer side of the frames the teacher triangulates, pixels.
        raft_weights: RAFT-small checkpoint (the authors' ``raft-small.pth``): the
            geometric teacher triangulates its flow instead of OpenCV DIS's (more pixels
            kept, a better shape on real frames; bench/RESULTS.md); None: DIS.
        base_weight: weight of the base model's depth where the geometric teacher has none.
        scale_anchor: weight of the base model's per-frame scale against the frame-to-frame
            ties of :func:`consistent_log_scales` (its correlation length is about
            ``1 / sqrt(scale_anchor)`` frames); None: each frame's scale from the base
            alone.
        fuse_radius: each frame's teacher is the median of its own and the ``fuse_radius``
            frames on each side warped into it (:func:`fuse_over_time`; 0: its own alone).
        lr: Adam learning rate (cosine to 5 % over the time budget, or over ``max_steps``
            when that ends the run first: :func:`schedule_fraction`).
        pairs: clip pairs in the training cache (None: one per 2 training frames).
        synthetic_pairs: synthetic clip pairs mixed into training (module docstring; 0:
            none, the run is exactly one without the leg); rounded up to the leg's pairs
            per clip (2).
        synthetic_every: one step in this many trains on a synthetic pair (>= 2; 2: every
            other step), when ``synthetic_pairs > 0``.
        augment: photometric jitter of the recordings' clips as the network sees them
            (:func:`unihoi_ros.train.augment.photometric_jitter`; priors unchanged).
        flip: mirror half of the recordings' samples left-right, priors with them
            (:func:`unihoi_ros.train.augment.horizontal_flip`).
        zoom: crop half of the recordings' samples, magnified by up to this factor and
            resized back, priors and K with them
            (:func:`unihoi_ros.train.augment.random_zoom`); 0: off.
        ckpt_minutes: checkpoint period.
        eval_pairs: held-out clip pairs per recording for the self-supervised losses.
        max_steps: stop after this many steps (None: the time budget decides).
        threads: torch / OpenCV threads (0: leave as is).
        seed: data order and clip sampling.
        resume: continue from the work directory's last checkpoint.
        progress: tqdm bars.
        evaluate_truth: score held-out frames against ground truth when the input has it.
    """

    inputs: list
    output: Path
    K: np.ndarray | None = None
    K_size: tuple[int, int] | None = None
    base: str = "unihoi-tiny"
    minutes: float = 30.0
    topic: str | None = None
    max_frames: int | None = None
    holdout: float = 0.1
    offset: int = 16
    teacher_max_side: int = 640
    raft_weights: Path | None = None
    base_weight: float = 0.1
    scale_anchor: float | None = 0.01
    fuse_radius: int = 2
    lr: float = 2e-4
    pairs: int | None = None
    synthetic_pairs: int = 0
    synthetic_every: int = 2
    augment: bool = False
    flip: bool = False
    zoom: float = 0.0
    ckpt_minutes: float = 3.0
    eval_pairs: int = 4
    max_steps: int | None = None
    threads: int = 2
    seed: int = 0
    resume: bool = False
    progress: bool = True
    evaluate_truth: bool = True
    weights: dict = field(default_factory=lambda: dict(ADAPT_WEIGHTS))
    two_view: TwoViewSettings = field(default_factory=TwoViewSettings)

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        if self.output.suffix != ".safetensors":
            raise ConfigError(f"-o {self.output}: the adapted model is a .safetensors file")
        if not self.inputs:
            raise ConfigError("no input recordings")
        if not 0.0 <= self.holdout < 0.5:
            raise ConfigError(f"holdout {self.holdout}: must be in [0, 0.5)")
        if self.minutes <= 0:
            raise ConfigError(f"minutes {self.minutes}: must be > 0")
        if self.offset < 1:
            raise ConfigError(f"offset {self.offset}: must be >= 1")
        if self.synthetic_pairs < 0:
            raise ConfigError(f"synthetic pairs {self.synthetic_pairs}: must be >= 0")
        if self.synthetic_every < 2:
            raise ConfigError(f"synthetic every {self.synthetic_every}: must be >= 2 (1 "
                              "would leave no step for the recordings)")
        if self.zoom != 0 and not self.zoom > 1.0:  # NaN refused too
            raise ConfigError(f"zoom {self.zoom}: the largest magnification must be > 1 "
                              "(0: off)")
        if self.raft_weights is not None:
            self.raft_weights = Path(self.raft_weights).expanduser()
            if not self.raft_weights.is_file():
                raise ConfigError(f"--raft-weights {self.raft_weights}: no such file (the "
                                  "authors' raft-small.pth; nothing is downloaded)")
        if self.synthetic_pairs:
            synthetic_seeds(self.synthetic_pairs,
                            int(synthetic_leg_config()["data"]["pairs_per_video"]))

    @property
    def work_dir(self) -> Path:
        return self.output.with_suffix(".adapt")


# --------------------------------------------------------------------------- pure maths
def teacher_maps(metric: np.ndarray, base: np.ndarray, base_weight: float,
                 min_pixels: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """One frame's teacher depth and per-pixel weight.

    Args:
        metric: ``(H, W)`` triangulated depth already at its metric scale
            (:func:`consistent_log_scales` or :func:`base_log_scale`), NaN where none.
        base: ``(H, W)`` the base model's depth (metres, read with the known K).
        base_weight: weight of the base depth where the geometry gives none.
        min_pixels: fewer geometric pixels than this: the frame's teacher is the base alone.

    Returns:
        ``(depth (H, W) m, weight (H, W))``: the geometric depth with weight 1 where it
        exists, the base depth with ``base_weight`` elsewhere.
    """
    ok = usable_pixels(metric, base)
    if ok.sum() < min_pixels:
        return base.astype(np.float32), np.full(base.shape, base_weight, np.float32)
    depth = np.where(ok, metric, base).astype(np.float32)
    weight = np.where(ok, 1.0, base_weight).astype(np.float32)
    return depth, weight


def step_generator(seed: int, step: int, stream: int) -> torch.Generator:
    """The random source of one augmentation (``stream``) at one training step: seeded by
    the step, so a run is reproducible and the same after ``--resume``; each augmentation
    has its own stream, so turning one on does not change another's draws."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step + stream * 2**40)


def synthetic_leg_config() -> dict:
    """The full training config of :data:`SYNTHETIC_LEG_CONFIG` (defaults filled in)."""
    from .config import load_config

    return load_config(SYNTHETIC_LEG_CONFIG)


def synthetic_seeds(pairs: int, pairs_per_video: int) -> range:
    """Seeds ``0 .. M - 1`` of the synthetic clips holding ``pairs`` clip pairs,
    ``M = ceil(pairs / pairs_per_video)``; ``ConfigError`` when they would reach the
    evaluation seeds (:data:`FIRST_EVAL_SEED`)."""
    count = math.ceil(int(pairs) / int(pairs_per_video))
    if count > FIRST_EVAL_SEED:
        raise ConfigError(f"synthetic pairs {pairs}: at most {FIRST_EVAL_SEED * pairs_per_video}"
                          f" (seeds from {FIRST_EVAL_SEED} are evaluation clips)")
    return range(count)


def schedule_fraction(elapsed_s: float, train_until_s: float, step: int,
                      max_steps: int | None) -> float:
    """How far the run is through its learning-rate schedule, in ``[0, 1]``: the larger of
    the time budget's fraction spent and, with ``max_steps``, the steps' fraction done —
    so the cosine reaches its end whichever limit ends the run (a step limit alone used to
    leave the rate near its peak)."""
    frac = elapsed_s / max(train_until_s, 1.0)
    if max_steps:
        frac = max(frac, step / max_steps)
    return min(1.0, frac)


def mixed_step(step: int, every: int) -> tuple[bool, int]:
    """``(synthetic, index)`` of training step ``step`` (0-based) of a mixed run: steps
    with ``step % every == every - 1`` train on the synthetic leg, the others on the
    recordings; ``index`` numbers each leg's steps 0, 1, 2, ... without gaps (its position
    in that leg's data order). A pure function of ``step``, so a resumed run continues
    both legs where they were."""
    synthetic_so_far = (step + 1) // every  # synthetic steps among 0..step
    if step % every == every - 1:
        return True, synthetic_so_far - 1
    return False, step - synthetic_so_far


# --------------------------------------------------------------------------- data
@dataclass
class Recording:
    """One input read for adaptation.

    Attributes:
        video_id: cache prefix (unique per input).
        path: the input.
        frames: ``(N, h, w, 3)`` uint8 at the training size.
        teacher_frames: ``(N, H, W, 3)`` uint8 at the teacher's size.
        native_hw: the recording's frame size.
    """

    video_id: str
    path: Path
    frames: np.ndarray
    teacher_frames: np.ndarray
    native_hw: tuple[int, int]


def teacher_size(hw: tuple[int, int], max_side: int, train_hw: tuple[int, int]
                 ) -> tuple[int, int]:
    """The teacher's frame size: at most ``max_side`` on the longer side and an integer
    multiple of the training size when the aspect ratios agree (block-median reduction)."""
    h, w = hw
    factor = max(1, int(min(max_side / max(h, w), 1.0) * max(h, w) / max(train_hw)))
    if abs(h / w - train_hw[0] / train_hw[1]) < 1e-3 and factor * max(train_hw) <= max(h, w):
        return train_hw[0] * factor, train_hw[1] * factor
    s = min(1.0, max_side / max(h, w))
    return max(8, round(h * s)), max(8, round(w * s))


def read_recording(path, index: int, train_hw: tuple[int, int], max_side: int,
                   topic: str | None, max_frames: int | None) -> Recording:
    """Frames of one input at the training and teacher sizes."""
    from unihoi_ros.io.sources import SourceError, open_source

    src = open_source(path, topic)
    small, big, native = [], [], None
    for _, rgb in src:
        if native is None:
            native = tuple(int(v) for v in rgb.shape[:2])
            t_hw = teacher_size(native, max_side, train_hw)
        elif rgb.shape[:2] != native:
            raise SourceError(f"{path}: frames change size ({native} -> {rgb.shape[:2]})")
        small.append(cv2.resize(rgb, train_hw[::-1], interpolation=cv2.INTER_AREA))
        big.append(rgb if t_hw == native else
                   cv2.resize(rgb, t_hw[::-1], interpolation=cv2.INTER_AREA))
        if max_frames and len(small) >= max_frames:
            break
    if len(small) < 8:
        raise SourceError(f"{path}: {len(small)} frames; adaptation needs at least 8")
    stem = Path(path).stem or Path(path).name
    return Recording(f"rec{index:02d}_{stem}", Path(path), np.stack(small), np.stack(big),
                     native)


@dataclass
class AdaptTeacher:
    """Depth prior of precomputed per-frame teacher maps (:func:`teacher_maps`) by video id;
    K the camera's (or the base's stream K) at the training size."""

    depth: dict
    weight: dict
    K: dict
    name: str = "geometric"

    def __call__(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        return self.depth[clip.video_id][clip.indices], self.K[clip.video_id]


class AdaptPriors(Priors):
    """:class:`~.priors.Priors` plus the teacher's per-pixel weight (``teacher_weight``)."""

    def label(self, clip: Clip) -> dict[str, np.ndarray]:
        out = super().label(clip)
        out["teacher_weight"] = self.depth.weight[clip.video_id][clip.indices]
        return out


def base_predictions(model, frames: np.ndarray, flows: PairFlows | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The base model's depth ``(N, h, w)`` m and per-frame K ``(N, 3, 3)`` px of a
    recording at the training size: windows of 4 consecutive frames (DIS flow; ``flows``
    of these ``frames`` to share it, None: computed here), the last window moved back to
    end at the last frame."""
    n = len(frames)
    f = model.config.frames
    flows = PairFlows(frames) if flows is None else flows
    depth = np.zeros(frames.shape[:3], np.float32)
    Ks = np.zeros((n, 3, 3))
    starts = list(range(0, max(n - f, 0) + 1, f))
    if starts[-1] + f < n:
        starts.append(n - f)
    for s in starts:
        idx = np.arange(s, s + f)
        rgb = frames[idx]
        window_flows = np.stack([flows(s + t, s + t - 1) for t in range(1, f)])
        x = torch.from_numpy(rgb).permute(0, 3, 1, 2)[None].float().div(255.0)
        fl = torch.from_numpy(window_flows).permute(0, 3, 1, 2)[None].float()
        with torch.inference_mode():
            out = model(x, fl)
        depth[idx] = out.depth[0].numpy()
        kf = out.K_frames[0] if out.K_frames is not None else out.K[0][None].expand(f, 3, 3)
        Ks[idx] = kf.double().numpy()
    return depth, Ks


def teacher_inputs(rec: Recording, model, K_native: np.ndarray | None, cfg: AdaptConfig,
                   train_frames: int, pair_flow=None) -> dict:
    """What the teacher is made from, per recording: the base model's predictions and the
    triangulated depth.

    Returns:
        ``{"parts": [slice, ...]`` (training and held-out frames, prepared apart),
        ``"K"`` ``(3, 3)`` at the training size, ``"base_depth"`` ``(N, h, w)`` metres (read
        with K), ``"base_K"`` ``(N, 3, 3)``, ``"geometric"`` ``(N, h, w)`` triangulated
        depth at the training size, each frame at its own scale (NaN where none),
        ``"kept"`` ``(N,)`` its coverage at the teacher's size, ``"flows"``: a
        :class:`PairFlows` per part}.
    """
    hw, thw = rec.frames.shape[1:3], rec.teacher_frames.shape[1:3]
    n = len(rec.frames)
    # Training and held-out frames are prepared apart: no training label sees a held-out
    # frame (not even as the second view of a triangulation).
    parts = [p for p in (slice(0, train_frames), slice(train_frames, n)) if p.stop > p.start]
    flows = [PairFlows(rec.frames[part]) for part in parts]
    base_depth = np.zeros(rec.frames.shape[:3], np.float32)
    base_K = np.zeros((n, 3, 3))
    for part, part_flows in zip(parts, flows):
        base_depth[part], base_K[part] = base_predictions(model, rec.frames[part], part_flows)
    stream_K = np.median(base_K[:train_frames], axis=0)
    K = scale_intrinsics(K_native, cfg.K_size or rec.native_hw, hw) if K_native is not None \
        else stream_K
    # Read the base's depth with the known K, as the node does with camera_info.
    base_read = base_depth * (K[0, 0] / base_K[:, 0, 0])[:, None, None]
    geo = np.full(rec.teacher_frames.shape[:3], np.nan, np.float32)
    infos: list[dict] = []
    for part in parts:
        geo[part], info = geometric_depths(rec.teacher_frames[part], scale_intrinsics(K, hw, thw),
                                           cfg.offset, cfg.two_view, cfg.progress, pair_flow)
        infos += info
    return {"parts": parts, "K": K, "base_depth": base_read, "base_K": base_K,
            "geometric": np.stack([block_median(g, hw) for g in geo]),
            "kept": np.array([x["kept"] for x in infos]), "flows": flows}


def teacher_from(inputs: dict, cfg: AdaptConfig
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The teacher of one recording from :func:`teacher_inputs` (module docstring: one
    scale along the recording, fused over time, the base where the geometry has none).

    Args:
        inputs: :func:`teacher_inputs`' dict.
        cfg: ``scale_anchor``, ``fuse_radius``, ``base_weight``.

    Returns:
        ``(depth (N, h, w) m, weight (N, h, w), metric (N, h, w))``: the teacher, its
        per-pixel weight and its geometric part (metres, NaN where the base fills in).
    """
    geo, base, parts = inputs["geometric"], inputs["base_depth"], inputs["parts"]
    metric = np.concatenate([scaled_geometry(geo[p], base[p], f, cfg.scale_anchor,
                                             cfg.fuse_radius)
                             for p, f in zip(parts, inputs["flows"])])
    depth = np.empty_like(base, dtype=np.float32)
    weight = np.empty_like(base, dtype=np.float32)
    for i in range(len(base)):
        depth[i], weight[i] = teacher_maps(metric[i], base[i], cfg.base_weight)
    return depth, weight, np.where(weight == 1.0, depth, np.nan).astype(np.float32)


def prepare_teacher(rec: Recording, model, K_native: np.ndarray | None, cfg: AdaptConfig,
                    train_frames: int, pair_flow=None) -> dict:
    """Teacher arrays of one recording (saved in the work dir, reloaded on resume):
    ``depth``, ``weight`` ``(N, h, w)``, ``K (3, 3)`` at the training size, ``geometric``
    (the teacher's geometric part, metres), ``base_depth``, ``base_K``, ``kept``.
    ``pair_flow``: the triangulation's flow provider (None: DIS)."""
    path = cfg.work_dir / f"teacher_{rec.video_id}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    inputs = teacher_inputs(rec, model, K_native, cfg, train_frames, pair_flow)
    depth, weight, metric = teacher_from(inputs, cfg)
    arrays = {"depth": depth, "weight": weight, "K": inputs["K"], "geometric": metric,
              "base_depth": inputs["base_depth"], "base_K": inputs["base_K"],
              "kept": inputs["kept"]}
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return arrays


@dataclass
class SyntheticLeg:
    """The synthetic clip pairs of a mixed run and how they are trained.

    Attributes:
        cache: the labelled clip pairs (``<work>/cache_synthetic``).
        weights: loss weights of the synthetic steps (:data:`SYNTHETIC_LEG_CONFIG`'s).
        settings: what the report records (seeds, clip size, priors, weights, ...).
    """

    cache: ClipCache
    weights: dict[str, float]
    settings: dict


def prepare_synthetic_leg(cfg: AdaptConfig, hw: tuple[int, int]) -> SyntheticLeg:
    """Build (or, on resume, reuse) the synthetic leg's cache of ``cfg.synthetic_pairs``
    clip pairs (module docstring) at ``hw = (h, w)``, the base model's input size, through
    the trainer's own :func:`~.trainer.ensure_cache`."""
    from .priors import make_priors
    from .trainer import ensure_cache

    leg = synthetic_leg_config()
    data = leg["data"]
    seeds = synthetic_seeds(cfg.synthetic_pairs, int(data["pairs_per_video"]))
    section = dict(data, kind="synthetic", paths=[], seeds=[seeds.start, seeds.stop],
                   height=int(hw[0]), width=int(hw[1]),
                   cache_dir=str(cfg.work_dir / "cache_synthetic"))
    ensure_cache(section, section, make_priors(leg["priors"]), int(leg["seed"]),
                 cfg.progress)
    weights = {k: float(v) for k, v in leg["losses"].items()}
    settings = {"config": SYNTHETIC_LEG_CONFIG.name, "pairs": int(cfg.synthetic_pairs),
                "every": int(cfg.synthetic_every), "seeds": [seeds.start, seeds.stop],
                "num_frames": int(data["num_frames"]), "hw": [int(hw[0]), int(hw[1])],
                "frames": int(data["frames"]), "max_interval": int(data["max_interval"]),
                "pairs_per_video": int(data["pairs_per_video"]), "pair_seed": int(leg["seed"]),
                "priors": leg["priors"], "weights": weights, "cache": section["cache_dir"]}
    # Each pair is visited about once per run: kept on disk, not in memory.
    return SyntheticLeg(ClipCache(section["cache_dir"], memory=False), weights, settings)


# --------------------------------------------------------------------------- report
def _losses_of(model, cache: ClipCache, weights: dict) -> dict[str, float]:
    from .trainer import evaluate_cache

    return evaluate_cache(model, cache, weights, torch.float32, torch.device("cpu"), 1000,
                          len(cache))


def truth_metrics(weights_path, rec: Recording, start: int, K_native: np.ndarray | None,
                  cfg: AdaptConfig, segment_frames: int = 50) -> dict | None:
    """Real-data metrics of frames ``start..`` of a 7-Scenes recording, in segments of
    ``segment_frames`` as ``bench/real.py`` streams them (one segment when fewer frames;
    :func:`unihoi_ros.evaluation_real.run_segment` at the recording's size, with the known
    K when given); ``{"segments": [...], "mean": {...}}``, None when the input has no
    ground truth."""
    from unihoi_ros.backends.factory import load_backend
    from unihoi_ros.evaluation_real import RealBenchConfig, run_segment, segments_mean
    from unihoi_ros.io.ground_truth import load_seven_scenes
    from unihoi_ros.io.sources import seven_scenes_files

    if not rec.path.is_dir() or not seven_scenes_files(rec.path):
        return None
    n = len(rec.frames)
    backend = load_backend(str(weights_path), "torch", "cpu")
    count = max(1, (n - start) // segment_frames)
    rows = []
    for k in range(count):
        lo = start + k * segment_frames
        hi = n if k == count - 1 else lo + segment_frames
        gt = load_seven_scenes(rec.path, 30.0, frames=slice(lo, hi))
        files = seven_scenes_files(rec.path)[lo:hi]
        frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for _, p in files]
        hw = frames[0].shape[:2]
        K = None if K_native is None else scale_intrinsics(K_native,
                                                           cfg.K_size or rec.native_hw, hw)
        row = run_segment(backend, frames, gt.stamps_ns, gt, K,
                          RealBenchConfig(data=rec.path, process_size=hw))
        rows.append({"start_frame": int(files[0][0]), **row})
    return {"segments": rows, "mean": segments_mean(rows)}


def write_adapted(model, out: Path, base: str, recordings: list[Recording], summary: dict
                  ) -> Path:
    """Save the adapted weights with ``trained_on`` / ``adapted_from`` in its JSON and the
    safetensors metadata, and the base's ``terms`` (the terms of the data it was trained
    on, e.g. the bundled model's research-only recordings), which carry over."""
    from unihoi_ros.model import save_pretrained
    from unihoi_ros.model_info import data_terms

    names = ", ".join(str(r.path) for r in recordings)
    mixed = f" mixed with {summary['synthetic']}" if summary.get("synthetic") else ""
    provenance = (f"unihoi adapt: {base} fine-tuned self-supervised on {names}{mixed} "
                  f"({summary['steps']} steps, {summary['train_minutes']:.1f} min)")
    weights = save_pretrained(model, out, provenance=provenance)
    terms = data_terms(base)
    return add_metadata(weights, {
        "adapted_from": base,
        "trained_on": (f"adapted by `unihoi adapt` from {base} on {len(recordings)} "
                       f"recording(s): {names}{mixed}"),
        "recordings": [{"path": str(r.path), "frames": len(r.frames)} for r in recordings],
        **({"terms": f"from the base {base}: {terms}"} if terms else {})})


def add_metadata(weights: Path, extra: dict) -> Path:
    """Add ``extra`` keys to a ``save_pretrained`` output's JSON and its safetensors
    metadata (the two stay the same record); returns ``weights``."""
    from safetensors.torch import load_file, save_file

    meta_path = Path(weights).with_suffix(".json")
    meta = {**json.loads(meta_path.read_text()), **extra}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    tensors = load_file(str(weights))
    save_file(tensors, str(weights), metadata={"unihoi_config": json.dumps(meta)})
    return Path(weights)


# --------------------------------------------------------------------------- main
def adapt(cfg: AdaptConfig) -> dict:
    """Run the adaptation (module docstring); returns the report (also written as
    ``<output>.report.json``)."""
    from unihoi_ros.model import UniHOI

    from .trainer import (
        _CsvLog,
        _truncate_csv,
        freeze_batchnorm,
        load_resume,
        lr_at,
        plot_curves,
    )

    t_start = time.monotonic()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
        cv2.setNumThreads(int(cfg.threads))
    work = cfg.work_dir
    ckpt_dir = work / "checkpoints"
    state_path = work / "state.json"
    if (ckpt_dir / "last.json").is_file() and not cfg.resume:
        raise ConfigError(f"{work} holds an earlier run's checkpoints: --resume to continue "
                          "it, or delete the folder to start over")
    elapsed0 = cpu0 = 0.0
    if cfg.resume and state_path.is_file():
        state = json.loads(state_path.read_text())
        elapsed0, cpu0 = float(state.get("elapsed_s", 0.0)), float(state.get("cpu_s", 0.0))
    work.mkdir(parents=True, exist_ok=True)
    budget_s = float(cfg.minutes) * 60.0

    def elapsed() -> float:
        return elapsed0 + time.monotonic() - t_start

    base_model = UniHOI.from_pretrained(cfg.base).eval()
    pair_flow = None
    if cfg.raft_weights is not None:  # loaded now: a bad checkpoint stops the run at once
        from unihoi_ros.flow.raft import RAFTFlow

        pair_flow = RAFTFlow(cfg.raft_weights)
    train_hw = tuple(int(v) for v in base_model.config.image_shape)
    recordings = [read_recording(p, i, train_hw, cfg.teacher_max_side, cfg.topic,
                                 cfg.max_frames) for i, p in enumerate(cfg.inputs)]
    if cfg.K is not None and cfg.K_size is None:
        sizes = {r.native_hw for r in recordings}
        if len(sizes) > 1:
            raise ConfigError(f"--K for recordings of several sizes {sorted(sizes)}: "
                              "adapt them separately")
    t_prep = time.monotonic()
    splits, teacher = {}, {}
    for rec in recordings:
        n = len(rec.frames)
        n_train = n - round(cfg.holdout * n)
        splits[rec.video_id] = n_train
        log.info("%s: %d frames (%d for training, %d held out) at %dx%d; teacher at %dx%d",
                 rec.path, n, n_train, n - n_train, train_hw[1], train_hw[0],
                 rec.teacher_frames.shape[2], rec.teacher_frames.shape[1])
        teacher[rec.video_id] = prepare_teacher(rec, base_model, cfg.K, cfg, n_train,
                                                pair_flow)
    prior = AdaptTeacher({k: v["depth"] for k, v in teacher.items()},
                         {k: v["weight"] for k, v in teacher.items()},
                         {k: v["K"] for k, v in teacher.items()})
    priors = AdaptPriors(prior, DISFlowPrior("medium"), LucasKanadeTracks(), NoMasks())
    n_train_total = sum(splits.values())
    pairs = int(cfg.pairs or max(4, n_train_total // 2))
    train_videos, val_videos = [], []
    for rec in recordings:
        n_train = splits[rec.video_id]
        share = max(1, round(pairs * n_train / n_train_total))
        train_videos.append((Video(rec.video_id, rec.frames[:n_train]), share))
        if len(rec.frames) - n_train >= 8:
            # The held-out clips index the whole recording (the teacher's arrays do).
            val_videos.append(Video(rec.video_id, rec.frames))
    for video, share in train_videos:
        build_cache([video], priors, work / "cache_train", share, cfg.seed, 4, 4,
                    cfg.progress)
    _write_joint_index(work / "cache_train", [(v.video_id, s) for v, s in train_videos])
    train_cache = ClipCache(work / "cache_train")
    val_cache = None
    if val_videos:
        for video in val_videos:
            n_train = splits[video.video_id]
            held = Video(video.video_id, video.frames)
            _held_out_cache(held, n_train, priors, work / "cache_val", cfg)
        val_cache = ClipCache(work / "cache_val")
    synthetic = prepare_synthetic_leg(cfg, train_hw) if cfg.synthetic_pairs else None
    prep_s = time.monotonic() - t_prep
    log.info("priors ready in %.0f s: %d training clip pairs, %d held-out, %d synthetic",
             prep_s, len(train_cache), len(val_cache) if val_cache else 0,
             len(synthetic.cache) if synthetic else 0)

    model = UniHOI.from_pretrained(cfg.base)
    weights = dict(cfg.weights)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg.lr))
    step = 0
    if cfg.resume and (ckpt_dir / "last.json").is_file():
        step, _ = load_resume(model, optimizer, ckpt_dir)
        log.info("resuming from step %d (%.1f min already spent)", step, elapsed0 / 60)
    terms_names = [k for k, v in weights.items() if float(v)]
    fields = ["step", "time_s", "lr", "total", *terms_names]
    if synthetic:
        syn_names = [k for k, v in synthetic.weights.items() if v]
        fields += [f"synthetic_{k}" for k in ["total", *syn_names]]
    _truncate_csv(work / "train.csv", step)
    train_log = _CsvLog(work / "train.csv", fields)
    before = None
    if val_cache is not None:
        before_path = work / "held_out_before.json"
        if before_path.is_file():
            before = json.loads(before_path.read_text())
        else:
            before = _losses_of(base_model, val_cache, weights)
            before_path.write_text(json.dumps(before) + "\n")
    # Time left for training: the budget minus what was spent and the final evaluation's
    # estimate (held-out losses twice and ground-truth segments: about a minute here).
    reserve_s = 60.0 + (90.0 if cfg.evaluate_truth else 0.0)
    train_until = budget_s - reserve_s
    optim = {"lr": cfg.lr, "warmup": 10, "steps": 10**9, "min_lr_ratio": 0.05}
    model.train()
    freeze_batchnorm(model)
    from tqdm import tqdm

    bar = tqdm(total=max(1, int(train_until - elapsed())), desc="adapt", unit="s",
               disable=not cfg.progress)
    last_ckpt = time.monotonic()
    train_t0 = elapsed()
    last_terms: dict[str, float] = {}
    last_synthetic: dict[str, float] = {}
    while elapsed() < train_until and (cfg.max_steps is None or step < cfg.max_steps):
        is_syn, k = mixed_step(step, cfg.synthetic_every) if synthetic else (False, step)
        cache, w, names = ((synthetic.cache, synthetic.weights, syn_names) if is_syn
                           else (train_cache, weights, terms_names))
        batch = cache.batch(global_batch_indices(k, 1, len(cache), cfg.seed))
        if cfg.augment and not is_syn:
            batch = {**batch, "rgb": photometric_jitter(batch["rgb"],
                                                        step_generator(cfg.seed, step, 0))}
        if cfg.flip and not is_syn:
            batch = horizontal_flip(batch, step_generator(cfg.seed, step, 1))
        if cfg.zoom and not is_syn:
            batch = random_zoom(batch, step_generator(cfg.seed, step, 2), cfg.zoom)
        lr = lr_at(step, optim, schedule_fraction(elapsed(), train_until, step, cfg.max_steps))
        for g in optimizer.param_groups:
            g["lr"] = lr
        terms = _compute(model, batch, w)
        loss = terms["total"].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        step += 1
        values = {n: float(terms[n].detach().mean()) for n in ["total", *names]}
        if is_syn:
            last_synthetic = values
            row = {f"synthetic_{n}": v for n, v in values.items()}
        else:
            last_terms = row = values
        train_log.write({"step": step, "time_s": elapsed(), "lr": lr, **row})
        bar.n = min(bar.total, int(elapsed() - (train_until - bar.total)))
        post = {"step": step, "loss": f"{last_terms.get('total', float('nan')):.4g}"}
        if synthetic:
            post["synthetic"] = f"{last_synthetic.get('total', float('nan')):.4g}"
        bar.set_postfix(post)
        bar.refresh()
        if time.monotonic() - last_ckpt > cfg.ckpt_minutes * 60:
            _checkpoint(model, optimizer, step, ckpt_dir, elapsed(), state_path,
                        cpu0 + time.process_time())
            last_ckpt = time.monotonic()
    bar.close()
    train_s = elapsed() - train_t0
    _checkpoint(model, optimizer, step, ckpt_dir, elapsed(), state_path,
                        cpu0 + time.process_time())
    model.eval()
    summary = {"steps": step, "train_minutes": train_s / 60.0}
    if synthetic:
        lo, hi = synthetic.settings["seeds"]
        summary["synthetic"] = (f"{len(synthetic.cache)} synthetic clip pairs labelled as "
                                f"{SYNTHETIC_LEG_CONFIG.name} (seeds {lo}-{hi - 1}, one step "
                                f"in {cfg.synthetic_every})")
    weights_path = write_adapted(model, cfg.output, cfg.base, recordings, summary)
    plot_curves(work / "train.csv", work / "missing.csv", cfg.output.with_suffix(".losses.png"))

    report = {
        "output": str(weights_path), "base": cfg.base,
        "settings": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "two_view"},
        "two_view": dataclasses.asdict(cfg.two_view),
        "recordings": [{"path": str(r.path), "frames": len(r.frames),
                        "train_frames": int(splits[r.video_id]),
                        "native_hw": list(r.native_hw),
                        "teacher_hw": list(r.teacher_frames.shape[1:3]),
                        "K_train_size": np.asarray(teacher[r.video_id]["K"]).tolist(),
                        "geometric_coverage": float(np.mean(teacher[r.video_id]["kept"]))}
                       for r in recordings],
        "steps": step, "clip_pairs": len(train_cache),
        "time": {"prepare_s": prep_s, "train_s": train_s},
        "last_losses": last_terms,
    }
    if synthetic:
        report["synthetic"] = {**synthetic.settings, "clip_pairs": len(synthetic.cache),
                               "steps": step // cfg.synthetic_every,
                               "last_losses": last_synthetic}
    if val_cache is not None:
        report["held_out_losses"] = {"before": before,
                                     "after": _losses_of(model, val_cache, weights)}
    if cfg.evaluate_truth:
        truth = {}
        for rec in recordings:
            if len(rec.frames) - splits[rec.video_id] < 8:
                continue
            b = truth_metrics(_base_path(cfg.base), rec, splits[rec.video_id], cfg.K, cfg)
            if b is None:
                continue
            a = truth_metrics(weights_path, rec, splits[rec.video_id], cfg.K, cfg)
            truth[rec.video_id] = {"frames": [splits[rec.video_id], len(rec.frames)],
                                   "before": b, "after": a}
        if truth:
            report["held_out_truth"] = truth
    report["time"]["total_s"] = elapsed()
    report["time"]["cpu_s"] = cpu0 + time.process_time()
    (cfg.output.with_suffix(".report.json")).write_text(
        json.dumps(report, indent=1, default=_jsonable) + "\n")
    return report


def _jsonable(value):
    """JSON form of the report's paths and arrays."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value).tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _base_path(base: str) -> str:
    from unihoi_ros.model.checkpoint import resolve_pretrained

    return str(resolve_pretrained(base))


def _checkpoint(model, optimizer, step, ckpt_dir: Path, elapsed_s: float, state_path: Path,
                cpu_s: float) -> None:
    from .trainer import save_checkpoint

    save_checkpoint(model, optimizer, step, ckpt_dir, elapsed_s, "unihoi adapt checkpoint")
    # Older step files are dropped: only the last is needed to resume.
    keep = json.loads((ckpt_dir / "last.json").read_text())["weights"]
    for p in ckpt_dir.glob("step_*.safetensors"):
        if p.name != keep:
            p.unlink()
            p.with_suffix(".json").unlink(missing_ok=True)
    state_path.write_text(json.dumps({"step": step, "elapsed_s": elapsed_s,
                                      "cpu_s": cpu_s}) + "\n")


def _compute(model, batch: dict, weights: dict) -> dict:
    from .objective import compute_losses

    return compute_losses(model, batch, weights)


def _write_joint_index(cache: Path, videos: list[tuple[str, int]]) -> None:
    """``index.json`` listing every video's samples (build_cache writes one video's)."""
    from .dataset import _write_index

    _write_index(cache, [f"{vid}_{k}.npz" for vid, n in videos for k in range(n)])


def _held_out_cache(video: Video, start: int, priors: Priors, cache: Path,
                    cfg: AdaptConfig) -> None:
    """Clip pairs of frames ``start..`` of ``video`` (consecutive 4-frame clips, interval
    1), written like :func:`build_cache`'s."""
    from .dataset import _write_index, label_pair

    cache.mkdir(parents=True, exist_ok=True)
    n = len(video.frames)
    names = []
    if (cache / "index.json").is_file():
        names = [x for x in json.loads((cache / "index.json").read_text())["samples"]
                 if not x.startswith(video.video_id + "_")]
    span = n - start
    count = max(1, min(cfg.eval_pairs, span // 8))
    firsts = np.linspace(start, n - 8, count).round().astype(int)
    for k, s in enumerate(firsts):
        name = f"{video.video_id}_{k}.npz"
        names.append(name)
        if (cache / name).is_file():
            continue
        idx = np.stack([np.arange(s, s + 4), np.arange(s + 4, s + 8)])
        arrays = label_pair(video, idx, priors)
        tmp = cache / f".{name}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        tmp.replace(cache / name)
    _write_index(cache, names)
