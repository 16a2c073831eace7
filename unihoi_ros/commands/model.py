"""``unihoi model-info``, ``unihoi export`` and ``unihoi prepare`` (the network's CLI; see
``unihoi_ros.model``).

``model-info`` prints, per size, the number of state-dict numbers of each part of the
network (built on the ``meta`` device: no weights are allocated), and the authors' modules
that are left out because they are never used. ``export`` writes the ONNX graph.
``prepare`` puts the default CPU backend's any-size graphs of a model in the cache ahead of
time (a lab's own weights; the bundled model's come with the package), or, with
``--ship``, writes the bundled model's graphs into the package (maintainers, after a change
to ``unihoi_ros/model``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unihoi_ros.commands import frame_size, positive_int, usage_error

# Parts of the network, by state-dict prefix (the authors' key names).
PARTS = {
    "encoder": ("backbone.unidepth.pixel_encoder.",),
    "decoder": ("backbone.unidepth.pixel_decoder.",),
    "unets": ("backbone.feature_fusion_unet_list.",),
    "temporal": ("backbone.token_projector_list.", "backbone.global_token_projector_list."),
    "projector": ("backbone.dino_projector.",),
    "confidence": ("backbone.corr_weighter_perpoint.",),
}
LEFT_OUT = {"camera_token_projector_list": "backbone.camera_token_projector_list."}


def part_counts(keys_shapes) -> dict[str, int]:
    """Numbers per part from ``[(key, shape), ...]`` (unknown prefixes under ``other``)."""
    import math

    counts = {name: 0 for name in (*PARTS, *LEFT_OUT)}
    for key, shape in keys_shapes:
        n = math.prod(shape)
        for name, prefixes in {**PARTS, **{k: (v,) for k, v in LEFT_OUT.items()}}.items():
            if key.startswith(prefixes):
                counts[name] += n
                break
        else:
            counts["other"] = counts.get("other", 0) + n
    return counts


def model_info(size: str) -> dict:
    """Per-part counts of our network of ``size`` plus the left-out modules' counts."""
    import torch

    from unihoi_ros.model import UniHOI
    from unihoi_ros.model.temporal import Transformer

    with torch.device("meta"):
        model = UniHOI.from_size(size)
        cfg = model.config
        unused = [Transformer(cfg.embed_dim, cfg.transformer_depth, cfg.transformer_heads,
                              cfg.transformer_dim_head, cfg.transformer_mlp_dim)
                  for _ in range(4)]
    sd = model.state_dict()
    counts = part_counts([(k, tuple(v.shape)) for k, v in sd.items()])
    counts["camera_token_projector_list"] = sum(
        v.numel() for t in unused for v in t.state_dict().values()
    )
    params = sum(p.numel() for p in model.parameters())
    return {
        "size": size,
        "parts": {k: v for k, v in counts.items() if k not in LEFT_OUT},
        "total_numbers": sum(v.numel() for v in sd.values()),
        "parameters": params,
        "left_out_unused": {k: counts[k] for k in LEFT_OUT},
        "float32_mb": 4 * sum(v.numel() for v in sd.values()) / 1e6,
    }


def _run_info(args: argparse.Namespace) -> int:
    from unihoi_ros.model.config import SIZES

    if args.size and args.size not in SIZES:
        return usage_error("model-info", ValueError(f"--size {args.size!r}: known sizes "
                                                    f"{', '.join(SIZES)}"))
    sizes = [args.size] if args.size else list(SIZES)
    infos = [model_info(s) for s in sizes]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    for info in infos:
        print(f"{info['size']}: {info['total_numbers']:,} numbers "
              f"({info['parameters']:,} parameters, {info['float32_mb']:.1f} MB float32)")
        for part, n in info["parts"].items():
            print(f"  {part:<12} {n:>14,}")
        for part, n in info["left_out_unused"].items():
            print(f"  left out (never used by the authors' forward): {part} {n:,}")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from unihoi_ros.model import UniHOI
    from unihoi_ros.model.config import SIZES
    from unihoi_ros.model.export import (
        export_any_size_onnx,
        export_onnx,
        export_split_onnx,
        unsupported_ops,
    )

    if args.split and args.any_size:
        return usage_error("export", ValueError("--split and --any-size are exclusive"))
    if not args.model and args.size not in SIZES:
        return usage_error("export", ValueError(f"--size {args.size!r}: known sizes "
                                                f"{', '.join(SIZES)}"))
    if args.model:
        model = UniHOI.from_pretrained(args.model)
        provenance = f"weights {args.model}"
    else:
        model = UniHOI.from_size(args.size)
        provenance = f"random initialisation of size {args.size} (no --model given)"
    if args.any_size:
        hh, ww = model.network_input_shape(args.height, args.width)
        paths = (export_any_size_onnx(model, args.output, hh, ww, opset=args.opset,
                                      provenance=provenance),)
    elif args.split:
        paths = export_split_onnx(model, args.output, args.height, args.width,
                                  opset=args.opset, provenance=provenance)
    else:
        paths = (export_onnx(model, args.output, args.height, args.width, opset=args.opset,
                             provenance=provenance),)
    bad = set().union(*(unsupported_ops(p) for p in paths))
    print(f"wrote {', '.join(map(str, paths))} ({model.config.size}, {args.height}x"
          f"{args.width}, opset {args.opset})")
    if bad:
        print(f"WARNING: operators TensorRT cannot parse: {sorted(bad)}")
        return 1
    return 0


def _run_prepare(args: argparse.Namespace) -> int:
    from unihoi_ros.backends import onnx_graph_cache
    from unihoi_ros.backends.factory import load_network
    from unihoi_ros.model.bundled import BUNDLED_MODELS

    if args.ship and args.model not in BUNDLED_MODELS:
        return usage_error("prepare", ValueError(
            f"--ship writes the bundled model's graphs; {args.model} is not one of "
            f"{sorted(BUNDLED_MODELS)}"))
    model, description, _ = load_network(args.model)
    if args.ship:
        for path in onnx_graph_cache.write_shipped(model, (None, 2)):
            print(f"shipped {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return 0
    sizes = list(args.size) or list(onnx_graph_cache.COMMON_FRAME_SIZES)
    nets = list(dict.fromkeys(tuple(model.network_input_shape(*s)) for s in sizes))
    for hh, ww in nets:
        for n in (None, 2):
            graph = onnx_graph_cache.ensure_graph(model, hh, ww, decode_last=n)
            print(f"{description}: encoder input {ww}x{hh} "
                  f"({'all frames' if n is None else f'last {n} frames'}): {graph.origin} "
                  f"{graph.path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("model-info", help="parameter counts per part and size")
    p.add_argument("--size", default=None, help="one size: vitl14, vits14, tiny (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_info)

    e = sub.add_parser("export", help="export the window network to ONNX")
    e.add_argument("--size", default="tiny", help="network size (vitl14, vits14, tiny)")
    e.add_argument("--model", default=None, help="trained weights: path or bundled name")
    e.add_argument("--height", type=positive_int, default=120)
    e.add_argument("--width", type=positive_int, default=160)
    e.add_argument("--opset", type=positive_int, default=17)
    e.add_argument("-o", "--output", type=Path, required=True, help="output .onnx path")
    e.add_argument("--split", action="store_true",
                   help="write <out>.encoder.onnx + <out>.window.onnx: one encoder pass per "
                   "new frame in streaming (give the encoder file to the ONNX Runtime backend)")
    e.add_argument("--any-size", action="store_true",
                   help="one graph for every frame size whose encoder input is that of "
                   "--height x --width (every size of the aspect ratio): what the default CPU "
                   "backend runs (ONNX Runtime; not a TensorRT input)")
    e.set_defaults(func=_run_export)

    r = sub.add_parser(
        "prepare", help="put a model's ONNX Runtime graphs in the cache ahead of the first run",
        description="Export the default CPU backend's any-size graphs of a model into the "
        "cache (one per encoder input: every frame size of an aspect ratio shares it), so "
        "the first run serves every frame from ONNX Runtime. The bundled model's graphs for "
        "4:3 and 16:9 frames come with the package.")
    r.add_argument("--model", default="unihoi-tiny",
                   help="bundled model name, weights path, or random:<size>")
    r.add_argument("--size", action="append", default=[], metavar="HxW", type=frame_size,
                   help="a frame size the lab's cameras deliver (repeatable; default: "
                   "480x640 and 720x1280, i.e. every 4:3 and 16:9 camera)")
    r.add_argument("--ship", action="store_true",
                   help="maintainers: write the bundled model's graphs into the package "
                   "(unihoi_ros/model/weights) after a change to unihoi_ros/model")
    r.set_defaults(func=_run_prepare)
