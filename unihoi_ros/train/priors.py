"""Priors (pseudo-labels) for self-supervised training, one interface each.

The paper uses UniDepth (teacher depth + K), GMFlow (optical flow), CoTracker (point
tracks) and EgoHOS (hand-object masks). Here each is a small interface with
implementations that run on this machine and slots for the paper's models:

- depth + K (:class:`DepthPrior`): :class:`SyntheticTeacher` (ground truth of the synthetic
  world with realistic noise: per-clip scale error, smooth per-pixel error, K error),
  :class:`PrecomputedDepth` (files), :class:`NetworkTeacher` (a frozen network in our
  safetensors format, e.g. a UniDepth-initialised UniHOI; clear error otherwise).
- flow (:class:`FlowPrior`): :class:`DISFlowPrior` (OpenCV DIS, forward + backward with a
  forward-backward consistency check), :class:`PrecomputedFlow`.
- tracks (:class:`TrackPrior`): :class:`LucasKanadeTracks` (OpenCV pyramidal LK from a grid
  on the first frame, forward-backward checked), :class:`PrecomputedTracks` (CoTracker
  output).
- static masks (:class:`MaskPrior`): :class:`SyntheticStaticMask`, :class:`PrecomputedMasks`,
  :class:`NoMasks`.

Precomputed layouts (``<root>/<video_id>.npz``, frame indices are the video's):

- depth: ``depth (N, H, W)`` float metres (0 / NaN invalid) and ``K (3, 3)`` or
  ``(N, 3, 3)`` pixels.
- flow: ``flow_<i>_<j> (H, W, 2)`` float pixels mapping each pixel of frame i to frame j,
  for the consecutive clip frames in both directions (missing pairs raise ``PriorError``).
- tracks (CoTracker's ``pred_tracks[0]`` and ``pred_visibility[0]``): ``tracks (N, P, 2)``
  float pixels ``(u, v)`` and ``visibility (N, P)`` bool over the whole video.
- masks: ``static (N, H, W)`` (1 static, 0 hand / manipulated object) or ``dynamic
  (N, H, W)`` (its complement), bool or float in [0, 1].
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from unihoi_ros.errors import UnihoiError
from unihoi_ros.flow.consistency import consistency_mask


class PriorError(UnihoiError, RuntimeError):
    """A prior cannot be computed for a clip (the message says why)."""


@dataclass
class Clip:
    """Frames of one training clip.

    Attributes:
        video_id: identifier of the video (file stem, seed, ...).
        indices: ``(F,)`` frame indices in the video.
        rgb: ``(F, H, W, 3)`` uint8 RGB.
        truth: ground truth when the video has it (synthetic): ``depth (F, H, W)`` m,
            ``K (3, 3)`` px, ``dynamic (F, H, W)`` bool, ``T_world_cam (F, 4, 4)``.
    """

    video_id: str
    indices: np.ndarray
    rgb: np.ndarray
    truth: dict | None = field(default=None)

    @property
    def shape(self) -> tuple[int, int]:
        """Image size ``(H, W)`` in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[2])


def clip_seed(clip: Clip, salt: str) -> int:
    """Deterministic seed for a clip's random draws (video, frames and a salt)."""
    key = f"{salt}:{clip.video_id}:{','.join(str(int(i)) for i in clip.indices)}"
    return zlib.crc32(key.encode())


# --------------------------------------------------------------------------- interfaces
@runtime_checkable
class DepthPrior(Protocol):
    """Teacher depth and intrinsics: ``(depth (F, H, W) m, K (3, 3) px)``."""

    name: str

    def __call__(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class FlowPrior(Protocol):
    """Flows between consecutive clip frames: ``(fwd, bwd, valid_fwd, valid_bwd)``:
    ``(F-1, H, W, 2)`` pixels (t-1 -> t, t -> t-1) and ``(F-1, H, W)`` bool validity."""

    name: str

    def __call__(self, clip: Clip) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        ...


@runtime_checkable
class TrackPrior(Protocol):
    """Point tracks across the clip: ``(uv (F, P, 2) px, visible (F, P) bool)``."""

    name: str

    def __call__(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class MaskPrior(Protocol):
    """Static-scene probability ``(F, H, W)`` float32 in [0, 1] (0 on hands / objects)."""

    name: str

    def __call__(self, clip: Clip) -> np.ndarray: ...


def _npz(root: Path, video_id: str) -> dict:
    path = Path(root) / f"{video_id}.npz"
    if not path.is_file():
        raise PriorError(f"precomputed prior missing: {path}")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


# --------------------------------------------------------------------------- depth
def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int = 4) -> np.ndarray:
    """``(H, W)`` float32 zero-mean unit-scale noise, smooth over ``H / cells`` pixels."""
    coarse = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


@dataclass
class SyntheticTeacher:
    """Ground-truth depth and K of the synthetic world, degraded like a monocular teacher.

    Per clip: a log-normal scale error (``scale_sigma``) on depth and a log-normal focal
    error (``focal_sigma``); per frame: smooth multiplicative error (``smooth_sigma``) and
    pixel noise (``pixel_sigma``). Deterministic per clip.
    """

    scale_sigma: float = 0.08
    focal_sigma: float = 0.05
    smooth_sigma: float = 0.03
    pixel_sigma: float = 0.01
    name: str = "synthetic"

    def __call__(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        if clip.truth is None:
            raise PriorError(f"video {clip.video_id} has no ground truth for the synthetic teacher")
        rng = np.random.default_rng(clip_seed(clip, "teacher"))
        depth = clip.truth["depth"].astype(np.float32)
        f, h, w = depth.shape
        scale = np.exp(rng.normal(0.0, self.scale_sigma))
        noisy = np.empty_like(depth)
        for i in range(f):
            err = 1.0 + self.smooth_sigma * smooth_noise(rng, h, w)
            err = err + self.pixel_sigma * rng.standard_normal((h, w)).astype(np.float32)
            noisy[i] = depth[i] * scale * np.clip(err, 0.5, 1.5)
        K = np.array(clip.truth["K"], np.float64)
        focal = np.exp(rng.normal(0.0, self.focal_sigma))
        K[0, 0] *= focal
        K[1, 1] *= focal
        return noisy, K


@dataclass
class PrecomputedDepth:
    """Teacher depth and K read from ``<root>/<video_id>.npz`` (see the module docstring)."""

    root: Path
    name: str = "precomputed"

    def __call__(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        z = _npz(self.root, clip.video_id)
        depth = z["depth"][clip.indices].astype(np.float32)
        K = np.asarray(z["K"], np.float64)
        if K.ndim == 3:
            K = K[clip.indices].mean(axis=0)
        if depth.shape[1:] != clip.shape:
            raise PriorError(f"{clip.video_id}: precomputed depth {depth.shape[1:]} != frames "
                             f"{clip.shape}")
        return depth, K


class NetworkTeacher:
    """A frozen network as the teacher (the paper's UniDepth slot).

    ``weights`` is one of our safetensors files (or a bundled name): loaded with
    ``UniHOI.from_pretrained`` and run on the clip with DIS flow. An official UniDepth
    checkpoint alone is not enough: our network only takes UniDepth's *encoder*
    (``load_unidepth_encoder``), so such a file raises :class:`PriorError` explaining how to
    build a usable teacher.
    """

    name = "network"

    def __init__(self, weights: str | Path, device: str = "cpu") -> None:
        import torch

        from unihoi_ros.model import UniHOI

        path = Path(weights)
        if path.suffix in (".pt", ".pth", ".bin", ".ckpt"):
            raise PriorError(
                f"{path}: a UniDepth / PyTorch checkpoint cannot be used as a teacher directly: "
                "unihoi_ros implements UniDepth's encoder only (load_unidepth_encoder). Convert "
                "a full model to our format (unihoi_ros.model.save_pretrained) or precompute "
                "teacher depth with UniDepth and use the 'precomputed' depth prior.")
        try:
            self.model = UniHOI.from_pretrained(weights).to(device).eval()
        except FileNotFoundError as exc:
            raise PriorError(f"teacher weights not found: {exc}") from exc
        self.device = device
        self._torch = torch

    def __call__(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        from unihoi_ros.flow import DISFlow

        dis = DISFlow()
        flows = np.stack([dis.backward(clip.rgb[i], clip.rgb[i - 1])
                          for i in range(1, len(clip.rgb))])
        x = torch.from_numpy(clip.rgb).permute(0, 3, 1, 2)[None].float().div(255.0)
        fl = torch.from_numpy(flows).permute(0, 3, 1, 2)[None].float()
        with torch.inference_mode():
            out = self.model(x.to(self.device), fl.to(self.device))
        return out.depth[0].cpu().numpy(), out.K[0].double().cpu().numpy()


# --------------------------------------------------------------------------- flow
class DISFlowPrior:
    """OpenCV DIS flow in both directions with a forward-backward consistency check."""

    name = "dis"

    def __init__(self, preset: str = "medium") -> None:
        from unihoi_ros.flow import DISFlow

        self._dis = DISFlow(preset)

    def __call__(self, clip: Clip):
        fwd, bwd = [], []
        for t in range(1, len(clip.rgb)):
            bwd.append(self._dis.backward(clip.rgb[t], clip.rgb[t - 1]))
            fwd.append(self._dis.backward(clip.rgb[t - 1], clip.rgb[t]))
        fwd, bwd = np.stack(fwd), np.stack(bwd)
        vf = np.stack([consistency_mask(a, b) for a, b in zip(fwd, bwd)])
        vb = np.stack([consistency_mask(b, a) for a, b in zip(fwd, bwd)])
        return fwd, bwd, vf, vb


@dataclass
class PrecomputedFlow:
    """Flows read from ``<root>/<video_id>.npz`` keys ``flow_<i>_<j>``; validity by the
    forward-backward check."""

    root: Path
    name: str = "precomputed"

    def __call__(self, clip: Clip):
        z = _npz(self.root, clip.video_id)
        fwd, bwd = [], []
        for a, b in zip(clip.indices[:-1], clip.indices[1:]):
            for key, out in ((f"flow_{a}_{b}", fwd), (f"flow_{b}_{a}", bwd)):
                if key not in z:
                    raise PriorError(f"{clip.video_id}: precomputed flow {key} missing")
                out.append(z[key].astype(np.float32))
        fwd, bwd = np.stack(fwd), np.stack(bwd)
        vf = np.stack([consistency_mask(a, b) for a, b in zip(fwd, bwd)])
        vb = np.stack([consistency_mask(b, a) for a, b in zip(fwd, bwd)])
        return fwd, bwd, vf, vb


# --------------------------------------------------------------------------- tracks
@dataclass
class LucasKanadeTracks:
    """Pyramidal Lucas-Kanade tracks from an even grid on the first frame.

    Each point is tracked frame to frame; a step is kept when LK succeeds, the point stays
    in the image and tracking it back lands within ``fb_threshold`` pixels of where it
    started. A lost point stays invisible for the rest of the clip.
    """

    grid: tuple[int, int] = (12, 16)
    fb_threshold: float = 1.0
    window: int = 15
    levels: int = 2
    name: str = "lk"

    def __call__(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        f, h, w = clip.rgb.shape[:3]
        rows, cols = self.grid
        vv, uu = np.meshgrid(np.linspace(2, h - 3, rows), np.linspace(2, w - 3, cols),
                             indexing="ij")
        pts = np.stack([uu.ravel(), vv.ravel()], -1).astype(np.float32)
        grey = [cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in clip.rgb]
        uv = np.full((f, len(pts), 2), np.nan, np.float32)
        vis = np.zeros((f, len(pts)), bool)
        uv[0], vis[0] = pts, True
        params = {"winSize": (self.window, self.window), "maxLevel": self.levels}
        cur = pts.copy()
        alive = np.ones(len(pts), bool)
        for t in range(1, f):
            nxt, st, _ = cv2.calcOpticalFlowPyrLK(grey[t - 1], grey[t], cur[:, None], None,
                                                   **params)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(grey[t], grey[t - 1], nxt, None, **params)
            nxt, back = nxt[:, 0], back[:, 0]
            ok = (st[:, 0] == 1) & (st2[:, 0] == 1)
            ok &= np.linalg.norm(back - cur, axis=-1) < self.fb_threshold
            ok &= (nxt[:, 0] >= 0) & (nxt[:, 0] <= w - 1) & (nxt[:, 1] >= 0) & (nxt[:, 1] <= h - 1)
            alive &= ok
            uv[t] = np.where(alive[:, None], nxt, np.nan)
            vis[t] = alive
            cur = np.where(alive[:, None], nxt, cur)
        return uv, vis


@dataclass
class PrecomputedTracks:
    """CoTracker output read from ``<root>/<video_id>.npz`` (``tracks``, ``visibility``)."""

    root: Path
    name: str = "precomputed"

    def __call__(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        z = _npz(self.root, clip.video_id)
        if "tracks" not in z or "visibility" not in z:
            raise PriorError(f"{clip.video_id}: precomputed tracks need 'tracks' and "
                             "'visibility' arrays")
        return (z["tracks"][clip.indices].astype(np.float32),
                z["visibility"][clip.indices].astype(bool))


# --------------------------------------------------------------------------- masks
@dataclass
class SyntheticStaticMask:
    """Static probability from the synthetic world's ground-truth dynamic mask."""

    name: str = "synthetic"

    def __call__(self, clip: Clip) -> np.ndarray:
        if clip.truth is None or "dynamic" not in clip.truth:
            raise PriorError(f"video {clip.video_id} has no ground-truth dynamic mask")
        return (~clip.truth["dynamic"].astype(bool)).astype(np.float32)


@dataclass
class PrecomputedMasks:
    """Hand-object masks (e.g. EgoHOS) read from ``<root>/<video_id>.npz``."""

    root: Path
    name: str = "precomputed"

    def __call__(self, clip: Clip) -> np.ndarray:
        z = _npz(self.root, clip.video_id)
        if "static" in z:
            return z["static"][clip.indices].astype(np.float32)
        if "dynamic" in z:
            return 1.0 - z["dynamic"][clip.indices].astype(np.float32)
        raise PriorError(f"{clip.video_id}: precomputed masks need 'static' or 'dynamic'")


@dataclass
class NoMasks:
    """Everything static (no mask model): the 3D losses then also use hands and objects."""

    name: str = "none"

    def __call__(self, clip: Clip) -> np.ndarray:
        f, h, w = clip.rgb.shape[:3]
        return np.ones((f, h, w), np.float32)


# --------------------------------------------------------------------------- factory
@dataclass
class Priors:
    """The four priors used to label clips."""

    depth: DepthPrior
    flow: FlowPrior
    tracks: TrackPrior
    masks: MaskPrior

    def label(self, clip: Clip) -> dict[str, np.ndarray]:
        """Every prior of one clip, as the arrays of :data:`objective.BATCH_KEYS`
        (without the clip axis)."""
        depth, K = self.depth(clip)
        fwd, bwd, vf, vb = self.flow(clip)
        uv, vis = self.tracks(clip)
        return {
            "rgb": clip.rgb, "flow_fwd": fwd.astype(np.float32),
            "flow_bwd": bwd.astype(np.float32), "valid_fwd": vf, "valid_bwd": vb,
            "teacher_depth": depth.astype(np.float32), "teacher_K": np.asarray(K, np.float64),
            "tracks_uv": uv.astype(np.float32), "tracks_visible": vis,
            "static": self.masks(clip).astype(np.float32),
        }


def make_priors(spec: dict | None = None) -> Priors:
    """Priors from a config mapping, e.g. ``{"depth": "synthetic", "flow": "dis",
    "tracks": "lk", "masks": "synthetic"}``; precomputed ones take ``<kind>_root`` and the
    network teacher ``depth_weights``."""
    spec = dict(spec or {})
    kind = {k: spec.get(k, d) for k, d in
            (("depth", "synthetic"), ("flow", "dis"), ("tracks", "lk"), ("masks", "synthetic"))}

    def root(name: str) -> Path:
        if f"{name}_root" not in spec:
            raise PriorError(f"the precomputed {name} prior needs '{name}_root'")
        return Path(spec[f"{name}_root"])

    depth = {"synthetic": lambda: SyntheticTeacher(**spec.get("depth_options", {})),
             "precomputed": lambda: PrecomputedDepth(root("depth")),
             "network": lambda: NetworkTeacher(spec["depth_weights"])}
    flow = {"dis": lambda: DISFlowPrior(spec.get("flow_preset", "medium")),
            "precomputed": lambda: PrecomputedFlow(root("flow"))}
    tracks = {"lk": lambda: LucasKanadeTracks(**spec.get("tracks_options", {})),
              "precomputed": lambda: PrecomputedTracks(root("tracks"))}
    masks = {"synthetic": SyntheticStaticMask, "precomputed": lambda: PrecomputedMasks(
        root("masks")), "none": NoMasks}
    chosen = []
    for name, table in (("depth", depth), ("flow", flow), ("tracks", tracks), ("masks", masks)):
        if kind[name] not in table:
            raise PriorError(f"unknown {name} prior {kind[name]!r}; choose from {sorted(table)}")
        chosen.append(table[kind[name]]())
    return Priors(*chosen)
