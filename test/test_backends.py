"""Backends: parity with torch fp32, engine records and checks (no TensorRT needed), and
the automatic choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unihoi_ros.backends import TorchBackend
from unihoi_ros.backends.engine_record import (
    EngineError,
    EngineMismatchError,
    EngineRecord,
    RuntimeInfo,
    check_engine,
    compare,
    file_sha256,
    record_path,
)
from unihoi_ros.backends.select import select_backend
from unihoi_ros.backends.tensorrt_backend import tensorrt_status
from unihoi_ros.model import UniHOI
from unihoi_ros.optional import MissingDependencyError

H, W = 48, 64
RUNTIME = RuntimeInfo("10.3.0", "NVIDIA H100 80GB HBM3", "9.0")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return UniHOI.from_size("tiny").eval()


@pytest.fixture(scope="module")
def onnx_file(tiny, tmp_path_factory):
    pytest.importorskip("onnx")
    from unihoi_ros.model.export import export_onnx

    return export_onnx(tiny, tmp_path_factory.mktemp("onnx") / "tiny.onnx", H, W)


def random_window(seed=0):
    rng = np.random.default_rng(seed)
    rgbs = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(4)]
    flows = rng.normal(0, 2, (3, H, W, 2)).astype(np.float32)
    return rgbs, flows


def run_window(backend, rgbs, flows):
    return backend.infer_window([backend.encode(r) for r in rgbs], rgbs, flows)


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def test_onnxruntime_matches_torch_fp32(tiny, onnx_file):
    pytest.importorskip("onnxruntime")
    from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    ort = OnnxRuntimeBackend(onnx_file, ("CPUExecutionProvider",))
    assert ort.input_size == (H, W) and ort.num_frames == 4
    assert ort.model_config == json.loads(json.dumps(tiny.config.to_dict()))
    ref = TorchBackend(tiny, "cpu")
    for seed in range(2):
        rgbs, flows = random_window(seed)
        a, b = run_window(ort, rgbs, flows), run_window(ref, rgbs, flows)
        assert rel_err(a.depth, b.depth) < 1e-4
        assert rel_err(a.K, b.K) < 1e-4
        assert rel_err(a.confidence, b.confidence) < 1e-4
    with pytest.raises(ValueError, match="built for 64x48"):
        ort.encode(np.zeros((60, 80, 3), np.uint8))


def test_torch_backend_split_equals_fused(tiny):
    rgbs, flows = random_window(3)
    pred = run_window(TorchBackend(tiny, "cpu"), rgbs, flows)
    frames = torch.from_numpy(np.stack(rgbs)).permute(0, 3, 1, 2)[None].float() / 255
    with torch.inference_mode():
        out = tiny(frames, torch.from_numpy(flows).permute(0, 3, 1, 2)[None])
    np.testing.assert_allclose(pred.depth, out.depth[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.confidence, out.confidence[0].numpy(), atol=1e-5)


# ---------------------------------------------------------------------------- engine records
def write_engine(tmp_path, payload=b"serialized-engine-bytes" * 100, **overrides):
    engine = tmp_path / "m.engine"
    engine.write_bytes(payload)
    fields = dict(tensorrt_version=RUNTIME.tensorrt_version, gpu_name=RUNTIME.gpu_name,
                  compute_capability=RUNTIME.compute_capability, precision="fp16",
                  input_size=[H, W], model_config={"size": "tiny", "embed_dim": 96},
                  onnx_sha256="ab" * 32, engine_sha256=file_sha256(engine))
    fields.update(overrides)
    EngineRecord(**fields).save(record_path(engine))
    return engine


def test_engine_record_accepts_a_matching_engine(tmp_path):
    engine = write_engine(tmp_path)
    rec = check_engine(engine, RUNTIME, model_config={"size": "tiny", "embed_dim": 96},
                       input_size=[H, W], precision="fp16", onnx_sha256="ab" * 32)
    assert rec.gpu_name == RUNTIME.gpu_name
    assert json.loads(record_path(engine).read_text())["record_version"] == 1


def test_engine_mismatch_names_every_difference(tmp_path):
    engine = write_engine(tmp_path)
    jetson = RuntimeInfo("10.7.0", "Orin", "8.7")
    with pytest.raises(EngineMismatchError) as err:
        check_engine(engine, jetson, model_config={"size": "tiny", "embed_dim": 128},
                     input_size=[480, 640])
    text = str(err.value)
    for needle in ("TensorRT version", "10.3.0", "10.7.0", "GPU", "Orin", "compute capability",
                   "input size", "embed_dim", "--rebuild"):
        assert needle in text, needle
    assert len(err.value.differences) == 5


def test_truncated_or_corrupt_engine_is_a_clear_error(tmp_path):
    engine = write_engine(tmp_path)
    engine.write_bytes(engine.read_bytes()[:50])  # truncated after the record was written
    with pytest.raises(EngineError, match="truncated"):
        check_engine(engine, RUNTIME)
    record_path(engine).write_text("{not json")
    with pytest.raises(EngineError, match="unreadable"):
        check_engine(engine, RUNTIME)
    record_path(engine).unlink()
    with pytest.raises(EngineError, match="no record"):
        check_engine(engine, RUNTIME)
    with pytest.raises(EngineError, match="does not exist"):
        check_engine(tmp_path / "nope.engine", RUNTIME)


def test_compare_ignores_unknown_wanted_values():
    rec = EngineRecord("10.3.0", "A", "9.0", "fp16", [H, W], {"a": 1}, "x")
    assert compare(rec, RuntimeInfo("10.3.0", "A", "9.0")) == []
    assert compare(rec, RuntimeInfo("10.3.0", "A", "9.0"), precision="fp32") == [
        "precision: engine has 'fp16', running/requested 'fp32'"]


def test_record_from_onnx_metadata(tmp_path, onnx_file):
    from unihoi_ros.backends.record_engine import make_record

    engine = tmp_path / "x.engine"
    engine.write_bytes(b"e" * 10)
    rec = make_record(onnx_file, engine, "fp16", RUNTIME)
    assert rec.input_size == [H, W] and rec.model_config["size"] == "tiny"
    assert rec.onnx_sha256 == file_sha256(onnx_file)


# ---------------------------------------------------------------------------- availability
def test_tensorrt_reports_unavailable_with_reason(tmp_path):
    ok, reason = tensorrt_status()
    if ok:
        pytest.skip("TensorRT and CUDA are present")
    assert reason
    from unihoi_ros.backends.tensorrt_backend import TensorRTBackend

    with pytest.raises((MissingDependencyError, RuntimeError)):
        TensorRTBackend(tmp_path / "m.engine")


def test_auto_selection_prefers_onnxruntime_cpu_over_torch_cpu(tiny, onnx_file, caplog):
    pytest.importorskip("onnxruntime")
    if torch.cuda.is_available():
        pytest.skip("CUDA present: auto picks a CUDA backend")
    import logging

    with caplog.at_level(logging.INFO):
        sel = select_backend("auto", model=tiny, onnx_path=onnx_file)
    assert sel.choice == "onnxruntime-cpu"
    assert "tensorrt" in sel.skipped and "torch-cuda" in sel.skipped
    assert "backend: onnxruntime-cpu" in caplog.text
    assert select_backend("auto", model=tiny).choice == "torch-cpu"
    assert select_backend("torch", model=tiny, onnx_path=onnx_file).choice == "torch-cpu"
    with pytest.raises(RuntimeError, match="no usable backend"):
        select_backend("tensorrt", model=tiny, onnx_path=onnx_file)


def test_split_export_runs_one_encoder_pass_per_frame(tiny, tmp_path):
    """`export --split`: encoder per frame + window on cached outputs, same numbers."""
    pytest.importorskip("onnxruntime")
    from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
    from unihoi_ros.model.export import export_split_onnx, unsupported_ops

    enc_path, win_path = export_split_onnx(tiny, tmp_path / "tiny.onnx", H, W)
    assert not unsupported_ops(enc_path) and not unsupported_ops(win_path)
    ort = OnnxRuntimeBackend(enc_path, ("CPUExecutionProvider",))
    assert ort.encoder_passes_per_window == 0 and ort.input_size == (H, W)
    calls = []
    run = ort.encoder_session.run
    ort.encoder_session.run = lambda *a, **k: calls.append(1) or run(*a, **k)
    ref = TorchBackend(tiny, "cpu")
    rgbs, flows = random_window(5)
    a, b = run_window(ort, rgbs, flows), run_window(ref, rgbs, flows)
    assert len(calls) == 4  # one per frame; the window call runs no encoder
    assert rel_err(a.depth, b.depth) < 1e-4
    assert rel_err(a.K, b.K) < 1e-4
    assert rel_err(a.confidence, b.confidence) < 1e-4
    win_path.unlink()
    with pytest.raises(FileNotFoundError, match="window graph"):
        OnnxRuntimeBackend(enc_path, ("CPUExecutionProvider",))


def test_channels_last_torch_backend_matches_and_uses_nhwc():
    torch.manual_seed(0)
    model = UniHOI.from_size("tiny").eval()
    rgbs, flows = random_window(3)
    ref = run_window(TorchBackend(model), rgbs, flows)
    nhwc = TorchBackend(model, channels_last=True)
    conv = model.decoder.depth_layer.to_depth.weight
    conv3d = model.backbone.feature_fusion_unet_list[0][0].inc.double_conv[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert conv3d.is_contiguous(memory_format=torch.channels_last_3d)
    out = run_window(nhwc, rgbs, flows)
    assert rel_err(out.depth, ref.depth) < 1e-4
    assert rel_err(out.confidence, ref.confidence) < 1e-4
    assert np.allclose(out.K, ref.K, rtol=1e-5)


@pytest.mark.slow
def test_compiled_torch_backend_matches_eager(tiny, tmp_path, monkeypatch):
    """torch.compile (inductor, C++ on the CPU) for the stream's fixed shapes."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    rgbs, flows = random_window(4)
    ref = run_window(TorchBackend(tiny), rgbs, flows)
    compiled = TorchBackend(tiny, compile=True)
    out = run_window(compiled, rgbs, flows)
    assert compiled.options["compile"]
    assert rel_err(out.depth, ref.depth) < 1e-4
    assert rel_err(out.confidence, ref.confidence) < 1e-4
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        TorchBackend(tiny, cuda_graphs=True)
