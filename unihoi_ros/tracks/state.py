"""The tracker's core: a set of tracks as arrays, seeded on one frame and advanced from one
frame to the next (in either direction of time).

Rules (documented once here; :class:`TrackerConfig` holds the numbers):

- **2D**: every locked track moves by pyramidal Lucas-Kanade with a forward-backward check
  (:func:`unihoi_ros.tracks.klt.lk_step`); a failed check unlocks it (occluded, out of
  view, or lost).
- **Lifting**: a position is lifted to the world with the frame's depth (edge-aware
  sampling), K and ``T_world_cam``.
- **Static vs dynamic**: a track starts dynamic when the pipeline's confidence at its
  seed pixel is below ``min_confidence`` (the confidence is low on hands and moving
  objects), else static. A static track's position is its *anchor*: a static point does
  not move, so the anchor follows no 2D track and cannot drift. The anchor starts at the
  lift at the seed; with ``fuse_static`` it is the mean of every lift of the track that
  agrees with it (within the motion tolerance below, 2D track within ``reacquire_px`` of
  the anchor's projection, anchor not hidden), so the depth noise of one frame averages
  out instead of staying in the point for life. The track turns dynamic, for good, when
  its fresh lift is farther than the motion tolerance ``static_tol_m + max(static_tol_rel,
  noise_k * noise) * z`` from the anchor in ``motion_frames`` consecutive frames while the
  anchor is not hidden behind something nearer (3D motion consistency in the world
  frame); ``noise`` is the stream's measured depth noise (the median relative deviation
  of static lifts from their anchors, :meth:`TrackArrays._update_noise`), so motion must
  stand out of the depth's own wander. The lifts that disagree never enter the mean.
- **Occlusion**: a static track is visible when its anchor projects into the view and the
  depth there is not nearer than the anchor's by more than ``occlusion_tol_rel``; a hidden
  or drifted 2D track is put back at the anchor's projection (re-acquisition after an
  occlusion). A dynamic track is visible while its 2D track holds and its lift does not
  jump (``max_step_rel``); when lost it keeps its last position and stays unlocked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unihoi_ros.pipeline.results import FrameResult
from unihoi_ros.tracks.config import TrackerConfig
from unihoi_ros.tracks.dense import flow_step
from unihoi_ros.tracks.klt import grey, lk_step
from unihoi_ros.tracks.lifting import inside, lift, project, sample_depth, sample_nearest


@dataclass
class Frame:
    """What the tracker needs of one :class:`FrameResult`, prepared once."""

    grey: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray
    confidence: np.ndarray
    rgb: np.ndarray

    @classmethod
    def of(cls, result: FrameResult, config: TrackerConfig) -> Frame:
        return cls(
            grey=grey(result.rgb),
            depth=result.depth,
            K=np.asarray(result.K, np.float64),
            T_world_cam=np.asarray(result.T_world_cam, np.float64),
            confidence=result.confidence,
            rgb=result.rgb,
        )

    @property
    def height(self) -> int:
        return int(self.depth.shape[0])

    @property
    def width(self) -> int:
        return int(self.depth.shape[1])


def _empty(shape: tuple[int, ...], dtype, fill=0) -> np.ndarray:
    return np.full(shape, fill, dtype=dtype)


def step_2d(prev: Frame, curr: Frame, uv: np.ndarray, config: TrackerConfig,
            flows: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """2D positions in ``curr`` of pixels ``uv`` ``(M, 2)`` of ``prev``, and which passed the
    forward-backward check ``(M,)``, by ``config.method``: ``"lk"`` (Lucas-Kanade),
    ``"dense"`` (the dense ``flows``), or ``"lk+dense"`` (Lucas-Kanade, dense flow where it
    fails)."""
    c = config
    if c.method == "dense":
        if flows is None:
            raise ValueError("method 'dense' needs the frame pair's dense flows")
        return flow_step(flows[0], flows[1], uv, c.fb_max_px)
    out, ok = lk_step(prev.grey, curr.grey, uv, c.lk_window, c.lk_levels, c.lk_iterations,
                      c.fb_max_px)
    if c.method == "lk+dense" and not ok.all():
        if flows is None:
            raise ValueError("method 'lk+dense' needs the frame pair's dense flows")
        bad = ~ok
        out[bad], ok[bad] = flow_step(flows[0], flows[1], uv[bad], c.fb_max_px)
    return out, ok


def sample_depth_guided(depth: np.ndarray, uv: np.ndarray, z_expected: np.ndarray,
                        edge_tolerance: float, tol_m: float, tol_rel: float) -> np.ndarray:
    """:func:`sample_depth` at ``uv`` ``(M, 2)``; where it disagrees with a finite
    ``z_expected`` ``(M,)`` by more than ``tol_m + tol_rel * z_expected``, the depth of the
    3x3 neighbour pixel closest to ``z_expected`` if that one agrees (a position one pixel
    off across an occlusion edge keeps its surface). Metres, NaN where invalid."""
    z = sample_depth(depth, uv, edge_tolerance)
    with np.errstate(invalid="ignore"):
        off = np.isfinite(z_expected) & np.all(np.isfinite(uv), axis=1) & ~(
            np.abs(z - z_expected) <= tol_m + tol_rel * z_expected)
    idx = np.flatnonzero(off)
    if idx.size == 0:
        return z
    h, w = depth.shape
    r = np.rint(uv[idx]).astype(np.int64)
    du, dv = np.meshgrid(np.arange(-1, 2), np.arange(-1, 2))
    cols = np.clip(r[:, :1] + du.reshape(1, -1), 0, w - 1)
    rows = np.clip(r[:, 1:] + dv.reshape(1, -1), 0, h - 1)
    cand = depth[rows, cols].astype(np.float64)  # (K, 9)
    with np.errstate(invalid="ignore"):
        diff = np.where(np.isfinite(cand) & (cand > 0), np.abs(cand - z_expected[idx, None]),
                        np.inf)
    best = np.argmin(diff, axis=1)
    bd = diff[np.arange(idx.size), best]
    agree = bd <= tol_m + tol_rel * z_expected[idx]
    z[idx[agree]] = cand[np.arange(idx.size), best][agree]
    return z


#: Static tracks a frame needs to measure the stream's depth noise.
_MIN_NOISE_SAMPLES = 10


class TrackArrays:
    """M tracks as parallel arrays (world frame of the stream, metres; pixels of the
    results' images).

    Attributes:
        uv: ``(M, 2)`` float64 current pixel (NaN when behind the camera).
        xyz: ``(M, 3)`` float64 current world position (NaN until a valid depth was seen).
        anchor: ``(M, 3)`` float64 the static position: ``lift_sum / lift_count``.
        lift_sum: ``(M, 3)`` float64 sum of the static lifts fused into the anchor (m):
            the lift at the seed (or the first valid one) and, with
            ``TrackerConfig.fuse_static``, each later lift that agreed with the anchor.
        lift_count: ``(M,)`` int32 number of lifts in ``lift_sum`` (0: never lifted).
        noise_rel: float, the stream's depth noise: the typical distance of a static
            track's fresh lift from its anchor over its depth (NaN until measured).
        dynamic: ``(M,)`` bool.
        locked: ``(M,)`` bool, the 2D track holds (LK continues from ``uv``).
        visible: ``(M,)`` bool, seen in the current frame.
        moved: ``(M,)`` int32 consecutive frames a static track looked moved.
        lost: ``(M,)`` int32 frames since last seen.
        rgb: ``(M, 3)`` uint8 colour at the last sighting.
    """

    def __init__(self) -> None:
        self.uv = _empty((0, 2), np.float64)
        self.xyz = _empty((0, 3), np.float64)
        self.anchor = _empty((0, 3), np.float64)
        self.dynamic = _empty((0,), bool)
        self.locked = _empty((0,), bool)
        self.visible = _empty((0,), bool)
        self.moved = _empty((0,), np.int32)
        self.lost = _empty((0,), np.int32)
        self.rgb = _empty((0, 3), np.uint8)
        self.lift_sum = _empty((0, 3), np.float64)
        self.lift_count = _empty((0,), np.int32)
        self.noise_rel = float("nan")

    _FIELDS = ("uv", "xyz", "anchor", "dynamic", "locked", "visible", "moved", "lost", "rgb",
               "lift_sum", "lift_count")

    def __len__(self) -> int:
        return int(self.uv.shape[0])

    def keep(self, mask: np.ndarray) -> None:
        """Drop the tracks where ``mask`` ``(M,)`` is False."""
        for f in self._FIELDS:
            setattr(self, f, getattr(self, f)[mask])

    def seed(self, frame: Frame, uv: np.ndarray, config: TrackerConfig) -> np.ndarray:
        """Add tracks at pixels ``uv`` ``(S, 2)`` of ``frame``; returns their indices ``(S,)``.

        A seed without valid depth gets NaN positions and is dynamic-agnostic (static)
        until it is lifted; a seed outside the image is unlocked and invisible.
        """
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        s = uv.shape[0]
        z = sample_depth(frame.depth, uv, config.edge_tolerance)
        p = lift(uv, z, frame.K, frame.T_world_cam)
        conf = sample_nearest(frame.confidence, uv).astype(np.float64)
        ok = inside(uv, frame.height, frame.width) & np.isfinite(z)
        has_lift = np.all(np.isfinite(p), axis=1)
        new = {
            "uv": uv, "xyz": p, "anchor": p.copy(),
            "dynamic": ok & (conf < config.min_confidence),
            "locked": ok, "visible": ok,
            "moved": np.zeros(s, np.int32), "lost": np.where(ok, 0, 1).astype(np.int32),
            "rgb": sample_nearest(frame.rgb, uv).astype(np.uint8),
            "lift_sum": np.where(has_lift[:, None], p, 0.0),
            "lift_count": has_lift.astype(np.int32),
        }
        start = len(self)
        for f in self._FIELDS:
            setattr(self, f, np.concatenate([getattr(self, f), new[f]]))
        return np.arange(start, start + s)

    def motion_tol_rel(self, config: TrackerConfig) -> float:
        """The relative part of the motion tolerance now (times the depth):
        ``config.static_tol_rel``, raised to ``noise_k`` times the stream's depth noise
        (:meth:`_update_noise`), but never above ``config.max_step_rel``: when most tracks
        still called static are in fact moving, their spread is not depth noise, and an
        unbounded tolerance would keep them static for good."""
        if config.noise_k > 0 and np.isfinite(self.noise_rel):
            raised = min(config.noise_k * self.noise_rel, config.max_step_rel)
            return max(config.static_tol_rel, raised)
        return config.static_tol_rel

    def _update_noise(self, dev_rel: np.ndarray, seen: np.ndarray,
                      config: TrackerConfig) -> None:
        """Update the stream's depth noise ``noise_rel`` (dimensionless) with one frame.

        ``dev_rel`` ``(S,)``: each static track's distance from its fresh lift to its anchor
        over its depth; ``seen`` ``(S,)``: where that is a measurement (lifted, anchor in
        view and not hidden, 2D track at the anchor's projection). The frame's noise is the
        median over them (robust to the few moving points among the static ones; needs
        ``_MIN_NOISE_SAMPLES``), blended in with weight ``1 / noise_frames``.
        """
        with np.errstate(invalid="ignore"):
            ok = seen & np.isfinite(dev_rel)
        if config.noise_k <= 0 or ok.sum() < _MIN_NOISE_SAMPLES:
            return
        frame = float(np.median(dev_rel[ok]))
        if not np.isfinite(self.noise_rel):
            self.noise_rel = frame
        else:
            a = 1.0 / config.noise_frames
            self.noise_rel = (1.0 - a) * self.noise_rel + a * frame

    def _fuse_static(self, st: np.ndarray, uv_a: np.ndarray, d_at: np.ndarray,
                     tol: np.ndarray, seen: np.ndarray, curr: Frame) -> None:
        """Fuse one more measurement into the anchors of static tracks ``st`` ``(S,)``.

        The measurement is the lift of the anchor's own projection ``uv_a`` ``(S, 2)``
        (pixels of ``curr``) at the depth there, ``d_at`` ``(S,)`` (m): it re-measures the
        anchor's range along the current line of sight, so a 2D track that slid a pixel
        or two along the surface does not pull the anchor sideways. It counts where
        ``seen`` ``(S,)`` (the anchor in view and not hidden, its 2D track within
        ``reacquire_px`` of ``uv_a``, its fresh lift within the static tolerance) and the
        measurement itself lies within ``tol`` ``(S,)`` (m) of the anchor (no depth edge
        between the tracked pixel and ``uv_a``). The anchor becomes the mean of its lifts.
        """
        p = lift(uv_a, d_at, curr.K, curr.T_world_cam)
        with np.errstate(invalid="ignore"):
            ok = seen & (np.linalg.norm(p - self.anchor[st], axis=1) <= tol)
        idx = st[ok]
        if idx.size == 0:
            return
        self.lift_sum[idx] += p[ok]
        self.lift_count[idx] += 1
        self.anchor[idx] = self.lift_sum[idx] / self.lift_count[idx, None]
        self.xyz[idx] = self.anchor[idx]

    def advance(self, prev: Frame, curr: Frame, config: TrackerConfig,
                flows: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Move every track from ``prev`` to ``curr`` (consecutive frames, either order).

        ``flows``: dense flows ``(prev -> curr, curr -> prev)`` ``(H, W, 2)``, needed when
        ``config.method`` uses them (see :func:`step_2d`).
        """
        m = len(self)
        if m == 0:
            return
        c = config
        h, w = curr.height, curr.width
        idx = np.flatnonzero(self.locked)
        uv_lk = np.full((m, 2), np.nan)
        tracked = np.zeros(m, bool)
        if idx.size:
            uv_new, ok = step_2d(prev, curr, self.uv[idx], c, flows)
            ok &= inside(uv_new, h, w, c.border_px)
            uv_lk[idx[ok]] = uv_new[ok]
            tracked[idx[ok]] = True
        # Depth: where a dynamic track's pixel sits on an occlusion edge, the neighbour
        # whose depth continues the track's own (its last position seen from here).
        z_exp = np.full(m, np.nan)
        dyn_known = np.flatnonzero(self.dynamic & np.all(np.isfinite(self.xyz), axis=1))
        if dyn_known.size:
            z_exp[dyn_known] = project(self.xyz[dyn_known], curr.K, curr.T_world_cam)[1]
        z_lk = sample_depth_guided(curr.depth, uv_lk, z_exp, c.edge_tolerance,
                                   c.static_tol_m, c.max_step_rel)
        p_lk = lift(uv_lk, z_lk, curr.K, curr.T_world_cam)
        lifted = tracked & np.isfinite(z_lk)

        # Tracks never lifted (seeded without depth) take their first valid lift as anchor.
        fresh = lifted & ~np.all(np.isfinite(self.anchor), axis=1)
        self.anchor[fresh] = p_lk[fresh]
        self.xyz[fresh] = p_lk[fresh]
        self.lift_sum[fresh] = p_lk[fresh]
        self.lift_count[fresh] = 1

        visible = np.zeros(m, bool)
        new_uv = uv_lk.copy()
        locked = tracked.copy()

        # Static tracks: the anchor decides visibility; the lift tests for motion.
        st = np.flatnonzero(~self.dynamic & np.all(np.isfinite(self.anchor), axis=1))
        if st.size:
            uv_a, z_a = project(self.anchor[st], curr.K, curr.T_world_cam)
            in_view = inside(uv_a, h, w, c.border_px)
            d_at = sample_depth(curr.depth, uv_a, c.edge_tolerance)
            drift = np.linalg.norm(uv_lk[st] - uv_a, axis=1)
            keep_lk = tracked[st] & (drift <= c.reacquire_px)
            with np.errstate(invalid="ignore"):
                hidden = in_view & (d_at < z_a * (1.0 - c.occlusion_tol_rel))
                there = in_view & ~hidden & np.isfinite(d_at)
                dist = np.linalg.norm(p_lk[st] - self.anchor[st], axis=1)
                dev_rel = dist / z_a
            self._update_noise(dev_rel, lifted[st] & there & keep_lk, c)
            tol = c.static_tol_m + self.motion_tol_rel(c) * z_a  # (S,) metres
            with np.errstate(invalid="ignore"):
                moved = lifted[st] & ~hidden & (dist > tol)
            self.moved[st] = np.where(moved, self.moved[st] + 1, 0)
            # Static and seen: the anchor's projection is the pixel, unless LK agrees.
            stay = ~moved
            new_uv[st[stay]] = np.where(keep_lk[stay, None], uv_lk[st[stay]], uv_a[stay])
            locked[st[stay]] = there[stay]
            visible[st[stay]] = there[stay]
            if c.fuse_static:
                self._fuse_static(st, uv_a, d_at, tol, there & keep_lk & lifted[st] & ~moved
                                  & ~fresh[st], curr)
            became = st[self.moved[st] >= c.motion_frames]
            self.dynamic[became] = True
            self.xyz[became] = p_lk[became]
            visible[became] = True
            # Moved but not yet sure: keep the 2D track, report the anchor, not seen.
            wait = st[moved & (self.moved[st] < c.motion_frames)]
            locked[wait] = True

        # Dynamic tracks: the lift is the position while the 2D track holds.
        dy = np.flatnonzero(self.dynamic & lifted)
        if dy.size:
            prev_xyz = self.xyz[dy]
            step = np.linalg.norm(p_lk[dy] - prev_xyz, axis=1)
            limit = c.static_tol_m + c.max_step_rel * z_lk[dy]
            with np.errstate(invalid="ignore"):
                jump = np.isfinite(step) & (step > limit)
            good = dy[~jump]
            self.xyz[good] = p_lk[good]
            visible[good] = True
            locked[dy[jump]] = False
        dyn_unlocked = self.dynamic & ~lifted
        locked[dyn_unlocked] = False
        # Dynamic tracks whose 2D track failed keep their last pixel and position.
        keep_uv = ~np.all(np.isfinite(new_uv), axis=1)
        new_uv[keep_uv] = self.uv[keep_uv]

        self.uv = new_uv
        self.locked = locked
        self.visible = visible
        self.lost = np.where(visible, 0, self.lost + 1).astype(np.int32)
        seen = np.flatnonzero(visible)
        if seen.size:
            self.rgb[seen] = sample_nearest(curr.rgb, self.uv[seen]).astype(np.uint8)
