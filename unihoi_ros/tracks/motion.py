"""Motion evidence of the tracker: is a point moving against the scene, beyond what a
static point's measurement can do?

A static point seen again is predicted at its reference (its anchor, projected with the
frame's K and pose: pixel ``uv_pred``, depth ``z_pred``); it is observed where its 2D
track is (``uv_obs``) at the depth there (``z_obs``). A static point's observation
departs from the prediction in three ways that are not motion:

- **the scene's apparent motion** common to the static points of a frame: the pose's
  error shifts, turns and zooms the image (a 2D similarity of the predicted pixels), and
  the depth's scale changes from window to window (one depth ratio);
- **the depth's noise** along the line of sight: a network's depth of a point changes with
  where the point is seen (several per cent of the depth, with a heavy tail), more where
  the network is unsure (low confidence); the reference's own depth error also moves its
  projection along its epipolar line as the camera moves (:func:`ray_segment`);
- **the pixel noise** across it: the pose's remaining error and the 2D tracking error.

:func:`scene_motion` measures the first (robustly, from a frame's static observations)
and the typical size of the other two; :func:`motion_residuals` gives each point's
deviation against the scene, split into the part across the line of sight (lateral) and
the part along it (depth); :func:`motion_tolerances` turns the measured noise into
per-point tolerances that scale with the depth and with the confidence; :func:`moved`
tests a point; :func:`update_evidence` counts consecutive frames of evidence (the
hysteresis: a point is called moving only after several frames in a row, never on one
outlier). Pixels: column ``u``, row ``v``; depths in metres along the optical axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unihoi_ros.tracks.lifting import project

#: Observations a frame needs to measure the scene's apparent motion and the noise.
MIN_SCENE_SAMPLES = 10


@dataclass(frozen=True)
class SceneMotion:
    """The apparent motion of a frame's static points, and the size of their noise.

    Attributes:
        similarity: ``(2, 3)`` float64 2D similarity (rotation, uniform scale, shift) that
            maps predicted pixels onto observed ones: ``uv_obs ~= similarity[:, :2] @ uv +
            similarity[:, 2]``.
        log_scale: the frame's depth scale against the references, ``log(z_obs / z_pred)``
            (median over the static observations).
        noise_lat: typical lateral residual over the depth (the median distance of
            ``uv_obs`` from the similarity's image of the reference's epipolar line, over
            ``f``; dimensionless: metres across per metre of depth).
        noise_rel: typical depth residual over the depth (the median of ``|log(z_obs /
            z_pred) - log_scale|``; dimensionless).
        count: observations used.
    """

    similarity: np.ndarray
    log_scale: float
    noise_lat: float
    noise_rel: float
    count: int

    @classmethod
    def identity(cls) -> SceneMotion:
        """No apparent motion, noise not measured (NaN)."""
        return cls(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), 0.0, float("nan"),
                   float("nan"), 0)


def fit_similarity_2d(src: np.ndarray, dst: np.ndarray,
                      weights: np.ndarray | None = None) -> np.ndarray | None:
    """Weighted least-squares 2D similarity ``(2, 3)`` mapping pixels ``src`` ``(N, 2)``
    onto ``dst`` ``(N, 2)`` (rotation, uniform scale > 0, shift; no reflection), or None
    when the weighted points do not fix it (fewer than 2 distinct points).

    Closed form in complex numbers: ``dst ~= a src + b`` with ``a = sum w (s - s0)* (d -
    d0) / sum w |s - s0|^2``, ``b = d0 - a s0`` (``s0``, ``d0`` the weighted means).
    """
    s = src[:, 0] + 1j * src[:, 1]
    d = dst[:, 0] + 1j * dst[:, 1]
    w = np.ones(s.shape[0]) if weights is None else np.asarray(weights, np.float64)
    wsum = w.sum()
    if not wsum > 0:
        return None
    s0, d0 = np.sum(w * s) / wsum, np.sum(w * d) / wsum
    var = np.sum(w * np.abs(s - s0) ** 2)
    if not var > 1e-9 * wsum:
        return None
    a = np.sum(w * np.conj(s - s0) * (d - d0)) / var
    b = d0 - a * s0
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def apply_similarity_2d(similarity: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Pixels ``uv`` ``(N, 2)`` mapped by a ``(2, 3)`` similarity, ``(N, 2)``."""
    return uv @ similarity[:, :2].T + similarity[:, 2]


def robust_similarity_2d(src: np.ndarray, dst: np.ndarray, iterations: int = 3,
                         k_mad: float = 3.0) -> np.ndarray | None:
    """:func:`fit_similarity_2d` robust to a minority of pairs that disagree (moving points,
    2D tracks that slid), or None where no fit is possible.

    Starts from the half of the pairs nearest the median shift ``median(dst - src)`` (a
    start that a minority cannot pull), then refits ``iterations`` times without the
    pairs whose residual exceeds ``median + k_mad * 1.4826 * MAD`` of all residuals. A
    refit that fails keeps the previous fit.
    """
    A = fit_similarity_2d(src, dst)
    if A is None:
        return None
    start = np.linalg.norm(src + np.median(dst - src, axis=0) - dst, axis=1)
    half = fit_similarity_2d(src, dst, (start <= np.median(start)).astype(float))
    if half is not None:
        A = half
    for _ in range(iterations):
        res = np.linalg.norm(apply_similarity_2d(A, src) - dst, axis=1)
        med = np.median(res)
        mad = np.median(np.abs(res - med))
        refit = fit_similarity_2d(src, dst, (res <= med + k_mad * 1.4826 * mad).astype(float))
        if refit is None:
            break
        A = refit
    return A


def point_segment_distance(uv: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` distances (pixels) from points ``uv`` ``(N, 2)`` to the segments ``a``-``b``
    ``(N, 2)`` each (a segment of length 0 is its point)."""
    ab = b - a
    den = np.sum(ab * ab, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(den > 1e-12, np.sum((uv - a) * ab, axis=1) / den, 0.0)
    s = np.clip(np.nan_to_num(s, nan=0.0), 0.0, 1.0)
    return np.linalg.norm(uv - (a + s[:, None] * ab), axis=1)


def point_line_distance(uv: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` distances (pixels) from points ``uv`` ``(N, 2)`` to the lines through ``a``
    and ``b`` ``(N, 2)`` (where ``a`` and ``b`` coincide: the distance to ``a``)."""
    ab = b - a
    length = np.linalg.norm(ab, axis=1)
    cross = np.abs(ab[:, 0] * (uv[:, 1] - a[:, 1]) - ab[:, 1] * (uv[:, 0] - a[:, 0]))
    with np.errstate(invalid="ignore", divide="ignore"):
        line = cross / length
    return np.where(length > 1e-6, line, np.linalg.norm(uv - a, axis=1))


def ray_segment(origin: np.ndarray, anchor: np.ndarray, K: np.ndarray,
                T_world_cam: np.ndarray, rel: np.ndarray | float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Where a static point may appear when only its depth is uncertain: the image, in
    camera ``(K, T_world_cam)``, of the points ``origin + r (anchor - origin)`` with ``r``
    in ``[max(1 - rel, 0.1), 1 + rel]`` (``origin`` ``(N, 3)``: the camera centre the point was
    measured from; ``anchor`` ``(N, 3)``: the point; world metres; ``rel`` ``(N,)`` or
    scalar: the relative depth uncertainty). Returns the end pixels ``(N, 2)``, ``(N, 2)``
    (a segment of the epipolar line through the anchor's projection; a point when the
    camera has not moved since).

    Ends behind or at the current camera are pulled in to a tenth of the anchor's depth;
    NaN where the anchor itself is not in front.
    """
    rel = np.broadcast_to(np.asarray(rel, np.float64), anchor.shape[:1])
    R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
    z_o = ((origin - t) @ R)[:, 2]
    z_a = ((anchor - t) @ R)[:, 2]
    lo, hi = np.maximum(1.0 - rel, 0.1), 1.0 + rel  # not behind the camera that saw it
    # The depth in the current camera of origin + r (anchor - origin) is z_o + r * slope.
    slope = z_a - z_o
    with np.errstate(invalid="ignore", divide="ignore"):
        r_min = 1.0 - 0.9 * z_a / slope  # where that depth is a tenth of z_a
    lo = np.where((slope > 0) & (z_o + lo * slope < 0.1 * z_a), r_min, lo)
    hi = np.where((slope < 0) & (z_o + hi * slope < 0.1 * z_a), r_min, hi)
    d = anchor - origin
    uv_lo, _ = project(origin + lo[:, None] * d, K, T_world_cam)
    uv_hi, _ = project(origin + hi[:, None] * d, K, T_world_cam)
    bad = ~(z_a > 1e-3)
    uv_lo[bad] = np.nan
    uv_hi[bad] = np.nan
    return uv_lo, uv_hi


def scene_motion(uv_pred: np.ndarray, z_pred: np.ndarray, uv_obs: np.ndarray,
                 z_obs: np.ndarray, line_a: np.ndarray, line_b: np.ndarray, focal_px: float,
                 lat_tol_px: np.ndarray | None = None,
                 min_samples: int = MIN_SCENE_SAMPLES) -> SceneMotion:
    """The apparent motion of a frame's static points and their noise (:class:`SceneMotion`).

    Args:
        uv_pred: ``(N, 2)`` predicted pixels (the references projected with the frame's
            pose and K); z_pred: ``(N,)`` their depths (m).
        uv_obs: ``(N, 2)`` observed pixels (the 2D tracks); z_obs: ``(N,)`` the depth
            there (m).
        line_a, line_b: ``(N, 2)`` two pixels of each reference's epipolar line
            (:func:`ray_segment`): the lateral noise is measured across it, so that the
            reference's own depth error (which moves its projection along the line) does
            not count as pixel noise.
        focal_px: the frame's focal length (pixels), to express the lateral noise over
            the depth.
        min_samples: rows with finite values (and positive depths) needed; with fewer the
            result is :meth:`SceneMotion.identity`.
        lat_tol_px: ``(N,)`` the lateral tolerance (pixels) of each row, or None: rows
            farther than it from their epipolar line move across the line of sight and do
            not measure the depth's noise (unless fewer than ``min_samples`` remain).

    The rows are meant to be static points, but some may move: the similarity is fitted
    robustly (:func:`robust_similarity_2d`) and the depth scale and both noises are
    medians, so that points that move, as long as they are fewer than the static ones, do
    not count as noise.
    """
    with np.errstate(invalid="ignore"):
        ok = (np.all(np.isfinite(uv_pred), axis=1) & np.all(np.isfinite(uv_obs), axis=1)
              & np.all(np.isfinite(line_a), axis=1) & np.all(np.isfinite(line_b), axis=1)
              & np.isfinite(z_pred) & np.isfinite(z_obs) & (z_pred > 0) & (z_obs > 0))
    n = int(ok.sum())
    if n < min_samples:
        return SceneMotion.identity()
    A = robust_similarity_2d(uv_pred[ok], uv_obs[ok])
    if A is None:
        return SceneMotion.identity()
    lat = point_line_distance(uv_obs[ok], apply_similarity_2d(A, line_a[ok]),
                              apply_similarity_2d(A, line_b[ok]))
    # The depth's noise from the rows that the lateral test calls static: a point moving
    # across the line of sight says nothing about the depth's error.
    still = np.ones(n, bool) if lat_tol_px is None else lat <= lat_tol_px[ok]
    if still.sum() < min_samples:
        still[:] = True
    log_ratio = np.log(z_obs[ok][still] / z_pred[ok][still])
    log_scale = float(np.median(log_ratio))
    return SceneMotion(A, log_scale, float(np.median(lat)) / float(focal_px),
                       float(np.median(np.abs(log_ratio - log_scale))), n)


def motion_residuals(uv_obs: np.ndarray, z_obs: np.ndarray, seg_a: np.ndarray,
                     seg_b: np.ndarray, z_pred: np.ndarray, scene: SceneMotion,
                     focal_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Each point's deviation against the scene, metres: ``(lateral (N,), depth (N,))``.

    ``lateral = dist(uv_obs, similarity(segment)) * z_pred / f``: how far the observed
    pixel lies from every pixel the static point could have with its depth within the
    tolerance (``seg_a``-``seg_b`` ``(N, 2)``, :func:`ray_segment`), at the point's depth;
    ``depth = |z_obs - z_pred * exp(log_scale)|`` (along the line of sight). ``uv_obs``
    ``(N, 2)``, ``z_obs`` and ``z_pred`` ``(N,)`` as in :func:`scene_motion`; NaN where a
    value is missing.
    """
    A = scene.similarity
    lateral = point_segment_distance(uv_obs, apply_similarity_2d(A, seg_a),
                                     apply_similarity_2d(A, seg_b)) * z_pred / float(focal_px)
    depth = np.abs(z_obs - z_pred * np.exp(scene.log_scale))
    return lateral, depth


def confidence_factor(confidence: np.ndarray, gain: float) -> np.ndarray:
    """How much the depth noise grows where the network is unsure: ``1 + gain * (1 -
    c)`` for confidences ``c`` ``(N,)`` clipped to [0, 1] (NaN counts as 0)."""
    c = np.clip(np.nan_to_num(np.asarray(confidence, np.float64), nan=0.0), 0.0, 1.0)
    return 1.0 + gain * (1.0 - c)


def motion_tolerances(z: np.ndarray, confidence: np.ndarray, noise_lat: float,
                      noise_rel: float, *, tol_m: float, tol_rel: float, noise_k: float,
                      lat_k: float, max_rel: float, confidence_gain: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Per-point tolerances, metres, ``(lateral (N,), depth (N,))``, for points at depths
    ``z`` ``(N,)`` (m) with network confidence ``confidence`` ``(N,)``.

    ``lateral = tol_m + max(tol_rel, min(lat_k * noise_lat, max_rel)) * z``;
    ``depth = tol_m + max(tol_rel, min(noise_k * noise_rel * confidence_factor,
    max_rel)) * z``. The floors (``tol_m``, ``tol_rel``) are what exact data needs (pixel
    sampling, bilinear depth on slanted surfaces); the measured noise raises them, and the
    depth's noise more where the confidence is low. NaN noise (not measured yet) or a
    factor ``k = 0`` leaves the floor. ``max_rel`` bounds the raise: when most points of
    a frame move, their spread is not noise.
    """
    z = np.asarray(z, np.float64)

    def rel(noise, k, factor=1.0):
        if k <= 0 or not np.isfinite(noise):
            return np.full_like(z, tol_rel)
        return np.maximum(tol_rel, np.minimum(k * noise * factor, max_rel))

    lateral = tol_m + rel(noise_lat, lat_k) * z
    depth = tol_m + rel(noise_rel, noise_k, confidence_factor(confidence, confidence_gain)) * z
    return lateral, depth


def moved(lateral: np.ndarray, depth: np.ndarray, tol_lateral: np.ndarray,
          tol_depth: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: the deviation lies outside the tolerance ellipse,
    ``(lateral / tol_lateral)^2 + (depth / tol_depth)^2 > 1`` (NaN: False). With equal
    tolerances this is the distance test ``|deviation| > tolerance``."""
    with np.errstate(invalid="ignore"):
        return (lateral / tol_lateral) ** 2 + (depth / tol_depth) ** 2 > 1.0


def update_evidence(count: np.ndarray, moved_now: np.ndarray,
                    observed: np.ndarray) -> np.ndarray:
    """Consecutive frames of motion evidence ``(N,)`` int32 after one frame: ``count + 1``
    where ``moved_now``, 0 where ``observed`` and not moved, unchanged where not observed
    (a frame without a measurement is evidence neither way)."""
    count = np.asarray(count, np.int32)
    out = np.where(observed & ~moved_now, 0, count)
    return np.where(moved_now, count + 1, out).astype(np.int32)


def blend(previous: float, frame: float, frames: int) -> float:
    """Running average of a stream's noise: ``frame`` blended into ``previous`` with
    weight ``1 / frames`` (the first finite value is taken as is; NaN ``frame``: no
    change)."""
    if not np.isfinite(frame):
        return previous
    if not np.isfinite(previous):
        return float(frame)
    a = 1.0 / frames
    return (1.0 - a) * previous + a * float(frame)
