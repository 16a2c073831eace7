"""The inference-backend interface the streaming reconstructor talks to.

A backend splits the network in two so a stream pays one encoder pass per new frame:
``encode`` runs per frame (its output is cached in the ring buffer) and ``infer_window``
runs the rest of the network on a window of cached encodings.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


class Backend(ABC):
    """What the reconstructor needs from an inference backend: the base class of every
    backend (torch, ONNX Runtime, the ONNX router, TensorRT, the oracle, tests' stand-ins).

    Every capability is declared here with a default, so callers use it directly instead of
    probing for it (as ultralytics' ``AutoBackend`` declares its backends' flags). A
    subclass implements :meth:`encode` and :meth:`infer_window` and overrides what it has.

    Attributes:
        name: short identifier (``"torch"``, ``"onnxruntime"``, ``"tensorrt"``, ``"oracle"``).
        device: where it runs, for the start-up log (``"cpu"``, ``"cuda:0"``, ...).
        num_frames: window length F the network expects (4 for UniHOI).
        input_size: ``(H, W)`` pixels the backend is fixed to (an ONNX graph or TensorRT
            engine of one size), or None: any frame size.
        decodes_last: :meth:`infer_window` honours ``decode_last`` (decodes only the
            window's last frames: the torch network, the ONNX router, the oracle); the
            reconstructor asks for it when the older frames' results exist.
        background: prepare a new input size in a background thread while another path
            serves (the live node sets it); only backends that prepare per size read it.
        model: the torch network where the backend has one (``UniHOI``), else None.
    """

    name: str = "backend"
    device: str = "cpu"
    num_frames: int = 4
    input_size: tuple[int, int] | None = None
    decodes_last: bool = False
    background: bool = False
    model: Any = None

    @abstractmethod
    def encode(self, rgb: np.ndarray) -> Any:
        """Per-frame encoder features of ``rgb`` ``(H, W, 3)`` uint8 (opaque, cached)."""

    @abstractmethod
    def infer_window(self, features: Sequence[Any], rgbs: Sequence[np.ndarray],
                     flows_bwd: np.ndarray, decode_last: int | None = None
                     ) -> WindowPrediction:
        """Run the window network.

        Args:
            features: F cached outputs of :meth:`encode`, oldest first.
            rgbs: the F frames ``(H, W, 3)`` uint8, oldest first.
            flows_bwd: ``(F-1, H, W, 2)`` float32 pixels, frame t → t-1 for t = 1..F-1.
            decode_last: decode only the window's last n frames (where
                :attr:`decodes_last`); the prediction's ``first_frame`` says which it holds.
        """

    def prepare(self, size: tuple[int, int], decode_last: int | None = None) -> bool:
        """Get ready for ``(H, W)`` frames (decoding the last ``decode_last`` frames; None:
        the full window) where the backend prepares per size; True when it is ready or
        needs nothing (the default)."""
        return True

    def describe(self) -> str:
        """The backend's own state for the start-up line and diagnostics (which input size
        runs on what); empty where it has none (the default)."""
        return ""

    def recent_sizes(self) -> list[tuple[int, int]]:
        """``(H, W)`` sizes prepared before, most recently used first; empty (the default)
        for backends that need no preparation."""
        return []

    def common_sizes(self) -> list[tuple[int, int]]:
        """``(H, W)`` sizes worth preparing before the first frame of an unknown camera;
        empty (the default) for backends that need no preparation."""
        return []


@dataclass
class LoadedBackend(Backend):
    """What :func:`~unihoi_ros.backends.factory.load_backend` returns: the backend and what
    was loaded into it. It is a :class:`Backend` itself (by delegation), so the
    reconstructor takes it as it is.

    Attributes:
        backend: the inference backend (torch, ONNX Runtime, TensorRT).
        model_source: what was loaded, for the start-up line (path, bundled name, size).
        untrained: True for ``random:<size>`` networks (outputs are meaningless).
        precision: ``fp32``, ``fp16`` or ``bf16``.
        selection: the choice among the backends and why the others were skipped
            (:class:`unihoi_ros.backends.select.Selection`), or None.
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
        size = self.backend.input_size
        return None if size is None else (int(size[0]), int(size[1]))

    @property
    def decodes_last(self) -> bool:
        """Whether ``infer_window`` takes ``decode_last`` (see :class:`Backend`)."""
        return bool(self.backend.decodes_last)

    @property
    def background(self) -> bool:
        return self.backend.background

    @property
    def model(self) -> Any:
        """The torch network where the backend has one (torch backend), else None."""
        return self.backend.model

    def describe(self) -> str:
        """What runs and why, for the start-up line and diagnostics: name, device,
        precision, the selection's choice and reason (and why the next better candidate
        was skipped), and the backend's own state where it has one (the ONNX router: which
        input size runs on what)."""
        text = f"{self.name} on {self.device} ({self.precision})"
        if self.selection is not None:
            text += f", {self.selection.describe()}"
        state = self.backend.describe()
        return f"{text}; {state}" if state else text

    def prepare(self, size: tuple[int, int], tail_frames: int | None = None) -> bool:
        """Get ready for ``(H, W)`` frames now where the backend prepares per size (the
        ONNX router exports or loads its graphs); True if it is or needs nothing.
        ``tail_frames``: the stream will also ask for windows decoding only their last
        this many frames (``stride + 1``): prepared too where the backend keeps a graph
        per count."""
        ready = bool(self.backend.prepare(size))
        if tail_frames is not None and tail_frames < self.num_frames and self.decodes_last:
            self.backend.prepare(size, decode_last=int(tail_frames))
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
        """Where the backend prepares per input size (the ONNX router), do it for a new
        size in a background thread while it serves with torch (a live stream never
        waits), instead of in the first frame's call (deterministic offline runs)."""
        self.backend.background = bool(enabled)

    def recent_sizes(self) -> list[tuple[int, int]]:
        """``(H, W)`` sizes the backend has prepared before (the ONNX router: graphs in the
        cache for this model, most recently used first); empty for the others."""
        return list(self.backend.recent_sizes())

    def common_sizes(self) -> list[tuple[int, int]]:
        return list(self.backend.common_sizes())

    def expected_sizes(self) -> list[tuple[int, int]]:
        """``(H, W)`` sizes worth preparing before the first frame when the camera's is not
        known yet: the common ones (the ONNX router: the encoder inputs of 4:3 and 16:9
        frames, one graph each for every such camera) and the most recently used one;
        empty for backends that need no preparation."""
        return list(dict.fromkeys(self.common_sizes() + self.recent_sizes()[:1]))

    def encode(self, rgb: np.ndarray) -> Any:
        return self.backend.encode(rgb)

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
