"""The literal ``ros2 launch unihoi_ros egocentric.launch.py`` and ``ros2`` tools, as a user
types them, on Kilted and Jazzy: ros2cli, ros2launch and the topic/param verbs installed
into the tier's venv by ``../shared/ros2-python/install-ros2cli.sh`` (once per venv and
source version: :func:`ros2_builds.ros2cli`).

- ``--show-args`` lists every launch argument the file declares;
- the node started by ``ros2 launch`` answers an rclpy peer with every output for every
  frame (lossless run), while ``ros2 topic hz`` measures the depth topic and
  ``ros2 param get`` reads parameters from the launch argument and the params file.

Nothing here asserts a rate: ``ros2 topic hz`` must report one, whatever its value.
Skips where the wheels cannot exist or ``../shared`` is absent.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import ros2_builds
import ros2_support as R
from test_ros2_stack import check_outputs, installed, lossless_yaml

pytestmark = pytest.mark.slow

LAUNCH_FILE = R.REPO_ROOT / "launch" / "egocentric.launch.py"


@pytest.fixture(scope="module", params=R.TIERS)
def tier(request) -> R.Tier:
    return R.get_tier(request.param)


@pytest.fixture(scope="module")
def ros2(tier) -> Path:
    return ros2_builds.ros2cli(R.upstream_python_dir().parent, tier.python)


def _declared_arguments() -> list[str]:
    """The launch arguments ``egocentric.launch.py`` declares (its two argument tables)."""
    text = LAUNCH_FILE.read_text()
    tables = re.findall(r"^(?:PARAMETER|LAUNCH)_ARGUMENTS = \[(.*?)^\]", text, re.M | re.S)
    names = [n for t in tables for n in re.findall(r'^\s+\("(\w+)",', t, re.M)]
    assert len(names) > 20 and "image_topic" in names and "namespace" in names, names
    return names


def _run(install: Path, env: dict[str, str], argv: list[str], timeout: float = 120):
    return subprocess.run(R.sourced(install, argv), env=env, capture_output=True, text=True,
                          timeout=timeout)


def _param_get(install: Path, env: dict[str, str], node: str, name: str) -> str:
    """``ros2 param get`` (without the daemon, which would outlive the test); retried while
    the new command's node has not discovered the graph yet (up to 120 s: a busy machine)."""
    deadline = time.monotonic() + 120
    while True:
        proc = _run(install, env, ["ros2", "param", "get", "--no-daemon", node, name])
        if proc.returncode == 0:
            return proc.stdout.strip()
        if time.monotonic() > deadline:
            raise AssertionError(f"ros2 param get {node} {name}: {proc.stdout}{proc.stderr}")
        time.sleep(0.5)


def test_ros2_launch_show_args_topic_hz_and_param_get(tier, ros2, tmp_path_factory, tmp_path):
    install = installed(tier, tmp_path_factory)
    env = R.ros_env(tier=tier)
    shown = _run(install, env, ["ros2", "launch", "unihoi_ros", "egocentric.launch.py",
                                "--show-args"])
    assert shown.returncode == 0, shown.stderr[-3000:]
    missing = [n for n in _declared_arguments() if f"'{n}':" not in shown.stdout]
    assert not missing, (missing, shown.stdout[-3000:])

    launch = R.Background(R.sourced(install, [
        "ros2", "launch", "unihoi_ros", "egocentric.launch.py", "namespace:=cli",
        "image_topic:=/cli_cam/image", "world_frame:=cli_world",
        f"params_file:={lossless_yaml(tmp_path, input_qos_depth='120')}"]),
        tmp_path / "launch.log", env)
    hz = None
    try:
        R.wait_for_output(launch, "unihoi_node ready", 180)
        assert _param_get(install, env, "/cli/unihoi_node", "world_frame") == (
            "String value is: cli_world")  # a launch argument
        assert _param_get(install, env, "/cli/unihoi_node", "input_qos_depth") == (
            "Integer value is: 120")  # params_file
        hz = R.Background(R.sourced(install, ["ros2", "topic", "hz", "/cli/depth/image",
                                              "--window", "5"]), tmp_path / "hz.log", env)
        res = R.run_peer(tmp_path, env, launch, image_topic="/cli_cam/image", ns="cli",
                         frames=30, rate=10, tier=tier)
    finally:
        if hz is not None:
            hz.stop()
        rc = launch.stop()
    check_outputs(res, world_frame="cli_world")
    rates = [float(r) for r in re.findall(r"average rate: ([0-9.]+)", hz.output)]
    assert rates and all(r > 0 for r in rates), hz.output[-2000:]
    assert rc == 0 and "Traceback" not in launch.output, launch.output[-3000:]
