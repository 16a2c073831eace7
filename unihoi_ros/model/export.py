"""ONNX export of the window network (static shapes, TensorRT-parsable operators).

Inputs ``frames (1, F, 3, H, W)`` float in [0, 1] and ``flows_bwd (1, F-1, 2, H, W)``
pixels; outputs ``depth (1, F, H, W)``, ``K (1, 3, 3)``, ``confidence (1, F-1, H, W)``.
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
from .unihoi import UniHOI

DEFAULT_OPSET = 17
TRT_OPS_FILE = Path(__file__).resolve().parent / "tensorrt_onnx_ops.txt"  # package data


class _WindowGraph(nn.Module):
    """Tuple-returning view of :class:`UniHOI` for tracing."""

    def __init__(self, model: UniHOI) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: Tensor, flows_bwd: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model(frames, flows_bwd)
        return out.depth, out.K, out.confidence


def export_onnx(
    model: UniHOI,
    path: str | Path,
    height: int,
    width: int,
    opset: int = DEFAULT_OPSET,
    provenance: str = "",
) -> Path:
    """Write ``model`` as ONNX for ``height`` x ``width`` frames; return the path."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    f = cfg.frames
    was_training = model.training
    # The wrapper must be in eval mode too: the exporter restores the wrapper's mode after
    # tracing, recursively, which would otherwise leave BatchNorm in training mode.
    graph = _WindowGraph(model).eval()
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
    proto = onnx.load(str(path), load_external_data=False)
    meta = {
        "unihoi_config": json.dumps(cfg.to_dict()),
        "unihoi_size": cfg.size,
        "unihoi_input_size": json.dumps([height, width]),
        "unihoi_network_input_size": json.dumps([hh, ww]),
        "unihoi_format_version": str(FORMAT_VERSION),
        "unihoi_provenance": provenance,
        "unihoi_outputs": "depth (1,F,H,W) metres; K (1,3,3) pixels, pixel centres at "
        "integers; confidence (1,F-1,H,W) in [0,1] for frames 1..F-1",
    }
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(path))
    return path


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
