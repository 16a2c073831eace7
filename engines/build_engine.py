#!/usr/bin/env python3
"""Build a TensorRT engine (and its .json record) from an `unihoi export` ONNX graph.

    python engines/build_engine.py model.onnx model.engine --precision fp16 \
        --workspace-gib 4 --timing-cache engines/timing.cache [--rebuild]

Same as `unihoi build-engine`. See engines/README.md for Jetson (trtexec) and desktop.
"""

import argparse
import logging
import sys

from unihoi_ros.backends.engine_record import EngineError
from unihoi_ros.backends.tensorrt_build import build_engine
from unihoi_ros.optional import MissingDependencyError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx")
    ap.add_argument("engine")
    ap.add_argument("--precision", default="fp16", choices=("fp32", "fp16", "bf16"))
    ap.add_argument("--workspace-gib", type=float, default=4.0)
    ap.add_argument("--timing-cache", default=None)
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        rec = build_engine(args.onnx, args.engine, args.precision, args.workspace_gib,
                           args.timing_cache, args.rebuild)
    except (EngineError, MissingDependencyError, FileNotFoundError) as exc:
        print(f"build_engine: {exc}", file=sys.stderr)
        return 1
    print(f"{args.engine}: TensorRT {rec.tensorrt_version}, {rec.gpu_name} "
          f"(sm {rec.compute_capability}), {rec.precision}, input {rec.input_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
