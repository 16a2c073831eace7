"""The on-disk layout of a processed run, and its one loader :func:`load_run`.

``unihoi process`` and ``unihoi demo`` write, per frame ``i`` (``NNNNNN`` = ``i`` with six
digits, more when needed):

- ``depth/NNNNNN.png``: 16-bit PNG, z-depth in **millimetres** (the TUM RGB-D / ScanNet
  convention, ``value / 1000`` metres), ``0`` = invalid. Valid depth is rounded to the
  nearest millimetre and saturated to [1, 65535] mm: depth beyond **65.535 m** (``+inf``,
  "too far", included) reads back as 65.535 m, depth under 1 mm as 1 mm
  (:func:`depth_to_mm`); the round trip is within 0.5 mm below 65.535 m.
- ``confidence/NNNNNN.png``: 8-bit PNG, ``round(confidence * 255)`` (NaN as 0); read back
  as ``value / 255`` (within 1/510).
- ``frames.json``: one record per frame with its stamp (int nanoseconds), ``K`` (3x3,
  pixels of the depth image) and ``T_world_cam`` (4x4 camera-to-world, metres, world =
  the stream's first camera with optical axes), and ``pose_ok``; floats are written as
  Python's ``repr`` (shortest round-tripping form), so K and poses read back bit-exact.

Runs written before this layout hold one ``predictions.npz`` (float32 depth and
confidence); :func:`load_run` reads both. Encoding and decoding are pure functions; only
:func:`write_frame_maps`, :func:`write_frames_json`, :func:`write_run` and
:func:`load_run` touch files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unihoi_ros.errors import UnihoiError
from unihoi_ros.io.predictions import Predictions
from unihoi_ros.optional import require

__all__ = [
    "CONFIDENCE_DIR",
    "DEPTH_DIR",
    "DEPTH_MAX_M",
    "DEPTH_UNIT_M",
    "FRAMES_FILE",
    "LAYOUT_FORMAT",
    "LAYOUT_VERSION",
    "LEGACY_FILE",
    "RunLayoutError",
    "confidence_from_u8",
    "confidence_to_u8",
    "depth_from_mm",
    "depth_to_mm",
    "frame_name",
    "load_run",
    "write_frame_maps",
    "write_frames_json",
    "write_run",
]

#: Metres per unit of the depth PNGs (millimetres).
DEPTH_UNIT_M = 0.001
#: The farthest depth a 16-bit millimetre PNG holds (65535 mm); farther saturates to it.
DEPTH_MAX_M = 65535 * DEPTH_UNIT_M
DEPTH_DIR = "depth"
CONFIDENCE_DIR = "confidence"
FRAMES_FILE = "frames.json"
#: The single file of runs written before this layout (float32 arrays).
LEGACY_FILE = "predictions.npz"
LAYOUT_FORMAT = "unihoi_ros run"
LAYOUT_VERSION = 1
#: zlib level of the PNGs, with the "up" filter on every row: on 640x480 predictions of
#: the shared 7-Scenes frames, depth 86 kB in 18 ms, confidence 46 kB in 7 ms per frame
#: (zlib level 6 with adaptive filters: 88 kB in 65 ms and 42 kB in 28 ms).
PNG_LEVEL = 4


class RunLayoutError(UnihoiError, ValueError):
    """A folder is not a readable run (no ``frames.json`` nor ``predictions.npz``, a
    missing or inconsistent frame file, another format version)."""


# ---------------------------------------------------------------------------- encoding
def depth_to_mm(depth: np.ndarray) -> np.ndarray:
    """Depth in metres -> the depth PNG's values.

    Args:
        depth: ``(H, W)`` float metres; NaN, 0 and negative are invalid, ``+inf`` is
            "too far".

    Returns:
        ``(H, W)`` uint16 millimetres: invalid -> 0; valid rounded to the nearest mm and
        saturated to [1, 65535] (so a valid pixel never reads back as invalid, and
        ``+inf`` or anything beyond :data:`DEPTH_MAX_M` reads back as 65.535 m).
    """
    d = np.asarray(depth, np.float64)
    valid = d > 0  # False for NaN
    mm = np.rint(np.minimum(np.where(valid, d, 0.0), DEPTH_MAX_M) / DEPTH_UNIT_M)
    return np.where(valid, np.clip(mm, 1, 65535), 0).astype(np.uint16)


def depth_from_mm(mm: np.ndarray) -> np.ndarray:
    """The depth PNG's values -> ``(H, W)`` float32 metres, NaN where 0 (invalid)."""
    mm = np.asarray(mm)
    out = mm.astype(np.float32) * np.float32(DEPTH_UNIT_M)
    out[mm == 0] = np.nan
    return out


def confidence_to_u8(confidence: np.ndarray) -> np.ndarray:
    """``(H, W)`` confidence in [0, 1] -> uint8 ``round(c * 255)`` (clipped; NaN -> 0)."""
    c = np.nan_to_num(np.asarray(confidence, np.float32), nan=0.0)
    return np.rint(np.clip(c, 0.0, 1.0) * 255.0).astype(np.uint8)


def confidence_from_u8(u8: np.ndarray) -> np.ndarray:
    """uint8 confidence PNG values -> ``(H, W)`` float32 ``value / 255``."""
    return np.asarray(u8).astype(np.float32) / np.float32(255.0)


def frame_name(index: int) -> str:
    """File name of frame ``index`` in ``depth/`` and ``confidence/``: ``000042.png``."""
    return f"{int(index):06d}.png"


# ---------------------------------------------------------------------------- writing
def _imwrite(path: Path, image: np.ndarray, params: list[int]) -> None:
    cv2 = require("cv2")
    ok, buf = cv2.imencode(".png", image, params)
    if not ok:
        raise OSError(f"OpenCV could not encode {path.name} ({image.shape} {image.dtype})")
    path.write_bytes(buf.tobytes())


def _png_params() -> list[int]:
    cv2 = require("cv2")
    params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # recent OpenCV; older ones pick filters
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    return params


def write_frame_maps(out_dir: str | Path, index: int, depth: np.ndarray,
                     confidence: np.ndarray) -> int:
    """Write frame ``index``'s ``depth/`` and ``confidence/`` PNGs (folders created).

    Args:
        depth: ``(H, W)`` float metres (see :func:`depth_to_mm`).
        confidence: ``(H, W)`` in [0, 1].

    Returns:
        The depth pixels saturated at :data:`DEPTH_MAX_M` (``+inf`` included), for a count.
    """
    out_dir = Path(out_dir)
    name = frame_name(index)
    (out_dir / DEPTH_DIR).mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIDENCE_DIR).mkdir(parents=True, exist_ok=True)
    params = _png_params()
    _imwrite(out_dir / DEPTH_DIR / name, depth_to_mm(depth), params)
    _imwrite(out_dir / CONFIDENCE_DIR / name, confidence_to_u8(confidence), params)
    return int(np.count_nonzero(np.asarray(depth) > DEPTH_MAX_M))


def _floats(a: np.ndarray) -> list:
    return np.asarray(a, np.float64).tolist()  # Python floats: json writes their repr


def write_frames_json(out_dir: str | Path, stamps_ns: Sequence[int], K: np.ndarray,
                      T_world_cam: np.ndarray, height: int, width: int,
                      pose_ok: Sequence[bool] | None = None) -> Path:
    """Write ``frames.json`` (atomically: a temporary file renamed).

    Args:
        stamps_ns: ``(N,)`` int nanoseconds. K: ``(N, 3, 3)`` pixels of the ``height`` x
            ``width`` depth maps. T_world_cam: ``(N, 4, 4)`` camera-to-world, metres.
        pose_ok: ``(N,)``; False where the pose solve was degenerate (last pose kept).

    One frame per line; float64 values round-trip exactly (``json`` writes ``repr``).
    """
    out_dir = Path(out_dir)
    n = len(stamps_ns)
    K = np.asarray(K, np.float64).reshape(n, 3, 3)
    T = np.asarray(T_world_cam, np.float64).reshape(n, 4, 4)
    ok = [True] * n if pose_ok is None else [bool(v) for v in pose_ok]
    head = {
        "format": LAYOUT_FORMAT, "version": LAYOUT_VERSION, "height": int(height),
        "width": int(width),
        "depth": {"files": f"{DEPTH_DIR}/NNNNNN.png", "dtype": "uint16",
                  "unit_m": DEPTH_UNIT_M, "invalid": 0, "max_m": DEPTH_MAX_M},
        "confidence": {"files": f"{CONFIDENCE_DIR}/NNNNNN.png", "dtype": "uint8",
                       "scale": 255},
        "poses": "T_world_cam: camera-to-world, world = first camera (optical axes), metres",
    }
    lines = [json.dumps({"index": i, "stamp_ns": int(stamps_ns[i]), "K": _floats(K[i]),
                         "T_world_cam": _floats(T[i]), "pose_ok": ok[i]})
             for i in range(n)]
    text = json.dumps(head, indent=1)[:-2] + ',\n "frames": [\n' + ",\n".join(lines) + "\n ]\n}\n"
    path = out_dir / FRAMES_FILE
    tmp = out_dir / f".{FRAMES_FILE}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_run(out_dir: str | Path, pred: Predictions) -> None:
    """Write ``pred`` in the run layout (module doc) into ``out_dir`` (created)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(len(pred.stamps_ns)):
        write_frame_maps(out_dir, i, pred.depth[i], pred.confidence[i])
    h, w = pred.depth.shape[1:]
    write_frames_json(out_dir, pred.stamps_ns, pred.K, pred.T_world_cam, h, w, pred.pose_ok)


# ---------------------------------------------------------------------------- reading
def _select(n: int, frames: slice | Sequence[int] | None) -> list[int]:
    if frames is None:
        return list(range(n))
    if isinstance(frames, slice):
        return list(range(n))[frames]
    picked = [int(i) for i in frames]
    bad = [i for i in picked if not 0 <= i < n]
    if bad:
        raise RunLayoutError(f"frames {bad} out of range: the run has {n} frames")
    return picked


def _read_png(path: Path, dtype, shape: tuple[int, int]) -> np.ndarray:
    cv2 = require("cv2")
    if not path.is_file():
        raise RunLayoutError(f"{path} is missing")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype != dtype or img.shape != shape:
        got = "unreadable" if img is None else f"{img.shape} {img.dtype}"
        raise RunLayoutError(f"{path}: expected a {shape[1]}x{shape[0]} {np.dtype(dtype)} PNG, "
                             f"got {got}")
    return img


def _load_layout(run_dir: Path, frames) -> Predictions:
    path = run_dir / FRAMES_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunLayoutError(f"{path}: unreadable ({exc})") from exc
    if meta.get("format") != LAYOUT_FORMAT or meta.get("version") != LAYOUT_VERSION:
        raise RunLayoutError(f"{path}: format {meta.get('format')!r} version "
                             f"{meta.get('version')!r}; this unihoi_ros reads "
                             f"{LAYOUT_FORMAT!r} version {LAYOUT_VERSION}")
    records = meta["frames"]
    if [r["index"] for r in records] != list(range(len(records))):
        raise RunLayoutError(f"{path}: frame indices are not 0..{len(records) - 1}")
    shape = (int(meta["height"]), int(meta["width"]))
    pick = _select(len(records), frames)
    depth = np.empty((len(pick), *shape), np.float32)
    conf = np.empty((len(pick), *shape), np.float32)
    for j, i in enumerate(pick):
        name = frame_name(i)
        depth[j] = depth_from_mm(_read_png(run_dir / DEPTH_DIR / name, np.uint16, shape))
        conf[j] = confidence_from_u8(_read_png(run_dir / CONFIDENCE_DIR / name, np.uint8, shape))
    rec = [records[i] for i in pick]
    return Predictions(
        stamps_ns=np.array([r["stamp_ns"] for r in rec], np.int64).reshape(-1),
        depth=depth,
        K=np.array([r["K"] for r in rec], np.float64).reshape(-1, 3, 3),
        T_world_cam=np.array([r["T_world_cam"] for r in rec], np.float64).reshape(-1, 4, 4),
        confidence=conf,
        pose_ok=np.array([bool(r.get("pose_ok", True)) for r in rec], bool),
    )


def load_run(run: str | Path, frames: slice | Sequence[int] | None = None) -> Predictions:
    """Every frame's stamp, depth, K, pose and confidence of a processed run.

    Args:
        run: the output folder of ``unihoi process`` / ``unihoi demo`` (or its
            ``frames.json`` / legacy ``predictions.npz`` itself), in either layout (module
            doc).
        frames: only these frames (a slice or indices in stream order); None: all.

    Returns:
        :class:`~unihoi_ros.io.predictions.Predictions`: ``stamps_ns (N,)`` int64,
        ``depth (N, H, W)`` float32 metres (NaN invalid), ``K (N, 3, 3)`` float64 pixels,
        ``T_world_cam (N, 4, 4)`` float64 camera-to-world, ``confidence (N, H, W)`` float32
        in [0, 1], ``pose_ok (N,)`` bool (None for legacy runs).

    Raises:
        RunLayoutError: not a run, or a missing / inconsistent file.
    """
    path = Path(run)
    if path.is_file():
        if path.name == FRAMES_FILE:
            return _load_layout(path.parent, frames)
        if path.suffix == ".npz":
            return _load_legacy(path, frames)
        raise RunLayoutError(f"{path} is not a run's {FRAMES_FILE} or {LEGACY_FILE}")
    if (path / FRAMES_FILE).is_file():
        return _load_layout(path, frames)
    if (path / LEGACY_FILE).is_file():
        return _load_legacy(path / LEGACY_FILE, frames)
    what = "does not exist" if not path.exists() else f"holds no {FRAMES_FILE} or {LEGACY_FILE}"
    raise RunLayoutError(f"{path} {what}: not the output of `unihoi process`")


def _load_legacy(path: Path, frames) -> Predictions:
    try:
        pred = Predictions.load(path)
    except (OSError, KeyError, ValueError) as exc:
        raise RunLayoutError(f"{path}: unreadable ({exc})") from exc
    if frames is None:
        return pred
    pick = _select(len(pred.stamps_ns), frames)
    return Predictions(pred.stamps_ns[pick], pred.depth[pick], pred.K[pick],
                       pred.T_world_cam[pick], pred.confidence[pick])
