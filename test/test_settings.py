"""One stream-settings object (:mod:`unihoi_ros.pipeline.settings`): the node's parameters,
``unihoi process``'s flags and the batch runner's markers are built from it and agree; every
subcommand exits 2 on a bad command line; every package exception is a ``UnihoiError``."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from unihoi_ros.cli import build_parser
from unihoi_ros.cli import main as cli_main
from unihoi_ros.errors import ConfigError, UnihoiError
from unihoi_ros.offline_batch import PLACEMENT_KEYS, batch_settings
from unihoi_ros.offline_options import settings_from_args
from unihoi_ros.pipeline.config import ReconstructorConfig
from unihoi_ros.pipeline.settings import MAX_SIDE, StreamSettings, flow_preset_for, parse_size
from unihoi_ros.ros.params import NodeParams

PACKAGE = Path(__file__).resolve().parents[1] / "unihoi_ros"


def process_args(*flags: str):
    return build_parser().parse_args(["process", "in.mp4", "-o", "out", *flags])


def test_node_and_process_have_the_same_defaults():
    node = NodeParams.load().stream_settings()
    offline = settings_from_args(process_args())
    assert node == offline == StreamSettings()
    assert (offline.max_side, offline.flow_preset, offline.precision) == (MAX_SIDE, "auto",
                                                                          "fp32")
    # the reconstructor's own defaults are not restated (same values, one definition)
    rc, base = node.reconstructor_config(), ReconstructorConfig()
    for name in ("stride", "pose_solver", "num_pose_points", "min_confidence", "point_stride",
                 "min_point_confidence", "stream_intrinsics", "past_refinement"):
        assert getattr(rc, name) == getattr(base, name), name
    assert rc.max_side == MAX_SIDE and rc.process_size is None


@pytest.mark.parametrize("input_hw, processed, preset", [
    ((120, 160), (120, 160), "medium"),  # never enlarged
    ((480, 640), (240, 320), "medium"),  # 640x480: half size, medium (was fast live)
    ((720, 1280), (180, 320), "medium"),  # 720p: downscaled live too (was only offline)
    ((240, 424), (181, 320), "medium"),
])
def test_live_and_offline_process_the_same_input_alike(input_hw, processed, preset):
    node = NodeParams.load().stream_settings()
    offline = settings_from_args(process_args())
    for s in (node, offline):
        e = s.effective(input_hw)
        assert tuple(e["processing_size"]) == processed
        assert e["flow_preset_used"] == preset
        assert e["precision"] == "fp32"
    # the longer side is MAX_SIDE and the aspect ratio kept (to a rounding pixel)
    if max(input_hw) > MAX_SIDE:
        assert max(processed) == MAX_SIDE
        assert abs(processed[0] / processed[1] - input_hw[0] / input_hw[1]) <= 1 / min(processed)


def test_flow_preset_auto_follows_the_processed_pixel_count():
    assert flow_preset_for("auto", (240, 320)) == "medium"  # 76800 pixels: medium
    assert flow_preset_for("auto", (241, 320)) == "fast"
    assert flow_preset_for("auto", (480, 640)) == "fast"  # --max-side 0 on 640x480
    assert flow_preset_for("ultrafast", (120, 160)) == "ultrafast"
    no_downscale = dataclasses.replace(StreamSettings(), max_side=0)
    assert no_downscale.effective((480, 640))["flow_preset_used"] == "fast"


def test_node_parameters_and_flags_map_onto_the_same_fields():
    node = NodeParams.load(overrides={"window_stride": 2, "max_side": 0, "flow_preset": "fast",
                                      "process_height": 96, "process_width": 128,
                                      "pose_solver": "procrustes", "model": "random:tiny",
                                      "onnx_file_path": "g.onnx",
                                      "past_refinement": True,
                                      "mirror_average": True}).stream_settings()
    offline = settings_from_args(process_args(
        "--stride", "2", "--max-side", "0", "--flow-preset", "fast", "--process-size", "96x128",
        "--pose-solver", "procrustes", "--model", "random:tiny", "--onnx-file", "g.onnx",
        "--past-refinement", "--mirror-average"))
    assert node == offline
    assert node.reconstructor_config().process_size == (96, 128)
    assert node.past_refinement and node.reconstructor_config().past_refinement
    assert node.mirror_average and "mirror_average" in node.describe()
    assert node.reconstructor_config().max_side is None


def test_invalid_settings_name_the_setting():
    with pytest.raises(ConfigError, match="flow_preset must be one of"):
        StreamSettings(flow_preset="slow")
    with pytest.raises(ConfigError, match=r"stride must be in 1\.\.3"):
        StreamSettings(stride=4)
    with pytest.raises(ConfigError, match="max_side must be >= 0"):
        StreamSettings(max_side=-1)
    with pytest.raises(ConfigError, match="unknown stream setting"):
        StreamSettings.from_dict({"maxside": 3})
    with pytest.raises(ConfigError, match="max_side must be >= 0"):
        NodeParams.load(overrides={"max_side": -5})
    assert parse_size("240x320") == (240, 320) and parse_size("") is None
    for bad in ("240", "ax3", "0x5", "1x2x3"):
        with pytest.raises(ConfigError):
            parse_size(bad)


def test_batch_markers_follow_every_setting_but_placement():
    args = process_args()
    base = StreamSettings()
    marker = batch_settings(args, base)
    changes = {"model": "random:tiny", "precision": "fp16", "onnx_file": "g.onnx",
               "engine_file": "e.plan", "stride": 2, "process_size": (96, 128), "max_side": 0,
               "flow_preset": "fast", "pose_solver": "procrustes", "num_pose_points": 500,
               "min_confidence": 0.3, "point_stride": 4, "min_point_confidence": 0.2,
               "stream_intrinsics": False, "backend": "torch", "device": "cpu",
               "force_engine_update": True, "past_refinement": True,
               "mirror_average": True}
    assert set(changes) == {f.name for f in dataclasses.fields(StreamSettings)}
    for name, value in changes.items():
        other = batch_settings(args, dataclasses.replace(base, **{name: value}))
        assert (other == marker) == (name in PLACEMENT_KEYS), name
    assert batch_settings(process_args("--fps", "15"), base) != marker


# ------------------------------------------------------------------ exit status 2
BAD_COMMAND_LINES = [
    [],
    ["frobnicate"],
    ["demo", "--frames", "0"],
    ["demo", "--height", "x"],
    ["model-info", "--size", "huge"],
    ["export", "-o", "x.onnx", "--split", "--any-size"],
    ["export", "-o", "x.onnx", "--size", "huge"],
    ["export", "--height", "0", "-o", "x.onnx"],
    ["prepare", "--size", "640"],
    ["prepare", "--ship", "--model", "random:tiny"],
    ["run", "-p", "window_stride=9"],
    ["run", "-p", "max_side=-1"],
    ["run", "-p", "no_such_parameter=1"],
    ["run", "--nonsense"],
    ["process", "in.mp4"],  # no -o
    ["process", "in.mp4", "-o", "out", "--stride", "5"],
    ["process", "in.mp4", "-o", "out", "--stride", "0"],
    ["process", "in.mp4", "-o", "out", "--process-size", "abc"],
    ["process", "in.mp4", "-o", "out", "--flow-preset", "slow"],
    ["process", "in.mp4", "-o", "out", "--precision", "fp64"],
    ["process", "in.mp4", "-o", "out", "--max-side", "-3"],
    ["process", "in.mp4", "-o", "out", "--backend", "cuda"],
    ["process", "in.mp4", "-o", "out", "--past-refinement", "--refine-depth"],
    ["eval"],
    ["eval", "--synthetic", "2"],  # without --model
    ["eval", "--frames", "0", "--synthetic", "1", "--model", "random:tiny"],
    ["build-engine"],
    ["build-engine", "a.onnx", "b.plan", "--precision", "int3"],
    ["train"],
    ["adapt"],  # no input, no -o
    ["adapt", "in.mp4", "-o", "m.safetensors", "--minutes", "soon"],
    ["train", "cfg.yaml", "--steps", "0"],
]


def _exit_status(argv: list[str]) -> int:
    try:
        return cli_main(argv)
    except SystemExit as exc:  # argparse
        return exc.code


@pytest.mark.parametrize("argv", BAD_COMMAND_LINES, ids=" ".join)
def test_every_subcommand_exits_2_on_a_bad_command_line(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # nothing is written where the tests run
    assert _exit_status(argv) == 2
    assert "error" in capsys.readouterr().err or not argv
    assert not (tmp_path / "out").exists()  # refused before any work


def test_every_subcommand_is_covered():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    covered = {argv[0] for argv in BAD_COMMAND_LINES if argv}
    assert set(sub.choices) <= covered


# ------------------------------------------------------------------ exceptions
def _exception_classes() -> list[tuple[str, str]]:
    """``(module, class)`` of every class the package defines on an exception base."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    (getattr(b, "id", None) or getattr(b, "attr", "")).endswith(
                        ("Error", "Exception", "Refused")) for b in node.bases):
                found.append((module, node.name))
    return found


def test_every_package_exception_is_a_unihoi_error():
    classes = _exception_classes()
    assert ("unihoi_ros.batch", "BatchError") in classes
    assert len(classes) >= 15
    outside = []
    for module, name in classes:
        try:
            cls = getattr(importlib.import_module(module), name)
        except ImportError as exc:  # an optional dependency: the source says enough
            pytest.skip(f"{module}: {exc}")
        if not issubclass(cls, UnihoiError):
            outside.append(f"{module}.{name}")
    assert not outside


def test_settings_load_without_torch():
    code = ("import sys, unihoi_ros.ros.params, unihoi_ros.offline_options, unihoi_ros.cli; "
            "unihoi_ros.cli.build_parser(); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
