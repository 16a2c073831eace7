"""Inference backends behind one interface: torch, ONNX Runtime, TensorRT.

ONNX Runtime and TensorRT are imported lazily (their modules import them on use);
:func:`select_backend` picks one by name or automatically.
"""

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.backends.select import Selection, select_backend
from unihoi_ros.backends.torch_backend import TorchBackend


def __getattr__(name: str):
    # Lazy: importing these pulls no optional dependency until they are constructed.
    if name == "OnnxRuntimeBackend":
        from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend
    if name == "TensorRTBackend":
        from unihoi_ros.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend
    raise AttributeError(name)


__all__ = ["Backend", "OnnxRuntimeBackend", "Selection", "TensorRTBackend", "TorchBackend",
           "WindowPrediction", "select_backend"]
