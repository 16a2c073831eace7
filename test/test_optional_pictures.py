"""Without matplotlib (the ``viz`` extra), ``unihoi process``, ``unihoi eval`` and
``unihoi demo`` say at the start, in one line, which pictures they skip, write every other
output and exit 0. The missing module is simulated in a child process
(``sys.modules['matplotlib'] = None`` makes ``import matplotlib`` fail as if absent)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

pytest.importorskip("rosbags")

WITHOUT_MATPLOTLIB = """
import sys
sys.modules["matplotlib"] = None  # import matplotlib -> ImportError, as if not installed
from unihoi_ros.cli import main
sys.exit(main(sys.argv[1:]))
"""
LINE = "matplotlib is not installed:"


def _unihoi(*argv: str) -> subprocess.CompletedProcess:
    """``unihoi ARGV`` without matplotlib; stdout and stderr in one stream, in order."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-c", WITHOUT_MATPLOTLIB, *argv], cwd=REPO_ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600, env=env)


def _said_once_first(proc: subprocess.CompletedProcess, first_work_line: str,
                     pictures: str) -> None:
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    lines = [ln for ln in out.splitlines() if LINE in ln]
    assert len(lines) == 1 and pictures in lines[0], out[-3000:]
    if first_work_line:  # said before the work starts
        assert out.index(LINE) < out.index(first_work_line), out[-3000:]


def test_process_and_eval_without_matplotlib(tmp_path):
    from unihoi_ros.io.ground_truth import write_sequence_tum
    from unihoi_ros.sim import make_sequence

    seq = make_sequence(seed=3, num_frames=8, height=48, width=64)
    tum = tmp_path / "tum"
    write_sequence_tum(seq, tum)
    out = tmp_path / "out"
    proc = _unihoi("process", str(tum), "-o", str(out), "--model", "random:tiny",
                   "--no-progress")
    _said_once_first(proc, "input:", "summary.png and tracks.png skipped")
    assert not (out / "summary.png").exists() and not (out / "tracks.png").exists()
    for name in ("frames.json", "depth/000007.png", "confidence/000007.png", "cloud.ply",
                 "trajectory_tum.txt", "tracks.npz", "report.json"):
        assert (out / name).is_file(), name
    closing = [ln for ln in proc.stdout.splitlines() if ln.startswith("processed 8 frames")]
    assert len(closing) == 1 and ".png" not in closing[0]  # it lists what was written

    proc = _unihoi("eval", str(out), str(tum))
    _said_once_first(proc, "", "eval.png skipped")
    assert (out / "eval.json").is_file() and not (out / "eval.png").exists()


def test_demo_without_matplotlib(tmp_path):
    pytest.importorskip("cyclonedds")
    out = tmp_path / "demo"
    proc = _unihoi("demo", "--out", str(out), "--model", "random:tiny", "--frames", "8",
                   "--height", "48", "--width", "64")
    _said_once_first(proc, "unihoi_node ready", "summary.png and eval.png skipped")
    assert "unihoi demo: 8/8 frames" in proc.stdout
    assert not list(out.glob("*.png"))  # the pictures; depth/ and confidence/ hold data
    assert len(list((out / "depth").glob("*.png"))) == 8
    assert (out / "eval.json").is_file() and (out / "demo.json").is_file()
