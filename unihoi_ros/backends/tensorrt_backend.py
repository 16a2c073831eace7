"""TensorRT backend (TensorRT 10 API): tensors addressed by name, device buffers owned by
torch on one CUDA stream, ``execute_async_v3``; no pycuda.

TensorRT and CUDA are imported lazily: on a machine without them, constructing the
backend raises :class:`unihoi_ros.optional.MissingDependencyError` with the reason, and
:func:`tensorrt_status` reports why it is unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unihoi_ros.backends import window_graph as wg
from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.backends.engine_record import EngineError, RuntimeInfo, check_engine
from unihoi_ros.optional import require

log = logging.getLogger(__name__)


def tensorrt_status() -> tuple[bool, str]:
    """``(available, reason)``: TensorRT importable and a CUDA device present."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return False, f"tensorrt is not importable ({exc})"
    try:
        import torch
    except ImportError:
        return False, "torch is needed for TensorRT device buffers"
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    return True, "TensorRT and a CUDA device are present"


def runtime_info(device_index: int = 0) -> RuntimeInfo:
    """TensorRT version and GPU of this machine (for engine records and checks)."""
    trt = require("tensorrt")
    import torch

    props = torch.cuda.get_device_properties(device_index)
    return RuntimeInfo(trt.__version__, props.name, f"{props.major}.{props.minor}")


class TensorRTBackend(Backend):
    """Runs a serialized engine built by ``unihoi build-engine`` from an exported graph.

    Args:
        engine_path: the ``.engine`` file; its ``.engine.json`` record is checked first.
        device: CUDA device (``"cuda"`` or ``"cuda:N"``).
        expected_config: model configuration the caller expects (checked against the
            record when given).
    """

    name = "tensorrt"

    def __init__(self, engine_path: str | Path, device: str = "cuda",
                 expected_config: dict | None = None) -> None:
        trt = require("tensorrt")
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("TensorRTBackend needs a CUDA device; none is available")
        self._torch = torch
        self._device = torch.device(device)
        self.device = str(self._device)
        record = check_engine(engine_path, runtime_info(self._device.index or 0),
                              model_config=expected_config)
        self.input_size = tuple(record.input_size)
        self.model_config = record.model_config
        self.precision = record.precision
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        data = Path(engine_path).read_bytes()
        self._engine = self._runtime.deserialize_cuda_engine(data)
        if self._engine is None:
            raise EngineError(f"TensorRT could not deserialize {engine_path} (corrupt, or built "
                              "by another TensorRT version): rebuild it")
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream(self._device)
        self._buffers: dict[str, torch.Tensor] = {}
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            shape = tuple(self._engine.get_tensor_shape(name))
            dtype = _torch_dtype(trt, self._engine.get_tensor_dtype(name))
            buf = torch.empty(shape, dtype=dtype, device=self._device)
            self._buffers[name] = buf
            self._context.set_tensor_address(name, buf.data_ptr())
        missing = set(wg.INPUTS + wg.OUTPUTS) - set(self._buffers)
        if missing:
            raise EngineError(f"{engine_path} lacks tensors {sorted(missing)}")
        self.num_frames = int(self._buffers["frames"].shape[1])

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        wg.check_size(self.input_size, rgb, "TensorRT engine")
        return wg.frame_tensor(rgb)

    def infer_window(self, features: Sequence[np.ndarray], rgbs: Sequence[np.ndarray],
                     flows_bwd: np.ndarray, decode_last: int | None = None
                     ) -> WindowPrediction:
        """The whole window (an engine decodes every frame: ``decode_last`` is ignored)."""
        torch = self._torch
        inputs = wg.window_inputs(features, flows_bwd)
        with torch.cuda.stream(self._stream):
            for name, arr in inputs.items():
                buf = self._buffers[name]
                buf.copy_(torch.from_numpy(arr).to(buf.dtype), non_blocking=False)
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            outs = [self._buffers[n].float().cpu().numpy() for n in wg.OUTPUTS]
        self._stream.synchronize()
        return wg.to_prediction(*outs, self.num_frames)


def _torch_dtype(trt, dt):
    import torch

    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
             trt.int8: torch.int8, trt.bool: torch.bool}
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    return table[dt]
