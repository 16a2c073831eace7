"""ONNX export: ONNX Runtime reproduces torch, every operator is TensorRT-parsable."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unihoi_ros.cli import main as cli_main
from unihoi_ros.model import UniHOI, save_pretrained
from unihoi_ros.model.export import (
    TRT_OPS_FILE,
    export_onnx,
    graph_ops,
    tensorrt_ops,
    unsupported_ops,
)

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _run(path, frames, flows):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"frames": frames.numpy(), "flows_bwd": flows.numpy()})


def test_tiny_onnx_parity_ops_and_metadata(tmp_path):
    torch.manual_seed(0)
    model = UniHOI.from_size("tiny").eval()
    path = export_onnx(model, tmp_path / "tiny.onnx", 120, 160)
    assert not model.training  # the export leaves the model's mode alone
    g = torch.Generator().manual_seed(3)
    frames = torch.rand(1, 4, 3, 120, 160, generator=g)
    flows = 3 * torch.randn(1, 3, 2, 120, 160, generator=g)
    with torch.inference_mode():
        out = model(frames, flows)
    for ours, ref in zip(_run(path, frames, flows), (out.depth, out.K, out.confidence)):
        ref = ref.numpy()
        assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-4

    proto = onnx.load(str(path))
    assert proto.opset_import[0].version >= 17
    assert [i.name for i in proto.graph.input] == ["frames", "flows_bwd"]
    assert [o.name for o in proto.graph.output] == ["depth", "K", "confidence"]
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 4, 3, 120, 160]  # static
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["unihoi_config"])["size"] == "tiny"
    assert json.loads(meta["unihoi_input_size"]) == [120, 160]
    ops = graph_ops(path)
    assert not unsupported_ops(path), sorted(ops - tensorrt_ops())
    assert "GridSample" in ops and not {"Loop", "If", "Scan"} & ops


def test_trt_op_list_names_its_source():
    head = TRT_OPS_FILE.read_text().splitlines()[:6]
    assert any("onnx-tensorrt" in ln and "operators.md" in ln for ln in head)
    assert any("TensorRT 10" in ln for ln in head)
    assert {"MatMul", "GridSample", "LayerNormalization"} <= tensorrt_ops()
    assert "Svd" not in tensorrt_ops()


def test_cli_export_trained_weights(tmp_path, capsys):
    torch.manual_seed(1)
    weights = save_pretrained(UniHOI.from_size("tiny"), tmp_path / "w")
    out = tmp_path / "m.onnx"
    rc = cli_main(
        ["export", "--model", str(weights), "--height", "64", "--width", "80", "-o", str(out)]
    )
    assert rc == 0 and out.is_file()
    assert "wrote" in capsys.readouterr().out
