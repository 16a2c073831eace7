"""Streaming reconstruction: frames in, :class:`FrameResult` out. Knows no ROS, no training.

The reconstructor and the oracle backend (torch) are imported on first use, so the
settings (:mod:`unihoi_ros.pipeline.settings`, :mod:`~unihoi_ros.pipeline.config`) load
without torch (the node's parameters, ``unihoi --help``).
"""

from __future__ import annotations

import importlib

from unihoi_ros.pipeline.config import ReconstructorConfig
from unihoi_ros.pipeline.results import FrameResult

__all__ = ["FrameResult", "OracleBackend", "Reconstructor", "ReconstructorConfig"]

_LAZY = {"OracleBackend": "unihoi_ros.pipeline.oracle",
         "Reconstructor": "unihoi_ros.pipeline.reconstructor"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
