"""What ``unihoi process``'s flags mean, for the single run and the batch runner alike:
the :class:`~unihoi_ros.pipeline.settings.StreamSettings` of the model flags, the known
camera of the camera flags, and the outputs of the output flags. Pure mapping of a parsed
command line (an ``argparse.Namespace``); flags a caller's namespace lacks take the
defaults.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from unihoi_ros.pipeline.settings import StreamSettings, parse_size

#: Default longest side of a run's bag images (``--bag-max-side``), pixels.
BAG_MAX_SIDE = 320

# flag (argparse dest) -> StreamSettings field, for the fields that have a flag
_FLAG_FIELDS = {"model": "model", "backend": "backend", "device": "device",
                "precision": "precision", "onnx_file": "onnx_file",
                "engine_file": "engine_file", "stride": "stride",
                "process_size": "process_size", "max_side": "max_side",
                "flow_preset": "flow_preset", "pose_solver": "pose_solver",
                "past_refinement": "past_refinement", "mirror_average": "mirror_average"}


def settings_from_args(args: Any) -> StreamSettings:
    """The stream settings of the model flags (absent or None: the default).

    Raises:
        ConfigError: a value out of range or an unknown option (exit status 2).
    """
    defaults = StreamSettings()
    values = {}
    for flag, name in _FLAG_FIELDS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if name == "process_size" and isinstance(value, str):
            value = parse_size(value)
        values[name] = value
    return dataclasses.replace(defaults, **values)


def output_options(args: Any) -> dict:
    """``process_source`` keywords of the output flags."""
    return {"write_bag": not getattr(args, "no_bag", False),
            "bag_max_side": getattr(args, "bag_max_side", BAG_MAX_SIDE) or None,
            "bag_image": not getattr(args, "no_bag_image", False)}


def choose_camera_for(args: Any, source):
    """The run's known camera from the camera flags and the source (None: predict K)."""
    from unihoi_ros.io.camera_info import choose_camera

    return choose_camera(source, getattr(args, "K", None), getattr(args, "camera_info", None),
                         getattr(args, "ignore_camera_info", False))


def first_frame_size(source) -> tuple[int, int] | None:
    """``(height, width)`` of ``source``'s first frame (read once; the run reads it again),
    or None when it cannot be read (the run then reports why)."""
    from unihoi_ros.io.sources import SourceError

    try:
        for _, rgb in source:
            return tuple(int(v) for v in rgb.shape[:2])
    except (SourceError, OSError, ValueError):
        return None
    return None
