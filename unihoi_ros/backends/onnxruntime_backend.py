"""ONNX Runtime backend: the exported window graph on CPU, CUDA or TensorRT providers."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unihoi_ros.backends import window_graph as wg
from unihoi_ros.backends.base import WindowPrediction
from unihoi_ros.optional import require

log = logging.getLogger(__name__)

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


class OnnxRuntimeBackend:
    """Runs an ``unihoi export`` graph with ONNX Runtime.

    Args:
        onnx_path: the exported model (static shapes: frames must be its input size).
        providers: ONNX Runtime execution providers in order of preference, e.g.
            ``("CUDAExecutionProvider", "CPUExecutionProvider")``; unavailable ones are
            skipped with a log line.
        threads: intra-op threads (0: ONNX Runtime's default).
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, providers: Sequence[str] = DEFAULT_PROVIDERS,
                 threads: int = 0) -> None:
        ort = require("onnxruntime")
        path = Path(onnx_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} does not exist (`unihoi export`)")
        available = set(ort.get_available_providers())
        chosen = [p for p in providers if p in available]
        for p in providers:
            if p not in available:
                log.info("ONNX Runtime provider %s is not available here; skipped", p)
        if not chosen:
            raise RuntimeError(f"none of the providers {list(providers)} is available "
                               f"(available: {sorted(available)})")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise RuntimeError(f"ONNX Runtime cannot load {path}: {exc}") from exc
        names = [i.name for i in self.session.get_inputs()]
        if tuple(names) != wg.INPUTS:
            raise ValueError(f"{path}: inputs {names}, expected {list(wg.INPUTS)} "
                             "(a graph written by `unihoi export`)")
        shape = self.session.get_inputs()[0].shape  # (1, F, 3, H, W)
        self.num_frames = int(shape[1])
        self.input_size = (int(shape[3]), int(shape[4]))
        meta = self.session.get_modelmeta().custom_metadata_map
        self.model_config = json.loads(meta["unihoi_config"]) if "unihoi_config" in meta else {}
        self.providers = self.session.get_providers()
        self.device = "cuda" if "CUDAExecutionProvider" in self.providers[:1] else "cpu"
        self.path = path

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        """``(3, H, W)`` float32 frame (the encoder runs inside the window graph)."""
        wg.check_size(self.input_size, rgb, f"ONNX model {self.path.name}")
        return wg.frame_tensor(rgb)

    def infer_window(self, features: Sequence[np.ndarray], rgbs: Sequence[np.ndarray],
                     flows_bwd: np.ndarray) -> WindowPrediction:
        depth, K, conf = self.session.run(list(wg.OUTPUTS), wg.window_inputs(features, flows_bwd))
        return wg.to_prediction(depth, K, conf)
