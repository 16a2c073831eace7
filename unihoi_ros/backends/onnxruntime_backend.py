"""ONNX Runtime backend: the exported window graph on CPU, CUDA or TensorRT providers."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unihoi_ros.backends import window_graph as wg
from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.optional import require

log = logging.getLogger(__name__)

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)

#: Whether new sessions' intra-op threads spin while waiting for work (ONNX Runtime's
#: default) rather than sleep: :func:`set_idle_spinning`.
_idle_spinning = True


def set_idle_spinning(enabled: bool) -> None:
    """Sessions made from now on (in this process) keep their idle intra-op threads
    spinning (``True``, ONNX Runtime's default: the lowest latency when the cores are
    free) or let them sleep (``False``: ``unihoi process``, whose tracker and writer
    threads work between the network's calls on the same cores; measured on 2 busy cores,
    50 real frames: the command's CPU time 14.0 to 10.1 s, bench/RESULTS.md). The live
    node keeps the default."""
    global _idle_spinning
    _idle_spinning = bool(enabled)


class OnnxRuntimeBackend(Backend):
    """Runs an ``unihoi export`` graph with ONNX Runtime.

    Three layouts: the fused window graph (the encoder runs inside every window call: F
    encoder passes per window) for one frame size, the same for any frame size that maps
    to its encoder input (``unihoi export --any-size``), or a split export (``unihoi
    export --split``: give the ``*.encoder.onnx`` path; ``*.window.onnx`` beside it is
    loaded too), which runs the encoder once per new frame and caches its outputs, as the
    torch backend does.

    Args:
        onnx_path: the exported model (frames must be its input size, or for an any-size
            graph map to its encoder input: :meth:`size_problem`).
        providers: ONNX Runtime execution providers in order of preference, e.g.
            ``("CUDAExecutionProvider", "CPUExecutionProvider")``; unavailable ones are
            skipped with a log line.
        threads: intra-op threads (0: ONNX Runtime's default).
        frame_size: for an any-size graph, ``(H, W)`` the session is specialised to
            (ONNX Runtime's free-dimension override: static shapes, faster; other sizes
            are then refused by ONNX Runtime); None keeps H and W free.
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, providers: Sequence[str] = DEFAULT_PROVIDERS,
                 threads: int = 0, frame_size: tuple[int, int] | None = None) -> None:
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
        if not _idle_spinning:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if frame_size is not None:  # an any-size graph's H and W fixed for this session:
            # ONNX Runtime plans it for static shapes (1.35x faster at 120x160), no export
            opts.add_free_dimension_override_by_name("H", int(frame_size[0]))
            opts.add_free_dimension_override_by_name("W", int(frame_size[1]))

        def load(p: Path):
            try:
                return ort.InferenceSession(str(p), sess_options=opts, providers=chosen)
            except Exception as exc:  # onnxruntime raises its own exception types
                raise RuntimeError(f"ONNX Runtime cannot load {p}: {exc}") from exc

        self.session = load(path)
        names = [i.name for i in self.session.get_inputs()]
        self.encoder_session = None
        if names == ["image"]:  # split export: this is the encoder, the window is beside it
            window = path.with_name(path.name.replace(".encoder.onnx", ".window.onnx"))
            if window == path or not window.is_file():
                raise FileNotFoundError(f"{path} is an encoder graph but {window.name} (its "
                                        "window graph) is not beside it")
            self.encoder_session, self.session = self.session, load(window)
            self._feature_names = [o.name for o in self.encoder_session.get_outputs()]
            self._window_names = [i.name for i in self.session.get_inputs()]
            shape = self.encoder_session.get_inputs()[0].shape  # (1, 3, H, W)
            self.num_frames = int(self.session.get_inputs()[-1].shape[1]) + 1
            self.input_size = (int(shape[2]), int(shape[3]))
        elif tuple(names) == wg.ANY_SIZE_INPUTS:  # any frame size mapping to its encoder input
            self.num_frames = int(self.session.get_inputs()[0].shape[1])
            self.input_size = None
        elif tuple(names) != wg.INPUTS:
            raise ValueError(f"{path}: inputs {names}, expected {list(wg.INPUTS)} or "
                             f"{list(wg.ANY_SIZE_INPUTS)} (a graph written by `unihoi export`)")
        else:
            shape = self.session.get_inputs()[0].shape  # (1, F, 3, H, W)
            self.num_frames = int(shape[1])
            self.input_size = (int(shape[3]), int(shape[4]))
        meta = self.session.get_modelmeta().custom_metadata_map
        self.model_config = json.loads(meta["unihoi_config"]) if "unihoi_config" in meta else {}
        #: ``(hh, ww)`` encoder input of an any-size graph (None: a fixed-size graph).
        self.network_input_size: tuple[int, int] | None = None
        if tuple(names) == wg.ANY_SIZE_INPUTS:
            if not self.model_config or "unihoi_network_input_size" not in meta:
                raise ValueError(f"{path}: an any-size graph without its unihoi metadata")
            self.network_input_size = tuple(json.loads(meta["unihoi_network_input_size"]))
        self.providers = self.session.get_providers()
        self.device = "cuda" if "CUDAExecutionProvider" in self.providers[:1] else "cpu"
        self.path = path

    @property
    def encoder_passes_per_window(self) -> int:
        """Encoder runs per window call: 0 for a split export (cached per frame), else F."""
        return 0 if self.encoder_session is not None else self.num_frames

    def size_problem(self, size: tuple[int, int]) -> str | None:
        """Why ``(H, W)`` frames cannot run on this graph (None: they can)."""
        if self.network_input_size is not None:
            from unihoi_ros.model.config import ModelConfig

            rule = ModelConfig.from_dict(self.model_config).network_input_shape
            return wg.any_size_problem(rule, self.network_input_size, size)
        if tuple(size) != tuple(self.input_size):
            return (f"built for {self.input_size[1]}x{self.input_size[0]} frames, got "
                    f"{size[1]}x{size[0]}")
        return None

    def encode(self, rgb: np.ndarray):
        """Split export: the encoder outputs of the frame (run once, cached by the caller);
        fused graph: the ``(3, H, W)`` float32 frame (the encoder runs in the window call)."""
        if self.network_input_size is not None:
            problem = self.size_problem(rgb.shape[:2])
            if problem:
                raise ValueError(f"ONNX model {self.path.name}: {problem}")
        else:
            wg.check_size(self.input_size, rgb, f"ONNX model {self.path.name}")
        frame = wg.frame_tensor(rgb)
        if self.encoder_session is None:
            return frame
        return self.encoder_session.run(self._feature_names, {"image": frame[None]})

    def infer_window(self, features: Sequence, rgbs: Sequence[np.ndarray],
                     flows_bwd: np.ndarray, decode_last: int | None = None
                     ) -> WindowPrediction:
        """Depth ``(F, H, W)``, K ``(3, 3)`` and confidence ``(F-1, H, W)`` of the whole
        window: a graph decodes every frame (``decodes_last`` is False, so
        ``decode_last`` is ignored; the prediction's ``first_frame`` is 0)."""
        if self.encoder_session is None:
            inputs = wg.window_inputs(features, flows_bwd)
            if self.network_input_size is not None:
                inputs.update(wg.resize_inputs(*flows_bwd.shape[1:3], *self.network_input_size))
        else:
            inputs = _split_window_inputs(features, flows_bwd)
        depth, K, conf = self.session.run(list(wg.OUTPUTS), inputs)
        return wg.to_prediction(depth, K, conf, self.num_frames)


def _split_window_inputs(features: Sequence[list[np.ndarray]],
                         flows_bwd: np.ndarray) -> dict[str, np.ndarray]:
    """Window-graph inputs from F cached encoder outputs (``[feat0, ..., cls_tokens]``)."""
    levels = len(features[0]) - 1
    inputs = {f"feat{lv}_f{i}": feats[lv] for lv in range(levels)
              for i, feats in enumerate(features)}
    inputs.update({f"cls_f{i}": feats[-1] for i, feats in enumerate(features)})
    inputs["flows_bwd"] = np.ascontiguousarray(flows_bwd.transpose(0, 3, 1, 2),
                                               dtype=np.float32)[None]
    return inputs
