"""Recording without ``ros2 bag``, large images, and clean shutdowns, on the real ROS 2 stack
(Kilted wheels: rclpy on Fast DDS 3.2, loopback profile with the kernel's default socket
buffers), as users run it from a colcon install space:

- ``egocentric.launch.py record:=true`` where the ``ros2 bag`` verb is missing (no rosbag2
  on PyPI) records with the package's ``unihoi_record``: the input image and camera_info,
  every output (``tracks`` included), closed cleanly by SIGINT (rosbags reads it); a second
  ``unihoi_record`` killed with SIGKILL mid-stream leaves a file readable up to its last
  complete chunk;
- 456x256 rgb8 frames at 10 Hz from a reliable camera all reach the node (its input
  subscription matches the camera's reliability) and, in replay mode, all are published;
- ``unihoi_node`` logs one summary line at shutdown, and no "Failed to publish log message
  to rosout"; ``unihoi run --transport rclpy`` prints each line once, SIGTERM included.

Skips only where the wheels cannot exist or ``../shared/ros2-python`` (launch) is absent.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ros2_support as R

pytestmark = pytest.mark.slow

NS = "rec"
K = (190.5, 191.0, 227.5, 127.5)  # the camera_info the peer sends (456x256)
FRAMES = 20
ROSOUT_ERROR = "Failed to publish log message to rosout"


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> Path:
    R.require_rclpy()
    return R.colcon_build(tmp_path_factory.mktemp("colcon_ws_rec"))


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _kill_when_grown(proc: subprocess.Popen, bag: Path, min_bytes: int,
                     done: threading.Event) -> None:
    """SIGKILL ``proc`` once its MCAP file has ``min_bytes`` on disk (chunks flushed)."""
    while not done.is_set():
        files = list(bag.glob("*.mcap"))
        if files and files[0].stat().st_size >= min_bytes:
            proc.send_signal(signal.SIGKILL)
            return
        time.sleep(0.05)


def _read_bag(path: Path) -> dict[str, list]:
    """topic -> deserialised messages of a closed bag (rosbags, metadata.yaml)."""
    from rosbags.highlevel import AnyReader

    from unihoi_ros.ros import messages as M

    out: dict[str, list] = {}
    with AnyReader([path], default_typestore=M.get_typestore()) as reader:
        for conn in reader.connections:
            out.setdefault(conn.topic, [])
        for conn, _, raw in reader.messages():
            out[conn.topic].append(reader.deserialize(raw, conn.msgtype))
    return out


_RECORDER_CHOICE_CHECK = """
import importlib.util as iu, shutil, sys
spec = iu.spec_from_file_location("egocentric_launch", sys.argv[1] + "/launch/egocentric.launch.py")
L = iu.module_from_spec(spec)
spec.loader.exec_module(L)
from launch.actions import ExecuteProcess
from launch_ros.actions import Node
topics = L.recorded_topics("lab", {"image_topic": "image", "use_camera_info": True})
assert {"/lab/image", "/lab/camera_info", "/lab/tracks", "/lab/depth/camera_info", "/tf",
        "/tf_static", "/lab/pose"} <= set(topics), topics
assert isinstance(L.recorder_action("b", topics, "lab", ros2_bag=True), ExecuteProcess)
rec = L.recorder_action("b", topics, "lab", ros2_bag=False)
assert isinstance(rec, Node) and rec.node_executable == "unihoi_record"
assert L.unihoi_record_arguments("b", topics) == ["--output", "b", *topics]
assert L.unihoi_record_arguments("", topics, now=0)[1].startswith("unihoi_bag_")
if iu.find_spec("ros2bag") is None:  # no rosbag2 (not on PyPI): no `ros2 bag`, with or
    assert L.ros2_bag_available() is False  # without ros2cli's `ros2`
print("recorder choice ok")
"""


def test_launch_chooses_ros2_bag_or_unihoi_record(tmp_path):
    """``record:=true``: ``ros2 bag record`` where the verb exists, else unihoi_record, with
    the same topics, tracks and camera_info included (in a child: importing ``launch``
    reconfigures the logging of the process that imports it)."""
    R.require_rclpy()
    proc = subprocess.run([sys.executable, "-c", _RECORDER_CHOICE_CHECK, str(R.REPO_ROOT)],
                          env=R.ros_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "recorder choice ok" in proc.stdout, proc.stderr[-3000:]


def _recording_readers() -> list[str]:
    """``--readers`` of the peer: no frame before both recorders have subscribed and been
    matched (a volatile publisher never resends to a late reader): the input image by the
    node and both recorders, depth/image by the peer and both, every other recorded topic
    by the peer (outputs) or the node (camera_info) and the launch's recorder."""
    readers = {f"/{NS}/image": 3, f"/{NS}/depth/image": 3}
    for topic in ("camera_info", "depth/camera_info", "confidence/image", "points", "tracks",
                  "pose"):
        readers[f"/{NS}/{topic}"] = 2
    if importlib.util.find_spec("tf2_msgs") is not None:  # the node publishes /tf
        readers["/tf"] = 1
    return [f"{topic}={n}" for topic, n in readers.items()]


def test_launch_records_without_ros2_bag_and_large_images_arrive(install, tmp_path):
    """record:=true through launch (unihoi_record, as ``ros2 bag`` is missing here) beside
    a second unihoi_record killed with SIGKILL; a reliable camera of 456x256 frames."""
    from unihoi_ros.io.bag_writer import messages_in_complete_chunks
    from unihoi_ros.ros import messages as M

    share = install / "unihoi_ros" / "share" / "unihoi_ros"
    assert (share / "config" / "fastdds_large_buffers.xml").is_file()  # for best-effort cameras
    env = R.ros_env()
    bag = tmp_path / "launch_bag"
    # Histories that outlast the clip: a busy node or recorder loses no sample (the input's
    # reliability is left to the node: it must turn reliable for this reliable camera).
    params = tmp_path / "depths.yaml"
    params.write_text("/**:\n  ros__parameters:\n    input_qos_depth: 100\n"
                      "    output_qos_depth: 100\n")
    launch = R.Background(R.sourced(install, [
        sys.executable, str(R.LAUNCH), f"namespace:={NS}", "record:=true", f"bag_path:={bag}",
        "use_camera_info:=true", "live_mode:=false", "process_height:=64",
        "process_width:=112", f"params_file:={params}"]), tmp_path / "launch.log", env)
    killed_bag = tmp_path / "killed_bag"
    recorder = R.Background(R.sourced(install, [
        str(install / "unihoi_ros" / "lib" / "unihoi_ros" / "unihoi_record"), "-o",
        str(killed_bag), "--chunk-seconds", "0.3", f"/{NS}/image", f"/{NS}/depth/image"]),
        tmp_path / "killed_recorder.log", env)
    done = threading.Event()
    try:
        _wait_for(lambda: "recording to" in recorder.output, 60, "the second recorder")
        killer = threading.Thread(target=_kill_when_grown, daemon=True,
                                  args=(recorder.proc, killed_bag, 1_500_000, done))
        killer.start()
        res = R.run_peer(tmp_path, env, launch, image_topic=f"/{NS}/image", ns=NS,
                         camera_info_topic=f"/{NS}/camera_info", K=",".join(map(str, K)),
                         frames=FRAMES, rate=10, height=256, width=456,
                         readers=_recording_readers())
    finally:
        done.set()
        rc = launch.stop(timeout=60)
        recorder.stop()
    out = launch.output
    sent = res["sent"]

    # Large images from a reliable camera: the node subscribed reliable, got every frame,
    # and (replay mode) published every one.
    assert f"input /{NS}/image + /{NS}/camera_info: subscribed reliable" in out, out[-3000:]
    assert f"summary: received {FRAMES} frame(s) (about 0 lost" in out, out[-3000:]
    assert [m["stamp"] for m in res["got"]["depth"]] == sent
    assert rc == 0 and "Traceback" not in out and ROSOUT_ERROR not in out, out[-3000:]
    assert out.count("unihoi_node summary:") == 1

    # The launch's recording: closed by SIGINT (metadata.yaml), every topic, every frame.
    assert "unihoi_record summary:" in out and (bag / "metadata.yaml").is_file(), out[-3000:]
    got = _read_bag(bag)
    topics = {f"/{NS}/{t}" for t in ("image", "camera_info", "depth/image", "depth/camera_info",
                                     "confidence/image", "points", "tracks", "pose")}
    topics.add("/diagnostics")
    if importlib.util.find_spec("tf2_msgs") is not None:
        topics.add("/tf")
    assert topics <= set(got), sorted(topics - set(got))

    def stamps(topic):
        return [M.stamp_to_ns(m.header.stamp) for m in got[topic]]

    assert stamps(f"/{NS}/image") == sent and stamps(f"/{NS}/camera_info") == sent
    for topic in ("depth/image", "depth/camera_info", "confidence/image", "points", "tracks",
                  "pose"):
        assert stamps(f"/{NS}/{topic}") == sent, topic
    assert (got[f"/{NS}/depth/image"][0].height, got[f"/{NS}/depth/image"][0].width) == (64, 112)

    # The killed recording: no metadata, readable up to its last complete chunk: a prefix of
    # the frames, intact.
    assert recorder.proc.returncode == -signal.SIGKILL, recorder.output[-2000:]
    assert "subscribed every topic (2 recorded)" in recorder.output, recorder.output[-2000:]
    assert not (killed_bag / "metadata.yaml").exists()
    (mcap_file,) = killed_bag.glob("*.mcap")
    partial = list(messages_in_complete_chunks(mcap_file))
    images = [M.get_typestore().deserialize_cdr(d, t) for topic, t, _, d in partial
              if topic == f"/{NS}/image"]
    assert 3 <= len(images) and [M.stamp_to_ns(m.header.stamp) for m in images] == \
        sent[:len(images)]
    assert all(M.image_to_rgb(m).shape == (256, 456, 3) for m in images)


def test_unihoi_run_rclpy_prints_each_line_once_and_stops_cleanly_on_sigterm(tmp_path):
    """Python logging goes to rcutils only (no second copy from the root handler); SIGTERM
    stops the node as SIGINT does: one summary line, exit 0, /rosout still valid."""
    R.require_rclpy()
    env = R.ros_env(upstream=False)
    node = R.Background([sys.executable, "-m", "unihoi_ros.cli", "run", "--transport", "rclpy",
                         "--namespace", "/once"], tmp_path / "run.log", env)
    try:
        _wait_for(lambda: "unihoi_node ready" in node.output or node.proc.poll() is not None,
                  180, "the node to start")
        os.killpg(node.proc.pid, signal.SIGTERM)
        node.proc.wait(60)
    finally:
        rc = node.stop()
    out = node.output
    assert rc == 0 and "Traceback" not in out and ROSOUT_ERROR not in out, out[-3000:]
    assert out.count("unihoi_node ready") == 1, out[-3000:]
    assert out.count("unihoi_node summary: received 0 frame(s)") == 1, out[-3000:]
    if importlib.util.find_spec("diagnostic_updater") is None:  # a warning, said once
        assert out.count("diagnostic_updater is not installed") == 1, out[-3000:]
    assert "[WARNING] unihoi_ros" not in out and "[INFO] unihoi_ros" not in out
