"""Ground truth for evaluation: TUM RGB-D, 7-Scenes, and our exact ``.npz`` (synthetic).

Ground truth is always the **colour camera's** (the camera whose frames are processed):
its poses, its depth (metres along its optical axis) and its K. TUM RGB-D gives that
directly (depth registered to colour by the OpenNI driver; K: the Freiburg camera's
published calibration, :func:`unihoi_ros.io.registration.tum_color_K`). 7-Scenes gives the
depth camera's depth and poses: they are registered into the colour camera
(:data:`unihoi_ros.io.registration.SEVEN_SCENES`, estimated from the data: that module
says how).

Also writes a synthetic :class:`unihoi_ros.sim.Sequence` as a TUM RGB-D dataset (so every
tool that reads TUM can use it) and as an exact ``.npz`` (no depth quantisation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from unihoi_ros.io.registration import SEVEN_SCENES, RGBDRig, tum_color_K
from unihoi_ros.io.sources import (
    SourceError,
    ns_to_seconds_text,
    read_tum_list,
    seconds_text_to_ns,
    seven_scenes_files,
)

TUM_DEPTH_SCALE = 5000.0  # TUM RGB-D: 16-bit PNG, 5000 units per metre


@dataclass
class GroundTruth:
    """Reference poses and depth of a recording.

    Attributes:
        stamps_ns: ``(N,)`` int64 stamps of the frames.
        T_world_cam: ``(N, 4, 4)`` float64 camera-to-world, or None.
        depth: ``(N, H, W)`` float32 metres (0 / NaN invalid), or None.
        K: ``(3, 3)`` pixels of ``depth``, or None.
        source: where it came from (for reports).
    """

    stamps_ns: np.ndarray
    T_world_cam: np.ndarray | None = None
    depth: np.ndarray | None = None
    K: np.ndarray | None = None
    source: str = ""


# ---------------------------------------------------------------------------- TUM poses
def read_tum_trajectory(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(stamps_ns (N,), T (N, 4, 4))`` from ``timestamp tx ty tz qx qy qz qw`` lines."""
    rows, stamps = [], []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            parts = line.split()
            if len(parts) != 8:
                raise SourceError(f"{path}: expected 8 numbers per line, got {line!r}")
            stamps.append(seconds_text_to_ns(parts[0]))
            rows.append([0.0] + [float(v) for v in parts[1:]])
    if not rows:
        raise SourceError(f"{path}: empty trajectory")
    a = np.asarray(rows)
    T = np.tile(np.eye(4), (len(a), 1, 1))
    T[:, :3, :3] = Rotation.from_quat(a[:, 4:8]).as_matrix()
    T[:, :3, 3] = a[:, 1:4]
    return np.asarray(stamps, np.int64), T


def write_tum_trajectory(path: Path, stamps_ns: np.ndarray, T: np.ndarray) -> None:
    """Write ``timestamp tx ty tz qx qy qz qw`` lines (seconds, metres)."""
    q = Rotation.from_matrix(np.asarray(T)[:, :3, :3]).as_quat()
    with open(path, "w") as f:
        f.write("# timestamp tx ty tz qx qy qz qw\n")
        for s, Ti, qi in zip(stamps_ns, T, q):
            t = Ti[:3, 3]
            f.write(f"{ns_to_seconds_text(s)} {t[0]:.9f} {t[1]:.9f} {t[2]:.9f} "
                    f"{qi[0]:.9f} {qi[1]:.9f} {qi[2]:.9f} {qi[3]:.9f}\n")


def _nearest(src: np.ndarray, query: np.ndarray, tol_ns: int) -> np.ndarray:
    """Index into sorted ``src`` of the nearest stamp to each query, -1 beyond ``tol_ns``."""
    idx = np.clip(np.searchsorted(src, query), 1, len(src) - 1)
    left, right = src[idx - 1], src[idx]
    idx = np.where(np.abs(query - left) <= np.abs(right - query), idx - 1, idx)
    return np.where(np.abs(src[idx] - query) <= tol_ns, idx, -1)


# ---------------------------------------------------------------------------- loaders
def load_tum(path: Path, tol_s: float = 0.02) -> GroundTruth:
    """TUM RGB-D folder: poses from ``groundtruth.txt`` and depth from ``depth.txt`` (16-bit
    PNG, 5000 per metre, 0 invalid; registered to colour), both associated to the
    ``rgb.txt`` stamps (nearest within ``tol_s``). K: ``intrinsics.txt`` when the folder has
    one (our synthetic export), else the Freiburg camera named by the folder
    (``rgbd_dataset_freiburgN_...``), else None."""
    rgb = read_tum_list(path / "rgb.txt")
    if not rgb:
        raise SourceError(f"{path / 'rgb.txt'} lists no frames")
    stamps = np.array([t for t, _ in rgb], np.int64)
    tol = int(tol_s * 1e9)
    T = None
    if (path / "groundtruth.txt").is_file():
        gs, gT = read_tum_trajectory(path / "groundtruth.txt")
        idx = _nearest(gs, stamps, tol)
        if (idx < 0).any():
            raise SourceError(f"{path}: {int((idx < 0).sum())} rgb frames have no ground-truth "
                              "pose within tolerance")
        T = gT[idx]
    depth = None
    if (path / "depth.txt").is_file():
        drows = read_tum_list(path / "depth.txt")
        ds = np.array([t for t, _ in drows], np.int64)
        idx = _nearest(ds, stamps, tol)
        if (idx < 0).any():
            raise SourceError(f"{path}: {int((idx < 0).sum())} rgb frames have no depth "
                              "frame within tolerance")
        depth = np.stack([_read_depth_png(path / drows[i][1], TUM_DEPTH_SCALE) for i in idx])
    K = np.loadtxt(path / "intrinsics.txt").reshape(3, 3) if (
        path / "intrinsics.txt").is_file() else tum_color_K(path)
    return GroundTruth(stamps, T, depth, K, f"TUM {path}")


def seven_scenes_rig(path: Path) -> RGBDRig:
    """The rig of a 7-Scenes sequence folder: :data:`SEVEN_SCENES`, with the depth
    camera's K from ``camera-intrinsics.txt`` where the folder has one (the official
    ``seq-XX`` folders do not: the published 585 / 320 / 240 then)."""
    kfile = path / "camera-intrinsics.txt"
    if not kfile.is_file():
        return SEVEN_SCENES
    K_depth = np.loadtxt(kfile).reshape(3, 3)
    return dataclasses.replace(SEVEN_SCENES, K_depth=K_depth)


def repeat_run_starts(paths: Sequence[Path]) -> np.ndarray:
    """``(N,)`` int: for each file, the index of the first file of its run of
    byte-identical consecutive files (its own index when it differs from the file before).

    A recorder that writes the last frame again when no new one arrived leaves such runs
    (7-Scenes: 52 colour and 52 depth repeats in the shared frames 300-699). Sizes are
    compared first, bytes only where sizes agree, so a whole recording costs little.
    """
    first = np.arange(len(paths))
    sizes = [Path(p).stat().st_size for p in paths]
    for i in range(1, len(paths)):
        if sizes[i] == sizes[i - 1] and Path(paths[i]).read_bytes() == Path(
                paths[i - 1]).read_bytes():
            first[i] = first[i - 1]
    return first


def match_repeated_streams(color_first: np.ndarray, depth_first: np.ndarray) -> np.ndarray:
    """Which depth frame (and pose) shows the moment each colour frame shows.

    Two streams recorded side by side, each repeating its last frame when no new one came
    (:func:`repeat_run_starts` gives ``*_first``). Between two frames where both streams
    are new ("in step"; the first frame counts as one), colour frame ``n`` shows the
    ``k``-th new colour picture since the last in-step frame ``s`` (``k = 0``: the picture
    of ``s``); it is matched with the first depth frame after ``s`` that shows the ``k``-th
    new depth picture, before the next in-step frame. So a picture repeated in both streams
    goes to its first showing, and where one stream repeats a frame before the other does,
    the frame between goes one index back (colour behind) or on (colour ahead). A colour
    frame with no such depth frame (a colour stream slower than the depth's, a depth frame
    the colour has no partner for) keeps ``s`` (``k = 0``) or its own index.

    Args:
        color_first, depth_first: ``(N,)`` run starts of the colour and depth files.

    Returns:
        ``(N,)`` int indices into the depth frames (and their poses).
    """
    cf, df = np.asarray(color_first), np.asarray(depth_first)
    if cf.shape != df.shape or cf.ndim != 1:
        raise ValueError(f"run starts of one recording expected, got shapes {cf.shape} and "
                         f"{df.shape}")
    n_all = np.arange(cf.size)
    c_new, d_new = cf == n_all, df == n_all
    in_step = c_new & d_new
    in_step[:1] = True
    out = n_all.copy()
    s = 0
    for n in range(cf.size):
        if in_step[n]:
            s = n
            continue
        k = int(c_new[s + 1:n + 1].sum())
        if k == 0:
            out[n] = s
            continue
        stop = n + 1
        while stop < cf.size and not in_step[stop]:
            stop += 1
        hit = np.flatnonzero(np.cumsum(d_new[s + 1:stop]) == k)
        out[n] = s + 1 + hit[0] if hit.size else n
    return out


def load_seven_scenes(path: Path, fps: float = 30.0, *, frames: slice | None = None,
                      rig: RGBDRig | None = None, progress: bool = False,
                      match_repeats: bool = True) -> GroundTruth:
    """7-Scenes sequence folder (``frame-N.color.{png,jpg}``, ``frame-N.depth.png``,
    ``frame-N.pose.txt``; the official ``seq-XX`` layout and copies with a
    ``camera-intrinsics.txt``) as the **colour camera's** ground truth.

    The depth (uint16 millimetres, 0 and 65535 invalid; the depth camera's) is registered
    into the colour camera and the depth camera's camera-to-world poses become the colour
    camera's (``rig``, default :func:`seven_scenes_rig`); K is the colour camera's.

    The recorder wrote a colour or depth frame again when no new one had come (files
    byte-identical to the previous one; 52 of each among the shared frames 300-699, 37 at
    the same index, the other 15 one frame apart). With ``match_repeats`` each colour frame
    gets the depth and pose of the depth frame that shows the same moment
    (:func:`match_repeated_streams`): a repeated colour picture the ground truth of its
    first showing, and the frames between two repeats one frame apart the neighbour's. On
    the shared frames this moves 63 of 400; where it changes the depth (15 frames) the
    depth's contours fall closer to the colour edges in 14 (``edge_alignment_cost``, mean
    3.51 -> 2.87 px), and colour frames repeated before their depth frame is are explained
    better by the previous pose (10 of 14; ``bench/real_motion_check.py``). Without it,
    a colour frame is paired with the depth and pose of its own number.

    Args:
        path: the sequence folder.
        fps: frame rate giving the stamps ``N / fps`` (as the frame reader's).
        frames: which of the sorted frames to load (all by default).
        rig: the RGB-D rig; default :func:`seven_scenes_rig`.
        progress: show a progress bar while registering.
        match_repeats: pair colour and depth frames by the moment they show (above).
    """
    files = seven_scenes_files(path)
    if not files:
        seqs = sorted(p.name for p in path.glob("seq-*") if p.is_dir()) if path.is_dir() else []
        hint = f" (a scene folder: give one of its sequences, {', '.join(seqs)})" if seqs else ""
        raise SourceError(f"no frame-N.color.* files in {path}{hint}")
    numbers = [n for n, _ in files]
    src = np.arange(len(files))
    if match_repeats:
        # the whole recording: which frames repeat depends on the frames before the slice
        src = match_repeated_streams(
            repeat_run_starts([p for _, p in files]),
            repeat_run_starts([path / f"frame-{n:06d}.depth.png" for n in numbers]))
    pick = np.arange(len(files))[frames] if frames is not None else np.arange(len(files))
    files = [files[i] for i in pick]
    src_numbers = [numbers[i] for i in src[pick]]
    rig = rig or seven_scenes_rig(path)
    stamps = np.array([round(n * 1e9 / fps) for n, _ in files], np.int64)
    T_depth = np.stack([_read_pose(path / f"frame-{n:06d}.pose.txt") for n in src_numbers])
    from tqdm import tqdm

    registered: dict[int, np.ndarray] = {}
    for n in tqdm(src_numbers, desc="register depth", unit="frame", disable=not progress):
        if n not in registered:
            registered[n] = rig.register(
                _read_seven_scenes_depth(path / f"frame-{n:06d}.depth.png"))
    depth = np.stack([registered[n] for n in src_numbers])
    moved = sum(a != n for a, (n, _) in zip(src_numbers, files))
    note = f"; {moved} frames given the depth and pose of the moment they show" if moved else ""
    return GroundTruth(stamps, rig.color_poses(T_depth), depth, np.array(rig.K_color),
                       f"7-Scenes {path} (depth registered into the colour camera: "
                       f"{rig.name}{note})")


def load_npz(path: Path) -> GroundTruth:
    """Our exact format: ``stamps_ns``, ``T_world_cam``, ``depth``, ``K`` arrays."""
    with np.load(path) as z:
        return GroundTruth(z["stamps_ns"].astype(np.int64), z["T_world_cam"],
                           z["depth"] if "depth" in z else None,
                           z["K"] if "K" in z else None, f"npz {path}")


def load_ground_truth(path: str | Path) -> GroundTruth:
    """Ground truth from a TUM folder, a 7-Scenes folder or an ``.npz``."""
    path = Path(path)
    if path.suffix == ".npz" and path.is_file():
        return load_npz(path)
    if (path / "rgb.txt").is_file():
        return load_tum(path)
    if path.is_dir() and (seven_scenes_files(path) or any(path.glob("seq-*/frame-*.pose.txt"))):
        return load_seven_scenes(path)  # a scene folder gets an error naming its sequences
    raise SourceError(f"{path}: not a TUM RGB-D folder, a 7-Scenes folder or a .npz")


def _read_pose(path: Path) -> np.ndarray:
    T = np.loadtxt(path)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise SourceError(f"{path}: expected a finite 4x4 pose")
    return T


def _read_seven_scenes_depth(path: Path) -> np.ndarray:
    """7-Scenes depth PNG in metres, 0 where invalid (0 or 65535 in the file)."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16:
        raise SourceError(f"{path}: expected a 16-bit depth PNG")
    return np.where(raw == 65535, 0, raw).astype(np.float32) / np.float32(1000.0)


def _read_depth_png(path: Path, units_per_metre: float) -> np.ndarray:
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16:
        raise SourceError(f"{path}: expected a 16-bit depth PNG")
    return raw.astype(np.float32) / np.float32(units_per_metre)


# ---------------------------------------------------------------------------- writers
def write_sequence_npz(seq, path: Path) -> None:
    """Exact ground truth of a synthetic sequence (what :func:`load_npz` reads)."""
    np.savez_compressed(path, stamps_ns=seq.stamps_ns, T_world_cam=seq.T_world_cam,
                        depth=seq.depth, K=seq.K, dynamic=seq.dynamic)


def write_sequence_tum(seq, path: Path) -> None:
    """A synthetic sequence as a TUM RGB-D folder (rgb/, depth/ at 1/5000 m,
    rgb.txt, depth.txt, groundtruth.txt, and intrinsics.txt with K)."""
    path = Path(path)
    (path / "rgb").mkdir(parents=True, exist_ok=True)
    (path / "depth").mkdir(exist_ok=True)
    rgb_lines, depth_lines = [], []
    for s, rgb, d in zip(seq.stamps_ns, seq.rgb, seq.depth):
        t = ns_to_seconds_text(s)
        cv2.imwrite(str(path / "rgb" / f"{t}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        d16 = np.clip(np.round(d * TUM_DEPTH_SCALE), 0, 65535).astype(np.uint16)
        cv2.imwrite(str(path / "depth" / f"{t}.png"), d16)
        rgb_lines.append(f"{t} rgb/{t}.png")
        depth_lines.append(f"{t} depth/{t}.png")
    header = "# synthetic egocentric clip written by unihoi_ros\n# timestamp filename\n"
    (path / "rgb.txt").write_text(header + "\n".join(rgb_lines) + "\n")
    (path / "depth.txt").write_text(header + "\n".join(depth_lines) + "\n")
    write_tum_trajectory(path / "groundtruth.txt", seq.stamps_ns, seq.T_world_cam)
    np.savetxt(path / "intrinsics.txt", seq.K)
