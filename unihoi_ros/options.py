"""String option sets of the package, as ``str`` enums (importable without torch).

Each member equals its string value (``PoseSolver.PNP == "pnp"``), so configuration files,
ROS parameters and command-line arguments keep passing plain strings; :func:`values` gives
the tuple of accepted strings for ``choices=`` and error messages, :func:`parse` checks
and converts one (case-sensitive unless ``normalise`` lower-cases and strips it first).
"""

from __future__ import annotations

import enum
from typing import TypeVar

__all__ = ["Alignment", "BackendName", "FlowPreset", "PoseSolver", "Precision", "parse", "values"]

E = TypeVar("E", bound=enum.Enum)


class PoseSolver(str, enum.Enum):
    """Relative-pose solver of the streaming pipeline (``ReconstructorConfig.pose_solver``):
    ``pnp`` (RANSAC PnP of frame t-1's points against frame t's flow pixels) or
    ``procrustes`` (confidence-weighted rigid fit of both frames' points)."""

    PNP = "pnp"
    PROCRUSTES = "procrustes"


class Alignment(str, enum.Enum):
    """Trajectory alignment before ATE / RPE (:mod:`unihoi_ros.geometry.metrics`):
    ``sim3`` (Umeyama with scale), ``se3`` (rigid) or ``none``."""

    SIM3 = "sim3"
    SE3 = "se3"
    NONE = "none"


class BackendName(str, enum.Enum):
    """Inference backend to load (:func:`unihoi_ros.backends.select.select_backend`);
    ``auto`` picks the best available one."""

    AUTO = "auto"
    TENSORRT = "tensorrt"
    ONNXRUNTIME = "onnxruntime"
    TORCH = "torch"


class FlowPreset(str, enum.Enum):
    """OpenCV DIS optical-flow speed/quality preset; ``auto`` picks by frame size
    (:func:`unihoi_ros.flow.dis.auto_preset`)."""

    ULTRAFAST = "ultrafast"
    FAST = "fast"
    MEDIUM = "medium"
    AUTO = "auto"


class Precision(str, enum.Enum):
    """Inference precision: ``fp32``, or ``fp16`` / ``bf16`` (CUDA only for torch)."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"


def values(options: type[E]) -> tuple[str, ...]:
    """The accepted strings of an option enum, in declaration order."""
    return tuple(member.value for member in options)


def parse(options: type[E], value: object, normalise: bool = False) -> E | None:
    """``options(value)``, or None when ``value`` is not one of its strings.

    Args:
        options: one of this module's enums.
        value: a string (or already a member).
        normalise: strip and lower-case a string first.
    """
    if normalise and isinstance(value, str):
        value = value.strip().lower()
    try:
        return options(value)
    except ValueError:
        return None
