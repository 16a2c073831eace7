"""``unihoi build-engine ONNX ENGINE``: TensorRT engine + record (see engines/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("build-engine", help="build a TensorRT engine from an exported graph")
    p.add_argument("onnx", type=Path, help="graph written by `unihoi export`")
    p.add_argument("engine", type=Path, help="engine file to write (its .json record beside)")
    p.add_argument("--precision", default="fp16", choices=("fp32", "fp16", "bf16"))
    p.add_argument("--workspace-gib", type=float, default=4.0)
    p.add_argument("--timing-cache", type=Path, default=None)
    p.add_argument("--rebuild", action="store_true",
                   help="rebuild even if the engine exists (otherwise a stale one is an error)")
    p.set_defaults(func=run)


def run(args) -> int:
    from unihoi_ros.backends.engine_record import EngineError
    from unihoi_ros.backends.tensorrt_build import build_engine
    from unihoi_ros.optional import MissingDependencyError

    try:
        rec = build_engine(args.onnx, args.engine, args.precision, args.workspace_gib,
                           args.timing_cache, args.rebuild)
    except (EngineError, MissingDependencyError, FileNotFoundError) as exc:
        print(f"unihoi build-engine: {exc}", file=sys.stderr)
        return 1
    print(f"{args.engine}: TensorRT {rec.tensorrt_version} on {rec.gpu_name} "
          f"(sm {rec.compute_capability}), {rec.precision}, input {rec.input_size}")
    return 0
