"""The real-ROS 2 test tier's plumbing: what is needed, a colcon install space, processes.

The tier runs the package as users do, on ROS 2 Kilted from PyPI (the ``ros-*`` wheels:
rclpy on rmw_fastrtps / Fast DDS 3.2) plus the upstream pure-Python ``launch``,
``launch_ros``, ``message_filters``, ``diagnostic_updater`` and ``rosidl_runtime_py`` that
PyPI lacks, read from ``../shared/ros2-python/python`` (never copied here). Every process
gets the loopback DDS configuration (Cyclone and Fast DDS) and the test run's own
``ROS_DOMAIN_ID`` (set by conftest).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unihoi_ros.ros.loopback import is_loopback, use_loopback

from conftest import REPO_ROOT, SHARED_DIR

TEST_DIR = Path(__file__).resolve().parent
PEER = TEST_DIR / "ros2_peer.py"
LAUNCH = TEST_DIR / "ros2_launch.py"
#: colcon build's stderr, kept beside the workspace's install space by :func:`colcon_build`.
COLCON_STDERR = "colcon_build.stderr"
WHEELS_EXIST = (sys.platform == "linux" and platform.machine() == "x86_64"
                and (3, 10) <= sys.version_info[:2] < (3, 14))
_IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "install", "log", "__pycache__",
                                  "*.egg-info", "demo_out", "runs", "cache", "results",
                                  ".pytest_cache", ".ruff_cache", "*.onnx", "*.engine")


def require_rclpy() -> None:
    """Skip only where the ROS 2 wheels cannot exist; where they can, they must import."""
    if not WHEELS_EXIST:
        pytest.skip(f"no ROS 2 wheels for {platform.machine()} / CPython "
                    f"{sys.version_info[0]}.{sys.version_info[1]} (needs x86_64 Linux, 3.10-3.13)")
    try:
        import rclpy  # noqa: F401
        import sensor_msgs.msg  # noqa: F401
    except ImportError as exc:  # on this machine kind the test extra installs them
        pytest.fail(f"the ROS 2 wheels should be installed (pip install -e '.[test]'): {exc}")


def upstream_python_dir() -> Path:
    """``../shared/ros2-python``; skips where the shared folder is absent (a user's clone)."""
    if SHARED_DIR is None or not (SHARED_DIR / "ros2-python" / "python").is_dir():
        pytest.skip("../shared/ros2-python (upstream launch, launch_ros, message_filters, "
                    "diagnostic_updater) is not present")
    return SHARED_DIR / "ros2-python"


def ros_env(*, upstream: bool = True, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a ROS process: loopback DDS, our domain, the upstream packages."""
    env = use_loopback(dict(os.environ))
    assert is_loopback(env)
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_COLORIZED_OUTPUT"] = "0"
    paths = [str(TEST_DIR), str(REPO_ROOT)]
    if upstream:
        shared = upstream_python_dir()
        paths += [str(shared / "python"), str(shared / "stubs")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra or {})
    return env


def colcon_build(workspace: Path) -> Path:
    """Copy the package into ``workspace/src`` and ``colcon build`` it; the install space."""
    src = workspace / "src" / "unihoi_ros"
    shutil.copytree(REPO_ROOT, src, ignore=_IGNORED)
    colcon = Path(sys.executable).with_name("colcon")
    cmd = [str(colcon), "build", "--packages-select", "unihoi_ros", "--event-handlers",
           "console_direct-"]
    env = ros_env(upstream=False)
    # A user's shell: this machine kind sets PYTHONDONTWRITEBYTECODE, with which setuptools
    # warns "byte-compiling is disabled" on stderr whatever the package.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"colcon build failed:\n{proc.stdout[-3000:]}\n{proc.stderr}"
    (workspace / COLCON_STDERR).write_text(proc.stderr)  # the install test checks it is empty
    return workspace / "install"


def sourced(install: Path, argv: list[str]) -> list[str]:
    """``argv`` run by bash after sourcing the install space (what a user's shell does)."""
    setup = shlex.quote(str(install / "setup.bash"))
    return ["bash", "-c", f". {setup} && exec {shlex.join(argv)}"]


class Background:
    """A process in its own session, output to a file, stopped with SIGINT (then KILL)."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    @property
    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


def run_peer(tmp: Path, env: dict[str, str], server: Background, **kw) -> dict:
    """Run :mod:`ros2_peer` to completion (``kw``: its flags) and return its JSON."""
    out = tmp / f"peer_{time.monotonic_ns()}.json"
    argv = [sys.executable, str(PEER), "--out", str(out)]
    for key, value in kw.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)
    if proc.returncode != 0 or not out.exists():
        raise AssertionError(f"peer failed ({proc.returncode}):\n{proc.stderr[-3000:]}\n"
                             f"--- node output ---\n{server.output[-4000:]}")
    return json.loads(out.read_text())
