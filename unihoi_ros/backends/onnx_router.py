"""The default CPU backend of the small model: ONNX Runtime on the any-size window graph
(:func:`~unihoi_ros.model.export.export_any_size_onnx`), one per encoder input size,
shipped with the package for the bundled model or exported once and cached
(:mod:`~unihoi_ros.backends.onnx_graph_cache`), with torch as the fallback.

Why: for unihoi-tiny the fused graph (one ONNX Runtime call per window, the encoder inside)
is 1.3-1.7x faster than torch eager on the CPU (``bench/backends.py``), and one call that
releases the GIL leaves a live node's transport threads more room than torch's many small
operators. For the ViT sizes the encoder dominates and the fused graph runs it F times
per window, so ``auto`` keeps torch there (:data:`FUSED_GRAPH_SIZES`).

One graph serves every frame size that maps to its encoder input (every 4:3 camera from
128x96 up is 96 x 128 for ``tiny``, every 16:9 one 80 x 144): a new camera size needs no
export, and the bundled model's graphs for those two come with the package, so the first
frame of a first run is served like the hundredth. Per encoder input there are two graphs:
the full window's, and one that decodes only the window's last :data:`TAIL_FRAMES` frames
(what a stride-1 stream needs once its older frames have results; about 40 % cheaper).

- A node prepares the graphs of the common encoder inputs (4:3 and 16:9,
  :func:`onnx_graph_cache.common_network_sizes`) and of its fixed processing size before it says
  ready (:meth:`OnnxRouterBackend.prepare`): loaded when shipped or cached, exported
  otherwise (another model's weights: seconds, once).
- A frame of another encoder input prepares that input's graphs: by default right there,
  so every window of an offline run comes from the same backend and the results do not
  depend on timing; with ``background`` (the live node) in a background thread while torch
  serves, and the switch is logged once with the reason.
- A graph that cannot be exported or loaded leaves its frames to torch for good, said
  once (WARNING) with the reason, and in :meth:`~OnnxRouterBackend.describe`; so do frames
  smaller than the encoder input (the graph only enlarges).
- The first window of a frame size also makes a session of the same graph specialised
  to that size (ONNX Runtime's free-dimension override: static shapes, about 1.35x faster
  at 120x160; under a second, no export): right there offline; for a live node in the
  background while the any-size session serves (same results), from a graph's second
  window on (the full window's graph serves a stream's first window only).
- An ONNX Runtime error at run time: the window is recomputed with torch (logged) and
  torch serves that encoder input from then on.

Switching is seamless because every cached frame keeps its float tensor (what the graph
takes) and torch's encoder features are computed when torch needs them (at most once per
frame).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unihoi_ros.backends import onnx_graph_cache
from unihoi_ros.backends import window_graph as wg
from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.errors import one_line

log = logging.getLogger(__name__)

#: Model sizes whose fused graph is faster than torch on the CPU (measured: tiny 1.3-1.7x;
#: the ViT sizes would pay F encoder passes per window instead of one).
FUSED_GRAPH_SIZES = ("tiny",)

_PREPARING, _READY, _FAILED = "preparing", "ready", "failed"

#: Frames decoded by each size's second graph: a stride-1 stream's new frame and the one
#: before it (the anchor its pose chains from).
TAIL_FRAMES = 2


def auto_status(model: Any, device: str) -> tuple[bool, str]:
    """Whether ``auto`` may use :class:`OnnxRouterBackend` for ``model`` on ``device``,
    and why (or why not). Checks what can be checked without exporting."""
    if model is None:
        return False, "no torch model to export"
    if device not in ("auto", "cpu"):
        return False, f"device {device} (the cached graph runs on the CPU)"
    off = onnx_graph_cache.disabled_reason()
    if off:
        return False, off
    size = model.config.size
    if size not in FUSED_GRAPH_SIZES:
        return False, (f"the fused graph runs the encoder {model.config.frames}x per window: "
                       f"slower than torch for {size}")
    for module in ("onnxruntime", "onnx"):
        if importlib.util.find_spec(module) is None:
            return False, f"{module} is not installed (pip install 'unihoi_ros[onnx]')"
    import onnxruntime

    if "CPUExecutionProvider" not in onnxruntime.get_available_providers():
        return False, "ONNX Runtime has no CPU provider"
    return True, (f"{size} model on the CPU: fused any-size ONNX graph per encoder input, "
                  f"shipped for the bundled model or exported once into "
                  f"{onnx_graph_cache.onnx_cache_dir()}")


@dataclass
class CachedFrame:
    """What ``encode`` returns (the reconstructor caches it per frame).

    Attributes:
        tensor: ``(3, H, W)`` float32 in [0, 1], the fused graph's per-frame input.
        torch_features: torch's encoder features, once torch has needed them (else None).
    """

    tensor: np.ndarray
    torch_features: Any = None


@dataclass
class _Graph:
    """The state of one encoder input size's graph."""

    status: str = _PREPARING
    backend: Any = None  # OnnxRuntimeBackend once ready
    reason: str = ""  # why it failed
    thread: threading.Thread | None = None
    info: Any = None  # onnx_graph_cache.CachedGraph
    threads: int = 0  # ONNX Runtime intra-op threads
    ready_s: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    # Sessions of the same graph specialised to one frame size (H and W fixed): faster,
    # made at the first window of that size (no export: under a second).
    sized: dict[tuple[int, int], Any] = field(default_factory=dict)
    sizing: set[tuple[int, int]] = field(default_factory=set)
    uses: dict[tuple[int, int], int] = field(default_factory=dict)  # windows per frame size


class OnnxRouterBackend(Backend):
    """ONNX Runtime on ``model``'s any-size graphs, one per encoder input size; torch
    meanwhile and as the fallback (see module docstring).

    Each encoder input size has two graphs: one that decodes every frame of the window,
    and one that decodes only the last :data:`TAIL_FRAMES` (a stream with stride 1 asks
    for that in every window after its first: see ``UniHOI.forward_window``). They are
    prepared together, in one thread; a request for another number of frames prepares its
    graph on first use. Sizes given to the methods are frame sizes ``(H, W)``; an encoder
    input size is a frame size too (it maps to itself).

    Args:
        model: a ``UniHOI`` network (the torch backend runs it; its weights key the cache).
        threads: ONNX Runtime intra-op threads; 0 takes torch's thread count when a graph's
            session is made (the node's thread policy sets it before the first frame).
        cache_dir: folder of cached graphs (default :func:`onnx_graph_cache.onnx_cache_dir`).
        background: prepare a new encoder input's graphs in a background thread while torch
            serves (the live node sets it); False: in the first ``encode`` call of that size.

    Attributes:
        name: ``"onnxruntime"`` while a graph serves the latest frame's size, else
            ``"torch"``.
        device: ``"cpu"``.
        model: the torch network.
    """

    device = "cpu"
    decodes_last = True

    def __init__(self, model: Any, threads: int = 0, cache_dir: str | Path | None = None,
                 background: bool = False) -> None:
        from unihoi_ros.backends.torch_backend import TorchBackend

        self._torch = TorchBackend(model, "cpu")
        self.model = self._torch.model
        self.num_frames = self._torch.num_frames
        self.threads = int(threads)
        self.cache_dir = cache_dir
        self.background = background
        self._lock = threading.Lock()
        self._graphs: dict[tuple[int, int, int], _Graph] = {}  # (hh, ww, decoded frames)
        self._size: tuple[int, int] | None = None  # latest frame's
        self._refused: dict[tuple[int, int], str] = {}  # frame sizes no graph can take

    # ------------------------------------------------------------------ state
    @property
    def name(self) -> str:
        graphs = list(self._graphs.items())
        if self._size is None:  # no frame yet: an encoder input prepared ahead (warm-up)
            ready = any(g.status == _READY for _, g in graphs)
        else:  # any graph of the latest frame's (the full window's or the last frames')
            net = self._net(self._size)
            ready = self._size not in self._refused and any(
                g.status == _READY for key, g in graphs if key[:2] == net)
        return "onnxruntime" if ready else "torch"

    def _net(self, size: tuple[int, int]) -> tuple[int, int]:
        """The encoder input ``(hh, ww)`` of ``(H, W)`` frames."""
        hh, ww = self.model.network_input_shape(int(size[0]), int(size[1]))
        return int(hh), int(ww)

    def _key(self, size: tuple[int, int], decode_last: int | None) -> tuple[int, int, int]:
        n = self.num_frames if decode_last is None else int(decode_last)
        return (*self._net(size), n)

    def _variants(self) -> list[int]:
        """Decoded-frame counts prepared together for a size: the full window first."""
        f = self.num_frames
        return [f] + ([TAIL_FRAMES] if TAIL_FRAMES < f else [])

    def status(self, size: tuple[int, int], decode_last: int | None = None) -> str:
        """``"preparing"``, ``"ready"``, ``"failed"`` or ``"new"`` for the graph that serves
        ``(H, W)`` frames decoding the last ``decode_last`` frames (None: all)."""
        graph = self._graphs.get(self._key(size, decode_last))
        return "new" if graph is None else graph.status

    def describe(self) -> str:
        """One line for the start-up log and diagnostics: what serves which frames."""
        with self._lock:
            graphs = sorted(self._graphs.items())
        refused = [f"{w}x{h} frames: torch ({why})" for (h, w), why in self._refused.items()]
        if not graphs:
            return "; ".join([
                "fused any-size ONNX graph, loaded or exported at the first frame of each "
                f"encoder input size{' (torch serves meanwhile)' if self.background else ''}",
                *refused])
        parts = []
        for (hh, ww, n), g in graphs:
            what = (f"frames mapping to the encoder input {ww}x{hh}, "
                    + ("all frames" if n == self.num_frames else f"last {n} frames"))
            if g.status == _READY:
                parts.append(f"{what}: ONNX Runtime, graph {g.info.origin} "
                             f"({g.threads} intra-op thread(s))")
            elif g.status == _PREPARING:
                parts.append(f"{what}: torch while the ONNX graph is prepared")
            else:
                parts.append(f"{what}: torch (ONNX Runtime unavailable: {g.reason})")
        return "; ".join(parts + refused)

    def recent_sizes(self) -> list[tuple[int, int]]:
        """Encoder input sizes ``(hh, ww)`` this model's graph is cached for, most recently
        used first (each is also a frame size that maps to itself)."""
        return onnx_graph_cache.cached_sizes(self.model, self.cache_dir)

    def common_sizes(self) -> list[tuple[int, int]]:
        """Encoder input sizes of 4:3 and 16:9 frames (prepared before a node is ready)."""
        return onnx_graph_cache.common_network_sizes(self.model)

    def _ready(self, size: tuple[int, int] | None, decode_last: int | None = None):
        """The ready ONNX Runtime backend serving ``(H, W)`` frames for ``decode_last``
        (None: the full graph), or None."""
        if size is None or size in self._refused:
            return None
        graph = self._graphs.get(self._key(size, decode_last))
        return graph.backend if graph is not None and graph.status == _READY else None

    def _servable(self, size: tuple[int, int]) -> bool:
        """Whether a graph can take ``(H, W)`` frames at all (said once when not)."""
        if size in self._refused:
            return False
        problem = wg.any_size_problem(self.model.network_input_shape, self._net(size), size)
        if problem:
            self._refused[size] = problem
            log.warning("ONNX Runtime cannot serve %dx%d frames (%s): the torch backend "
                        "serves them", size[1], size[0], problem)
            return False
        return True

    # ------------------------------------------------------------------ preparation
    def prepare(self, size: tuple[int, int], decode_last: int | None = None, *,
                wait: bool = True, timeout: float | None = None) -> bool:
        """Make the graphs serving ``(H, W)`` frames ready (loaded when shipped or cached,
        else exported; warmed up): the full window's and the last-:data:`TAIL_FRAMES` one,
        or only the one decoding ``decode_last`` frames when given.

        Args:
            wait: block until they are ready or have failed (else start them in the
                background, or in this thread when ``background`` is False).
            timeout: seconds to wait at most (None: as long as it takes).

        Returns:
            True when ONNX Runtime now serves ``(H, W)`` frames (the graph asked for, or
            the full window's).
        """
        size = (int(size[0]), int(size[1]))
        if not self._servable(size):
            return False
        net = self._net(size)
        wanted = self._variants() if decode_last is None else [self._key(size, decode_last)[2]]
        todo = []
        with self._lock:
            for n in wanted:
                if (*net, n) not in self._graphs:
                    self._graphs[(*net, n)] = _Graph()
                    todo.append(n)
            graphs = [self._graphs[(*net, n)] for n in wanted]
        if todo:
            if wait or not self.background:
                self._build_all(net, todo)
            else:
                thread = threading.Thread(target=self._build_all, args=(net, todo),
                                          name="unihoi-onnx-prepare", daemon=True)
                for n in todo:
                    self._graphs[(*net, n)].thread = thread
                thread.start()
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            for graph in graphs:
                graph.done.wait(None if deadline is None
                                else max(0.0, deadline - time.monotonic()))
        return graphs[0].status == _READY

    def _build_all(self, net: tuple[int, int], counts: list[int]) -> None:
        for n in counts:
            self._build(net, n, self._graphs[(*net, n)])

    def _build(self, net: tuple[int, int], n: int, graph: _Graph) -> None:
        """Load (or export) the graph for the encoder input ``net`` decoding the last ``n``
        frames and warm it up; never raises (the stream goes on)."""
        hh, ww = net
        f = self.num_frames
        what = "all frames" if n == f else f"last {n} frames"
        t0 = time.perf_counter()
        try:
            import torch

            threads = self.threads or torch.get_num_threads()
            backend, info = onnx_graph_cache.open_cached(self.model, hh, ww, threads,
                                                         self.cache_dir, None if n == f else n)
            backend.infer_window([np.zeros((3, hh, ww), np.float32)] * f, None,
                                 np.zeros((f - 1, hh, ww, 2), np.float32))  # first-run costs
            graph.backend, graph.info, graph.threads = backend, info, threads
            graph.ready_s = time.perf_counter() - t0
            graph.status = _READY
            log.info("ONNX Runtime serves frames mapping to the encoder input %dx%d (%s) from "
                     "now on (any-size graph %s, %d intra-op thread(s), ready in %.1f s)",
                     ww, hh, what, info.origin, threads, graph.ready_s)
        except Exception as exc:  # export, load or run: torch keeps serving this size
            graph.reason = one_line(exc)
            graph.status = _FAILED
            log.warning("ONNX Runtime cannot serve frames mapping to the encoder input %dx%d "
                        "(%s: %s): the torch backend serves them", ww, hh, what, graph.reason)
        finally:
            graph.done.set()

    def _sized(self, size: tuple[int, int], graph: _Graph):
        """The session of ``graph`` specialised to ``(H, W)`` frames, or None while it is
        made (in a background thread with ``background``, else now): the any-size session
        serves meanwhile, with the same results."""
        graph.uses[size] = graph.uses.get(size, 0) + 1
        # Live, a graph used once per stream (the full window's, at its start) is not worth
        # a session made beside the serving one on few cores; the steady-state graph is.
        if (size not in graph.sized and size not in graph.sizing
                and (not self.background or graph.uses[size] >= 2)):
            graph.sizing.add(size)
            if self.background:
                threading.Thread(target=self._specialise, args=(size, graph),
                                 name="unihoi-onnx-specialise", daemon=True).start()
            else:
                self._specialise(size, graph)
        return graph.sized.get(size)

    def _specialise(self, size: tuple[int, int], graph: _Graph) -> None:
        """Make ``graph``'s session for ``(H, W)`` frames and warm it up; never raises
        (the any-size session keeps serving)."""
        from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        h, w = size
        f = self.num_frames
        t0 = time.perf_counter()
        try:
            backend = OnnxRuntimeBackend(graph.info.path, ("CPUExecutionProvider",),
                                         graph.threads, frame_size=size)
            backend.infer_window([np.zeros((3, h, w), np.float32)] * f, None,
                                 np.zeros((f - 1, h, w, 2), np.float32))
            graph.sized[size] = backend
            log.info("ONNX Runtime: a session of the %s graph specialised to %dx%d frames "
                     "serves them from now on (static shapes; ready in %.1f s)",
                     graph.info.path.name, w, h, time.perf_counter() - t0)
        except Exception as exc:  # the any-size session serves on
            log.warning("ONNX Runtime could not specialise %s to %dx%d frames (%s): its "
                        "any-size session serves them", graph.info.path.name, w, h,
                        one_line(exc))

    # ------------------------------------------------------------------ Backend
    def encode(self, rgb: np.ndarray) -> CachedFrame:
        """The frame's float tensor, plus torch's encoder features while torch serves its
        size. The first frame of a new encoder input starts preparing its graphs."""
        size = (int(rgb.shape[0]), int(rgb.shape[1]))
        self._size = size
        if self._key(size, None) not in self._graphs and size not in self._refused:
            self.prepare(size, wait=False)
        frame = CachedFrame(wg.frame_tensor(rgb))
        if self._ready(size) is None and self._ready(size, TAIL_FRAMES) is None:
            frame.torch_features = self._torch.encode(rgb)
        return frame

    def infer_window(self, features: Sequence[CachedFrame], rgbs: Sequence[np.ndarray],
                     flows_bwd: np.ndarray, decode_last: int | None = None
                     ) -> WindowPrediction:
        """Depth ``(F, H, W)``, K ``(3, 3)``, confidence ``(F-1, H, W)`` of the window
        (``decode_last = n``: of its last n frames), from ONNX Runtime when the graph for
        ``(H, W)`` frames is ready, else from torch. While the graph for ``decode_last`` is
        not ready, the full window's serves when it is (the prediction says which frames it
        holds)."""
        size = (int(flows_bwd.shape[1]), int(flows_bwd.shape[2]))
        key = self._key(size, decode_last)
        if key not in self._graphs and size not in self._refused:
            self.prepare(size, wait=False, decode_last=key[2])  # a count not prepared yet
        for n in dict.fromkeys((key[2], self.num_frames)):  # the one asked for, then full
            ort = self._ready(size, n)
            if ort is None:
                continue
            ort = self._sized(size, self._graphs[(*key[:2], n)]) or ort
            try:
                return ort.infer_window([f.tensor for f in features], rgbs, flows_bwd)
            except Exception as exc:
                graph = self._graphs[(*key[:2], n)]
                graph.reason, graph.status = f"run failed: {one_line(exc)}", _FAILED
                log.error("ONNX Runtime failed on a %dx%d window (%s): torch serves its "
                          "encoder input from now on", size[1], size[0], graph.reason)
        feats = []
        for frame, rgb in zip(features, rgbs):
            if frame.torch_features is None:  # encoded while ONNX Runtime served
                frame.torch_features = self._torch.encode(rgb)
            feats.append(frame.torch_features)
        return self._torch.infer_window(feats, rgbs, flows_bwd, decode_last)
