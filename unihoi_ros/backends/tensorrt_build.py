"""Building a TensorRT engine from an exported ONNX graph, with its record.

The engine is written beside its record (``<engine>.json``, see
:mod:`unihoi_ros.backends.engine_record`). An existing engine is never rebuilt unless
``rebuild`` is set; a stale one (other TensorRT/GPU/ONNX) is reported, not replaced.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from unihoi_ros.backends.engine_record import (
    EngineError,
    EngineRecord,
    check_engine,
    file_sha256,
    record_path,
)
from unihoi_ros.optional import require
from unihoi_ros.options import Precision, parse, values

log = logging.getLogger(__name__)

#: Engine precisions: the values of :class:`unihoi_ros.options.Precision`.
PRECISIONS = values(Precision)


def onnx_metadata(onnx_path: Path) -> tuple[dict, list[int]]:
    """``(model_config, [H, W])`` from the metadata ``unihoi export`` writes."""
    onnx = require("onnx")
    proto = onnx.load(str(onnx_path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    if "unihoi_config" not in meta:
        raise EngineError(f"{onnx_path} has no unihoi metadata: export it with `unihoi export`")
    return json.loads(meta["unihoi_config"]), json.loads(meta["unihoi_input_size"])


def build_engine(onnx_path: str | Path, engine_path: str | Path, precision: str = "fp16",
                 workspace_gib: float = 4.0, timing_cache: str | Path | None = None,
                 rebuild: bool = False) -> EngineRecord:
    """Build (or reuse) ``engine_path`` from ``onnx_path``; return its record."""
    from unihoi_ros.backends.tensorrt_backend import runtime_info

    if parse(Precision, precision) is None:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    config, size = onnx_metadata(onnx_path)
    onnx_hash = file_sha256(onnx_path)
    runtime = runtime_info()
    if engine_path.exists() and not rebuild:
        record = check_engine(engine_path, runtime, model_config=config, input_size=size,
                              precision=precision, onnx_sha256=onnx_hash)
        log.info("engine %s is up to date; not rebuilt", engine_path)
        return record
    trt = require("tensorrt")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineError(f"TensorRT cannot parse {onnx_path}:\n" + "\n".join(errors))
    cfg = builder.create_builder_config()
    cfg.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if precision == "fp16":
        cfg.set_flag(trt.BuilderFlag.FP16)
    elif precision == "bf16":
        cfg.set_flag(trt.BuilderFlag.BF16)
    cache_bytes = Path(timing_cache).read_bytes() if timing_cache and Path(
        timing_cache).is_file() else b""
    cache = cfg.create_timing_cache(cache_bytes)
    cfg.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, cfg)
    if serialized is None:
        raise EngineError(f"TensorRT failed to build an engine from {onnx_path}")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(serialized))
    if timing_cache:
        Path(timing_cache).write_bytes(bytes(cfg.get_timing_cache().serialize()))
    record = EngineRecord(
        tensorrt_version=runtime.tensorrt_version, gpu_name=runtime.gpu_name,
        compute_capability=runtime.compute_capability, precision=precision,
        input_size=list(size), model_config=config, onnx_sha256=onnx_hash,
        engine_sha256=file_sha256(engine_path),
    )
    record.save(record_path(engine_path))
    log.info("built %s (%s, %s) on %s", engine_path, precision, size, runtime.gpu_name)
    return record
