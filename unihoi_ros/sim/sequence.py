"""``make_sequence``: a deterministic synthetic egocentric clip with exact ground truth.

The same ``seed`` (and the same other arguments) gives the same clip bit for bit: every
random draw comes from one ``numpy.random.default_rng(seed)`` (and generators seeded from
it), never from global state. The geometry and motion do not depend on the resolution,
except through the aspect ratio used by the coverage check below.

The world (intrinsics, room, motion) is redrawn until the dynamic bodies (hands, forearms
and object) cover ``dynamic_fraction`` of the image in every frame and nothing comes
closer than ``MIN_DISTANCE`` to the camera, judged on a 64-pixel-wide preview with a small
margin; after ``max_attempts`` the best attempt is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import intrinsics, pixel_grid, rays
from .flow import backward_flow
from .render import cast, prim_poses, render, visible
from .trajectory import body_poses, camera_trajectory, plan_motion
from .world import World, build_world

#: Nothing may come closer to the camera centre than this (m, Euclidean): a forearm in a
#: wide-angle image corner may be close, but a hand is not a head camera's lens cap.
MIN_DISTANCE = 0.12


@dataclass(frozen=True)
class Tracks:
    """Long-term point tracks on surfaces seen during the clip.

    Each track is a surface point fixed on one body, chosen at a pixel centre of its query
    frame (where it is visible); ~30 % are on dynamic bodies when they are in view.

    Attributes:
        uv: ``(N, P, 2)`` float32 pixel positions (u = column, v = row; pixel centres at
            integers) of each point in every frame, visible or not (NaN when behind the
            camera).
        visible: ``(N, P)`` bool, the point is in the image and not occluded.
        depth: ``(N, P)`` float32 z-depth (m) of the point in each camera (<= 0 behind).
        body: ``(P,)`` int16 body id (index into ``Sequence.T_world_body``; 0 = static).
        points_body: ``(P, 3)`` float64 the point in its body's frame (m); world
            coordinates for static points.
        query_frame: ``(P,)`` int64 frame where the point was sampled.
    """

    uv: np.ndarray
    visible: np.ndarray
    depth: np.ndarray
    body: np.ndarray
    points_body: np.ndarray
    query_frame: np.ndarray


@dataclass(frozen=True)
class Sequence:
    """A rendered clip of N frames of H x W pixels, with exact ground truth.

    Conventions: camera axes are OpenCV / REP-103 optical (x right, y down, z forward);
    world axes REP-103 (x forward, y left, z up; floor at z = 0); pixel (u, v) is column
    u, row v with pixel centres at integer coordinates. Poses ``T_a_b`` map frame-b
    coordinates to frame a (metres).

    Attributes:
        rgb: ``(N, H, W, 3)`` uint8 RGB.
        depth: ``(N, H, W)`` float32 z-depth along the optical axis (m); finite and > 0
            everywhere (the room is closed).
        K: ``(3, 3)`` float64 intrinsics (pixels), fx = fy, same for the whole clip.
        T_world_cam: ``(N, 4, 4)`` float64 camera-to-world poses.
        flow_bwd: ``(N-1, H, W, 2)`` float32; entry t-1 holds, for each pixel of frame t
            (t = 1..N-1), the offset (dx, dy) in pixels to the position of the same
            surface point in frame t-1 (defined even where that point is hidden there).
        flow_bwd_occluded: ``(N-1, H, W)`` bool; the point of ``flow_bwd`` is hidden or
            out of view in frame t-1.
        dynamic: ``(N, H, W)`` bool, pixel on a hand, a forearm or the manipulated object
            (a body that can move; the object counts also while it rests).
        instance: ``(N, H, W)`` int16 body id per pixel (0 = static world).
        T_world_body: ``(N, B, 4, 4)`` float64 body-to-world poses; body 0 (static world)
            is the identity.
        body_names: ``(B,)`` names of the bodies: ``"static"``, per hand ``"hand_<side>"``
            and ``"forearm_<side>"`` (side ``right`` or ``left``), then ``"object"``.
        stamps_ns: ``(N,)`` int64 timestamps (ns), ``start_ns + round(i * 1e9 / fps)``.
        tracks: long-term point tracks (see :class:`Tracks`).
        fps: frame rate (Hz).
        seed: the seed the clip was made from.
        world: the scene description, to re-cast rays (see :func:`raycast`).
    """

    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray
    flow_bwd: np.ndarray
    flow_bwd_occluded: np.ndarray
    dynamic: np.ndarray
    instance: np.ndarray
    T_world_body: np.ndarray
    body_names: tuple[str, ...]
    stamps_ns: np.ndarray
    tracks: Tracks
    fps: float
    seed: int
    world: World

    @property
    def num_frames(self) -> int:
        """Number of frames N."""
        return int(self.rgb.shape[0])

    @property
    def height(self) -> int:
        """Image height H (pixels)."""
        return int(self.rgb.shape[1])

    @property
    def width(self) -> int:
        """Image width W (pixels)."""
        return int(self.rgb.shape[2])

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view (degrees), ``2 atan(W / (2 fx))``."""
        return float(np.degrees(2.0 * np.arctan(0.5 * self.width / self.K[0, 0])))


def raycast(seq: Sequence, frame: int, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cast rays of camera ``frame`` through sub-pixel positions ``uv`` ``(M, 2)``.

    Returns the z-depth ``(M,)`` float64 (m) of the first surface and its body id ``(M,)``
    int16. Useful to check depth at non-integer pixels exactly; ``uv`` may also lie
    outside the image (the world is closed: every ray in front of the camera hits).
    """
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    poses = prim_poses(seq.world, seq.T_world_body[frame])
    hits = cast(seq.world, poses, seq.K, seq.T_world_cam[frame], uv)
    body_of = np.array([p.body for p in seq.world.prims], dtype=np.int16)
    return hits.z, body_of[hits.prim]


@dataclass(frozen=True)
class _Draw:
    """One attempt at a clip: everything but the pixels."""

    world: World
    K: np.ndarray
    T_world_cam: np.ndarray
    T_world_body: np.ndarray
    coverage: np.ndarray
    nearest: np.ndarray


def _draw(
    rng: np.random.Generator,
    num_frames: int,
    height: int,
    width: int,
    fps: float,
    num_hands: int | None,
    hfov_deg: tuple[float, float],
    motion_speed: float,
    texture_scale: float,
    max_rot_speed_deg: float,
) -> _Draw:
    hfov = np.radians(rng.uniform(*hfov_deg))
    pp = np.clip(rng.normal(0.0, 0.01, size=2), -0.025, 0.025)
    hands = int(rng.integers(1, 3)) if num_hands is None else num_hands
    world = build_world(rng, hands, hfov, texture_scale)
    plan = plan_motion(rng, world.layout, (num_frames - 1) / fps, motion_speed)
    times = np.arange(num_frames) / fps
    t_wb = body_poses(plan, times)
    t_wc = camera_trajectory(rng, plan, t_wb, fps, np.radians(max_rot_speed_deg), motion_speed)
    # Coverage on a small preview with the clip's aspect ratio.
    pw = 64
    ph = max(8, round(pw * height / width))
    kp = intrinsics(pw, ph, hfov, pp)
    ray_len = np.linalg.norm(rays(kp, pixel_grid(ph, pw)), axis=1).reshape(ph, pw)
    cov = np.empty(num_frames)
    near = np.empty(num_frames)
    for i in range(num_frames):
        fr = render(world, t_wb[i], kp, t_wc[i], ph, pw, with_rgb=False)
        cov[i], near[i] = np.mean(fr.body > 0), np.min(fr.depth * ray_len)
    return _Draw(world, intrinsics(width, height, hfov, pp), t_wc, t_wb, cov, near)


def _track_queries(
    rng: np.random.Generator, num_tracks: int, num_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Query frame ``(P,)`` and whether to prefer a dynamic pixel ``(P,)`` for each track."""
    frames = np.sort(rng.integers(0, num_frames, size=num_tracks))
    prefer_dynamic = rng.random(num_tracks) < 0.3
    return frames, prefer_dynamic


def make_sequence(
    seed: int,
    num_frames: int,
    height: int,
    width: int,
    *,
    fps: float = 30.0,
    num_hands: int | None = None,
    hfov_deg: tuple[float, float] = (60.0, 100.0),
    motion_speed: float = 1.0,
    texture_scale: float = 1.0,
    num_tracks: int = 256,
    max_rot_speed_deg: float = 30.0,
    dynamic_fraction: tuple[float, float] = (0.05, 0.40),
    start_ns: int = 0,
    max_attempts: int = 40,
) -> Sequence:
    """Render a synthetic head-mounted hand-object clip with exact ground truth.

    Args:
        seed: seed of ``numpy.random.default_rng``; the clip is a pure function of the
            arguments.
        num_frames: N >= 1 frames.
        height, width: image size H x W (pixels).
        fps: frame rate (Hz), sets the timestamps and the motion per frame.
        num_hands: 1 or 2; None draws it from the seed.
        hfov_deg: range of the horizontal field of view (degrees) drawn per clip.
        motion_speed: scales the hand / object / head-drift speeds (1 = natural).
        texture_scale: > 1 makes every texture finer (spatial frequencies times it).
        num_tracks: number P of long-term point tracks.
        max_rot_speed_deg: bound on the camera's angular speed (deg/s).
        dynamic_fraction: (min, max) fraction of the image covered by hands and object
            in every frame.
        start_ns: timestamp of frame 0 (ns).
        max_attempts: world redraws allowed to meet ``dynamic_fraction``.

    Returns:
        the :class:`Sequence`.
    """
    if num_frames < 1 or height < 2 or width < 2:
        raise ValueError("need num_frames >= 1 and an image of at least 2 x 2 pixels")
    if num_hands not in (None, 1, 2):
        raise ValueError("num_hands must be 1, 2 or None")
    if not 0.0 < hfov_deg[0] <= hfov_deg[1] < 170.0:
        raise ValueError("hfov_deg must be an increasing range inside (0, 170) degrees")
    if fps <= 0 or motion_speed <= 0 or texture_scale <= 0 or max_rot_speed_deg <= 0:
        raise ValueError("fps, motion_speed, texture_scale and max_rot_speed_deg must be > 0")
    rng = np.random.default_rng(seed)
    lo, hi = dynamic_fraction
    margin = 0.01  # the preview is coarse: keep away from the limits
    best: _Draw | None = None
    best_err = np.inf
    for _ in range(max_attempts):
        d = _draw(
            rng,
            num_frames,
            height,
            width,
            fps,
            num_hands,
            hfov_deg,
            motion_speed,
            texture_scale,
            max_rot_speed_deg,
        )
        err = float(
            np.sum(
                np.maximum(lo + margin - d.coverage, 0.0)
                + np.maximum(d.coverage - (hi - margin), 0.0)
                + np.maximum(MIN_DISTANCE - d.nearest, 0.0)
            )
        )
        if err < best_err:
            best, best_err = d, err
        if err == 0.0:
            break
    assert best is not None
    world, k, t_wc, t_wb = best.world, best.K, best.T_world_cam, best.T_world_body
    track_rng = np.random.default_rng(rng.integers(0, 2**63))

    n, h, w = num_frames, height, width
    rgb = np.empty((n, h, w, 3), dtype=np.uint8)
    depth = np.empty((n, h, w), dtype=np.float32)
    instance = np.empty((n, h, w), dtype=np.int16)
    flow = np.empty((max(n - 1, 0), h, w, 2), dtype=np.float32)
    occluded = np.empty((max(n - 1, 0), h, w), dtype=bool)
    q_frames, q_dynamic = _track_queries(track_rng, num_tracks, n)
    t_body = np.zeros(num_tracks, dtype=np.int16)
    t_points = np.zeros((num_tracks, 3))
    grid_rays = rays(k, pixel_grid(h, w))
    for i in range(n):
        fr = render(world, t_wb[i], k, t_wc[i], h, w)
        rgb[i], depth[i], instance[i] = fr.rgb, fr.depth, fr.body
        if i > 0:
            f, moved, _ = backward_flow(
                fr.depth, fr.body, k, t_wc[i], t_wc[i - 1], t_wb[i], t_wb[i - 1]
            )
            flow[i - 1] = f
            _, _, vis = visible(
                world, t_wb[i - 1], k, t_wc[i - 1], h, w, moved, fr.body.reshape(-1)
            )
            occluded[i - 1] = ~vis.reshape(h, w)
        # Sample this frame's track points at pixel centres (exact float64 depth).
        sel = np.flatnonzero(q_frames == i)
        if sel.size:
            body_flat = fr.body.reshape(-1)
            dyn_pix = np.flatnonzero(body_flat > 0)
            all_pix = np.arange(h * w)
            for j in sel:
                pool = dyn_pix if (q_dynamic[j] and dyn_pix.size) else all_pix
                pix = int(pool[track_rng.integers(pool.size)])
                b = int(body_flat[pix])
                x_world = t_wc[i, :3, :3] @ (grid_rays[pix] * fr.depth.flat[pix]) + t_wc[i, :3, 3]
                inv_r = t_wb[i, b, :3, :3].T
                t_points[j] = inv_r @ (x_world - t_wb[i, b, :3, 3])
                t_body[j] = b
    tracks = _tracks(world, k, t_wc, t_wb, h, w, t_points, t_body, q_frames)
    stamps = start_ns + np.round(np.arange(n) * 1e9 / fps).astype(np.int64)
    return Sequence(
        rgb=rgb,
        depth=depth,
        K=k,
        T_world_cam=t_wc,
        flow_bwd=flow,
        flow_bwd_occluded=occluded,
        dynamic=instance > 0,
        instance=instance,
        T_world_body=t_wb,
        body_names=world.body_names,
        stamps_ns=stamps,
        tracks=tracks,
        fps=float(fps),
        seed=int(seed),
        world=world,
    )


def _tracks(
    world: World,
    k: np.ndarray,
    t_wc: np.ndarray,
    t_wb: np.ndarray,
    h: int,
    w: int,
    points_body: np.ndarray,
    body: np.ndarray,
    query_frame: np.ndarray,
) -> Tracks:
    """Project the body-fixed track points into every frame and test their visibility."""
    n, p = t_wc.shape[0], points_body.shape[0]
    uv = np.empty((n, p, 2), dtype=np.float32)
    vis = np.zeros((n, p), dtype=bool)
    z = np.empty((n, p), dtype=np.float32)
    b = body.astype(np.int64)
    for i in range(n):
        pts = np.einsum("pij,pj->pi", t_wb[i, b, :3, :3], points_body) + t_wb[i, b, :3, 3]
        uv_i, z_i, vis_i = visible(world, t_wb[i], k, t_wc[i], h, w, pts, b)
        uv[i], z[i], vis[i] = uv_i, z_i, vis_i
    return Tracks(
        uv=uv,
        visible=vis,
        depth=z,
        body=body,
        points_body=points_body,
        query_frame=query_frame.astype(np.int64),
    )
