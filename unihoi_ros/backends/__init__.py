"""Inference backends behind one interface: torch, ONNX Runtime, TensorRT."""

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.backends.torch_backend import TorchBackend

__all__ = ["Backend", "TorchBackend", "WindowPrediction"]
