"""Settings of the streaming reconstructor's algorithm. The node, ``unihoi process`` and
the batch runner build theirs from one :class:`~unihoi_ros.pipeline.settings.StreamSettings`
(its defaults are the product's: e.g. ``max_side`` 320 there, None here)."""

from __future__ import annotations

from dataclasses import dataclass

from unihoi_ros.options import PoseSolver, parse, values

#: Relative-pose solvers of the streaming pipeline (see :attr:`ReconstructorConfig.pose_solver`),
#: the values of :class:`unihoi_ros.options.PoseSolver`.
POSE_SOLVERS = values(PoseSolver)

def processing_size(config: ReconstructorConfig, size: tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` pixels at which ``config`` processes frames of ``size``
    ``(height, width)``: ``config.process_size`` when set, else ``size`` scaled down (aspect
    ratio kept, rounded) so its longer side is at most ``config.max_side``, else ``size``."""
    h, w = int(size[0]), int(size[1])
    if config.process_size is not None:
        return int(config.process_size[0]), int(config.process_size[1])
    if config.max_side and max(h, w) > config.max_side:
        s = config.max_side / max(h, w)
        return max(1, round(h * s)), max(1, round(w * s))
    return h, w


@dataclass
class ReconstructorConfig:
    """Streaming reconstruction settings.

    Attributes:
        window: frames per network window (UniHOI: 4).
        stride: run the window network every ``stride`` new frames (1-3; the authors'
            offline setting is 3, i.e. windows overlapping by one frame).
        num_pose_points: pixels on an even grid used per frame pair for Procrustes
            (the authors use 1000).
        min_confidence: pose weights below this are zeroed (the authors' inference rule).
        confidence_erosion_px: pose weights take the minimum confidence within this many
            pixels (flow is unreliable next to moving or occluded regions); 0 disables.
        edge_tolerance: relative depth spread inside a 2x2 neighbourhood above which a flow
            target is treated as an occlusion edge and ignored.
        pose_solver: how each frame pair's relative pose is solved: ``"pnp"`` (default:
            frame t-1's points against frame t's flow pixels, RANSAC + Levenberg-Marquardt;
            insensitive to the depth scale of frame t) or ``"procrustes"`` (the paper's
            confidence-weighted rigid fit of both frames' points).
        pnp_inlier_px: RANSAC reprojection threshold of the PnP solver, pixels of the
            processed frame (0.5: ATE 5-13 % lower than 1.0 with exact depth and with the
            bundled model's, at 160x120 and 320x240, selection clips; bench/RESULTS.md).
        pnp_noise_factor: (``pnp`` only) adapt the RANSAC threshold to the stream: each
            pair's threshold is this factor times the running reprojection noise of the
            pairs solved before it (:func:`~unihoi_ros.geometry.pnp.reprojection_noise_px`,
            :func:`~unihoi_ros.geometry.pnp.adaptive_inlier_px`), never below
            ``pnp_inlier_px`` nor above ``pnp_max_inlier_px``; 0 keeps ``pnp_inlier_px``
            fixed. Real video's residuals are several times the synthetic world's
            (0.05-0.12 px there, where the threshold stays at 0.5 px and poses are
            unchanged bit for bit). Shared 7-Scenes frames at 640x480, 8 x 50 frames
            (``bench/pose_real.py``): bundled model + colour K ATE 3.94 to 3.16 % of the
            path (0.85x to 0.72x a straight line), true depth 2.07 to 1.94 %, pose stage
            cheaper (RANSAC stops sooner); at 160x120 real residuals stay near 0.2 px and
            nothing changes (bench/RESULTS.md, "Poses on real video").
        pnp_max_inlier_px: upper bound of the adaptive threshold, pixels.
        robust_iterations: (``procrustes`` only) refits after dropping correspondences
            whose residual is an outlier (occlusions, flow errors); 0 gives the authors'
            plain weighted Procrustes.
        process_size: ``(height, width)`` the frames are resized to before inference, or
            None to process at the input size.
        max_side: when ``process_size`` is None, frames whose longer side exceeds this are
            downscaled to it (aspect ratio kept); None never downscales.
        point_stride: keep every n-th pixel in each direction for the point cloud.
        min_point_confidence: drop points whose confidence is below this.
        build_points: build the coloured point cloud (the node turns it off while no one
            subscribes).
        known_k_rescales_depth: when the camera's K is given (camera_info), the network's
            depth is multiplied by the ratio of the known to the predicted focal length
            (:func:`unihoi_ros.geometry.camera.focal_ratio`: depth read from appearance
            scales with the focal length), and K is the known one. False keeps the
            network's depth and only replaces K.
        stream_intrinsics: without a known K, publish one K per stream, the running median
            of the network's per-window K (:class:`~unihoi_ros.pipeline.intrinsics.
            StreamIntrinsics`), and read each window's depth with it (times the focal
            ratio): a camera's K does not change within a stream, so neither does the
            published CameraInfo. On by default since the release trained on synthetic
            world 2, whose K follows the image content: on never-trained selection clips
            (seeds 30000-30011, 48 frames, 160x120) fx error 9.8 to 9.6 %, ATE 3.15 to
            2.87 % of the path, metric depth abs_rel 0.143 to 0.147 (320x240, seeds
            30000-30005: ATE 2.03 to 1.78 %; bench/RESULTS.md). False: each window's own K.
        decode_full_window: decode every frame of each window. By default, once a
            window's older frames have results, the network decodes only the new frames
            and the one they chain from (same results for them, about 40 % less network
            time at stride 1; see ``Reconstructor._frames_to_decode``).
        window_scale_chain: leak ``a`` of the window-to-window depth-scale chaining (0: off,
            each window keeps the network's metric scale). When > 0, each window's depth
            is multiplied by ``s = r ** (1 - a)``, ``r`` the median ratio of the depth its
            frames already published to the same frames' depth as this window decodes
            them (:func:`~unihoi_ros.pipeline.scale_chain.chained_window_scale`): ``a`` = 1
            keeps each window's own scale, a small ``a`` chains strongly (a constant
            per-window bias drifts at most ``(1 - a) / a`` times itself). Poses, points
            and the published depth all use the rescaled depth. Measured, not adopted
            (bench/RESULTS.md, "Window scale chaining").
        past_refinement: refine each new frame's depth with the stream's own multi-view
            geometry, from the frames before it only
            (:class:`~unihoi_ros.pipeline.past_refinement.PastRefinement`), before the
            poses: poses, points and the published depth use the refined depth, the
            published confidence is 1 where the geometry measured it. Off by default: about
            0.2 s more per 640x480 frame on 2 cores (held-out 7-Scenes segments streamed
            from their first frame: depth 0.215 -> 0.182 median-scaled, ATE 0.66x -> 0.54x
            the straight line; README, "Live depth refinement").
        timing_window: number of recent timings kept per stage for :meth:`stats`.
    """

    window: int = 4
    stride: int = 1
    num_pose_points: int = 1000
    min_confidence: float = 0.5
    confidence_erosion_px: int = 6
    edge_tolerance: float = 0.05
    pose_solver: str = PoseSolver.PNP.value
    pnp_inlier_px: float = 0.5
    pnp_noise_factor: float = 2.5
    pnp_max_inlier_px: float = 4.0
    robust_iterations: int = 1
    process_size: tuple[int, int] | None = None
    max_side: int | None = None
    point_stride: int = 2
    min_point_confidence: float = 0.5
    build_points: bool = True
    known_k_rescales_depth: bool = True
    stream_intrinsics: bool = True
    decode_full_window: bool = False
    window_scale_chain: float = 0.0
    past_refinement: bool = False
    timing_window: int = 1000

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ValueError(f"window must be >= 2 frames, got {self.window}")
        if not 1 <= self.stride <= self.window - 1:
            raise ValueError(f"stride must be in 1..{self.window - 1}, got {self.stride}")
        if parse(PoseSolver, self.pose_solver) is None:
            raise ValueError(f"pose_solver must be one of {POSE_SOLVERS}, got "
                             f"{self.pose_solver!r}")
        if not self.pnp_inlier_px > 0:
            raise ValueError(f"pnp_inlier_px must be > 0, got {self.pnp_inlier_px}")
        if not self.pnp_noise_factor >= 0:
            raise ValueError(f"pnp_noise_factor must be >= 0, got {self.pnp_noise_factor}")
        if not self.pnp_max_inlier_px >= self.pnp_inlier_px:
            raise ValueError(f"pnp_max_inlier_px must be >= pnp_inlier_px "
                             f"({self.pnp_inlier_px}), got {self.pnp_max_inlier_px}")
        if not 0.0 <= self.window_scale_chain <= 1.0:
            raise ValueError(f"window_scale_chain must be in [0, 1], got "
                             f"{self.window_scale_chain}")
        if self.past_refinement and self.window_scale_chain > 0:
            # The refinement gives the frames a window shares their published depth, so the
            # chain's ratio would always be 1: the two do not combine.
            raise ValueError("past_refinement and window_scale_chain > 0 do not combine "
                             "(the refinement sets each frame's scale itself)")
        if self.point_stride < 1:
            raise ValueError("point_stride must be >= 1")
