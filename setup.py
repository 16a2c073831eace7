"""ament_python package setup for unihoi_ros (also a plain pip-installable package).

Dependencies are declared here, once. ROS 2 itself (rclpy, message packages) comes from a
ROS installation and is listed in package.xml; everything below is on PyPI.

Torch: on a machine without CUDA, install the CPU build first (``pip install torch==2.13.0``
where a local CPU wheel is provided, or PyTorch's CPU index); the range below then installs
nothing more.
"""

import os
import subprocess
import sys
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "unihoi_ros"


def _importable_outside_build_env(module: str) -> bool:
    """Whether the target interpreter already has ``module`` (an apt package, say).

    pip builds in an isolated environment that hides the interpreter's own site-packages;
    ``python -I`` (no PYTHONPATH, no user site) sees them again.
    """
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    try:
        return subprocess.run([sys.executable, "-I", "-c", probe], timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


# What the node needs at run time. Lower bounds are what Ubuntu 22.04 (Humble) ships with
# apt, so pip never replaces a ROS distribution's numpy or scipy. OpenCV comes from pip
# only where no cv2 is installed yet (apt's python3-opencv, JetPack's build): a second cv2
# beside it would shadow it and pull numpy 2. UNIHOI_PIP_OPENCV=1 forces the pip wheel.
CORE = [
    "setuptools",
    "numpy>=1.21",
    "scipy>=1.8",
    "torch>=2.1",  # keeps an installed build (JetPack's, a CUDA one) when it satisfies this
    "safetensors>=0.4",
    "pyyaml>=5.4",
    "tqdm>=4.60",
    "rosbags>=0.10",  # message definitions and CDR for every transport (pure Python)
]
if os.environ.get("UNIHOI_PIP_OPENCV") == "1" or not _importable_outside_build_env("cv2"):
    CORE.append("opencv-python-headless>=4.8")
# The default CPU backend of the bundled model: its fused ONNX graph, exported on first use
# (onnx writes the graph's metadata) and run by ONNX Runtime, 1.3-1.7x torch on the CPU
# (unihoi_ros.backends.onnx_router). Like OpenCV, ONNX Runtime comes from pip only where no
# onnxruntime module is installed yet: onnxruntime-gpu or JetPack's build provide the same
# module, and a second one beside it would shadow it. Without it, auto runs torch.
CORE.append("onnx>=1.15")
if not _importable_outside_build_env("onnxruntime"):
    CORE.append("onnxruntime>=1.17")

EXTRAS = {
    # Cyclone DDS transport (11: Fast DDS 3 compatibility setting), rosbag2 MCAP recording.
    "dds": ["cyclonedds>=11.0", "mcap>=1.1"],
    # ONNX export and ONNX Runtime backend (in the core install too, unless another
    # onnxruntime build is present; kept for `pip install 'unihoi_ros[onnx]'`).
    "onnx": ["onnx>=1.15", "onnxruntime>=1.17"],
    # Pictures (summary PNGs, loss curves, soak plots).
    "viz": ["matplotlib>=3.7"],
    # Training (progress bars and curves; DDP comes with torch).
    "train": ["matplotlib>=3.7"],
}
EXTRAS["all"] = sorted({dep for deps in EXTRAS.values() for dep in deps})

# ROS 2 Kilted from PyPI (the ros-python-wheels project: x86_64 manylinux, CPython 3.10-3.13):
# rclpy with rmw_fastrtps (Fast DDS 3.2) and the message packages the node uses. Where the
# wheels do not exist the markers make this extra install nothing (use a ROS installation).
_ROS_WHEELS = ("platform_system == 'Linux' and platform_machine == 'x86_64' "
               "and python_version >= '3.10' and python_version < '3.14'")
EXTRAS["ros"] = [f"{dep}; {_ROS_WHEELS}" for dep in (
    "ros-rclpy[fastrtps]", "ros-std-msgs", "ros-sensor-msgs", "ros-geometry-msgs",
    "ros-nav-msgs", "ros-diagnostic-msgs", "ros-ament-index-python",
)]
EXTRAS["test"] = EXTRAS["all"] + EXTRAS["ros"] + [
    "pytest>=7",
    "hypothesis>=6",
    "evo>=1.26",  # test-only reference for trajectory metrics
    "ruff>=0.5",
] + [f"{dep}; {_ROS_WHEELS}" for dep in (
    # the real-ROS 2 test tier: colcon builds the package; launch needs these two
    "colcon-common-extensions", "ros-ament-package", "osrf-pycommon", "lark",
)]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "bench", "bench.*"]),
    # Data folders are packages of their own (an __init__.py each), so setuptools installs
    # their files without "package would be ignored" warnings.
    package_data={PACKAGE: ["model/*.txt", "ros/*.xml"],
                  f"{PACKAGE}.model.weights": ["*.safetensors", "*.json", "*.md", "*.png", "*.onnx",
                                                 "*.weights"],
                  f"{PACKAGE}.train.configs": ["*.yaml"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", sorted(glob("config/*.yaml") + glob("config/*.rviz")
                                           + glob("config/*.json") + glob("config/*.xml"))),
    ],
    python_requires=">=3.10",
    install_requires=CORE,
    extras_require=EXTRAS,
    zip_safe=True,
    maintainer="unihoi_ros maintainers",
    maintainer_email="dev@unihoi.local",
    description="UniHOI/EgoMono4D egocentric metric 4D reconstruction for ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "unihoi = unihoi_ros.cli:main",
            "unihoi_node = unihoi_ros.ros.node_main:main",
            "unihoi_record = unihoi_ros.ros.recorder:main",
        ],
    },
)
