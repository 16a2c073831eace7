"""The on-disk cache of exported ONNX graphs: a torch model's any-size window graph
(:func:`~unihoi_ros.model.export.export_any_size_onnx`), exported once per model and
encoder input size, reused by every later start and by every frame size that maps to
that encoder input (every 4:3 camera is 96 x 128 for ``tiny``; every 16:9 one 80 x 144).

Where: graphs shipped with the package (:data:`SHIPPED_DIR`, the bundled model's, for the
encoder inputs of 4:3 and 16:9 frames: a fresh install exports nothing), then
``$UNIHOI_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/unihoi_ros/onnx``, else
``~/.cache/unihoi_ros/onnx`` (:func:`onnx_cache_dir`). Deleting the cache folder is always
safe: the next start exports again. ``UNIHOI_ONNX_CACHE=0`` turns the automatic use off
(:func:`disabled_reason`); ``backend: torch`` does too.

One file per graph, ``<size>_net<hh>x<ww>_<key>.onnx`` (the graph that decodes every
frame of the window) or ``<size>_net<hh>x<ww>_<key>.last<n>.onnx`` (one that decodes only
the last n frames: what a stream with stride n-1 needs, see ``UniHOI.forward_window``).
The key (:func:`cache_key`) is a sha256 over everything the graph is a function of: the
weights and buffers and the configuration (:func:`model_fingerprint`), the network's code
(:func:`code_fingerprint`: an edited ``unihoi_ros/model`` module is a new key), the encoder
input size, the decoded frames, the opset and :data:`CACHE_VERSION`. (Not torch's
version: another exporter writes the same function.) The key is also written into the
graph's metadata and checked on load, so a renamed file is not taken for another model's.
A shipped graph whose key no longer matches (the model code changed) is not used; the
test suite says so, and ``unihoi prepare --ship`` writes them again.

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
#: 2: any-size graphs keyed by the encoder input size.
CACHE_VERSION = 2
#: Graphs kept in the cache folder (each about 6 MB for unihoi-tiny; two per encoder input
#: size, the full window's and the last frames'); the least recently used beyond this are
#: deleted after an export.
MAX_ENTRIES = 32
#: Environment variable that turns the automatic export off (``0``, ``false``, ``off``, ``no``).
ENV_SWITCH = "UNIHOI_ONNX_CACHE"
#: Environment variable naming the cache root (``onnx/`` is created under it).
ENV_DIR = "UNIHOI_CACHE_DIR"
_KEY_PREFIX = "unihoi_ros onnx cache key "
_STALE_TMP_S = 3600.0  # temporary files older than this are leftovers of a killed export
#: Graphs shipped with the package (package data beside the bundled weights).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "model" / "weights"
#: Frame sizes whose encoder inputs get shipped graphs and are prepared before a node with
#: an unknown camera says ready: 4:3 and 16:9, the usual camera aspect ratios.
COMMON_FRAME_SIZES = ((480, 640), (720, 1280))


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


def cache_key(model: Any, net_height: int, net_width: int, opset: int | None = None,
              fingerprint: str | None = None, decode_last: int | None = None) -> str:
    """The hex key of ``model``'s any-size graph for the encoder input ``net_height x
    net_width`` (see module docstring). ``fingerprint``: :func:`model_fingerprint` when
    already computed; ``decode_last``: the graph decodes only the window's last n frames
    (None: all)."""
    from unihoi_ros.model.export import DEFAULT_OPSET

    parts = {
        "cache_version": CACHE_VERSION,
        "graph": "any_size",
        "model": fingerprint or model_fingerprint(model),
        "code": code_fingerprint(),
        "network_input_size": [int(net_height), int(net_width)],
        "opset": int(opset or DEFAULT_OPSET),
    }
    if decode_last is not None:
        parts["decode_last"] = int(decode_last)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass
class CachedGraph:
    """A graph in the cache (or shipped with the package).

    Attributes:
        path: the ``.onnx`` file.
        key: its :func:`cache_key`.
        exported: True when this call exported it (False: it was there).
        seconds: wall time this call spent exporting (0 when it was there).
        shipped: it came with the package (:data:`SHIPPED_DIR`).
    """

    path: Path
    key: str
    exported: bool
    seconds: float
    shipped: bool = False

    @property
    def origin(self) -> str:
        """``"exported"``, ``"shipped with the package"`` or ``"from the cache"``."""
        return ("exported" if self.exported else
                "shipped with the package" if self.shipped else "from the cache")


def graph_path(model: Any, net_height: int, net_width: int,
               directory: str | Path | None = None, key: str | None = None,
               decode_last: int | None = None) -> Path:
    """Where ``model``'s graph for the encoder input ``net_height x net_width`` lives in
    ``directory`` (default: the cache)."""
    key = key or cache_key(model, net_height, net_width, decode_last=decode_last)
    folder = Path(directory) if directory is not None else onnx_cache_dir()
    part = "" if decode_last is None else f".last{int(decode_last)}"
    return folder / (f"{model.config.size}_net{int(net_height)}x{int(net_width)}_{key[:24]}"
                     f"{part}.onnx")


def ensure_graph(model: Any, net_height: int, net_width: int,
                 directory: str | Path | None = None,
                 decode_last: int | None = None, shipped: bool = True) -> CachedGraph:
    """The graph of ``model`` for the encoder input ``net_height x net_width``: shipped
    with the package (``shipped``), else cached, else exported now (a few seconds for
    unihoi-tiny). ``decode_last``: the graph that decodes only the window's last n frames
    (None: all of them).

    A copy of ``model`` is exported (the exporter changes module state while tracing), so
    another thread may run ``model`` meanwhile.

    Raises:
        BackendError: the export failed (exporter missing, unsupported operator, the folder
            not writable); the message says why.
    """
    key = cache_key(model, net_height, net_width, decode_last=decode_last)
    packaged = graph_path(model, net_height, net_width, SHIPPED_DIR, key, decode_last)
    if shipped and packaged.is_file():
        return CachedGraph(packaged, key, False, 0.0, shipped=True)
    path = graph_path(model, net_height, net_width, directory, key, decode_last)
    if path.is_file():
        _touch(path)
        log.info("ONNX graph for the encoder input %dx%d (width x height) from the cache: %s",
                 net_width, net_height, path)
        return CachedGraph(path, key, False, 0.0)
    t0 = time.perf_counter()
    _export_atomically(model, path, net_height, net_width, key, decode_last)
    seconds = time.perf_counter() - t0
    log.info("exported the ONNX graph for the encoder input %dx%d (width x height) in %.1f s: "
             "%s", net_width, net_height, seconds, path)
    prune(path.parent)
    return CachedGraph(path, key, True, seconds)


def cached_sizes(model: Any, directory: str | Path | None = None) -> list[tuple[int, int]]:
    """Encoder input sizes ``(hh, ww)`` whose full-window graph of ``model`` (these weights
    and code) is in the cache, most recently used first."""
    folder = Path(directory) if directory is not None else onnx_cache_dir()
    prefix = f"{model.config.size}_net"
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


def common_network_sizes(model: Any) -> list[tuple[int, int]]:
    """Encoder input sizes ``(hh, ww)`` of :data:`COMMON_FRAME_SIZES` for ``model``."""
    sizes = [tuple(model.network_input_shape(h, w)) for h, w in COMMON_FRAME_SIZES]
    return list(dict.fromkeys(sizes))


def write_shipped(model: Any, decode_counts: tuple[int | None, ...],
                  directory: str | Path = SHIPPED_DIR) -> list[Path]:
    """Export ``model``'s graphs for :func:`common_network_sizes` (each decoded-frame count
    of ``decode_counts``, None: all frames) into ``directory`` (the package's shipped
    graphs), their weights stored once in ``<size>_net.weights`` beside them
    (:func:`share_initializers`), and delete that folder's other graphs of this model size
    (stale keys). For maintainers: ``unihoi prepare --ship``. Returns the graph paths."""
    folder = Path(directory)
    blob = folder / f"{model.config.size}_net.weights"
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        staged = []
        for hh, ww in common_network_sizes(model):
            for n in decode_counts:
                key = cache_key(model, hh, ww, decode_last=n)
                path = graph_path(model, hh, ww, tmp, key, n)
                _export_atomically(model, path, hh, ww, key, n)
                staged.append(path)
        share_initializers(staged, Path(tmp) / blob.name)
        for old in folder.glob(f"{model.config.size}_net*.onnx"):
            old.unlink()
        written = []
        for path in [*staged, Path(tmp) / blob.name]:
            os.chmod(path, 0o644)
            os.replace(path, folder / path.name)
            written.append(folder / path.name)
    return written[:-1]


def share_initializers(paths: list[Path], blob: Path, min_bytes: int = 1024) -> int:
    """Move the weights (initializers of at least ``min_bytes``) of the ONNX graphs
    ``paths`` into one external-data file ``blob`` beside them, each distinct tensor once
    (the graphs of one model share almost all of them: 4 graphs of unihoi-tiny hold 20 MB
    of initializers, 5 MB of them distinct). Rewrites the graphs in place; returns the
    blob's size in bytes. ONNX Runtime reads the blob relative to the graph's folder."""
    import onnx
    from onnx.external_data_helper import set_external_data

    align = 4096  # page-aligned offsets: ONNX Runtime may map the file
    offsets: dict[str, int] = {}
    with open(blob, "wb") as out:
        for path in paths:
            proto = onnx.load(str(path), load_external_data=False)
            for tensor in proto.graph.initializer:
                data = tensor.raw_data
                if len(data) < min_bytes:
                    continue
                digest = hashlib.sha256(data).hexdigest()
                if digest not in offsets:
                    out.seek(-(-out.tell() // align) * align)
                    offsets[digest] = out.tell()
                    out.write(data)
                set_external_data(tensor, location=blob.name, offset=offsets[digest],
                                  length=len(data))
                tensor.ClearField("raw_data")
            onnx.save(proto, str(path))
        return out.tell()


def _export_atomically(model: Any, path: Path, net_height: int, net_width: int, key: str,
                       decode_last: int | None = None) -> None:
    require("onnx")  # the exporter writes the metadata with it
    from unihoi_ros.model.export import export_any_size_onnx

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
            export_any_size_onnx(copy.deepcopy(model).eval(), tmp, net_height, net_width,
                                 provenance=_KEY_PREFIX + key, decode_last=decode_last)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, path)
    except Exception as exc:  # the exporter raises many types (torch, onnx, OSError)
        raise BackendError(f"ONNX export of the {model.config.size} model for the encoder "
                           f"input {net_width}x{net_height} failed: {one_line(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def graph_key(session: Any) -> str | None:
    """The cache key recorded in a loaded ONNX Runtime session's metadata, or None."""
    meta = session.get_modelmeta().custom_metadata_map
    provenance = meta.get("unihoi_provenance", "")
    return provenance[len(_KEY_PREFIX):] if provenance.startswith(_KEY_PREFIX) else None


def open_cached(model: Any, net_height: int, net_width: int, threads: int = 0,
                directory: str | Path | None = None, decode_last: int | None = None):
    """An :class:`~unihoi_ros.backends.onnxruntime_backend.OnnxRuntimeBackend` (CPU) on
    ``model``'s any-size graph for the encoder input ``net_height x net_width`` (decoding
    the window's last ``decode_last`` frames, None: all), exporting it if it is neither
    shipped nor cached.

    A cached file ONNX Runtime cannot load, or that carries another key, is deleted
    (logged) and exported again, once; an unusable shipped one is left alone and the graph
    is exported into the cache.

    Args:
        threads: ONNX Runtime intra-op threads (0: its default, one per core).

    Returns:
        ``(backend, CachedGraph)``.

    Raises:
        BackendError: export failed, or the re-exported graph does not load either.
    """
    from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    require("onnxruntime")
    shipped = True
    for attempt in (1, 2):
        graph = ensure_graph(model, net_height, net_width, directory, decode_last, shipped)
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
            log.warning("%s ONNX graph %s is unusable (%s): %s", "shipped" if graph.shipped
                        else "cached", graph.path, one_line(exc),
                        "exporting it into the cache" if graph.shipped
                        else "deleted, exporting it again")
            if graph.shipped:
                shipped = False
            else:
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
