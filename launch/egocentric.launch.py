"""Launch unihoi_node on a head-mounted camera stream.

Example::

    ros2 launch unihoi_ros egocentric.launch.py image_topic:=/camera/color/image_raw \
        namespace:=unihoi record:=true

Outputs (relative to the namespace): ``depth/image``, ``depth/camera_info``,
``confidence/image``, ``points``, ``trajectory``, and TF ``odom`` -> camera optical frame.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node

from launch import LaunchDescription

ARGUMENTS = [
    ("namespace", "unihoi", "namespace of the node and its topics"),
    ("image_topic", "image", "input sensor_msgs/Image topic"),
    ("use_compressed", "false", "subscribe to <image_topic>/compressed instead"),
    ("use_camera_info", "false", "use the camera's K from camera_info instead of predicting it"),
    ("camera_info_topic", "camera_info", "input sensor_msgs/CameraInfo topic"),
    ("model", "unihoi-tiny", "bundled model name or weights path"),
    ("backend", "auto", "auto | tensorrt | onnxruntime | torch"),
    ("engine_file_path", "", "TensorRT engine (built from onnx_file_path when missing)"),
    ("onnx_file_path", "", "ONNX model exported with `unihoi export`"),
    ("window_stride", "1", "run the 4-frame window every N new frames (1-3)"),
    ("odom_frame", "odom", "parent frame of the camera pose"),
    ("camera_frame", "camera_optical_frame", "optical frame of the outputs"),
    ("use_sim_time", "false", "use /clock (bag replay: every frame is processed)"),
    ("record", "false", "also run `ros2 bag record` of inputs and outputs (MCAP)"),
    ("bag_path", "unihoi_bag", "output directory of the recording"),
]


def generate_launch_description():
    share = get_package_share_directory("unihoi_ros")
    params_file = os.path.join(share, "config", "egocentric.yaml")
    cfg = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    overrides = {
        name: cfg[name]
        for name in ("image_topic", "use_compressed", "use_camera_info", "camera_info_topic",
                     "model", "backend", "engine_file_path", "onnx_file_path",
                     "window_stride", "odom_frame", "camera_frame", "use_sim_time")
    }
    node = Node(
        package="unihoi_ros",
        executable="unihoi_node",
        name="unihoi_node",
        namespace=cfg["namespace"],
        parameters=[params_file, overrides],
        output="screen",
        emulate_tty=True,
    )
    ns = PythonExpression(["'/' + '", cfg["namespace"], "'.strip('/')"])
    # The input topic may be absolute (/camera/color/image_raw) or relative to the namespace.
    image = PythonExpression([
        "'", cfg["image_topic"], "' if '", cfg["image_topic"], "'.startswith('/') else '",
        ns, "/", cfg["image_topic"], "'",
    ])
    topics = [image] + [
        PathJoinSubstitution([ns, t])
        for t in ("depth/image", "depth/camera_info", "confidence/image", "points", "trajectory")
    ]
    record = ExecuteProcess(
        cmd=["ros2", "bag", "record", "-s", "mcap", "-o", cfg["bag_path"], "/tf", "/tf_static",
             "/diagnostics", *topics],
        condition=IfCondition(cfg["record"]),
        output="screen",
    )
    return LaunchDescription(
        [DeclareLaunchArgument(n, default_value=d, description=h) for n, d, h in ARGUMENTS]
        + [node, record]
    )
