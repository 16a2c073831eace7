"""The on-disk cache of exported ONNX graphs: a torch model's fused window graph, exported
once per model and input size, reused by every later start.

Where: ``$UNIHOI_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/unihoi_ros/onnx``, else
``~/.cache/unihoi_ros/onnx`` (:func:`onnx_cache_dir`). Deleting the folder is always safe:
the next start exports again. ``UNIHOI_ONNX_CACHE=0`` turns the automatic use off
(:func:`disabled_reason`); ``backend: torch`` does too.

One file per graph, ``<size>_<H>x<W>_<key>.onnx`` (the graph that decodes every frame of
the window) or ``<size>_<H>x<W>_<key>.last<n>.onnx`` (one that decodes only the last n
frames: what a stream with stride n-1 needs, see ``UniHOI.forward_window``). The key
(:func:`cache_key`) is a sha256 over everything the graph is a function of: the weights and
buffers and the configuration (:func:`model_fingerprint`), the network's code
(:func:`code_fingerprint`: an edited ``unihoi_ros/model`` module is a new key), the input
size, the decoded frames, the opset, torch's version (its exporter writes the graph) and
:data:`CACHE_VERSION`. The key is also
written into the graph's metadata and checked on load, so a renamed file is not taken
for another model's.

Writes are atomic (a temporary file in the same folder, then ``os.replace``), so a
concurrent start or a crash never leaves a partial graph under the final name. A graph
ONNX Runtime cannot load (truncated, corrupt, another key) is deleted, logged and exported
again once (:func:`open_cached`); a second failure raises :class:`~unihoi_ros.errors.
BackendError`. At most :data:`MAX_ENTRIES` graphs are kept (least recently used go first).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unihoi_ros.errors import BackendError, one_line
from unihoi_ros.optional import require

log = logging.getLogger(__name__)

#: Version of the cache's layout and export settings; bump it to invalidate every entry.
CACHE_VERSION = 1
#: Graphs kept in the cache folder (each 6-7 MB for unihoi-tiny; two per input size, the
#: full window's and the last frames'); the least recently used beyond this are deleted
#: after an export.
MAX_ENTRIES = 32
#: Environment variable that turns the automatic export off (``0``, ``false``, ``off``, ``no``).
ENV_SWITCH = "UNIHOI_ONNX_CACHE"
#: Environment variable naming the cache root (``onnx/`` is created under it).
ENV_DIR = "UNIHOI_CACHE_DIR"
_KEY_PREFIX = "unihoi_ros onnx cache key "
_STALE_TMP_S = 3600.0  # temporary files older than this are leftovers of a killed export


def cache_root() -> Path:
    """``$UNIHOI_CACHE_DIR``, else ``$XDG_CACHE_HOME/unihoi_ros``, else
    ``~/.cache/unihoi_ros``."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "unihoi_ros"


def onnx_cache_dir() -> Path:
    """The folder of cached graphs: ``cache_root() / "onnx"`` (not created here)."""
    return cache_root() / "onnx"


def disabled_reason() -> str | None:
    """Why the automatic export is off (``UNIHOI_ONNX_CACHE=0``), or None when it is on."""
    value = os.environ.get(ENV_SWITCH, "").strip().lower()
    if value in ("0", "false", "off", "no"):
        return f"turned off by {ENV_SWITCH}={os.environ[ENV_SWITCH]}"
    return None


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 of the network's source (``unihoi_ros/model/*.py``, the exporter included),
    so a change to the model code never reuses a graph traced from the old code."""
    from unihoi_ros import model as model_pkg

    h = hashlib.sha256()
    for path in sorted(Path(model_pkg.__file__).resolve().parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def model_fingerprint(model: Any) -> str:
    """sha256 of ``model``'s configuration and every tensor of its state dict (name,
    dtype, shape, bytes). About 10 ms for unihoi-tiny (1.25 M values)."""
    import torch

    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16: hash the raw bits
            t = t.view(torch.int16)
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def cache_key(model: Any, height: int, width: int, opset: int | None = None,
              fingerprint: str | None = None, decode_last: int | None = None) -> str:
    """The hex key of ``model``'s graph for ``height`` x ``width`` frames (see module
    docstring). ``fingerprint``: :func:`model_fingerprint` when already computed;
    ``decode_last``: the graph decodes only the window's last n frames (None: all)."""
    import torch

    from unihoi_ros.model.export import DEFAULT_OPSET

    parts = {
        "cache_version": CACHE_VERSION,
        "model": fingerprint or model_fingerprint(model),
        "code": code_fingerprint(),
        "input_size": [int(height), int(width)],
        "opset": int(opset or DEFAULT_OPSET),
        "torch": torch.__version__.split("+")[0],
    }
    if decode_last is not None:
        parts["decode_last"] = int(decode_last)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass
class CachedGraph:
    """A graph in the cache.

    Attributes:
        path: the ``.onnx`` file.
        key: its :func:`cache_key`.
        exported: True when this call exported it (False: it was in the cache).
        seconds: wall time this call spent exporting (0 for a cache hit).
    """

    path: Path
    key: str
    exported: bool
    seconds: float


def graph_path(model: Any, height: int, width: int, directory: str | Path | None = None,
               key: str | None = None, decode_last: int | None = None) -> Path:
    """Where ``model``'s graph for ``height`` x ``width`` lives in the cache."""
    key = key or cache_key(model, height, width, decode_last=decode_last)
    folder = Path(directory) if directory is not None else onnx_cache_dir()
    part = "" if decode_last is None else f".last{int(decode_last)}"
    return folder / f"{model.config.size}_{int(height)}x{int(width)}_{key[:24]}{part}.onnx"


def ensure_graph(model: Any, height: int, width: int,
                 directory: str | Path | None = None,
                 decode_last: int | None = None) -> CachedGraph:
    """The cached graph of ``model`` for ``height`` x ``width`` frames, exported now if
    missing (a few seconds for unihoi-tiny). ``decode_last``: the graph that decodes only
    the window's last n frames (None: all of them).

    A copy of ``model`` is exported (the exporter changes module state while tracing), so
    another thread may run ``model`` meanwhile.

    Raises:
        BackendError: the export failed (exporter missing, unsupported operator, the folder
            not writable); the message says why.
    """
    key = cache_key(model, height, width, decode_last=decode_last)
    path = graph_path(model, height, width, directory, key, decode_last)
    if path.is_file():
        _touch(path)
        log.info("ONNX graph for %dx%d (width x height) from the cache: %s", width, height,
                 path)
        return CachedGraph(path, key, False, 0.0)
    t0 = time.perf_counter()
    _export_atomically(model, path, height, width, key, decode_last)
    seconds = time.perf_counter() - t0
    log.info("exported the ONNX graph for %dx%d (width x height) in %.1f s: %s", width, height,
             seconds, path)
    prune(path.parent)
    return CachedGraph(path, key, True, seconds)


def cached_sizes(model: Any, directory: str | Path | None = None) -> list[tuple[int, int]]:
    """``(H, W)`` sizes whose full-window graph of ``model`` (this weights and code) is in
    the cache, most recently used first."""
    folder = Path(directory) if directory is not None else onnx_cache_dir()
    prefix = f"{model.config.size}_"
    found = []
    fingerprint = None
    try:
        files = sorted(folder.glob(f"{prefix}*.onnx"), key=lambda p: p.stat().st_mtime,
                       reverse=True)
    except OSError:
        return []
    for path in files:
        try:
            size_text, key_text = path.stem[len(prefix):].split("_", 1)
            h, w = (int(v) for v in size_text.split("x"))
        except ValueError:
            continue
        fingerprint = fingerprint or model_fingerprint(model)
        if cache_key(model, h, w, fingerprint=fingerprint)[:24] == key_text:
            found.append((h, w))
    return found


def _export_atomically(model: Any, path: Path, height: int, width: int, key: str,
                       decode_last: int | None = None) -> None:
    require("onnx")  # export_onnx writes the metadata with it
    from unihoi_ros.model.export import export_onnx

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp",
                                        dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise BackendError(f"cannot write the ONNX cache folder {path.parent}: "
                           f"{one_line(exc)} (set {ENV_DIR})") from exc
    tmp = Path(tmp_name)
    try:
        with warnings.catch_warnings():  # the tracer's notes on Python branches: expected
            warnings.simplefilter("ignore")
            export_onnx(copy.deepcopy(model).eval(), tmp, height, width,
                        provenance=_KEY_PREFIX + key, decode_last=decode_last)
        os.replace(tmp, path)
    except Exception as exc:  # the exporter raises many types (torch, onnx, OSError)
        raise BackendError(f"ONNX export of the {model.config.size} model for "
                           f"{width}x{height} failed: {one_line(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def graph_key(session: Any) -> str | None:
    """The cache key recorded in a loaded ONNX Runtime session's metadata, or None."""
    meta = session.get_modelmeta().custom_metadata_map
    provenance = meta.get("unihoi_provenance", "")
    return provenance[len(_KEY_PREFIX):] if provenance.startswith(_KEY_PREFIX) else None


def open_cached(model: Any, height: int, width: int, threads: int = 0,
                directory: str | Path | None = None, decode_last: int | None = None):
    """An :class:`~unihoi_ros.backends.onnxruntime_backend.OnnxRuntimeBackend` (CPU) on
    ``model``'s cached graph for ``height`` x ``width`` (decoding the window's last
    ``decode_last`` frames, None: all), exporting it if missing.

    A cached file ONNX Runtime cannot load, or that carries another key, is deleted
    (logged) and exported again, once.

    Args:
        threads: ONNX Runtime intra-op threads (0: its default, one per core).

    Returns:
        ``(backend, CachedGraph)``.

    Raises:
        BackendError: export failed, or the re-exported graph does not load either.
    """
    from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    require("onnxruntime")
    for attempt in (1, 2):
        graph = ensure_graph(model, height, width, directory, decode_last)
        try:
            backend = OnnxRuntimeBackend(graph.path, ("CPUExecutionProvider",), threads)
            found = graph_key(backend.session)
            if found != graph.key:
                raise BackendError(f"it carries cache key {found!r}, expected {graph.key!r}")
            return backend, graph
        except Exception as exc:
            if graph.exported or attempt == 2:
                raise BackendError(f"ONNX Runtime cannot load the graph it just exported "
                                   f"({graph.path}): {one_line(exc)}") from exc
            log.warning("cached ONNX graph %s is unusable (%s): deleted, exporting it again",
                        graph.path, one_line(exc))
            graph.path.unlink(missing_ok=True)
    raise AssertionError("unreachable")


def prune(directory: str | Path | None = None, keep: int = MAX_ENTRIES) -> list[Path]:
    """Delete all but the ``keep`` most recently used graphs of ``directory`` (default
    :func:`onnx_cache_dir`), and temporary files left by killed exports; return what was
    deleted."""
    folder = Path(directory) if directory is not None else onnx_cache_dir()
    removed: list[Path] = []
    try:
        now = time.time()
        for tmp in folder.glob(".*.tmp"):
            if now - tmp.stat().st_mtime > _STALE_TMP_S:
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
        graphs = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in graphs[keep:]:
            old.unlink(missing_ok=True)
            removed.append(old)
    except OSError as exc:  # another process pruning at the same time, a read-only folder
        log.debug("ONNX cache prune of %s stopped: %s", folder, exc)
    return removed


def clear(directory: str | Path | None = None) -> int:
    """Delete every cached graph (and temporary file); return how many files went."""
    folder = Path(directory) if directory is not None else onnx_cache_dir()
    n = 0
    for path in [*folder.glob("*.onnx"), *folder.glob(".*.tmp")]:
        path.unlink(missing_ok=True)
        n += 1
    return n


def _touch(path: Path) -> None:
    """Mark ``path`` as recently used (for :func:`prune`); a read-only cache is fine."""
    try:
        os.utime(path)
    except OSError:
        pass
