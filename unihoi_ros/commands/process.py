"""``unihoi process INPUT... -o OUT_DIR``: reconstruct recordings offline (every frame).

One input writes today's layout directly into ``OUT_DIR``. Several inputs, a glob or a
manifest (one input per line) write ``OUT_DIR/<input name>/`` each plus
``OUT_DIR/index.{csv,json}``, resumably and sharded over ``torchrun`` ranks when started
by ``torchrun --no-python unihoi process ...`` (:mod:`unihoi_ros.offline_batch`).
``--refine-depth`` runs two passes over each input (:mod:`unihoi_ros.offline_refine`).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from unihoi_ros.commands import frame_size, non_negative_int, positive_int, usage_error
from unihoi_ros.offline_options import BAG_MAX_SIDE

log = logging.getLogger("unihoi.process")


def add_model_arguments(p) -> None:
    """Model, backend and stream flags: their defaults are
    :class:`~unihoi_ros.pipeline.settings.StreamSettings`' (the node's parameters have the
    same), so a recording is processed as the live node processes its camera."""
    from unihoi_ros.options import BackendName, FlowPreset, PoseSolver, Precision, values
    from unihoi_ros.pipeline.settings import StreamSettings

    d = StreamSettings()
    p.add_argument("--model", default=d.model,
                   help="bundled model name, weights path, or random:<size> (untrained)")
    p.add_argument("--backend", default=d.backend, choices=values(BackendName),
                   help="inference backend (auto: the best one here)")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda[:N]")
    p.add_argument("--precision", default=d.precision, choices=values(Precision),
                   help="fp16 / bf16 on CUDA only (node parameter precision)")
    p.add_argument("--onnx-file", default=None,
                   help="graph from `unihoi export` (ONNX Runtime; TensorRT builds from it)")
    p.add_argument("--engine-file", default=None, help="TensorRT engine (`unihoi build-engine`)")
    p.add_argument("--stride", type=positive_int, default=d.stride,
                   help="window stride (1-3; node parameter window_stride)")
    p.add_argument("--process-size", type=frame_size, default=None, metavar="HxW",
                   help="resize frames to this size before inference (default: the "
                   "--max-side rule)")
    p.add_argument("--max-side", type=non_negative_int, default=d.max_side,
                   help="downscale larger frames to this longer side before inference (0: "
                   f"never; default {d.max_side}, as the node's max_side: the tiny network's "
                   "encoder sees 96x128, larger frames mostly add per-pixel work); the "
                   "processing size is said at start")
    p.add_argument("--flow-preset", default=d.flow_preset, choices=values(FlowPreset),
                   help="OpenCV DIS preset (auto: medium up to 320x240 processed pixels, "
                   "fast above)")
    p.add_argument("--pose-solver", default=d.pose_solver, choices=values(PoseSolver),
                   help="relative pose per frame pair: pnp (default) or procrustes (the "
                        "paper's weighted 3D-3D fit)")
    p.add_argument("--past-refinement", action="store_true", default=None,
                   help="the node's past_refinement: each frame's depth refined from the "
                   "frames before it only, as live (for a recording --refine-depth, which "
                   "also looks ahead, is better)")
    p.add_argument("--mirror-average", action="store_true", default=None,
                   help="the node's mirror_average: the network run on each window and on "
                   "its mirror image, averaged (twice the network's cost)")


def add_camera_arguments(p) -> None:
    """Known-intrinsics flags (:mod:`unihoi_ros.io.camera_info`)."""
    p.add_argument("--K", dest="K", default=None, metavar="FX,FY,CX,CY|dataset",
                   help="the camera's intrinsics in pixels of the input frames (used instead "
                   "of the network's, depth read with them, as the node's use_camera_info); "
                   "'dataset': the K the dataset reader knows (7-Scenes colour camera, TUM "
                   "Freiburg calibration)")
    p.add_argument("--camera-info", default=None, type=Path, metavar="FILE.yaml",
                   help="calibration YAML as camera_calibration / camera_info_manager write it "
                   "(distortion is undone before inference)")
    p.add_argument("--ignore-camera-info", action="store_true",
                   help="do not use a bag's sensor_msgs/CameraInfo (used by default when the "
                   "bag has one beside the image topic)")


def add_output_arguments(p) -> None:
    """What the run's bag holds (the full-resolution predictions are PNG files)."""
    p.add_argument("--no-bag", action="store_true", help="write no rosbag2 (bag/)")
    p.add_argument("--bag-max-side", type=non_negative_int, default=BAG_MAX_SIDE, metavar="PX",
                   help="longest side of the bag's images (input JPEG, 16UC1 depth, mono8 "
                   "confidence), an integer divisor of the frame size; 0: full resolution "
                   "(about 0.2 MB more per 640x480 frame)")
    p.add_argument("--no-bag-image", action="store_true",
                   help="leave the input frames (image/compressed) out of the bag")


def register(sub) -> None:
    p = sub.add_parser("process", help="reconstruct bags, videos, image folders, TUM or "
                       "7-Scenes sequences offline (several: sharded over torchrun ranks)")
    p.add_argument("input", type=Path, nargs="+", help="rosbag2 (dir/.mcap/.db3), video, "
                   "folder, TUM RGB-D or 7-Scenes folder; several, a quoted glob, or a "
                   "manifest (.txt/.lst/.list: one INPUT[<TAB>GROUND_TRUTH] per line) give "
                   "OUT_DIR/<name>/ each and OUT_DIR/index.{csv,json}")
    p.add_argument("-o", "--out", type=Path, required=True, help="output directory")
    p.add_argument("--force", action="store_true", help="overwrite an existing output dir "
                   "(several inputs: redo complete ones too)")
    p.add_argument("--topic", default=None, help="image topic of a bag (auto if one camera)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of folders (stamps)")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--refine-depth", action="store_true",
                   help="two passes over each input: the network's depth refined with the "
                   "recording's own multi-view geometry, then poses, clouds, tracks and "
                   "outputs from it (README, 'Offline depth refinement'; one input's frames "
                   "are held at a time: about 1.3 MB per frame at 320x240 above a plain "
                   "run's peak)")
    p.add_argument("--raft-weights", type=Path, default=None, metavar="raft-small.pth",
                   help="with --refine-depth: triangulate RAFT-small's flow (the authors' "
                   "checkpoint, princeton-vl/RAFT; not downloaded; loaded once, before any "
                   "input) instead of DIS's")
    p.add_argument("--no-pose-graph", action="store_true",
                   help="with --refine-depth: the second pass chains each frame's pose from "
                   "its pair with the frame before (as a live node does) instead of fitting "
                   "a pose graph of pairs 1, 4 and 16 frames apart over the whole recording")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of torch/OpenCV (default: torch's; under torchrun the "
                   "machine's cores divided among its ranks)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_output_arguments(p)
    add_camera_arguments(p)
    add_model_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from unihoi_ros.backends.onnxruntime_backend import set_idle_spinning
    from unihoi_ros.batch import is_batch
    from unihoi_ros.errors import ConfigError
    from unihoi_ros.io.pictures import pictures_enabled
    from unihoi_ros.offline_options import settings_from_args

    try:
        settings = settings_from_args(args)
    except ConfigError as exc:  # e.g. --stride 5: a bad command line
        return usage_error("process", exc)
    set_idle_spinning(False)  # the tracker and writer threads share the cores
    refine = getattr(args, "refine_depth", False)
    # Said before the work.
    args.pictures = pictures_enabled(["summary.png", "tracks.png",
                                      *(["refinement.png"] if refine else [])])
    if getattr(args, "raft_weights", None) is not None and not refine:
        return usage_error("process", ConfigError("--raft-weights needs --refine-depth"))
    if getattr(args, "no_pose_graph", False) and not refine:
        return usage_error("process", ConfigError("--no-pose-graph needs --refine-depth"))
    if refine and settings.past_refinement:
        return usage_error("process", ConfigError(
            "--past-refinement and --refine-depth: choose one (--refine-depth refines each "
            "frame from the frames before and after it)"))
    if is_batch(args.input):
        from unihoi_ros.offline_batch import run_batch

        return run_batch(args, settings)
    args.input = args.input[0]
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun with one input: rank 0 does it
        log.info("one input: rank 0 processes it, rank %s has nothing to do",
                 os.environ["RANK"])
        return 0
    return run_single(args, settings)


def run_single(args, settings) -> int:
    """One input, today's layout directly in ``args.out``, with ``settings``
    (:class:`~unihoi_ros.pipeline.settings.StreamSettings`)."""
    from unihoi_ros.errors import UnihoiError
    from unihoi_ros.io.sources import open_source
    from unihoi_ros.offline import prepare_output_dir, process_source
    from unihoi_ros.offline_options import choose_camera_for, first_frame_size, output_options
    from unihoi_ros.offline_refine import (
        REFINEMENT_PICTURE,
        load_pair_flow,
        prepare_refined_pass,
        uses_pose_graph,
    )

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        refine = getattr(args, "refine_depth", False)
        # Before the input is opened: a bad --raft-weights stops the run before any work.
        pair_flow = load_pair_flow(getattr(args, "raft_weights", None)) if refine else None
        source = open_source(args.input, topic=args.topic, fps=args.fps)
        camera = choose_camera_for(args, source)
        prepare_output_dir(args.out, args.force)
        rec = settings.make_reconstructor(settings.load_backend())
        log.info("input: %s (%s)", source.path, source.description)
        size = first_frame_size(source)
        work = None if size is None else settings.processing_size(size)
        if size is not None:
            log.info("frames %dx%d are processed at %dx%d (width x height; %s)", size[1],
                     size[0], work[1], work[0], "--process-size" if settings.process_size
                     else f"--max-side {settings.max_side}" if settings.max_side
                     else "input size")
        log.info("%s", settings.describe(size))
        # Only the input's own size is prepared (not every common aspect ratio).
        rec.backend.prepare_before_first_frame(work, settings.stride + 1)
        log.info("model %s on backend %s", settings.model, rec.backend.describe())
        from unihoi_ros.model_info import model_lines

        for line in model_lines(settings.model):
            log.info("%s", line)
        log.info("intrinsics: %s", "predicted by the network" if camera is None else
                 f"{camera.source}: fx {camera.K[0, 0]:.2f} fy {camera.K[1, 1]:.2f} "
                 f"cx {camera.K[0, 2]:.2f} cy {camera.K[1, 2]:.2f}")
        info = {"model": settings.model, "settings": settings.effective(size)}
        max_frames, pictures = args.max_frames, getattr(args, "pictures", True)
        if refine:
            source, rec, camera, max_frames = prepare_refined_pass(
                source, rec, settings, camera, max_frames, progress=not args.no_progress,
                pair_flow=pair_flow, info=info, picture_dir=args.out if pictures else None,
                pose_graph=uses_pose_graph(args))
        results = process_source(source, rec, args.out, max_frames=max_frames,
                                 progress=not args.no_progress, info=info,
                                 camera=camera, pictures=pictures,
                                 pictures_drawn=[REFINEMENT_PICTURE] if refine and pictures
                                 else [], **output_options(args))
    except (UnihoiError, FileNotFoundError, ValueError) as exc:
        print(f"unihoi process: error: {exc}", file=sys.stderr)
        return 1
    pictures = (", summary.png, tracks.png" + (", refinement.png" if refine else "")
                if getattr(args, "pictures", True) else "")
    bag = "" if getattr(args, "no_bag", False) else "bag/, "
    print(f"processed {len(results)} frames -> {args.out}/ (depth/, confidence/, "
          f"frames.json, {bag}cloud.ply, trajectory_tum.txt, tracks.npz{pictures}, "
          "report.json)")
    return 0
