"""The processing size of ``unihoi process``: the ``max_side`` rule
(:func:`unihoi_ros.pipeline.config.processing_size`), its offline default
(:data:`~unihoi_ros.pipeline.settings.MAX_SIDE`, the node's too) and its effect on the outputs."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from unihoi_ros.cli import main as cli_main
from unihoi_ros.io import load_run
from unihoi_ros.pipeline.config import ReconstructorConfig, processing_size
from unihoi_ros.pipeline.settings import MAX_SIDE as OFFLINE_MAX_SIDE
from unihoi_ros.sim import make_sequence

INPUT_HW = (240, 424)  # larger than OFFLINE_MAX_SIDE on the long side, not 4:3
MODEL = ["--model", "random:tiny", "--backend", "torch", "--device", "cpu", "--no-progress",
         "--threads", "1", "--no-bag"]


@pytest.mark.parametrize("size, max_side, process_size, expected", [
    ((480, 640), 320, None, (240, 320)),
    ((1080, 1920), 320, None, (180, 320)),
    ((640, 480), 320, None, (320, 240)),  # portrait: the longer side is the height
    ((240, 320), 320, None, (240, 320)),  # not larger: unchanged
    ((120, 160), 320, None, (120, 160)),  # never enlarged
    ((480, 640), None, None, (480, 640)),  # None: input size
    ((480, 640), 320, (96, 128), (96, 128)),  # process_size wins
])
def test_processing_size_rule(size, max_side, process_size, expected):
    cfg = ReconstructorConfig(max_side=max_side, process_size=process_size)
    got = processing_size(cfg, size)
    assert got == expected
    if process_size is None and max_side and max(size) > max_side:
        assert max(got) == max_side
        # aspect ratio kept to within a rounding pixel
        assert abs(got[0] / got[1] - size[0] / size[1]) <= 1.0 / min(got)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    clip = make_sequence(seed=7, num_frames=4, height=INPUT_HW[0], width=INPUT_HW[1])
    path = tmp_path_factory.mktemp("frames")
    for i, f in enumerate(clip.rgb):
        cv2.imwrite(str(path / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return path


def _run(folder, out, *flags):
    assert cli_main(["process", str(folder), "-o", str(out), *MODEL, *flags]) == 0
    return load_run(out), json.loads((out / "report.json").read_text())


def test_offline_default_processes_at_max_side_and_says_so(folder, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="unihoi.process"):
        pred, report = _run(folder, tmp_path / "default")
    expected = processing_size(ReconstructorConfig(max_side=OFFLINE_MAX_SIDE), INPUT_HW)
    assert max(expected) == OFFLINE_MAX_SIDE < max(INPUT_HW)
    assert pred.depth.shape[1:] == expected
    assert pred.confidence.shape[1:] == expected
    assert report["config"]["max_side"] == OFFLINE_MAX_SIDE
    said = [r.getMessage() for r in caplog.records if "are processed at" in r.getMessage()]
    assert said == [f"frames {INPUT_HW[1]}x{INPUT_HW[0]} are processed at {expected[1]}x"
                    f"{expected[0]} (width x height; --max-side {OFFLINE_MAX_SIDE})"]
    # the effective settings are said and written in the report
    settings = report["settings"]
    assert settings["processing_size"] == list(expected)
    assert settings["input_size"] == list(INPUT_HW)
    assert settings["flow_preset"] == "auto" and settings["flow_preset_used"] == "medium"
    assert settings["precision"] == "fp32" and settings["max_side"] == OFFLINE_MAX_SIDE
    assert any(r.getMessage().startswith("settings: ") and "processed at" in r.getMessage()
               for r in caplog.records)
    # K describes the processed image: the principal point lies inside it
    assert np.all(pred.K[:, 0, 2] < expected[1]) and np.all(pred.K[:, 1, 2] < expected[0])


def test_max_side_zero_keeps_the_input_size(folder, tmp_path):
    pred, report = _run(folder, tmp_path / "full", "--max-side", "0")
    assert pred.depth.shape[1:] == INPUT_HW
    assert report["config"]["max_side"] is None
