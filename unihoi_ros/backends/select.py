"""Choosing an inference backend: explicitly, or ``auto`` by what the machine has.

``auto`` prefers TensorRT > ONNX Runtime CUDA > torch CUDA > ONNX Runtime CPU (a given
graph) > ONNX Runtime CPU on a cached export of the model (``onnxruntime-cpu-cached``, the
small model only: :mod:`~unihoi_ros.backends.onnx_router`) > torch CPU, skipping each
candidate whose requirements are missing (no engine/ONNX file, no CUDA, no TensorRT,
``UNIHOI_ONNX_CACHE=0``, ...), and logs the choice with the reason for every skipped
candidate. ``onnxruntime-cpu-cached`` is ``auto``'s only: ``backend: onnxruntime`` means
a graph given by ``onnx_path``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from unihoi_ros.backends.base import Backend, torch_dtype
from unihoi_ros.errors import BackendError, ConfigError
from unihoi_ros.options import BackendName, parse, values

log = logging.getLogger(__name__)

#: Accepted backend names: the values of :class:`unihoi_ros.options.BackendName`.
BACKENDS = values(BackendName)


@dataclass
class Selection:
    """The chosen backend and why.

    Attributes:
        backend: the built :class:`~unihoi_ros.backends.base.Backend`.
        choice: the chosen candidate's name (``"torch-cpu"``, ``"onnxruntime-cpu-cached"``, ...).
        reason: why it could be used.
        skipped: candidate -> why it was not, for every candidate ranked above the choice
            (in ranking order).
        requested: the name asked for (``"auto"``, ``"torch"``, ...).
    """

    backend: Backend
    choice: str
    reason: str
    skipped: dict[str, str] = field(default_factory=dict)
    requested: str = "auto"

    def describe(self) -> str:
        """``chosen: <choice> (<reason>)``; for ``auto`` also why the candidate ranked just
        above the choice was skipped (on a CPU where torch serves: why not the ONNX
        router), the one a reader would have expected."""
        text = f"chosen: {self.choice} ({self.reason})"
        if self.requested == "auto" and self.skipped:
            nearest, why = list(self.skipped.items())[-1]
            text += f"; not {nearest}: {why}"
        return text


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _ort_providers() -> set[str]:
    try:
        import onnxruntime
    except ImportError:
        return set()
    return set(onnxruntime.get_available_providers())


def candidates(model, onnx_path, engine_path, device: str, precision: str,
               force_engine_update: bool = False, threads: int = 0):
    """``(name, available, reason, factory)`` in ``auto``'s order of preference."""
    from unihoi_ros.backends.onnx_router import auto_status
    from unihoi_ros.backends.tensorrt_backend import tensorrt_status

    cuda = _cuda_available() and (device in ("auto", "cuda") or device.startswith("cuda:"))
    providers = _ort_providers()
    onnx_ok = onnx_path is not None and Path(onnx_path).is_file()
    trt_ok, trt_reason = tensorrt_status()
    cuda_dev = device if device.startswith("cuda") else "cuda"

    def trt():
        from unihoi_ros.backends.tensorrt_backend import TensorRTBackend

        missing = engine_path is not None and not Path(engine_path).exists()
        if onnx_ok and (missing or force_engine_update):
            from unihoi_ros.backends.tensorrt_build import build_engine

            log.info("building TensorRT engine %s from %s%s", engine_path, onnx_path,
                     " (force_engine_update)" if not missing else "")
            build_engine(onnx_path, engine_path, precision if precision != "fp32" else "fp16")
        return TensorRTBackend(engine_path, cuda_dev,
                               None if model is None else model.config.to_dict())

    def ort(provs):
        from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        return lambda: OnnxRuntimeBackend(onnx_path, provs, threads)

    def cached_ort():
        from unihoi_ros.backends.onnx_router import OnnxRouterBackend

        return OnnxRouterBackend(model, threads)

    def torch_on(dev):
        from unihoi_ros.backends.torch_backend import TorchBackend

        return lambda: TorchBackend(model, dev, torch_dtype(precision) if dev != "cpu" else None)

    engine_ok = engine_path is not None and (Path(engine_path).exists() or onnx_ok)
    cached_ok = (False, "an ONNX file is given") if onnx_ok else auto_status(model, device)
    return [
        ("tensorrt", trt_ok and engine_ok,
         trt_reason if not trt_ok else ("engine (or ONNX to build it) given" if engine_ok
                                         else "no engine_file_path/onnx_file_path: build "
                                         "one with `unihoi build-engine`"), trt),
        ("onnxruntime-cuda", onnx_ok and cuda and "CUDAExecutionProvider" in providers,
         "no ONNX file" if not onnx_ok else (
             "ONNX Runtime has no CUDA provider" if "CUDAExecutionProvider" not in providers
             else ("no CUDA device" if not cuda else "ONNX file and CUDA provider")),
         ort(("CUDAExecutionProvider", "CPUExecutionProvider"))),
        ("torch-cuda", model is not None and cuda,
         "no CUDA device" if not cuda else ("no torch model" if model is None
                                            else "torch model on CUDA"), torch_on(cuda_dev)),
        ("onnxruntime-cpu", onnx_ok and "CPUExecutionProvider" in providers,
         "no ONNX file" if not onnx_ok else "ONNX file on the CPU",
         ort(("CPUExecutionProvider",))),
        ("onnxruntime-cpu-cached", *cached_ok, cached_ort),
        ("torch-cpu", model is not None and device in ("auto", "cpu"),
         "no torch model" if model is None else "torch model on the CPU", torch_on("cpu")),
    ]


def select_backend(name_or_auto: str = "auto", *, model=None, onnx_path=None,
                   engine_path=None, device: str = "auto", precision: str = "fp32",
                   force_engine_update: bool = False, threads: int = 0) -> Selection:
    """Build the requested backend (or the best available one for ``"auto"``).

    Args:
        name_or_auto: ``auto``, ``tensorrt``, ``onnxruntime`` or ``torch``.
        model: a ``UniHOI`` network (torch backends; also the config TensorRT checks).
        onnx_path: exported graph (ONNX Runtime; TensorRT builds from it if the engine is
            missing).
        engine_path: serialized TensorRT engine.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32``, ``fp16`` or ``bf16`` (reduced precision on CUDA only).
        force_engine_update: if TensorRT is chosen, rebuild its engine from ``onnx_path``
            even when it exists.
        threads: ONNX Runtime intra-op threads on the CPU (0: for a given graph, ONNX
            Runtime's default; for the cached export, torch's thread count when its session
            is made, i.e. the node's thread policy).
    """
    if parse(BackendName, name_or_auto) is None:
        raise ConfigError(f"unknown backend {name_or_auto!r}; choose from {BACKENDS}")
    if force_engine_update and engine_path and not onnx_path:
        raise ConfigError("force_engine_update needs onnx_file_path to rebuild from")
    cands = candidates(model, onnx_path, engine_path, device, precision, force_engine_update,
                       threads)
    if name_or_auto != "auto":
        cands = [c for c in cands
                 if c[0].split("-")[0] == name_or_auto and c[0] != "onnxruntime-cpu-cached"]
    skipped = {}
    for cname, ok, reason, factory in cands:
        if not ok:
            skipped[cname] = reason
            continue
        backend = factory()
        for s, why in skipped.items():
            log.info("backend %s skipped: %s", s, why)
        log.info("backend: %s (%s)", cname, reason)
        return Selection(backend, cname, reason, skipped, name_or_auto)
    detail = "; ".join(f"{k}: {v}" for k, v in skipped.items())
    raise BackendError(f"no usable backend for {name_or_auto!r} ({detail})")
