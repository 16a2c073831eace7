"""The inference-backend interface the streaming reconstructor talks to.

A backend splits the network in two so a stream pays one encoder pass per new frame:
``encode`` runs per frame (its output is cached in the ring buffer) and ``infer_window``
runs the rest of the network on a window of cached encodings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from unihoi_ros.errors import ConfigError
from unihoi_ros.options import Precision, parse, values

log = logging.getLogger(__name__)


def torch_dtype(precision: str):
    """Torch compute dtype of a precision name: ``None`` for ``fp32`` (the network's own
    float32), ``torch.float16`` for ``fp16``, ``torch.bfloat16`` for ``bf16``.

    Raises:
        ConfigError: not one of :class:`unihoi_ros.options.Precision`'s values.
    """
    member = parse(Precision, precision)
    if member is None:
        raise ConfigError(f"precision must be {', '.join(values(Precision)[:-1])} or "
                          f"{values(Precision)[-1]}, got {precision!r}")
    if member is Precision.FP32:
        return None
    import torch

    return torch.float16 if member is Precision.FP16 else torch.bfloat16


@dataclass
class WindowPrediction:
    """Network output for one window of F frames, at the processed image size.

    Attributes:
        depth: ``(n, H, W)`` float32 metres (z-depth) of the window's frames
            ``first_frame..F-1`` (n = F - first_frame; all F unless the backend was asked
            to decode only the last frames).
        K: ``(3, 3)`` float64 pixels, one per window (from all F frames).
        confidence: ``(n-1, H, W)`` float32 in [0, 1], for frames ``first_frame+1..F-1``
            (the pose weight of the pair (t-1, t)).
        first_frame: window index of ``depth[0]``.
    """

    depth: np.ndarray
    K: np.ndarray
    confidence: np.ndarray
    first_frame: int = 0


@runtime_checkable
class Backend(Protocol):
    """What the reconstructor needs from an inference backend.

    Attributes:
        name: short identifier (``"torch"``, ``"onnxruntime"``, ``"tensorrt"``, ``"oracle"``).
        device: where it runs, for the start-up log (``"cpu"``, ``"cuda:0"``, ...).
        num_frames: window length F the network expects (4 for UniHOI).

    A backend that can decode only a window's last frames (the torch network, the cached
    ONNX graphs) also has ``decodes_last = True`` and takes ``infer_window(...,
    decode_last=n)``; the reconstructor asks for it when the older frames' results exist.
    """

    name: str
    device: str
    num_frames: int

    def encode(self, rgb: np.ndarray) -> Any:
        """Per-frame encoder features of ``rgb`` ``(H, W, 3)`` uint8 (opaque, cached)."""
        ...

    def infer_window(
        self, features: Sequence[Any], rgbs: Sequence[np.ndarray], flows_bwd: np.ndarray
    ) -> WindowPrediction:
        """Run the window network.

        Args:
            features: F cached outputs of :meth:`encode`, oldest first.
            rgbs: the F frames ``(H, W, 3)`` uint8, oldest first.
            flows_bwd: ``(F-1, H, W, 2)`` float32 pixels, frame t → t-1 for t = 1..F-1.
        """
        ...


@dataclass
class LoadedBackend:
    """What :func:`~unihoi_ros.backends.factory.load_backend` returns: the backend and what
    was loaded into it. It is a :class:`Backend` itself (by delegation), so the
    reconstructor takes it as it is.

    Attributes:
        backend: the inference backend (torch, ONNX Runtime, TensorRT).
        model_source: what was loaded, for the start-up line (path, bundled name, size).
        untrained: True for ``random:<size>`` networks (outputs are meaningless).
        precision: ``fp32``, ``fp16`` or ``bf16``.
        selection: the choice among the backends and why the others were skipped
            (:class:`unihoi_ros.backends.select.Selection`).
    """

    backend: Backend
    model_source: str
    untrained: bool
    precision: str
    selection: Any

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def device(self) -> str:
        return self.backend.device

    @property
    def num_frames(self) -> int:
        return self.backend.num_frames

    @property
    def input_size(self) -> tuple[int, int] | None:
        """``(height, width)`` the backend is fixed to (ONNX graph, engine), or None."""
        size = getattr(self.backend, "input_size", None)
        return None if size is None else (int(size[0]), int(size[1]))

    def describe(self) -> str:
        """What runs and why, for the start-up line and diagnostics: name, device,
        precision, the selection's choice and reason, and the backend's own state where it
        has one (the cached ONNX backend: which input size runs on what)."""
        text = f"{self.name} on {self.device} ({self.precision})"
        sel = self.selection
        if sel is not None:
            text += f", chosen: {sel.choice} ({sel.reason})"
            why_not = sel.skipped.get("onnxruntime-cpu-cached")
            if sel.choice == "torch-cpu" and why_not:  # the default CPU backend was passed
                text += f"; not the cached ONNX graph: {why_not}"
        state = getattr(self.backend, "describe", None)
        return f"{text}; {state()}" if callable(state) else text

    def prepare(self, size: tuple[int, int], tail_frames: int | None = None) -> bool:
        """Get ready for ``(H, W)`` frames now where the backend prepares per size (the
        cached ONNX backend exports or loads its graphs); True if it is or needs nothing.
        ``tail_frames``: the stream will also ask for windows decoding only their last
        this many frames (``stride + 1``): prepared too where the backend keeps a graph
        per count."""
        prepare = getattr(self.backend, "prepare", None)
        if not callable(prepare):
            return True
        ready = bool(prepare(size))
        if (tail_frames is not None and tail_frames < self.num_frames
                and getattr(self.backend, "decodes_last", False)):
            prepare(size, decode_last=int(tail_frames))
        return ready

    def prepare_before_first_frame(self, size: tuple[int, int] | None,
                                   tail_frames: int | None = None) -> None:
        """What a stream does before it says ready (the node, ``unihoi process``): prepare
        ``size`` when the frames' size is fixed, else :meth:`expected_sizes`, so the line
        that names the backend names the one that serves the first frame. Logs each."""
        for expected in [size] if size is not None else self.expected_sizes():
            t0 = time.perf_counter()
            self.prepare(expected, tail_frames)
            log.info("backend prepared for frames like %dx%d: %.0f ms", expected[1],
                     expected[0], (time.perf_counter() - t0) * 1e3)

    def prepare_in_background(self, enabled: bool = True) -> None:
        """Where the backend prepares per input size (the cached ONNX backend), do it for a
        new size in a background thread while it serves with torch (a live stream never
        waits), instead of in the first frame's call (deterministic offline runs)."""
        if hasattr(self.backend, "background"):
            self.backend.background = bool(enabled)

    def recent_sizes(self) -> list[tuple[int, int]]:
        """``(H, W)`` sizes the backend has prepared before (the cached ONNX backend: graphs
        in the cache for this model, most recently used first); empty for the others."""
        recent = getattr(self.backend, "recent_sizes", None)
        return list(recent()) if callable(recent) else []

    def expected_sizes(self) -> list[tuple[int, int]]:
        """``(H, W)`` sizes worth preparing before the first frame when the camera's is not
        known yet: the common ones (the cached ONNX backend: the encoder inputs of 4:3 and
        16:9 frames, one graph each for every such camera) and the most recently used one;
        empty for backends that need no preparation."""
        common = getattr(self.backend, "common_sizes", None)
        sizes = list(common()) if callable(common) else []
        return list(dict.fromkeys(sizes + self.recent_sizes()[:1]))

    @property
    def model(self) -> Any:
        """The torch network where the backend has one (torch backend), else None."""
        return getattr(self.backend, "model", None)

    def encode(self, rgb: np.ndarray) -> Any:
        return self.backend.encode(rgb)

    @property
    def decodes_last(self) -> bool:
        """Whether ``infer_window`` takes ``decode_last`` (see :class:`Backend`)."""
        return bool(getattr(self.backend, "decodes_last", False))

    def infer_window(self, features: Sequence[Any], rgbs: Sequence[np.ndarray],
                     flows_bwd: np.ndarray, decode_last: int | None = None
                     ) -> WindowPrediction:
        if decode_last is None:
            return self.backend.infer_window(features, rgbs, flows_bwd)
        return self.backend.infer_window(features, rgbs, flows_bwd, decode_last=decode_last)


def as_loaded(backend: Backend | LoadedBackend) -> LoadedBackend:
    """``backend`` as a :class:`LoadedBackend` (a bare backend, e.g. a test's oracle, is
    described by its name, fp32, trained)."""
    if isinstance(backend, LoadedBackend):
        return backend
    return LoadedBackend(backend, f"{backend.name} backend", False, "fp32", None)
