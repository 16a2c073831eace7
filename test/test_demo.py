"""`unihoi demo` end to end (a short clip, the untrained tiny model: fast in CI)."""

from __future__ import annotations

import json

import cv2
import numpy as np

from unihoi_ros.cli import main as cli_main


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo_out"
    rc = cli_main(["demo", "--model", "random:tiny", "--frames", "12", "--height", "48",
                   "--width", "64", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    summary = json.loads((out / "demo.json").read_text())
    assert summary["frames_received"] == summary["frames_published"] == 12
    # The subscriber's view matches what the node recorded.
    counts = summary["bag_counts"]
    assert counts["/unihoi/image"] == 12 and counts["/unihoi/depth/image"] == 12
    from rosbags.highlevel import AnyReader

    with AnyReader([out / "bag"]) as reader:
        got = {c.topic: c.msgcount for c in reader.connections}
    assert got["/unihoi/depth/image"] == 12 and got["/tf"] == 12
    ev = json.loads((out / "eval.json").read_text())
    assert ev["frames_evaluated"] == 12
    assert np.isfinite(ev["trajectory"]["ate"]) and np.isfinite(ev["depth"]["abs_rel"])
    img = cv2.imread(str(out / "summary.png"))
    assert img is not None and img.std() > 10
    assert "Foxglove" in text and "bag" in text
    # A second run replaces its own earlier output without --force.
    assert cli_main(["demo", "--model", "random:tiny", "--frames", "6", "--height", "48",
                     "--width", "64", "--out", str(out)]) == 0
