"""The real-ROS 2 test tier's plumbing: what is needed, a colcon install space, processes.

The tier runs the package as users do, on two ROS 2 distributions from PyPI (a
:class:`Tier` each): **Kilted** (the ``ros-*`` wheels of the running venv: rclpy 9 on
rmw_fastrtps / Fast DDS 3.2) and **Jazzy** (``ros-jazzy-*``: rclpy 7.1 on Fast DDS 2.14,
in a venv of its own built and cached by :func:`ros2_builds.jazzy_venv`), plus the
upstream pure-Python ``launch``,
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
from dataclasses import dataclass
from pathlib import Path

import pytest
import ros2_builds

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


@dataclass(frozen=True)
class Tier:
    """A ROS 2 distribution the tier runs on: its name and the Python that has its wheels
    (colcon, ``unihoi``, the node's and the peer's interpreter)."""

    name: str
    python: Path

    @property
    def bin(self) -> Path:
        return self.python.parent


KILTED = Tier("kilted", Path(sys.executable))
TIERS = ("kilted", "jazzy")


def get_tier(name: str) -> Tier:
    """The tier ``name``; Jazzy's venv is built on first use (cached, several minutes once)
    and needs ``../shared`` (skips without it, as the whole tier does)."""
    require_rclpy()
    if name == "kilted":
        return KILTED
    upstream_python_dir()
    return Tier(name, ros2_builds.jazzy_venv())


def tf2_setup() -> Path:
    """``local_setup.bash`` of tf2 built for the Kilted venv (cached; skips without
    ``../shared`` or without cmake and g++, which build-tf2.sh needs)."""
    require_rclpy()
    shared = upstream_python_dir().parent
    missing = [tool for tool in ("cmake", "g++") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"building tf2 needs {' and '.join(missing)} (apt install cmake g++)")
    return ros2_builds.tf2_workspace(shared)


def upstream_python_dir() -> Path:
    """``../shared/ros2-python``; skips where the shared folder is absent (a user's clone)."""
    if SHARED_DIR is None or not (SHARED_DIR / "ros2-python" / "python").is_dir():
        pytest.skip("../shared/ros2-python (upstream launch, launch_ros, message_filters, "
                    "diagnostic_updater) is not present")
    return SHARED_DIR / "ros2-python"


def ros_env(*, upstream: bool = True, extra: dict[str, str] | None = None,
            tier: Tier = KILTED, setup: tuple[Path, ...] = ()) -> dict[str, str]:
    """Environment of a ROS process: loopback DDS, our domain, the upstream packages, the
    tier's executables first on ``PATH``, and ``setup`` (colcon setup files) sourced."""
    env = use_loopback(dict(os.environ))
    assert is_loopback(env)
    _without_bootstrap(env)
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_COLORIZED_OUTPUT"] = "0"
    paths = [str(TEST_DIR), str(REPO_ROOT)]
    if upstream:
        shared = upstream_python_dir()
        paths += [str(shared / "python"), str(shared / "stubs")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PATH"] = os.pathsep.join([str(tier.bin), env.get("PATH", "")])
    env.update(extra or {})
    return ros2_builds.sourced_env(env, *setup) if setup else env


def _without_bootstrap(env: dict[str, str]) -> None:
    """Undo, in ``env``, what the ROS wheels' bootstrapper did to this process: it puts the
    venv's library folders on ``LD_LIBRARY_PATH`` and marks the environment done
    (``_ROS_WHEELS_BOOTSTRAP_COMPLETE``), so a child of another venv (Jazzy) would load
    Kilted's libraries, or none. Each child bootstraps itself again."""
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    prefix = os.path.realpath(sys.prefix)
    keep = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep)
            if p and os.path.commonpath([prefix, os.path.realpath(p)]) != prefix]
    if keep:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(keep)
    else:
        env.pop("LD_LIBRARY_PATH", None)


def colcon_build(workspace: Path, tier: Tier = KILTED) -> Path:
    """Copy the package into ``workspace/src`` and ``colcon build`` it with the tier's
    colcon (entry points then run the tier's Python); the install space."""
    src = workspace / "src" / "unihoi_ros"
    shutil.copytree(REPO_ROOT, src, ignore=_IGNORED)
    colcon = tier.bin / "colcon"
    cmd = [str(colcon), "build", "--packages-select", "unihoi_ros", "--event-handlers",
           "console_direct-"]
    env = ros_env(upstream=False, tier=tier)
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

    def stop(self, timeout: float = 60.0) -> int:
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


def wait_for_output(process: Background, text: str, timeout: float) -> None:
    """Until ``text`` is in the output of ``process`` (it must keep running)."""
    deadline = time.monotonic() + timeout
    while text not in process.output:
        if process.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not seen:\n{process.output[-3000:]}")
        time.sleep(0.2)


def run_peer(tmp: Path, env: dict[str, str], server: Background, *, tier: Tier = KILTED,
             **kw) -> dict:
    """Run :mod:`ros2_peer` with the tier's Python to completion (``kw``: its flags; a list
    repeats the flag) and return its JSON."""
    out = tmp / f"peer_{time.monotonic_ns()}.json"
    argv = [str(tier.python), str(PEER), "--out", str(out)]
    for key, value in kw.items():
        flag = f"--{key.replace('_', '-')}"
        if value is True:  # a switch
            argv.append(flag)
        elif isinstance(value, list):  # a flag given once per item
            argv += [a for v in value for a in (flag, str(v))]
        elif value is not False and value is not None:
            argv += [flag, str(value)]
    # The peer's own deadlines (matching, draining) plus the clip and a start-up margin.
    timeout = (kw.get("match_timeout", 120) + kw.get("drain_timeout", 180)
               + kw.get("frames", 20) / kw.get("rate", 10) + 120)
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (
            exc.stderr or "")
        raise AssertionError(f"peer still running after {timeout:.0f} s:\n{err[-3000:]}\n"
                             f"--- node output ---\n{server.output[-4000:]}") from None
    if proc.returncode != 0 or not out.exists():
        raise AssertionError(f"peer failed ({proc.returncode}):\n{proc.stderr[-3000:]}\n"
                             f"--- node output ---\n{server.output[-4000:]}")
    return json.loads(out.read_text())
