"""Launch unihoi_node on a head-mounted camera stream.

Example::

    ros2 launch unihoi_ros egocentric.launch.py image_topic:=/camera/color/image_raw \
        namespace:=unihoi params_file:=my_params.yaml record:=true

Parameters: the package's ``config/egocentric.yaml`` (every parameter, documented), then
``params_file`` (a user's YAML in ROS 2 layout), then the launch arguments below that are
set (an empty argument leaves the value of the files). Outputs (relative to the namespace;
``namespace:=''`` puts them at the root): ``depth/image``, ``depth/camera_info``,
``confidence/image``, ``points``, ``trajectory``, ``pose``, TF ``world_frame`` -> camera
frame, ``/diagnostics``.

``record:=true`` also records what was really used as input (the image or compressed
topic, camera_info when used) and every output (``tracks``, ``/tf`` and ``/tf_static``
included; the trajectory as one ``PoseStamped`` per frame on ``pose``) into an MCAP bag:
with ``ros2 bag record`` (MCAP storage plugin, ros-<distro>-rosbag2-storage-mcap) where
the ``ros2 bag`` verb exists, else with the package's own recorder ``unihoi_record``
(rclpy + rosbags: same topics, QoS adapted to the publishers, chunks flushed as they fill
so a killed recording stays readable). The bag goes to ``bag_path``, or to a new
timestamped ``unihoi_bag_<date>_<time>`` directory when ``bag_path`` is empty.
"""

import importlib.metadata
import os
import shutil

import yaml
from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch_ros.actions import Node

from launch import LaunchDescription

#: Launch arguments forwarded as node parameters when set (name, help).
PARAMETER_ARGUMENTS = [
    ("image_topic", "input sensor_msgs/Image topic (absolute, or relative to the namespace)"),
    ("use_compressed", "subscribe to <image_topic>/compressed instead"),
    ("use_camera_info", "use the camera's K from camera_info instead of predicting it"),
    ("camera_info_topic", "input sensor_msgs/CameraInfo topic"),
    ("stream_intrinsics", "without camera_info: one K per stream (false: per window)"),
    ("model", "bundled model name or weights path"),
    ("backend", "auto | tensorrt | onnxruntime | torch"),
    ("device", "auto | cpu | cuda | cuda:N"),
    ("precision", "fp32 | fp16 | bf16"),
    ("engine_file_path", "TensorRT engine (built from onnx_file_path when missing)"),
    ("onnx_file_path", "ONNX model exported with `unihoi export`"),
    ("process_height", "resize frames to this height before inference (0: input size)"),
    ("process_width", "resize frames to this width before inference (0: input size)"),
    ("max_side", "without process_height/width: downscale frames to this longer side "
                 "(0: never)"),
    ("flow_preset", "DIS preset of the pose flow: auto | ultrafast | fast | medium"),
    ("window_stride", "run the 4-frame window every N new frames (1-3)"),
    ("past_refinement", "refine depth with the stream's own geometry from earlier frames "
                        "(about 0.2 s more per 640x480 frame on 2 CPU cores)"),
    ("mirror_average", "average the network on each window with its mirror image "
                       "(twice the network's cost per frame)"),
    ("live_mode", "true: drop frames when busy; false: process every frame"),
    ("input_qos", "SENSOR_DATA | DEFAULT | SYSTEM_DEFAULT"),
    ("output_qos", "SENSOR_DATA | DEFAULT | SYSTEM_DEFAULT"),
    ("publish_tf", "broadcast world_frame -> camera frame on /tf"),
    ("world_frame", "fixed frame of the stream (REP-103 body axes)"),
    ("camera_frame", "frame_id of the outputs (empty in the files: the input's frame_id)"),
    ("base_frame", "the robot's base frame: TF world_frame -> base_frame via tf2's camera -> "
                   "base (empty in the files: world_frame -> camera frame)"),
    ("use_sim_time", "use /clock (bag replay: every frame is processed)"),
]
#: Launch-only arguments (name, default, help).
LAUNCH_ARGUMENTS = [
    ("namespace", "unihoi", "namespace of the node and its topics ('' for none)"),
    ("params_file", "", "a YAML of node parameters over the package's defaults"),
    ("log_level", "info", "debug | info | warn | error | fatal"),
    ("record", "false", "also record the inputs used and the outputs (MCAP): `ros2 bag "
     "record` where the verb exists, else unihoi_record"),
    ("bag_path", "", "directory of the recording (default: unihoi_bag_<date>_<time>)"),
]
#: Outputs recorded with record:=true (relative to the namespace; absolute as they are).
RECORDED_OUTPUTS = ("depth/image", "depth/camera_info", "confidence/image", "points", "tracks",
                    "pose", "/tf", "/tf_static", "/diagnostics")


def parameter_overrides(values):
    """The set parameter arguments as typed node parameters (YAML scalars: ``'2'`` -> 2,
    ``'true'`` -> True); unset (empty) ones are left to the parameter files."""
    out = {}
    for name, _ in PARAMETER_ARGUMENTS:
        text = values.get(name, "")
        if text == "":
            continue
        value = yaml.safe_load(text)
        out[name] = text if value is None or isinstance(value, (list, dict)) else value
    return out


def parameter_files(share, params_file):
    """The package's defaults, then the user's file (later files win)."""
    files = [os.path.join(share, "config", "egocentric.yaml")]
    if params_file:
        files.append(os.path.abspath(os.path.expanduser(params_file)))
    return files


def _namespaced(namespace, topic):
    if topic.startswith("/"):
        return topic
    ns = namespace.strip("/")
    return f"/{ns}/{topic}" if ns else f"/{topic}"


def recorded_topics(namespace, params):
    """Topics ``record:=true`` records: the input really used and every output.

    ``params``: the effective node parameters (files and overrides merged).
    """
    image = params.get("image_topic", "image")
    if params.get("use_compressed", False):
        image = image.rstrip("/") + "/compressed"
    topics = [_namespaced(namespace, image)]
    if params.get("use_camera_info", False):
        topics.append(_namespaced(namespace, params.get("camera_info_topic", "camera_info")))
    return topics + [_namespaced(namespace, t) for t in RECORDED_OUTPUTS]


def _bag_path(bag_path, now=None):
    from unihoi_ros.ros.recorder import default_bag_path  # torch-free

    return bag_path or default_bag_path(now)


def record_command(bag_path, topics, now=None):
    """``ros2 bag record`` of ``topics`` into ``bag_path`` (or a new timestamped directory)."""
    return ["ros2", "bag", "record", "--storage", "mcap", "--output", _bag_path(bag_path, now),
            *topics]


def unihoi_record_arguments(bag_path, topics, now=None):
    """Arguments of the package's recorder ``unihoi_record`` for the same recording."""
    return ["--output", _bag_path(bag_path, now), *topics]


def ros2_bag_available():
    """Whether ``ros2 bag`` exists here: the ``ros2`` command and a ``bag`` verb registered
    with ros2cli (rosbag2's ros2bag package; not among the PyPI wheels)."""
    if shutil.which("ros2") is None:
        return False
    verbs = importlib.metadata.entry_points(group="ros2cli.command")
    return any(v.name == "bag" for v in verbs)


def recorder_action(bag_path, topics, namespace="", ros2_bag=None, now=None):
    """The launch action that records ``topics``: ``ros2 bag record`` where
    :func:`ros2_bag_available` (or ``ros2_bag``), else the ``unihoi_record`` node."""
    if ros2_bag is None:
        ros2_bag = ros2_bag_available()
    if ros2_bag:
        return ExecuteProcess(cmd=record_command(bag_path, topics, now), output="screen")
    return Node(package="unihoi_ros", executable="unihoi_record", name="unihoi_record",
                namespace=namespace, arguments=unihoi_record_arguments(bag_path, topics, now),
                output="screen", emulate_tty=True)


def effective_parameters(files, overrides, namespace=""):
    """The node's parameters from ``files`` (the node's own sections, as it reads them),
    then ``overrides``."""
    from unihoi_ros.ros.params import read_params_file  # torch-free

    merged = {}
    for path in files:
        merged.update(read_params_file(path, namespace=namespace)[0])
    merged.update(overrides)
    return merged


def _launch_setup(context):
    values = dict(context.launch_configurations)
    share = get_package_share_directory("unihoi_ros")
    namespace = values.get("namespace", "").strip("/")
    files = parameter_files(share, values.get("params_file", ""))
    overrides = parameter_overrides(values)
    actions = [Node(
        package="unihoi_ros",
        executable="unihoi_node",
        name="unihoi_node",
        namespace=namespace,
        parameters=[*files, overrides],
        arguments=["--ros-args", "--log-level", values.get("log_level", "info")],
        output="screen",
        emulate_tty=True,
    )]
    if values.get("record", "false").lower() in ("true", "1", "yes"):
        topics = recorded_topics(namespace, effective_parameters(files, overrides, namespace))
        actions.append(recorder_action(values.get("bag_path", ""), topics, namespace))
    return actions


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(n, default_value=d, description=h)
         for n, d, h in LAUNCH_ARGUMENTS]
        + [DeclareLaunchArgument(n, default_value="", description=h + " (empty: from the files)")
           for n, h in PARAMETER_ARGUMENTS]
        + [OpaqueFunction(function=_launch_setup)]
    )
