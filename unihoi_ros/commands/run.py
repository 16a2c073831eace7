"""``unihoi run``: the live node, over Cyclone DDS (no ROS 2 needed) or rclpy.

Examples::

    unihoi run --transport dds --input-topic /camera/color/image_raw --model random:tiny
    unihoi run --input-topic image --compressed --record out_bag --params my.yaml
    unihoi run --transport rclpy --input-topic /camera/image_raw     # needs ROS 2

Parameters are the node's (``config/egocentric.yaml``): defaults from that file, then each
``--params`` file, then the flags, then ``-p NAME=VALUE``. Topic names are the ROS names of
docs/conventions.md under ``--namespace`` (default ``/unihoi``). Cyclone DDS uses its defaults or
the user's ``CYCLONEDDS_URI``, plus one compatibility setting so that ROS 2 Kilted's Fast
DDS 3 peers exchange data (``--no-fastdds-compat`` leaves it out); the network settings
are never changed.

``--record DIR`` writes a rosbag2 MCAP bag (Humble-readable metadata) of the input topic and
every output (``/tf`` and ``/diagnostics`` included); SIGINT or SIGTERM stop the node, wait
for the frame in flight to be published, and close the bag cleanly. On exit a line
``unihoi run summary: {json}`` gives the totals.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from unihoi_ros.ros.params import DEFAULT_NAMESPACE

log = logging.getLogger("unihoi_ros.run")

SUMMARY_PREFIX = "unihoi run summary: "


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run the node on live ROS 2 topics (Cyclone DDS without ROS 2, or rclpy)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--transport", choices=("dds", "rclpy"), default="dds",
                   help="dds: Cyclone DDS, no ROS 2 needed (default); rclpy: a ROS 2 node")
    p.add_argument("--domain-id", type=int, default=None,
                   help="DDS / ROS domain id (default: ROS_DOMAIN_ID, else 0)")
    p.add_argument("--input-topic", default=None,
                   help="input image topic (parameter image_topic; relative names go under "
                        "the namespace)")
    p.add_argument("--compressed", action="store_true",
                   help="subscribe to <input-topic>/compressed (sensor_msgs/CompressedImage)")
    p.add_argument("--namespace", default=DEFAULT_NAMESPACE,
                   help=f"node namespace (default {DEFAULT_NAMESPACE})")
    p.add_argument("--model", default=None,
                   help="model: path (.safetensors / authors' .ckpt), bundled name, or "
                        "random:<size> (untrained, tests only); default: parameter model")
    p.add_argument("--backend", default=None,
                   help="auto | tensorrt | onnxruntime | torch (parameter backend)")
    p.add_argument("--onnx-file", default=None, help="parameter onnx_file_path")
    p.add_argument("--engine-file", default=None, help="parameter engine_file_path")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", default=None, help="fp32 | fp16 | bf16")
    p.add_argument("--process-height", type=int, default=None,
                   help="resize frames to this height before inference (0: input size)")
    p.add_argument("--process-width", type=int, default=None,
                   help="resize frames to this width before inference (0: input size)")
    p.add_argument("--replay", action="store_true",
                   help="process every frame (live_mode false), e.g. for bag replay")
    p.add_argument("--params", action="append", type=Path, default=[], metavar="YAML",
                   help="ROS 2 parameter file (repeatable; later files win)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set one parameter (repeatable), e.g. -p window_stride=2")
    p.add_argument("--record", type=Path, default=None, metavar="DIR",
                   help="record inputs and outputs to this rosbag2 MCAP bag (dds only)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --record DIR")
    p.add_argument("--threads", type=int, default=None,
                   help="inference threads (parameter inference_threads; default: auto, "
                        "the cores minus one for the transport)")
    p.add_argument("--no-fastdds-compat", dest="fastdds_compat", action="store_false",
                   default=None,
                   help="dds: do not add Cyclone's IgnoreTypeInformation setting for Fast DDS 3 "
                        "peers (ROS 2 Kilted's rmw_fastrtps); default: added, merged with "
                        "CYCLONEDDS_URI (env UNIHOI_DDS_FASTDDS_COMPAT=0 also turns it off)")
    p.add_argument("--duration", type=float, default=0.0,
                   help="stop after this many seconds (0: run until SIGINT/SIGTERM)")
    p.set_defaults(func=run)


def overrides_from_args(args: argparse.Namespace) -> dict[str, object]:
    """Parameter overrides given by flags (then ``-p``), in that order of precedence."""
    from unihoi_ros.ros.params import parse_assignment

    out: dict[str, object] = {}
    flag_params = {
        "input_topic": "image_topic", "model": "model", "backend": "backend",
        "device": "device", "precision": "precision", "process_height": "process_height",
        "process_width": "process_width", "onnx_file": "onnx_file_path",
        "engine_file": "engine_file_path",
    }
    for attr, name in flag_params.items():
        value = getattr(args, attr)
        if value is not None:
            out[name] = value
    if args.threads:
        out["inference_threads"] = args.threads
    if args.compressed:
        out["use_compressed"] = True
    if args.replay:
        out["live_mode"] = False
    for item in args.param:
        name, value = parse_assignment(item)
        out[name] = value
    return out


def run(args: argparse.Namespace) -> int:
    if args.transport == "rclpy":
        return _run_rclpy(args)
    return _run_dds(args)


def _fail(exc: BaseException) -> int:
    """A start-up failure the user can fix: one line on stderr, exit code 2."""
    from unihoi_ros.errors import one_line

    print(f"unihoi run: error: {one_line(exc)}", file=sys.stderr, flush=True)
    return 2


def _run_dds(args: argparse.Namespace) -> int:
    from unihoi_ros.errors import UnihoiError

    try:
        from unihoi_ros.ros.dds_transport import DdsTransport
        from unihoi_ros.ros.node import UnihoiNode
        from unihoi_ros.ros.params import NodeParams

        params = NodeParams.load(args.params, overrides_from_args(args),
                                 namespace=args.namespace)
        backend = params.load_backend()
    except (UnihoiError, FileNotFoundError) as exc:  # FileNotFoundError: a --params file
        return _fail(exc)
    recorder = None
    if args.record is not None:
        from unihoi_ros.io.bag_writer import BagRecorder

        try:
            recorder = BagRecorder(args.record, overwrite=args.overwrite)
        except FileExistsError as exc:
            return _fail(exc)
    stop = _install_signal_handlers()
    transport = node = None
    t_start = time.monotonic()
    try:
        transport = DdsTransport(args.domain_id, args.namespace, recorder=recorder,
                                 fastdds_compat=args.fastdds_compat)
        node = UnihoiNode(params, backend, transport)
        node.start()
        log.info("DDS domain %d; %s", transport.domain_id,
                 f"recording to {args.record}" if recorder else "not recording")
        while not stop.wait(0.2):
            if args.duration and time.monotonic() - t_start >= args.duration:
                break
    finally:
        summary = _shutdown(node, transport, recorder)
    summary["wall_s"] = round(time.monotonic() - t_start, 3)
    print(SUMMARY_PREFIX + json.dumps(summary, sort_keys=True), flush=True)
    return 0


def _install_signal_handlers() -> threading.Event:
    """SIGINT/SIGTERM set the returned event (a second one gets the default action)."""
    stop = threading.Event()

    def handler(signum, _frame) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _shutdown(node, transport, recorder) -> dict:
    """Stop the worker (its frame is published), the transport, then close the bag."""
    summary: dict = {}
    if node is not None:
        node.stop()
        summary.update(node.stats())
        summary["stages_ms"] = node.stage_times()  # medians; the worker has stopped
    if transport is not None:
        transport.close()
    if recorder is not None:
        recorder.close()
        summary["bag"] = str(recorder.path)
        summary["bag_counts"] = dict(recorder.counts)
        log.info("bag closed: %s (%d messages)", recorder.path, sum(recorder.counts.values()))
    return summary


def _run_rclpy(args: argparse.Namespace) -> int:
    from unihoi_ros.optional import MissingDependencyError, require

    if args.record is not None:
        return _fail(ValueError("--record works with --transport dds; with rclpy record "
                                 "beside the node with `unihoi_record -o DIR TOPIC...` or "
                                 "`ros2 bag record` (the launch file's record:=true picks one)"))
    try:
        require("rclpy")
        from unihoi_ros.ros.rclpy_node import main as rclpy_main
    except (MissingDependencyError, ImportError) as exc:
        return _fail(exc)
    if args.domain_id is not None:
        os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    ros_args = ["--ros-args", "-r", f"__ns:=/{args.namespace.strip('/')}"]
    for path in args.params:
        ros_args += ["--params-file", str(path)]
    for name, value in overrides_from_args(args).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        ros_args += ["-p", f"{name}:={text}"]
    return int(rclpy_main(["unihoi_node", *ros_args]) or 0)  # argv[0]: the program name
