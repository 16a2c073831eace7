"""Write the ``.json`` record of an engine built outside our builder (e.g. ``trtexec``).

    python -m unihoi_ros.backends.record_engine model.onnx model.engine --precision fp16

Run it on the machine that built the engine: the record takes this machine's TensorRT
version and GPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unihoi_ros.backends.engine_record import EngineRecord, file_sha256, record_path
from unihoi_ros.backends.tensorrt_build import PRECISIONS, onnx_metadata


def make_record(onnx_path: Path, engine_path: Path, precision: str, runtime) -> EngineRecord:
    """The record of ``engine_path`` built from ``onnx_path`` on ``runtime``."""
    config, size = onnx_metadata(onnx_path)
    return EngineRecord(
        tensorrt_version=runtime.tensorrt_version, gpu_name=runtime.gpu_name,
        compute_capability=runtime.compute_capability, precision=precision,
        input_size=list(size), model_config=config, onnx_sha256=file_sha256(onnx_path),
        engine_sha256=file_sha256(engine_path),
    )


def main(argv: list[str] | None = None) -> int:
    from unihoi_ros.backends.tensorrt_backend import runtime_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx", type=Path)
    ap.add_argument("engine", type=Path)
    ap.add_argument("--precision", default="fp16", choices=PRECISIONS)
    args = ap.parse_args(argv)
    record = make_record(args.onnx, args.engine, args.precision, runtime_info())
    record.save(record_path(args.engine))
    print(f"wrote {record_path(args.engine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
