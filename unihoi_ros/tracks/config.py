"""Settings of the point tracker (streaming :class:`PointTracker` and :func:`track_queries`)."""

from __future__ import annotations

from dataclasses import dataclass

#: 2D tracking methods (see :attr:`TrackerConfig.method`).
METHODS = ("lk", "dense", "lk+dense")


@dataclass
class TrackerConfig:
    """Point-tracker settings. Pixel values are in pixels of the results' images.

    Attributes:
        method: 2D tracking between consecutive frames: ``"lk"`` (pyramidal Lucas-Kanade),
            ``"dense"`` (DIS optical flow both ways), ``"lk+dense"`` (Lucas-Kanade, dense
            flow for the points where it fails).
        dense_preset: DIS preset of the dense flow (``"ultrafast"``, ``"fast"``,
            ``"medium"``).
        dense_finest_scale: pyramid level the dense flow stops at (0: full resolution,
            the most accurate; None: the preset's).
        dense_max_side: frames whose longer side exceeds this get their dense flow
            computed downscaled to it (bounds the cost at high resolution); None: full size.
        lk_window: side of the Lucas-Kanade window (pixels, odd).
        lk_levels: pyramid levels above the full image (OpenCV ``maxLevel``).
        lk_iterations: Lucas-Kanade iterations per level.
        fb_max_px: forward-backward check: a 2D step is kept only when tracking the new
            position back lands within this of the old one.
        border_px: positions closer than this to the image border count as out of view.
        edge_tolerance: relative depth spread in a 2x2 neighbourhood above which depth is
            read at the nearest pixel instead of interpolated (occlusion edges).
        min_confidence: a point whose pixel has a confidence below this when it is seeded
            follows its lifts from the start (the pipeline's confidence is low on hands and
            moving objects, and on surfaces whose depth it is unsure of) instead of being
            held at an anchor; it is not called dynamic until it is seen to move.
        static_tol_m, static_tol_rel: the floor of the motion tolerance: a point has moved
            only when it departs from where a static point would be by more than
            ``static_tol_m + static_tol_rel * z`` (z: its depth, m), across the line of sight
            and along it (what exact depth needs: pixel sampling, bilinear depth on slanted
            surfaces). The measured noise raises it (below).
        noise_k, lateral_k, noise_frames, max_noise_rel, confidence_gain: the measured noise
            of the stream raises the motion tolerance (:mod:`unihoi_ros.tracks.motion`).
            Each frame measures, over the anchored tracks it sees, the median relative
            deviation of their depth from their anchors' once the frame's depth scale is
            taken out (the depth noise; from the tracks that do not move across the line
            of sight), and the median distance of their 2D tracks from their anchors'
            epipolar lines over the focal length once the image motion that the pose's
            error gives all of them is taken out (the pixel noise); each is averaged over
            about ``noise_frames`` frames. The relative tolerance along the line of sight
            is ``noise_k`` times the depth noise, times ``1 + confidence_gain * (1 - c)``
            (``c``: the lower of the confidences at the anchor's first lift and at the
            point now); across it ``lateral_k`` times the pixel noise; at least
            ``static_tol_rel`` and at most ``max_noise_rel``. ``noise_k`` is large because
            a network's depth error is heavy-tailed: its lifts of a static point wander
            with where the point is seen, by 1-5 % of the depth typically but by 10-20
            times that at the 99th percentile, up to its own depth (7-Scenes, the bundled
            model; early in a stream, before the camera has moved much, the typical
            deviation is smaller and the tail as long), so depth alone is evidence only
            when it is extreme, and a static point whose depth is off may appear anywhere
            along its epipolar line within the depth tolerance. Medians, not tail
            quantiles: moving points among the anchored ones (up to half) do not raise
            the noise. With exact depth the noise is about 0 and the floor rules.
            ``noise_k = 0`` / ``lateral_k = 0`` keep the floor.
        motion_frames: a point is called dynamic (for the rest of its life) after this
            many consecutive observations in which it looked moved; an observation that
            agrees resets the count, a frame without one leaves it (hysteresis: one frame's
            outlier is not motion).
        fuse_static: a static point's position (its anchor) is the mean of all its lifts
            that agree with it (within the depth tolerance above, its 2D track within
            ``reacquire_px`` of the anchor's projection, not occluded), not only its first
            lift: the per-frame depth noise averages out. False: the first lift for life.
            :func:`track_queries` pools the agreeing lifts of both passes (the whole clip).
        occlusion_tol_rel: a point is occluded when the depth map at its pixel is nearer
            than its own depth by more than this fraction.
        max_step_rel: a following point whose lift jumps by more than this fraction of its
            depth (plus ``static_tol_m``) in one frame is lost (the 2D track slid across an
            occlusion edge).
        reacquire_px: a lost or drifted static point is put back at the projection of its
            anchor when that projection is in view and unoccluded; its 2D track is reset
            when it is farther than this from the projection.
        max_tracks: bound on the streaming tracker's number of tracks.
        dynamic_share: fraction of ``max_tracks`` kept for dynamic points when seeding.
        min_distance_px: new seeds keep at least this distance to other tracks.
        max_lost_frames: the streaming tracker drops a track unseen for this many frames.
    """

    method: str = "dense"
    dense_preset: str = "medium"
    dense_finest_scale: int | None = 0
    dense_max_side: int | None = 320
    lk_window: int = 15
    lk_levels: int = 3
    lk_iterations: int = 30
    fb_max_px: float = 1.0
    border_px: float = 1.0
    edge_tolerance: float = 0.05
    min_confidence: float = 0.5
    static_tol_m: float = 0.02
    static_tol_rel: float = 0.05
    noise_k: float = 15.0
    lateral_k: float = 3.0
    noise_frames: int = 5
    max_noise_rel: float = 1.0
    confidence_gain: float = 3.0
    motion_frames: int = 3
    fuse_static: bool = True
    occlusion_tol_rel: float = 0.05
    max_step_rel: float = 0.25
    reacquire_px: float = 3.0
    max_tracks: int = 256
    dynamic_share: float = 0.5
    min_distance_px: float = 8.0
    max_lost_frames: int = 15

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.lk_window < 3 or self.lk_window % 2 == 0:
            raise ValueError(f"lk_window must be odd and >= 3, got {self.lk_window}")
        if self.lk_levels < 0 or self.lk_iterations < 1:
            raise ValueError("lk_levels must be >= 0 and lk_iterations >= 1")
        if not self.fb_max_px > 0:
            raise ValueError(f"fb_max_px must be > 0, got {self.fb_max_px}")
        if self.max_tracks < 1:
            raise ValueError(f"max_tracks must be >= 1, got {self.max_tracks}")
        if not 0.0 <= self.dynamic_share <= 1.0:
            raise ValueError(f"dynamic_share must be in [0, 1], got {self.dynamic_share}")
        if self.noise_k < 0 or self.noise_frames < 1:
            raise ValueError("noise_k must be >= 0 and noise_frames >= 1")
        if self.lateral_k < 0 or self.max_noise_rel < 0 or self.confidence_gain < 0:
            raise ValueError("lateral_k, max_noise_rel and confidence_gain must be >= 0")
        if self.motion_frames < 1 or self.max_lost_frames < 0:
            raise ValueError("motion_frames must be >= 1 and max_lost_frames >= 0")
