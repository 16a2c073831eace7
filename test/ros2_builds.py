"""Builds the real-ROS 2 test tier needs, cached on disk keyed by their inputs.

- :func:`jazzy_venv`: a virtual environment with ROS 2 **Jazzy** from PyPI (the
  ``ros-jazzy-*`` wheels: rclpy 7.1 on Fast DDS 2.14) and the package's own dependencies
  (the package itself comes from the checkout, on ``PYTHONPATH``, or from a colcon install
  space). Its own venv: the unprefixed ``ros-*`` names are Kilted and would replace it.
- :func:`tf2_workspace`: tf2_msgs, tf2, tf2_py and tf2_ros_py built against the Kilted
  wheels of the running venv by ``../shared/ros2-python/build-tf2.sh``.
- :func:`ros2cli`: the ``ros2`` command (launch, topic, param, ... verbs) installed into a
  venv by ``../shared/ros2-python/install-ros2cli.sh``.

Each build lands in ``$UNIHOI_CI_CACHE`` (default ``$XDG_CACHE_HOME/unihoi-ci``, i.e.
``~/.cache/unihoi-ci``) under ``<kind>-<key>``, where the key is a digest of everything
the build reads (scripts, sources, interpreter, wheel versions); a build is done under a
file lock (several test runs at once build it once) and marked complete last, so an
interrupted one is redone. Entries of a kind unused for :data:`PRUNE_AFTER_DAYS` are
deleted when another of that kind is built. Deleting the folder clears it all.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

CACHE_ROOT = Path(os.environ.get("UNIHOI_CI_CACHE") or Path(
    os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unihoi-ci")
COMPLETE = ".unihoi-ci-complete"
PRUNE_AFTER_DAYS = 14

#: ROS 2 Jazzy from PyPI: what the node, its launch file and the test peer import.
JAZZY_WHEELS = (
    "ros-jazzy-rclpy", "ros-jazzy-rmw-fastrtps-cpp", "ros-jazzy-std-msgs",
    "ros-jazzy-sensor-msgs", "ros-jazzy-geometry-msgs", "ros-jazzy-nav-msgs",
    "ros-jazzy-diagnostic-msgs", "ros-jazzy-ament-index-python", "ros-jazzy-ament-package",
)
#: colcon and what the upstream launch packages import (as the test extra has them).
JAZZY_TOOLS = ("colcon-common-extensions", "osrf-pycommon", "lark", "pyyaml")
#: The Kilted runtime wheels tf2 is compiled and linked against (their versions key it).
TF2_LINKED_WHEELS = (
    "ros-rclpy", "ros-rcl", "ros-rmw", "ros-rcutils", "ros-rcpputils", "ros-fastdds",
    "ros-fastcdr", "ros-builtin-interfaces", "ros-std-msgs", "ros-geometry-msgs",
    "ros-rosidl-runtime-c", "ros-rosidl-runtime-cpp", "ros-rosidl-typesupport-c",
    "ros-rosidl-typesupport-cpp", "ros-rosidl-typesupport-fastrtps-c",
    "ros-rosidl-typesupport-fastrtps-cpp", "ros-rosidl-typesupport-introspection-c",
    "ros-rosidl-typesupport-introspection-cpp", "ros-rosidl-generator-py",
)
TF2_PACKAGES = ("tf2_msgs", "tf2", "tf2_py", "tf2_ros_py")
ROS2CLI_PACKAGES = ("ros2cli/ros2cli", "ros2cli/ros2pkg", "ros2cli/ros2run",
                    "ros2cli/ros2topic", "ros2cli/ros2node", "ros2cli/ros2param",
                    "ros2cli/ros2service", "launch_ros/ros2launch")


class BuildError(RuntimeError):
    """A cached build failed (the message holds the tail of its output)."""


# --------------------------------------------------------------------------- keys
def digest(parts: Iterable[object]) -> str:
    """Hex digest of ``parts``: strings, and files or whole folders (paths and contents,
    ``__pycache__`` and ``*.pyc`` left out) given as :class:`~pathlib.Path`."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            files = sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]
            for f in files:
                if "__pycache__" in f.parts or f.suffix == ".pyc":
                    continue
                h.update(str(f.relative_to(part) if part.is_dir() else f.name).encode())
                h.update(hashlib.sha256(f.read_bytes()).digest())
        else:
            h.update(repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _versions(dists: Iterable[str]) -> list[str]:
    out = []
    for name in dists:
        try:
            out.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:
            out.append(f"{name} missing")
    return out


def _tool_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.split(
            "\n")[0]
    except OSError:
        return f"{cmd[0]} missing"


# --------------------------------------------------------------------------- cache
@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prune(kind: str, keep: Path) -> None:
    horizon = time.time() - PRUNE_AFTER_DAYS * 86400
    for old in CACHE_ROOT.glob(f"{kind}-*"):
        marker = old / COMPLETE
        if old != keep and old.is_dir() and (
                not marker.exists() or marker.stat().st_mtime < horizon):
            shutil.rmtree(old, ignore_errors=True)


def cached(kind: str, key_parts: Iterable[object], build: Callable[[Path], None]) -> Path:
    """The folder ``build(folder)`` fills for these inputs: built now, or found complete.

    Builds in place (venvs and colcon install spaces hold absolute paths), under a lock;
    the completion marker (holding the key's inputs and the build time) is written last
    and touched at every use.
    """
    parts = list(key_parts)
    path = CACHE_ROOT / f"{kind}-{digest(parts)}"
    marker = path / COMPLETE
    with _locked(kind):
        if marker.is_file():
            marker.touch()
            return path
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        t0 = time.monotonic()
        print(f"\n[unihoi-ci cache] building {path.name} (once for these inputs) ...",
              file=sys.stderr, flush=True)
        try:
            build(path)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        seconds = round(time.monotonic() - t0, 1)
        marker.write_text(json.dumps({"inputs": [str(p) for p in parts],
                                      "build_s": seconds}, indent=1))
        print(f"[unihoi-ci cache] {path.name} built in {seconds} s", file=sys.stderr,
              flush=True)
        _prune(kind, path)
    return path


def _run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 1200) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        out = "\n".join(ln for ln in (proc.stdout + proc.stderr).splitlines()
                        if "WARNING: Location" not in ln)  # pip's notes on local indexes
        raise BuildError(f"{' '.join(cmd[:6])} ... failed ({proc.returncode}):\n{out[-4000:]}")


# --------------------------------------------------------------------------- builds
def package_requirements(extras: tuple[str, ...] = ("dds",)) -> list[str]:
    """The installed package's requirements (core and ``extras``), markers dropped: what a
    second venv needs to run it from the checkout."""
    out = []
    for req in md.requires("unihoi_ros") or []:
        spec, _, marker = req.partition(";")
        if "extra ==" in marker and not any(f'extra == "{e}"' in marker for e in extras):
            continue
        out.append(spec.strip())
    return sorted(set(out))


def jazzy_venv() -> Path:
    """A venv with ROS 2 Jazzy's wheels, torch (this venv's version) and the package's
    dependencies; returns its ``bin/python``."""
    import torch

    torch_req = f"torch=={torch.__version__.split('+')[0]}"
    reqs = package_requirements()

    def build(venv: Path) -> None:
        _run([sys.executable, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        _run([*pip, torch_req])  # first, so the next step keeps this (CPU) build
        _run([*pip, *reqs, *JAZZY_WHEELS, *JAZZY_TOOLS])

    key = ["jazzy-venv 1", sys.version, os.path.realpath(sys.executable), torch_req, *reqs,
           *JAZZY_WHEELS, *JAZZY_TOOLS]
    return cached("jazzy-venv", key, build) / "bin" / "python"


def tf2_workspace(shared: Path) -> Path:
    """tf2 built against this venv's Kilted wheels; returns ``install/local_setup.bash``.

    Needs cmake and g++ (apt); ``build-tf2.sh`` installs the ament/rosidl build wheels into
    this venv and points their CMake files at its Python (``patch-wheel-cmake.sh``).
    """
    here = shared / "ros2-python"
    venv = Path(sys.prefix)

    def build(ws: Path) -> None:
        _run(["bash", str(here / "build-tf2.sh"), str(venv), str(ws)])
        shutil.rmtree(ws / "build", ignore_errors=True)  # the install space is what is used

    key = ["tf2 1", sys.version, os.path.realpath(venv), here / "build-tf2.sh",
           here / "patch-wheel-cmake.sh", *(here / "src" / "geometry2" / p for p in TF2_PACKAGES),
           *_versions(TF2_LINKED_WHEELS), _tool_version(["cmake", "--version"]),
           _tool_version(["g++", "--version"])]
    return cached("tf2-kilted", key, build) / "install" / "local_setup.bash"


def ros2cli(shared: Path, python: Path) -> Path:
    """The ``ros2`` command in the venv of ``python`` (installed once per venv and source
    version: a marker file in the venv, keyed like the cache); returns its path."""
    here = shared / "ros2-python"
    venv = Path(python).parent.parent
    key = digest(["ros2cli 1", os.path.realpath(venv), here / "install-ros2cli.sh",
                  *(here / "src" / p for p in ROS2CLI_PACKAGES)])
    marker = venv / f".unihoi-ci-ros2cli-{key}"
    ros2 = venv / "bin" / "ros2"
    with _locked(f"ros2cli-{key}"):
        if not (marker.is_file() and ros2.is_file()):
            _run(["bash", str(here / "install-ros2cli.sh"), str(venv)])
            for stale in venv.glob(".unihoi-ci-ros2cli-*"):
                stale.unlink()
            marker.write_text("installed by test/ros2_builds.py\n")
    return ros2


def sourced_env(env: dict[str, str], *scripts: Path) -> dict[str, str]:
    """``env`` after bash sources ``scripts`` (colcon's setup files) in order."""
    cmd = " && ".join(f'. "{s}"' for s in scripts) + " && env -0"
    proc = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise BuildError(f"sourcing {scripts} failed: {proc.stderr.decode()[-2000:]}")
    pairs = (item.split("=", 1) for item in proc.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)
