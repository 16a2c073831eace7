"""Lazy imports of optional heavy dependencies with a clear message when missing.

ROS 2 (rclpy and its message packages) cannot be installed from PyPI, and TensorRT ships
with JetPack or NVIDIA's wheels; the rest of the package works without either.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from unihoi_ros.errors import UnihoiError

_HINTS = {
    "rclpy": "rclpy comes with a ROS 2 installation (Humble or Jazzy): source "
    "/opt/ros/<distro>/setup.bash, or use the Cyclone DDS transport "
    "(`unihoi run --transport dds`), which needs no ROS 2.",
    "tensorrt": "TensorRT is not installed: on Jetson it comes with JetPack; on a desktop "
    "`pip install tensorrt` (CUDA GPU required). Use --backend onnxruntime or torch instead.",
    "cyclonedds": "Cyclone DDS is not installed: `pip install 'unihoi_ros[dds]'`.",
    "onnxruntime": "ONNX Runtime is not installed: `pip install 'unihoi_ros[onnx]'`.",
    "onnx": "onnx is not installed: `pip install 'unihoi_ros[onnx]'`.",
    "rosbags": "rosbags is not installed: `pip install 'unihoi_ros[dds]'`.",
    "mcap": "mcap is not installed: `pip install 'unihoi_ros[dds]'`.",
    "matplotlib": "matplotlib is not installed: `pip install 'unihoi_ros[viz]'`.",
}


class MissingDependencyError(UnihoiError, ImportError):
    """An optional dependency needed for the requested feature is not importable."""


def require(module: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        hint = _HINTS.get(top, f"install the Python package providing '{top}'.")
        raise MissingDependencyError(f"'{module}' is not available ({exc}). {hint}") from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported (imports it)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
