"""The package is installable and usable without ROS 2: setup.py metadata, entry points,
data files, and lazy optional imports."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from conftest import REPO_ROOT


def _setup_kwargs() -> dict:
    """Run setup.py with setuptools.setup patched out and return its keyword arguments."""
    captured: dict = {}
    code = (REPO_ROOT / "setup.py").read_text()
    with mock.patch("setuptools.setup", side_effect=lambda **kw: captured.update(kw)):
        cwd = Path.cwd()
        try:
            import os

            os.chdir(REPO_ROOT)  # setup.py globs relative to the package root, as colcon runs it
            exec(compile(code, "setup.py", "exec"), {"__name__": "__main__"})
        finally:
            os.chdir(cwd)
    return captured


def test_setup_metadata_and_data_files():
    kw = _setup_kwargs()
    assert kw["name"] == "unihoi_ros"
    data = dict(kw["data_files"])
    assert data["share/ament_index/resource_index/packages"] == ["resource/unihoi_ros"]
    assert data["share/unihoi_ros"] == ["package.xml"]
    for files in data.values():
        for f in files:
            assert (REPO_ROOT / f).is_file(), f"data file {f} missing"
    # Version agrees between setup.py, package.xml and the Python package.
    import unihoi_ros

    assert kw["version"] == unihoi_ros.__version__
    assert f"<version>{kw['version']}</version>" in (REPO_ROOT / "package.xml").read_text()
    for extra in ("test", "train", "onnx", "dds", "viz"):
        assert extra in kw["extras_require"]


def test_console_scripts_resolve():
    scripts = _setup_kwargs()["entry_points"]["console_scripts"]
    names = {s.split("=")[0].strip() for s in scripts}
    assert names == {"unihoi", "unihoi_node", "unihoi_record"}
    for spec in scripts:
        target = spec.split("=")[1].strip()
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), target


def test_import_and_cli_without_ros_or_tensorrt():
    code = (
        "import sys, unihoi_ros, unihoi_ros.cli as c; c.build_parser(); "
        "bad = [m for m in ('rclpy', 'tensorrt', 'cyclonedds') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "unihoi_ros.cli", "--help"],
        check=True, capture_output=True, text=True, cwd=REPO_ROOT,
    ).stdout
    assert "demo" in out


def test_missing_optional_dependency_message():
    from unihoi_ros.optional import MissingDependencyError, require

    with pytest.raises(MissingDependencyError, match="ROS 2"):
        require("rclpy") if importlib.util.find_spec("rclpy") is None else pytest.skip(
            "rclpy present"
        )
    with pytest.raises(MissingDependencyError, match="no_such_module_xyz"):
        require("no_such_module_xyz")


def test_node_entry_point_reports_missing_rclpy(capsys):
    if importlib.util.find_spec("rclpy") is not None:
        pytest.skip("rclpy is installed: the node would start")
    from unihoi_ros.ros.node_main import main

    assert main([]) == 1
    assert "rclpy" in capsys.readouterr().err


def test_launch_files_parse():
    for path in (REPO_ROOT / "launch").glob("*.py"):
        ast.parse(path.read_text(), filename=str(path))


def test_every_subpackage_is_a_package():
    """find_packages() skips folders without __init__.py: their modules would not install."""
    pkg = REPO_ROOT / "unihoi_ros"
    for d in [pkg, *(p for p in pkg.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        if any(d.glob("*.py")):
            assert (d / "__init__.py").is_file(), f"{d.relative_to(REPO_ROOT)} lacks __init__.py"
