#!/usr/bin/env python3
"""Build a TensorRT engine (and its .json record) from an `unihoi export` ONNX graph.

    python engines/build_engine.py model.onnx model.engine --precision fp16 \
        --workspace-gib 4 --timing-cache engines/timing.cache [--rebuild]

The same as `unihoi build-engine` (this script only forwards to it), for machines where the
console script is not on PATH. See engines/README.md for Jetson (trtexec) and desktop.
"""

import sys

from unihoi_ros.cli import main

if __name__ == "__main__":
    sys.exit(main(["build-engine", *sys.argv[1:]]))
