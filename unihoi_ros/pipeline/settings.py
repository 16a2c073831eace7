"""The stream's settings, in one place: what the live node (its parameters), ``unihoi
process`` (its flags), the batch runner (its done markers) and the reconstructor
(:class:`~unihoi_ros.pipeline.config.ReconstructorConfig`) are built from.

The node and ``unihoi process`` share these defaults, so the same input is processed the
same way live and offline (``test_settings.py`` checks both against
:class:`StreamSettings`):

- **size**: ``process_size`` when given, else frames whose longer side exceeds
  ``max_side`` (:data:`MAX_SIDE`, 320 px) are downscaled to it, aspect ratio kept
  (:func:`~unihoi_ros.pipeline.config.processing_size`);
- **flow**: DIS preset ``auto``, resolved from the processing size
  (:func:`flow_preset_for`: ``medium`` up to 320x240 pixels, ``fast`` above);
- **precision**: ``fp32``.

Pure: no ROS, no file or network I/O; the backend is loaded only by
:meth:`StreamSettings.load_backend`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from unihoi_ros.errors import ConfigError
from unihoi_ros.options import BackendName, FlowPreset, PoseSolver, Precision, values
from unihoi_ros.pipeline.config import ReconstructorConfig, processing_size

#: Default ``max_side`` of the node and ``unihoi process`` (pixels, longer side). The
#: bundled tiny network's encoder sees 96x128 for any 4:3 frame, so a 640x480 frame
#: processed at full size buys per-pixel work (depth upsampling, the per-pixel confidence
#: MLP, DIS flow), not accuracy: on the real 7-Scenes frames 320x240 keeps ATE and depth
#: within a few per cent of 640x480 at about twice the frame rate (README, "Offline
#: throughput"; ``bench/process_real.py``). A 160x120 camera is never enlarged.
MAX_SIDE = 320

_RECONSTRUCTOR = ReconstructorConfig()  # the algorithm's own defaults, not repeated here


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"HxW"`` (e.g. ``"240x320"``) -> ``(height, width)``; empty or None -> None.

    Raises:
        ConfigError: not two positive integers joined by ``x``.
    """
    if not text:
        return None
    parts = str(text).lower().split("x")
    try:
        h, w = (int(v) for v in parts)
    except ValueError:
        raise ConfigError(f"expected a size HxW (e.g. 240x320), got {text!r}") from None
    if h < 1 or w < 1:
        raise ConfigError(f"a size HxW needs positive sides, got {text!r}")
    return h, w


def flow_preset_for(preset: str, size: tuple[int, int]) -> str:
    """The DIS preset a stream processed at ``size`` ``(height, width)`` uses: ``preset``
    itself, or for ``auto`` the one :func:`unihoi_ros.flow.dis.auto_preset` picks."""
    if preset != FlowPreset.AUTO.value:
        return preset
    from unihoi_ros.flow.dis import auto_preset

    return auto_preset(int(size[0]), int(size[1]))


@dataclass(frozen=True)
class StreamSettings:
    """How a stream is processed, live or offline (defaults: the module docstring).

    Attributes:
        model: bundled model name, weights path, or ``random:<size>`` (untrained).
        backend: ``auto`` | ``tensorrt`` | ``onnxruntime`` | ``torch``.
        device: ``auto`` | ``cpu`` | ``cuda[:N]``.
        precision: ``fp32`` | ``fp16`` | ``bf16`` (the latter two on CUDA only).
        onnx_file: a graph from ``unihoi export`` ("" none).
        engine_file: a TensorRT engine ("" none).
        force_engine_update: rebuild the engine even if it exists.
        stride: run the window network every ``stride`` new frames (1-3).
        process_size: ``(height, width)`` frames are resized to, or None (the size rule).
        max_side: longer side frames are downscaled to when ``process_size`` is None,
            pixels; 0 never downscales.
        flow_preset: OpenCV DIS preset of the pose flow (``auto``: :func:`flow_preset_for`).
        pose_solver, num_pose_points, min_confidence, point_stride, min_point_confidence,
            stream_intrinsics, past_refinement: as
            :class:`~unihoi_ros.pipeline.config.ReconstructorConfig` (same defaults).
        mirror_average: average the network's output on each window with its output on
            the mirrored window (:class:`~unihoi_ros.backends.mirror.MirrorAveragedBackend`:
            twice the network's cost; off by default).
    """

    model: str = "unihoi-tiny"
    backend: str = BackendName.AUTO.value
    device: str = "auto"
    precision: str = Precision.FP32.value
    onnx_file: str = ""
    engine_file: str = ""
    force_engine_update: bool = False
    stride: int = _RECONSTRUCTOR.stride
    process_size: tuple[int, int] | None = None
    max_side: int = MAX_SIDE
    flow_preset: str = FlowPreset.AUTO.value
    pose_solver: str = _RECONSTRUCTOR.pose_solver
    num_pose_points: int = _RECONSTRUCTOR.num_pose_points
    min_confidence: float = _RECONSTRUCTOR.min_confidence
    point_stride: int = _RECONSTRUCTOR.point_stride
    min_point_confidence: float = _RECONSTRUCTOR.min_point_confidence
    stream_intrinsics: bool = _RECONSTRUCTOR.stream_intrinsics
    past_refinement: bool = _RECONSTRUCTOR.past_refinement
    mirror_average: bool = False

    def __post_init__(self) -> None:
        if self.process_size is not None:
            size = tuple(int(v) for v in self.process_size)
            if len(size) != 2 or min(size) < 1:
                raise ConfigError(f"process_size must be (height, width) > 0, got "
                                  f"{self.process_size!r}")
            object.__setattr__(self, "process_size", size)
        if self.max_side < 0:
            raise ConfigError(f"max_side must be >= 0 (0: never downscale), got "
                              f"{self.max_side}")
        for name, options in (("flow_preset", FlowPreset), ("pose_solver", PoseSolver),
                              ("precision", Precision), ("backend", BackendName)):
            value = getattr(self, name)
            if value not in values(options):
                raise ConfigError(f"{name} must be one of {', '.join(values(options))}, got "
                                  f"{value!r}")
            object.__setattr__(self, name, str(options(value).value))
        try:
            self.reconstructor_config()  # the algorithm's own range checks
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StreamSettings:
        """From a mapping of field names (unknown names are an error).

        Raises:
            ConfigError: an unknown field or an invalid value.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown stream setting(s) {unknown}; known: {sorted(names)}")
        return cls(**values)

    # ------------------------------------------------------------------ derived
    def reconstructor_config(self, **extra: Any) -> ReconstructorConfig:
        """The :class:`ReconstructorConfig` of these settings (``extra``: other fields of
        it, e.g. ``build_points``)."""
        return ReconstructorConfig(
            stride=self.stride, process_size=self.process_size,
            max_side=self.max_side or None, pose_solver=self.pose_solver,
            num_pose_points=self.num_pose_points, min_confidence=self.min_confidence,
            point_stride=self.point_stride, min_point_confidence=self.min_point_confidence,
            stream_intrinsics=self.stream_intrinsics, past_refinement=self.past_refinement,
            **extra)

    def processing_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """``(height, width)`` frames of ``size`` ``(height, width)`` are processed at."""
        return processing_size(self.reconstructor_config(), size)

    def size_rule(self) -> str:
        """The size rule in words (``"max side 320"``, ``"resize to 160x120"``, ...)."""
        if self.process_size is not None:
            return f"resize to {self.process_size[1]}x{self.process_size[0]} (width x height)"
        return f"max side {self.max_side}" if self.max_side else "input size"

    def effective(self, size: tuple[int, int] | None = None) -> dict[str, Any]:
        """Every setting (JSON-friendly), plus for input frames of ``size`` ``(height,
        width)`` what is actually used: ``input_size``, ``processing_size`` and the resolved
        ``flow_preset_used`` (None where ``size`` is None: not known yet)."""
        out = self.as_dict()
        out["size_rule"] = self.size_rule()
        work = None if size is None else self.processing_size(size)
        out["input_size"] = None if size is None else [int(size[0]), int(size[1])]
        out["processing_size"] = None if work is None else list(work)
        out["flow_preset_used"] = None if work is None else flow_preset_for(self.flow_preset,
                                                                             work)
        return out

    def describe(self, size: tuple[int, int] | None = None) -> str:
        """One line of the effective settings (for the start-up log)."""
        e = self.effective(size)
        if size is None:
            where = f"size {e['size_rule']}, flow DIS {self.flow_preset}"
        else:
            where = (f"{size[1]}x{size[0]} processed at {e['processing_size'][1]}x"
                     f"{e['processing_size'][0]} ({e['size_rule']}), flow DIS "
                     f"{e['flow_preset_used']}" + (" (auto)" if self.flow_preset == "auto"
                                                   else ""))
        return (f"settings: model {self.model}, backend {self.backend}, device {self.device}, "
                f"precision {self.precision}; {where}; window stride {self.stride}, pose "
                f"{self.pose_solver} ({self.num_pose_points} points, min confidence "
                f"{self.min_confidence}), intrinsics "
                f"{'per stream' if self.stream_intrinsics else 'per window'}"
                + ("; network averaged with its mirror image (mirror_average)"
                   if self.mirror_average else "")
                + ("; depth refined from earlier frames (past_refinement)"
                   if self.past_refinement else ""))

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values (``process_size`` a list or None)."""
        out = dataclasses.asdict(self)
        out["process_size"] = None if self.process_size is None else list(self.process_size)
        return out

    # ------------------------------------------------------------------ building
    def make_flow(self):
        """The pose flow: OpenCV DIS with :attr:`flow_preset`."""
        from unihoi_ros.flow import DISFlow

        return DISFlow(self.flow_preset)

    def load_backend(self, *, device: str | None = None, threads: int = 0):
        """The inference backend these settings name (``device`` overrides
        :attr:`device`, e.g. a torchrun rank's GPU; ``threads``: ONNX Runtime's, 0 its
        default).

        Raises:
            UnihoiError: the model or backend cannot be loaded (the message says why).
        """
        from unihoi_ros.backends.factory import load_backend

        return load_backend(self.model, self.backend, device or self.device, self.precision,
                            self.onnx_file or None, self.engine_file or None,
                            self.force_engine_update, threads=threads,
                            mirror_average=self.mirror_average)

    def make_reconstructor(self, backend, flow=None, poses=None):
        """A :class:`~unihoi_ros.pipeline.Reconstructor` on ``backend`` with these
        settings (``flow``: default :meth:`make_flow`; ``poses``: given poses by stamp, as
        the reconstructor takes them)."""
        from unihoi_ros.pipeline.reconstructor import Reconstructor

        return Reconstructor(backend, flow if flow is not None else self.make_flow(),
                             self.reconstructor_config(), poses=poses)
