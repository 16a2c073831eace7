"""The tracker's core: a set of tracks as arrays, seeded on one frame and advanced from one
frame to the next (in either direction of time).

Rules (documented once here; :class:`TrackerConfig` holds the numbers):

- **2D**: every locked track moves by pyramidal Lucas-Kanade with a forward-backward check
  (:func:`unihoi_ros.tracks.klt.lk_step`); a failed check unlocks it (occluded, out of
  view, or lost).
- **Lifting**: a position is lifted to the world with the frame's depth (edge-aware
  sampling), K and ``T_world_cam``.
- **Anchored vs following**: a track follows its lifts (its position is its latest lift)
  when the pipeline's confidence at its seed pixel is below ``min_confidence`` (low on
  hands and moving objects, and on surfaces whose depth the network is unsure of), else
  it is *anchored*: a static point does not move, so its position is its anchor, which
  follows no 2D track and cannot drift. The anchor starts at the lift at the seed; with
  ``fuse_static`` it is the mean of every lift of the track that agrees with it (within
  the depth tolerance below, 2D track within ``reacquire_px`` of the anchor's projection,
  anchor not hidden), so the depth noise of one frame averages out. A following track's
  anchor stays its first lift: the reference its motion is measured against.
- **Dynamic** (the flag) is set only on evidence that a static point cannot produce
  (:mod:`unihoi_ros.tracks.motion`): the track's observation (its 2D track and the depth
  there) departs from where its anchor would be seen, once the frame's apparent motion
  common to the anchored tracks (the pose's error: a 2D similarity; the depth's scale)
  is taken out, beyond the noise measured on the anchored tracks. The deviation has two
  parts, each over its tolerance: across the line of sight, the distance from every
  pixel the anchor could have with its depth anywhere within the depth tolerance (a
  segment of its epipolar line: a static point whose depth is wrong slides along it as
  the camera moves), tolerance ``static_tol_m + max(static_tol_rel, lateral_k * pixel
  noise / f) * z``; along it, the depth's, tolerance ``static_tol_m + max(static_tol_rel,
  min(noise_k * depth noise * (1 + confidence_gain * (1 - c)), max_noise_rel)) * z``
  (``c``: the lower confidence of the anchor's first lift and of the point now). A track
  whose two ratios' squares sum to more than 1 in ``motion_frames`` consecutive
  observations (a frame without one does not break the run) has moved: it is dynamic
  for good, and an anchored one starts following its lifts. A following track is not
  dynamic until then (a hand at rest is followed, not flagged). An anchored track that
  looks moved but is not yet dynamic keeps its 2D track and reports its anchor, not
  seen; its lifts do not enter the mean.
- **Occlusion**: a static track is visible when its anchor projects into the view and the
  depth there is not nearer than the anchor's by more than ``occlusion_tol_rel``; a hidden
  or drifted 2D track is put back at the anchor's projection (re-acquisition after an
  occlusion). A following track is visible while its 2D track holds and its lift does
  not jump (``max_step_rel``); when lost it keeps its last position and stays unlocked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unihoi_ros.pipeline.results import FrameResult
from unihoi_ros.tracks.config import TrackerConfig
from unihoi_ros.tracks.dense import flow_step
from unihoi_ros.tracks.klt import grey, lk_step
from unihoi_ros.tracks.lifting import inside, lift, project, sample_depth, sample_nearest
from unihoi_ros.tracks.motion import (
    SceneMotion,
    blend,
    motion_residuals,
    motion_tolerances,
    moved,
    ray_segment,
    scene_motion,
    update_evidence,
)


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


class TrackArrays:
    """M tracks as parallel arrays (world frame of the stream, metres; pixels of the
    results' images).

    Attributes:
        uv: ``(M, 2)`` float64 current pixel (NaN when behind the camera).
        xyz: ``(M, 3)`` float64 current world position (NaN until a valid depth was seen).
        anchor: ``(M, 3)`` float64 the track's reference position: an anchored track's
            static position ``lift_sum / lift_count``; a following track's first lift.
        origin: ``(M, 3)`` float64 the camera centre (world, m) of the anchor's first lift:
            the anchor lies on the ray from it, whatever its depth error.
        anchor_conf: ``(M,)`` float64 the network's confidence at the anchor's first lift.
        lift_sum: ``(M, 3)`` float64 sum of the static lifts fused into the anchor (m):
            the lift at the seed (or the first valid one) and, with
            ``TrackerConfig.fuse_static``, each later lift that agreed with the anchor.
        lift_count: ``(M,)`` int32 number of lifts in ``lift_sum`` (0: never lifted).
        noise_rel: float, the stream's depth noise: the typical relative deviation of an
            anchored track's depth from its anchor's, once the frame's depth scale is
            taken out (:class:`~unihoi_ros.tracks.motion.SceneMotion`; NaN until measured).
        noise_lat: float, the stream's pixel noise over the focal length: the typical
            distance of an anchored track's 2D track from its anchor's projection, once
            the frame's apparent image motion is taken out (NaN until measured).
        follow: ``(M,)`` bool, positioned by its lifts (not by an anchor): seeded where
            the confidence is low, or seen to move.
        dynamic: ``(M,)`` bool, seen to move (implies ``follow``).
        locked: ``(M,)`` bool, the 2D track holds (LK continues from ``uv``).
        visible: ``(M,)`` bool, seen in the current frame.
        moved: ``(M,)`` int32 consecutive observations in which a track not yet dynamic
            looked moved (:func:`~unihoi_ros.tracks.motion.update_evidence`).
        lost: ``(M,)`` int32 frames since last seen.
        rgb: ``(M, 3)`` uint8 colour at the last sighting.
    """

    def __init__(self) -> None:
        self.uv = _empty((0, 2), np.float64)
        self.xyz = _empty((0, 3), np.float64)
        self.anchor = _empty((0, 3), np.float64)
        self.origin = _empty((0, 3), np.float64)
        self.anchor_conf = _empty((0,), np.float64)
        self.follow = _empty((0,), bool)
        self.dynamic = _empty((0,), bool)
        self.locked = _empty((0,), bool)
        self.visible = _empty((0,), bool)
        self.moved = _empty((0,), np.int32)
        self.lost = _empty((0,), np.int32)
        self.rgb = _empty((0, 3), np.uint8)
        self.lift_sum = _empty((0, 3), np.float64)
        self.lift_count = _empty((0,), np.int32)
        self.noise_rel = float("nan")
        self.noise_lat = float("nan")

    _FIELDS = ("uv", "xyz", "anchor", "origin", "anchor_conf", "follow", "dynamic", "locked",
               "visible", "moved", "lost", "rgb", "lift_sum", "lift_count")

    def __len__(self) -> int:
        return int(self.uv.shape[0])

    def keep(self, mask: np.ndarray) -> None:
        """Drop the tracks where ``mask`` ``(M,)`` is False."""
        for f in self._FIELDS:
            setattr(self, f, getattr(self, f)[mask])

    def seed(self, frame: Frame, uv: np.ndarray, config: TrackerConfig) -> np.ndarray:
        """Add tracks at pixels ``uv`` ``(S, 2)`` of ``frame``; returns their indices ``(S,)``.

        A seed where the confidence is below ``min_confidence`` follows its lifts (not
        dynamic until it is seen to move); a seed without valid depth gets NaN positions
        and is anchored until it is lifted; a seed outside the image is unlocked and
        invisible.
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
            "origin": np.broadcast_to(frame.T_world_cam[:3, 3], (s, 3)).copy(),
            "anchor_conf": conf,
            "follow": ok & (conf < config.min_confidence), "dynamic": np.zeros(s, bool),
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

    def tolerances(self, z: np.ndarray, confidence: np.ndarray, config: TrackerConfig
                   ) -> tuple[np.ndarray, np.ndarray]:
        """The motion tolerances now, metres ``(lateral (N,), depth (N,))``, of points at
        depths ``z`` ``(N,)`` (m) seen with confidence ``confidence`` ``(N,)``: the
        stream's measured noise through
        :func:`~unihoi_ros.tracks.motion.motion_tolerances`."""
        c = config
        return motion_tolerances(z, confidence, self.noise_lat, self.noise_rel,
                                 tol_m=c.static_tol_m, tol_rel=c.static_tol_rel,
                                 noise_k=c.noise_k, lat_k=c.lateral_k, max_rel=c.max_noise_rel,
                                 confidence_gain=c.confidence_gain)

    def _measure_scene(self, scene: SceneMotion, config: TrackerConfig) -> None:
        """Blend one frame's measured noise (``scene``) into the stream's ``noise_rel`` and
        ``noise_lat`` (weight ``1 / noise_frames``)."""
        if config.noise_k <= 0 or scene.count == 0:
            return
        self.noise_rel = blend(self.noise_rel, scene.noise_rel, config.noise_frames)
        self.noise_lat = blend(self.noise_lat, scene.noise_lat, config.noise_frames)

    def _fuse_static(self, st: np.ndarray, uv_a: np.ndarray, d_at: np.ndarray,
                     tol: np.ndarray, seen: np.ndarray, curr: Frame) -> None:
        """Fuse one more measurement into the anchors of static tracks ``st`` ``(S,)``.

        The measurement is the lift of the anchor's own projection ``uv_a`` ``(S, 2)``
        (pixels of ``curr``) at the depth there, ``d_at`` ``(S,)`` (m): it re-measures the
        anchor's range along the current line of sight, so a 2D track that slid a pixel
        or two along the surface does not pull the anchor sideways. It counts where
        ``seen`` ``(S,)`` (the anchor in view and not hidden, its 2D track within
        ``reacquire_px`` of ``uv_a``, its fresh lift not moved) and the measurement itself
        lies within ``tol`` ``(S,)`` (m, the depth tolerance) of the anchor (no depth edge
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
        # Depth: where a following track's pixel sits on an occlusion edge, the neighbour
        # whose depth continues the track's own (its last position seen from here).
        z_exp = np.full(m, np.nan)
        fol_known = np.flatnonzero(self.follow & np.all(np.isfinite(self.xyz), axis=1))
        if fol_known.size:
            z_exp[fol_known] = project(self.xyz[fol_known], curr.K, curr.T_world_cam)[1]
        z_lk = sample_depth_guided(curr.depth, uv_lk, z_exp, c.edge_tolerance,
                                   c.static_tol_m, c.max_step_rel)
        p_lk = lift(uv_lk, z_lk, curr.K, curr.T_world_cam)
        lifted = tracked & np.isfinite(z_lk)

        # Tracks never lifted (seeded without depth) take their first valid lift as anchor.
        fresh = lifted & ~np.all(np.isfinite(self.anchor), axis=1)
        self.anchor[fresh] = p_lk[fresh]
        self.origin[fresh] = curr.T_world_cam[:3, 3]
        self.anchor_conf[fresh] = sample_nearest(curr.confidence, uv_lk[fresh])
        self.xyz[fresh] = p_lk[fresh]
        self.lift_sum[fresh] = p_lk[fresh]
        self.lift_count[fresh] = 1

        visible = np.zeros(m, bool)
        new_uv = uv_lk.copy()
        locked = tracked.copy()

        # Motion evidence of every track not yet dynamic: its observation (2D track, depth
        # there) against its anchor's projection, after the scene's apparent motion.
        cand = np.flatnonzero(~self.dynamic & np.all(np.isfinite(self.anchor), axis=1))
        anchored = ~self.follow[cand]
        uv_a, z_a = project(self.anchor[cand], curr.K, curr.T_world_cam)
        in_view = inside(uv_a, h, w, c.border_px)
        d_at = sample_depth(curr.depth, uv_a, c.edge_tolerance)
        with np.errstate(invalid="ignore"):
            # Only an anchored track can be hidden: a following one is where its lift is.
            hidden = anchored & in_view & (d_at < z_a * (1.0 - c.occlusion_tol_rel))
        there = in_view & ~hidden & np.isfinite(d_at)
        focal = float(np.sqrt(curr.K[0, 0] * curr.K[1, 1]))
        # The depth is as uncertain as the less confident of the two measurements.
        conf = np.minimum(sample_nearest(curr.confidence, uv_lk[cand]), self.anchor_conf[cand])
        obs = anchored & lifted[cand] & there
        line_a, line_b = ray_segment(self.origin[cand[obs]], self.anchor[cand[obs]], curr.K,
                                     curr.T_world_cam, 0.5)
        # Rows that the lateral test (with the noise measured so far) calls static measure
        # the depth noise; then the tolerances with this frame's noise blended in.
        tol_lat = self.tolerances(z_a, conf, c)[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            tol_lat_px = tol_lat[obs] / z_a[obs] * focal
        scene = scene_motion(uv_a[obs], z_a[obs], uv_lk[cand[obs]], z_lk[cand[obs]], line_a,
                             line_b, focal, tol_lat_px)
        self._measure_scene(scene, c)
        tol_lat, tol_dep = self.tolerances(z_a, conf, c)
        with np.errstate(invalid="ignore", divide="ignore"):
            seg_a, seg_b = ray_segment(self.origin[cand], self.anchor[cand], curr.K,
                                       curr.T_world_cam, tol_dep / z_a)
        lat, dep = motion_residuals(uv_lk[cand], z_lk[cand], seg_a, seg_b, z_a, scene, focal)
        observed = lifted[cand] & ~hidden
        moved_now = observed & moved(lat, dep, tol_lat, tol_dep)
        self.moved[cand] = update_evidence(self.moved[cand], moved_now, observed)
        became = cand[self.moved[cand] >= c.motion_frames]
        self.dynamic[became] = True

        # Anchored tracks: the anchor decides visibility and position.
        now_dyn = np.zeros(0, np.int64)  # anchored tracks that became dynamic now
        sel = np.flatnonzero(anchored)
        st = cand[sel]
        if st.size:
            uv_s = uv_a[sel]
            drift = np.linalg.norm(uv_lk[st] - uv_s, axis=1)
            keep_lk = tracked[st] & (drift <= c.reacquire_px)
            mv = moved_now[sel]
            # Static and seen: the anchor's projection is the pixel, unless LK agrees.
            stay = ~mv
            new_uv[st[stay]] = np.where(keep_lk[stay, None], uv_lk[st[stay]], uv_s[stay])
            locked[st[stay]] = there[sel][stay]
            visible[st[stay]] = there[sel][stay]
            if c.fuse_static:
                self._fuse_static(st, uv_s, d_at[sel], tol_dep[sel],
                                  there[sel] & keep_lk & lifted[st] & ~mv & ~fresh[st], curr)
            # Moved but not yet sure: keep the 2D track, report the anchor, not seen.
            locked[st[mv]] = True
            now_dyn = st[self.dynamic[st]]
            self.follow[now_dyn] = True
            self.xyz[now_dyn] = p_lk[now_dyn]
            visible[now_dyn] = True
            locked[now_dyn] = True

        # Following tracks: the lift is the position while the 2D track holds.
        fo = np.flatnonzero(self.follow & lifted)
        fo = fo[~np.isin(fo, now_dyn)]
        if fo.size:
            prev_xyz = self.xyz[fo]
            step = np.linalg.norm(p_lk[fo] - prev_xyz, axis=1)
            limit = c.static_tol_m + c.max_step_rel * z_lk[fo]
            with np.errstate(invalid="ignore"):
                jump = np.isfinite(step) & (step > limit)
            good = fo[~jump]
            self.xyz[good] = p_lk[good]
            visible[good] = True
            locked[fo[jump]] = False
        locked[self.follow & ~lifted] = False
        # Following tracks whose 2D track failed keep their last pixel and position.
        keep_uv = ~np.all(np.isfinite(new_uv), axis=1)
        new_uv[keep_uv] = self.uv[keep_uv]

        self.uv = new_uv
        self.locked = locked
        self.visible = visible
        self.lost = np.where(visible, 0, self.lost + 1).astype(np.int32)
        seen = np.flatnonzero(visible)
        if seen.size:
            self.rgb[seen] = sample_nearest(curr.rgb, self.uv[seen]).astype(np.uint8)
