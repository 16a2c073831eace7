"""ONNX export of the window network (static shapes, TensorRT-parsable operators).

Inputs ``frames (1, F, 3, H, W)`` float in [0, 1] and ``flows_bwd (1, F-1, 2, H, W)``
pixels; outputs ``depth (1, F, H, W)``, ``K (1, 3, 3)``, ``confidence (1, F-1, H, W)``
(with ``decode_last = n``: the last n frames' depth ``(1, n, H, W)`` and their pairs'
confidence ``(1, n-1, H, W)``, see :meth:`UniHOI.forward_window`).
The graph holds no SVD (poses are computed outside), no antialiased resize (those are
matrix products, :mod:`.resample`), no data-dependent control flow; the positional
embedding is precomputed for the export size. Metadata props record the configuration.
:func:`graph_ops` and :func:`unsupported_ops` check the graph against
``unihoi_ros/model/tensorrt_onnx_ops.txt`` (TensorRT's ONNX parser support list).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

from .checkpoint import FORMAT_VERSION
from .resample import resize_matrix
from .unihoi import EncoderFeatures, UniHOI

DEFAULT_OPSET = 17
TRT_OPS_FILE = Path(__file__).resolve().parent / "tensorrt_onnx_ops.txt"  # package data


class _WindowGraph(nn.Module):
    """Tuple-returning view of :class:`UniHOI` for tracing."""

    def __init__(self, model: UniHOI, decode_last: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.decode_last = decode_last

    def forward(self, frames: Tensor, flows_bwd: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model(frames, flows_bwd, self.decode_last)
        return out.depth, out.K, out.confidence


def export_onnx(
    model: UniHOI,
    path: str | Path,
    height: int,
    width: int,
    opset: int = DEFAULT_OPSET,
    provenance: str = "",
    decode_last: int | None = None,
) -> Path:
    """Write ``model`` as ONNX for ``height`` x ``width`` frames; return the path.
    ``decode_last``: the graph decodes only the window's last n frames (see module
    docstring); None: all F."""
    import onnx  # noqa: F401 - missing onnx fails here, before the export

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    f = cfg.frames
    was_training = model.training
    # The wrapper must be in eval mode too: the exporter restores the wrapper's mode after
    # tracing, recursively, which would otherwise leave BatchNorm in training mode.
    graph = _WindowGraph(model, decode_last).eval()
    n = f if decode_last is None else int(decode_last)
    hh, ww = model.network_input_shape(height, width)
    p = cfg.patch_size
    enc = model.encoder
    enc.freeze_pos_embed(hh // p, ww // p)
    chunk = model.confidence_chunk_rows
    model.confidence_chunk_rows = None  # one block per frame pair: a compact graph
    frames = torch.rand(1, f, 3, height, width)
    flows = torch.zeros(1, f - 1, 2, height, width)
    try:
        with torch.no_grad():
            torch.onnx.export(
                graph, (frames, flows), str(path), dynamo=False,
                input_names=["frames", "flows_bwd"], output_names=["depth", "K", "confidence"],
                opset_version=opset, do_constant_folding=True,
            )
    finally:
        model.train(was_training)
        model.confidence_chunk_rows = chunk
        enc.frozen_pos.clear()
    _write_metadata(path, _metadata(
        cfg, hh, ww, provenance, unihoi_input_size=json.dumps([height, width]),
        unihoi_decode_last=str(n),
        unihoi_outputs=f"depth (1,{n},H,W) metres, frames {f - n}..{f - 1}; K (1,3,3) "
        f"pixels, pixel centres at integers; confidence (1,{n - 1},H,W) in [0,1] for frames "
        f"{f - n + 1}..{f - 1}"))
    return path


class _AnySizeWindowGraph(nn.Module):
    """:class:`_WindowGraph` with the frames' antialiased resampling matrices as inputs."""

    def __init__(self, model: UniHOI, decode_last: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.decode_last = decode_last

    def forward(self, frames: Tensor, flows_bwd: Tensor, resize_y: Tensor,
                resize_x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, f = frames.shape[:2]
        x = self.model.normalize(frames.reshape(b * f, *frames.shape[2:]), (resize_y, resize_x))
        enc = self.model.encode_normalized(x)
        per_frame = [
            EncoderFeatures([t.reshape(b, f, *t.shape[1:])[:, i] for t in enc.features],
                            enc.cls_tokens.reshape(b, f, *enc.cls_tokens.shape[1:])[:, i])
            for i in range(f)
        ]
        out = self.model.forward_window(per_frame, flows_bwd, self.decode_last)
        return out.depth, out.K, out.confidence


#: Inputs of :func:`export_any_size_onnx`'s graph.
ANY_SIZE_INPUTS = ("frames", "flows_bwd", "resize_y", "resize_x")


def export_any_size_onnx(
    model: UniHOI, path: str | Path, net_height: int, net_width: int,
    opset: int = DEFAULT_OPSET, provenance: str = "", decode_last: int | None = None,
) -> Path:
    """Write the window network as ONNX for every frame size whose encoder input
    (:meth:`UniHOI.network_input_shape`) is ``net_height x net_width`` and that is at
    least that large (every 4:3 size from 128 x 96 up is 96 x 128 for ``tiny``); return
    the path.

    Inputs (:data:`ANY_SIZE_INPUTS`): ``frames (1, F, 3, H, W)`` in [0, 1], ``flows_bwd
    (1, F-1, 2, H, W)`` pixels (H and W are the graph's dynamic axes), ``resize_y (hh, H)``
    and ``resize_x (ww, W)``: the antialiased resampling matrices from the frames to the
    encoder's input (``resize_matrix(H, hh, antialias=True)``; the host makes them once
    per size). Outputs as :func:`export_onnx`'s at ``H x W``. The ops after the encoder
    (enlargements, flow sampling) follow the frames' size, so one export serves a new
    camera at once, with no per-size export on the critical path.
    """
    import onnx  # noqa: F401 - missing onnx fails here, before the export

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    f, p = cfg.frames, cfg.patch_size
    hh, ww = int(net_height), int(net_width)
    if hh % p or ww % p:
        raise ValueError(f"the encoder's input size must be a multiple of {p}, got {ww}x{hh}")
    n = f if decode_last is None else int(decode_last)
    # Trace at a size larger than the encoder's input on both axes (the graph's branches
    # are the enlargement ones) that maps to it: twice it where the token budget is full,
    # a pixel more where the input is under the budget (then only sizes close to it map).
    candidates = [(2 * hh, 2 * ww), (hh + 1, ww + 1)]
    traced = [c for c in candidates if tuple(model.network_input_shape(*c)) == (hh, ww)]
    if not traced:
        raise ValueError(f"no frame size larger than the encoder input {ww}x{hh} maps to it")
    height, width = traced[0]
    was_training = model.training
    graph = _AnySizeWindowGraph(model, decode_last).eval()
    model.encoder.freeze_pos_embed(hh // p, ww // p)
    chunk = model.confidence_chunk_rows
    model.confidence_chunk_rows = None  # whole frames: sizes follow the inputs
    args = (torch.rand(1, f, 3, height, width), torch.zeros(1, f - 1, 2, height, width),
            resize_matrix(height, hh, antialias=True), resize_matrix(width, ww, antialias=True))
    dynamic = {"frames": {3: "H", 4: "W"}, "flows_bwd": {3: "H", 4: "W"},
               "resize_y": {1: "H"}, "resize_x": {1: "W"}, "depth": {2: "H", 3: "W"},
               "confidence": {2: "H", 3: "W"}}
    try:
        with torch.no_grad():
            torch.onnx.export(
                graph, args, str(path), dynamo=False, input_names=list(ANY_SIZE_INPUTS),
                output_names=["depth", "K", "confidence"], dynamic_axes=dynamic,
                opset_version=opset, do_constant_folding=True,
            )
    finally:
        model.train(was_training)
        model.confidence_chunk_rows = chunk
        model.encoder.frozen_pos.clear()
    _write_metadata(path, _metadata(cfg, hh, ww, provenance, unihoi_graph="any_size",
                                    unihoi_decode_last=str(n)))
    return path


class _EncoderGraph(nn.Module):
    """One frame ``image (1, 3, H, W)`` -> per-level features and the class tokens."""

    def __init__(self, model: UniHOI) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        enc = self.model.encode(image)
        return (*enc.features, enc.cls_tokens)


class _WindowFromFeatures(nn.Module):
    """The rest of the network on F frames' cached encoder outputs (flat argument list:
    level-major features, then the F class tokens, then ``flows_bwd``)."""

    def __init__(self, model: UniHOI, levels: int) -> None:
        super().__init__()
        self.model, self.levels = model, levels

    def forward(self, *args: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f = self.model.config.frames
        feats, cls, flows = args[: self.levels * f], args[self.levels * f:-1], args[-1]
        per_frame = [EncoderFeatures([feats[lv * f + i] for lv in range(self.levels)], cls[i])
                     for i in range(f)]
        out = self.model.forward_window(per_frame, flows)
        return out.depth, out.K, out.confidence


def split_paths(path: str | Path) -> tuple[Path, Path]:
    """``x.onnx`` -> (``x.encoder.onnx``, ``x.window.onnx``)."""
    path = Path(path)
    stem = path.name.removesuffix(".onnx")
    return path.with_name(f"{stem}.encoder.onnx"), path.with_name(f"{stem}.window.onnx")


def export_split_onnx(
    model: UniHOI, path: str | Path, height: int, width: int, opset: int = DEFAULT_OPSET,
    provenance: str = "",
) -> tuple[Path, Path]:
    """Export the encoder (per frame) and the window network (on cached encoder outputs)
    as two graphs, so a stream runs one encoder pass per new frame.

    Encoder: input ``image (1, 3, H, W)`` in [0, 1]; outputs ``feat<l>`` ``(1, h, w, D)``
    per level and ``cls_tokens (1, 4, D)``. Window: inputs ``feat<l>_f<i>`` and
    ``cls_f<i>`` for frames i = 0..F-1 and ``flows_bwd (1, F-1, 2, H, W)``; outputs as
    :func:`export_onnx`. Returns the two paths (see :func:`split_paths`).
    """
    enc_path, win_path = split_paths(path)
    enc_path.parent.mkdir(parents=True, exist_ok=True)
    cfg, f = model.config, model.config.frames
    levels = len(cfg.output_idx)
    hh, ww = model.network_input_shape(height, width)
    was_training, chunk = model.training, model.confidence_chunk_rows
    model.encoder.freeze_pos_embed(hh // cfg.patch_size, ww // cfg.patch_size)
    model.confidence_chunk_rows = None
    image = torch.rand(1, 3, height, width)
    try:
        with torch.no_grad():
            enc = model.eval().encode(image)
            torch.onnx.export(
                _EncoderGraph(model).eval(), (image,), str(enc_path), dynamo=False,
                input_names=["image"],
                output_names=[f"feat{lv}" for lv in range(levels)] + ["cls_tokens"],
                opset_version=opset, do_constant_folding=True)
            args = tuple(enc.features[lv] for lv in range(levels) for _ in range(f))
            args += (enc.cls_tokens,) * f + (torch.zeros(1, f - 1, 2, height, width),)
            names = [f"feat{lv}_f{i}" for lv in range(levels) for i in range(f)]
            names += [f"cls_f{i}" for i in range(f)] + ["flows_bwd"]
            torch.onnx.export(
                _WindowFromFeatures(model, levels).eval(), args, str(win_path),
                dynamo=False, input_names=names, output_names=["depth", "K", "confidence"],
                opset_version=opset, do_constant_folding=True)
    finally:
        model.train(was_training)
        model.confidence_chunk_rows = chunk
        model.encoder.frozen_pos.clear()
    for p, graph in ((enc_path, "encoder"), (win_path, "window")):
        _write_metadata(p, _metadata(cfg, hh, ww, provenance,
                                     unihoi_input_size=json.dumps([height, width]),
                                     unihoi_graph=graph))
    return enc_path, win_path


def _metadata(cfg, hh: int, ww: int, provenance: str, **extra: str) -> dict[str, str]:
    """The ``unihoi_*`` metadata every exported graph carries, plus the graph's own keys."""
    return {"unihoi_config": json.dumps(cfg.to_dict()), "unihoi_size": cfg.size,
            "unihoi_network_input_size": json.dumps([hh, ww]),
            "unihoi_format_version": str(FORMAT_VERSION), "unihoi_provenance": provenance,
            **extra}


def _write_metadata(path: Path, meta: dict[str, str]) -> None:
    """Replace the ONNX file's metadata by ``meta`` (weights stay where they are)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(path))


def graph_ops(path: str | Path) -> set[str]:
    """Operator types used in an ONNX file (subgraphs included)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    ops: set[str] = set()

    def walk(graph) -> None:
        for node in graph.node:
            ops.add(node.op_type)
            for attr in node.attribute:
                if attr.g is not None and len(attr.g.node):
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(proto.graph)
    return ops


def tensorrt_ops(path: str | Path = TRT_OPS_FILE) -> set[str]:
    """Operator names listed in ``unihoi_ros/model/tensorrt_onnx_ops.txt``."""
    lines = Path(path).read_text().splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}


# Listed as supported by TensorRT but not allowed in our graph (dynamic control flow).
FORBIDDEN_OPS = frozenset({"Loop", "If", "Scan", "NonZero"})


def unsupported_ops(path: str | Path) -> set[str]:
    """Operators of the graph that TensorRT cannot parse or that we forbid."""
    ops = graph_ops(path)
    return (ops - tensorrt_ops()) | (ops & FORBIDDEN_OPS)
