"""``unihoi process`` with a known camera: --K, --camera-info YAML, a bag's CameraInfo,
--ignore-camera-info, --K dataset (io/camera_info.py, offline.py)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from unihoi_ros.cli import main as cli_main
from unihoi_ros.errors import ConfigError
from unihoi_ros.geometry.camera import focal_ratio, scale_intrinsics
from unihoi_ros.io import load_run
from unihoi_ros.io.camera_info import camera_info_topic_for, parse_K, read_camera_info_yaml
from unihoi_ros.sim import make_sequence

INPUT_HW, PROCESS = (96, 128), "48x64"
MODEL = ["--model", "random:tiny", "--backend", "torch", "--device", "cpu", "--no-progress",
         "--threads", "1", "--process-size", PROCESS]


@pytest.fixture(scope="module")
def clip():
    return make_sequence(seed=5, num_frames=6, height=INPUT_HW[0], width=INPUT_HW[1])


@pytest.fixture(scope="module")
def folder(clip, tmp_path_factory):
    path = tmp_path_factory.mktemp("frames")
    for i, f in enumerate(clip.rgb):
        cv2.imwrite(str(path / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def predicted_run(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "predicted"
    assert cli_main(["process", str(folder), "-o", str(out), *MODEL]) == 0
    return out


def _load(out):
    return load_run(out), json.loads((out / "report.json").read_text())


def test_K_flag_end_to_end(folder, predicted_run, tmp_path):
    out = tmp_path / "known"
    assert cli_main(["process", str(folder), "-o", str(out), "--K", "150,148,63.5,47.5",
                     *MODEL]) == 0
    pred, report = _load(out)
    K_in = np.array([[150.0, 0, 63.5], [0, 148.0, 47.5], [0, 0, 1]])
    K_proc = scale_intrinsics(K_in, INPUT_HW, (48, 64))  # rescaled to the processing size
    np.testing.assert_allclose(pred.K, np.repeat(K_proc[None], len(pred.K), axis=0))
    assert report["intrinsics"]["source"] == "--K 150,148,63.5,47.5"
    np.testing.assert_allclose(report["intrinsics"]["K"], K_in)
    # depth read with the known K: the same network depth times known / predicted focal
    # length, where the predicted run read it with its own (stream) K
    base, _ = _load(predicted_run)
    _, base_report = _load(predicted_run)
    assert base_report["intrinsics"]["source"].startswith("predicted")
    for i in range(len(pred.K)):
        ratio = np.nanmedian(pred.depth[i] / base.depth[i])
        assert ratio == pytest.approx(focal_ratio(K_proc, base.K[i]), rel=1e-4)


def test_camera_info_yaml_end_to_end(folder, tmp_path):
    """A calibration YAML at twice the frames' size with plumb_bob distortion: K rescaled to
    the frames and then to the processing size, frames rectified (counted in the report)."""
    yaml_path = tmp_path / "cam.yaml"
    yaml_path.write_text(
        "image_width: 256\nimage_height: 192\ncamera_name: head\n"
        "camera_matrix:\n  rows: 3\n  cols: 3\n  data: [300.0, 0.0, 127.5, 0.0, 296.0, 95.5, "
        "0.0, 0.0, 1.0]\n"
        "distortion_model: plumb_bob\n"
        "distortion_coefficients:\n  rows: 1\n  cols: 5\n  data: [-0.05, 0.01, 0.0, 0.0, 0.0]\n"
        "rectification_matrix:\n  rows: 3\n  cols: 3\n  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]\n"
        "projection_matrix:\n  rows: 3\n  cols: 4\n  data: [300.0, 0.0, 127.5, 0.0, 0.0, "
        "296.0, 95.5, 0.0, 0.0, 0.0, 1.0, 0.0]\n")
    out = tmp_path / "yaml"
    assert cli_main(["process", str(folder), "-o", str(out), "--camera-info", str(yaml_path),
                     *MODEL]) == 0
    pred, report = _load(out)
    K_yaml = read_camera_info_yaml(yaml_path).K
    K_proc = scale_intrinsics(scale_intrinsics(K_yaml, (192, 256), INPUT_HW), INPUT_HW, (48, 64))
    np.testing.assert_allclose(pred.K[0], K_proc)
    intr = report["intrinsics"]
    assert intr["source"] == f"--camera-info {yaml_path}"
    assert intr["rectified"] is True and intr["rectified_frames"] == len(pred.K)


def _bag_with_camera_info(path, clip, K, hw):
    from rosbags.rosbag2 import StoragePlugin, Writer

    from unihoi_ros.ros import messages as m

    ts = m.get_typestore()
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        img = w.add_connection("/cam/image_raw", m.IMAGE, typestore=ts)
        inf = w.add_connection("/cam/camera_info", m.CAMERA_INFO, typestore=ts)
        for stamp, rgb in zip(clip.stamps_ns, clip.rgb):
            w.write(img, int(stamp), ts.serialize_cdr(m.rgb_to_image(rgb, int(stamp), "cam"),
                                                      m.IMAGE))
            info = m.camera_info_msg(K, hw[1], hw[0], int(stamp), "cam", ts)
            w.write(inf, int(stamp), ts.serialize_cdr(info, m.CAMERA_INFO))


def test_bag_camera_info_used_unless_ignored(clip, tmp_path):
    K_bag = np.array([[140.0, 0, 64.0], [0, 140.0, 48.0], [0, 0, 1]])
    _bag_with_camera_info(tmp_path / "bag", clip, K_bag, INPUT_HW)
    out = tmp_path / "with"
    assert cli_main(["process", str(tmp_path / "bag"), "-o", str(out), *MODEL]) == 0
    pred, report = _load(out)
    assert report["intrinsics"]["source"] == "bag camera_info /cam/camera_info"
    np.testing.assert_allclose(pred.K[-1], scale_intrinsics(K_bag, INPUT_HW, (48, 64)))
    out2 = tmp_path / "without"
    assert cli_main(["process", str(tmp_path / "bag"), "-o", str(out2), "--ignore-camera-info",
                     *MODEL]) == 0
    pred2, report2 = _load(out2)
    assert report2["intrinsics"]["source"].startswith("predicted")
    assert not np.allclose(pred2.K[-1], pred.K[-1])


def test_dataset_K_of_seven_scenes(shared_dir, tmp_path):
    from unihoi_ros.io.registration import SEVEN_SCENES

    src = shared_dir / "data" / "7scenes_redkitchen_300_699"
    seq = tmp_path / "seq-01"
    seq.mkdir()
    for i in range(4):
        for ext in ("color.jpg", "depth.png", "pose.txt"):
            (seq / f"frame-{i:06d}.{ext}").symlink_to(src / f"frame-{300 + i:06d}.{ext}")
    out = tmp_path / "run"
    assert cli_main(["process", str(seq), "-o", str(out), "--K", "dataset", *MODEL]) == 0
    pred, report = _load(out)
    np.testing.assert_allclose(pred.K[0], scale_intrinsics(SEVEN_SCENES.K_color, (480, 640),
                                                            (48, 64)))
    assert report["intrinsics"]["source"] == "dataset (7scenes reader)"


def test_bad_camera_values_are_refused(folder, tmp_path, capsys):
    with pytest.raises(ConfigError, match="fx,fy,cx,cy"):
        parse_K("150,148,63.5")
    with pytest.raises(ConfigError, match="pinhole"):
        parse_K("-150,148,63.5,47.5")
    bad = tmp_path / "bad.yaml"
    bad.write_text("image_width: 64\nimage_height: 48\ncamera_matrix: {rows: 3, cols: 3, "
                   "data: [1, 2, 3]}\n")
    with pytest.raises(ConfigError, match="camera_matrix"):
        read_camera_info_yaml(bad)
    assert cli_main(["process", str(folder), "-o", str(tmp_path / "o"), "--camera-info",
                     str(bad), *MODEL]) == 1
    assert "camera_matrix" in capsys.readouterr().err
    assert cli_main(["process", str(folder), "-o", str(tmp_path / "o2"), "--K", "dataset",
                     *MODEL]) == 1  # an image folder has no dataset K
    assert "knows no K" in capsys.readouterr().err
    assert camera_info_topic_for("/cam/color/image_raw/compressed") == "/cam/color/camera_info"
