"""The node's parameters: names, defaults and descriptions from ``config/egocentric.yaml``.

The YAML file is the single source of parameter names, defaults and documentation: the
defaults are read from it, and each parameter's description is the comment at the end of
its line (rclpy's ``ParameterDescriptor(description=...)``). :class:`NodeParams` lists the
names with their types (a test checks they match the file) and adds ROS 2's built-in
``use_sim_time``.

Parameter files follow ROS 2's layout (``<node or /**>: ros__parameters: {...}``); a plain
mapping of names to values is accepted too. Values given as strings (command line
``-p name=value``) are converted to the parameter's type.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unihoi_ros.errors import ConfigError
from unihoi_ros.options import PoseSolver, values
from unihoi_ros.pipeline.settings import StreamSettings
from unihoi_ros.ros.qos import QosProfile, qos_profile

#: Accepted ``pose_solver`` values (the option enum's; importable without torch).
POSE_SOLVERS = values(PoseSolver)

#: Node name (rclpy) and the name diagnostics are reported under.
NODE_NAME = "unihoi_node"
#: Namespace of the node and its topics unless told otherwise (launch, ``unihoi run``).
DEFAULT_NAMESPACE = "/unihoi"
#: ROS 2 built-in parameters the node reads but does not declare itself (rclpy does).
BUILTIN_PARAMS: dict[str, tuple[Any, str]] = {
    "use_sim_time": (False, "use /clock (bag replay); forces live_mode false"),
}

_REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "egocentric.yaml"
_LINE = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_.]*)\s*:(.*)$")


@dataclass
class NodeParams:
    """All parameters of ``unihoi_node`` (meanings: the comments in ``egocentric.yaml``).

    Build with :meth:`load` (defaults from the YAML, then files, then overrides); the
    fields carry no defaults of their own on purpose.
    """

    # input
    image_topic: str
    use_compressed: bool
    use_camera_info: bool
    stream_intrinsics: bool
    camera_info_topic: str
    camera_info_timeout_s: float
    camera_info_slop_s: float
    input_qos: str
    input_qos_depth: int
    input_qos_match_publishers: bool
    input_timeout_s: float
    # model and inference
    model: str
    backend: str
    device: str
    precision: str
    engine_file_path: str
    onnx_file_path: str
    force_engine_update: bool
    inference_threads: int
    process_height: int
    process_width: int
    max_side: int
    # streaming
    window_stride: int
    min_confidence: float
    num_pose_points: int
    pose_solver: str
    flow_preset: str
    past_refinement: bool
    mirror_average: bool
    replay_queue_size: int
    live_mode: bool
    # outputs
    output_qos: str
    output_qos_depth: int
    world_frame: str
    camera_frame: str
    publish_tf: bool
    base_frame: str
    point_stride: int
    min_point_confidence: float
    trajectory_max_poses: int
    diagnostics_period_s: float
    # ROS 2 built-in
    use_sim_time: bool = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(
        cls,
        params_files: typing.Sequence[str | Path] = (),
        overrides: Mapping[str, Any] | None = None,
        *,
        defaults_file: str | Path | None = None,
        node_name: str = NODE_NAME,
        namespace: str = "",
    ) -> NodeParams:
        """Defaults from ``defaults_file`` (the package's YAML), then each of
        ``params_files`` (ROS 2 parameter files; sections for this node or ``/**``), then
        ``overrides`` (values or strings such as ``"true"``, ``"0.5"``).

        Raises:
            ValueError: an unknown parameter name, a value of the wrong type, or an
                invalid combination (see :meth:`validate`).
        """
        values, _ = read_params_file(defaults_file or default_params_file(), node_name, namespace)
        values = {**{k: v for k, (v, _) in BUILTIN_PARAMS.items()}, **values}
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values]
        if missing:
            raise ConfigError(f"the parameter file lacks {missing} (it is the source of defaults)")
        for path in params_files:
            file_values, _ = read_params_file(path, node_name, namespace)
            values.update(_checked(file_values, values, f"parameter file {path}"))
        values.update(_checked(dict(overrides or {}), values, "overrides"))
        params = cls(**{k: values[k] for k in values if k in _field_types()})
        params.validate()
        return params

    def replace(self, **changes: Any) -> NodeParams:
        """A copy with ``changes`` (converted and validated like :meth:`load`'s overrides)."""
        current = dataclasses.asdict(self)
        current.update(_checked(changes, current, "replace()"))
        params = NodeParams(**current)
        params.validate()
        return params

    # ------------------------------------------------------------------ derived values
    def validate(self) -> None:
        """Check ranges and combinations; raises ValueError with the parameter's name."""
        for name in ("input_qos", "output_qos"):
            qos_profile(getattr(self, name))
        if (self.process_height > 0) != (self.process_width > 0):
            raise ConfigError(
                "process_height and process_width must both be > 0 (resize) or both 0 "
                f"(input size), got {self.process_height} x {self.process_width}"
            )
        if self.process_height < 0 or self.process_width < 0:
            raise ConfigError("process_height/process_width must be >= 0")
        if not 1 <= self.window_stride <= 3:
            raise ConfigError(f"window_stride must be 1..3, got {self.window_stride}")
        if self.max_side < 0:
            raise ConfigError(f"max_side must be >= 0 (0: never downscale), got {self.max_side}")
        for name in ("point_stride", "trajectory_max_poses", "replay_queue_size",
                     "num_pose_points"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.inference_threads < 0:
            raise ConfigError(f"inference_threads must be >= 0 (0: auto), got "
                              f"{self.inference_threads}")
        for name in ("camera_info_timeout_s", "camera_info_slop_s", "diagnostics_period_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.base_frame and self.base_frame in (self.world_frame, self.camera_frame):
            raise ConfigError(f"base_frame must differ from world_frame and camera_frame, got "
                              f"{self.base_frame!r}")
        self.stream_settings()  # the stream's own checks (flow preset, solver, precision...)

    @property
    def process_size(self) -> tuple[int, int] | None:
        """``(height, width)`` frames are resized to, or None (input size)."""
        if self.process_height > 0 and self.process_width > 0:
            return (self.process_height, self.process_width)
        return None

    @property
    def effective_live_mode(self) -> bool:
        """Live queueing (drop when busy) unless replaying: ``use_sim_time`` forces replay."""
        return bool(self.live_mode) and not self.use_sim_time

    @property
    def input_qos_profile(self) -> QosProfile:
        return dataclasses.replace(qos_profile(self.input_qos, self.input_qos_depth),
                                   match_publishers=bool(self.input_qos_match_publishers))

    @property
    def output_qos_profile(self) -> QosProfile:
        return qos_profile(self.output_qos, self.output_qos_depth)

    @property
    def image_input_topic(self) -> str:
        """The subscribed image topic: ``<image_topic>/compressed`` with ``use_compressed``."""
        base = self.image_topic.rstrip("/")
        return f"{base}/compressed" if self.use_compressed else base

    def thread_policy(self):
        """The :class:`~unihoi_ros.threads.ThreadPolicy` of ``inference_threads`` on this
        machine (torch, OpenCV and ONNX Runtime thread counts)."""
        from unihoi_ros.threads import choose_thread_policy

        return choose_thread_policy(self.inference_threads)

    def stream_settings(self) -> StreamSettings:
        """The :class:`~unihoi_ros.pipeline.settings.StreamSettings` these parameters
        describe (what ``unihoi process`` builds from its flags; same defaults).

        Raises:
            ConfigError: an invalid value (names the setting).
        """
        return StreamSettings(
            model=self.model, backend=self.backend, device=self.device,
            precision=self.precision, onnx_file=self.onnx_file_path,
            engine_file=self.engine_file_path, force_engine_update=self.force_engine_update,
            stride=self.window_stride, process_size=self.process_size,
            max_side=self.max_side, flow_preset=self.flow_preset, pose_solver=self.pose_solver,
            num_pose_points=self.num_pose_points, min_confidence=self.min_confidence,
            point_stride=self.point_stride, min_point_confidence=self.min_point_confidence,
            stream_intrinsics=self.stream_intrinsics, past_refinement=self.past_refinement,
            mirror_average=self.mirror_average)

    def load_backend(self, model: str | None = None):
        """The inference backend these parameters name (``model`` overrides
        ``self.model``), its ONNX Runtime sessions sized by :meth:`thread_policy`: what
        ``unihoi run``, the rclpy node and the demo run.

        Raises:
            UnihoiError: the model or backend cannot be loaded (the message says why).
        """
        settings = self.stream_settings()
        if model:
            settings = dataclasses.replace(settings, model=model)
        return settings.load_backend(threads=self.thread_policy().onnxruntime_threads)

    def reconstructor_config(self):
        """The :class:`~unihoi_ros.pipeline.ReconstructorConfig` these parameters describe."""
        return self.stream_settings().reconstructor_config()

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- files
def default_params_file() -> Path:
    """The package's ``egocentric.yaml``: the checkout's ``config/``, else an installed copy
    (ament share directory or ``<prefix>/share/unihoi_ros/config``).

    Raises:
        FileNotFoundError: none of them exists.
    """
    candidates = [_REPO_CONFIG]
    try:  # installed as a ROS 2 package
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("unihoi_ros")) / "config" /
                          "egocentric.yaml")
    except Exception:  # ament not installed or package not indexed
        pass
    candidates.append(Path(sys.prefix) / "share" / "unihoi_ros" / "config" / "egocentric.yaml")
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        "config/egocentric.yaml not found (looked in " + ", ".join(map(str, candidates)) + ")"
    )


def read_params_file(
    path: str | Path, node_name: str = NODE_NAME, namespace: str = ""
) -> tuple[dict[str, Any], dict[str, str]]:
    """Values and end-of-line comments of a ROS 2 parameter file.

    Sections that apply: ``/**``, ``<node_name>``, ``/<node_name>`` and
    ``/<namespace>/<node_name>`` (later ones win); a file without ``ros__parameters`` is
    read as a plain mapping.

    Returns:
        ``(values, descriptions)``: parameter name -> value, and name -> the comment after
        it on its line (empty where there is none).
    """
    import yaml

    text = Path(path).read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"parameter file {path} is not a mapping")
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    keys = ["/**", node_name, f"/{node_name}", f"{ns}/{node_name}", f"{ns.lstrip('/')}/{node_name}"]
    sections = [v for v in data.values() if isinstance(v, dict) and "ros__parameters" in v]
    if sections:
        values: dict[str, Any] = {}
        for key in dict.fromkeys(keys):
            section = data.get(key)
            if isinstance(section, dict):
                values.update(section.get("ros__parameters") or {})
    else:
        values = dict(data)
    return values, _line_comments(text)


def param_descriptions(path: str | Path | None = None) -> dict[str, str]:
    """Name -> description of every parameter of the defaults file (plus built-ins)."""
    values, comments = read_params_file(path or default_params_file())
    out = {k: desc for k, (_, desc) in BUILTIN_PARAMS.items()}
    out.update({name: comments.get(name, "") for name in values})
    return out


def _line_comments(text: str) -> dict[str, str]:
    comments: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            comment = _comment_of(m.group(2))
            if comment is not None:
                comments[m.group(1)] = comment
    return comments


def _comment_of(rest: str) -> str | None:
    """Text after the first ``#`` outside quotes (preceded by whitespace), or None."""
    quote = None
    for i, ch in enumerate(rest):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1].isspace()):
            return rest[i + 1:].strip()
    return None


# --------------------------------------------------------------------------- values
@typing.no_type_check
def _field_types() -> dict[str, type]:
    hints = typing.get_type_hints(NodeParams)
    return {f.name: hints[f.name] for f in dataclasses.fields(NodeParams)}


def check_names(names: typing.Iterable[str], source: str) -> None:
    """Refuse parameter names the node does not have, with the closest one as a hint.

    Dotted names belong to other components (``diagnostic_updater.period``,
    ``qos_overrides.*``) and pass.

    Raises:
        ConfigError: naming every unknown parameter and ``source``.
    """
    types = _field_types()
    unknown = sorted(n for n in names if n not in types and "." not in n)
    if unknown:
        said = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(types), n=1)
            said.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"unknown parameter {', '.join(said)} in {source}; every "
                          "parameter is listed in config/egocentric.yaml")


def _checked(new: Mapping[str, Any], known: Mapping[str, Any], source: str) -> dict[str, Any]:
    check_names(new, source)
    types = _field_types()
    return {name: coerce(name, value, types[name]) for name, value in new.items()
            if name in types}


def coerce(name: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (bool, int, float or str); strings are parsed as ROS does
    (``true``/``false``, numbers).

    Raises:
        ValueError: naming the parameter, when the value does not fit the type.
    """
    def bad() -> ConfigError:
        return ConfigError(f"parameter {name!r} must be {kind.__name__}, got {value!r}")

    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise bad()
    if kind is int:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise bad() from None
        raise bad()
    if kind is float:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad() from None
        raise bad()
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        raise bad()
    return os.fspath(value) if isinstance(value, Path) else str(value)


def parse_assignment(text: str) -> tuple[str, str]:
    """``"name=value"`` or ``"name:=value"`` (ROS style) -> ``(name, value)``."""
    for sep in (":=", "="):
        if sep in text:
            name, value = text.split(sep, 1)
            if name.strip():
                return name.strip(), value
    raise ConfigError(f"expected NAME=VALUE, got {text!r}")
