"""Shared pytest fixtures.

``../shared`` (beside the repository root) holds real recordings, reference layouts and
conformance fixtures. It exists in CI and developer checkouts but not in a user's clone:
tests that need it take the ``shared_dir`` fixture and skip cleanly when it is absent.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from unihoi_ros.ros.loopback import unique_domain_id, use_loopback

REPO_ROOT = Path(__file__).resolve().parents[1]

# Every DDS participant a test creates, in this process or a child (rclpy's Fast DDS and
# Cyclone DDS alike), stays on 127.0.0.1, on a domain of the test run's own.
use_loopback()
os.environ["ROS_DOMAIN_ID"] = str(unique_domain_id(os.getpid() % 97))

# The automatic ONNX export (backend auto on the CPU: unihoi_ros.backends.onnx_router) is
# off for the suite, here and in the processes tests start: a test's backend stays the one
# it asked for instead of switching to ONNX Runtime when a background export finishes, and
# nothing is written to the user's cache. test/test_onnx_router.py turns it on, in a folder
# of the test run's own (as is this one, in case a test turns it on without a folder).
os.environ["UNIHOI_ONNX_CACHE"] = "0"
_CACHE_ROOT = tempfile.mkdtemp(prefix="unihoi_test_cache_")
os.environ["UNIHOI_CACHE_DIR"] = _CACHE_ROOT
atexit.register(shutil.rmtree, _CACHE_ROOT, ignore_errors=True)


def _find_shared() -> Path | None:
    env = os.environ.get("UNIHOI_SHARED_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared")
    for c in candidates:
        if (c / "DESIGN.md").is_file() or (c / "reference").is_dir():
            return c
    return None


SHARED_DIR = _find_shared()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Path of the ``shared`` folder; skips the test when it is not beside the checkout."""
    if SHARED_DIR is None:
        pytest.skip("../shared is not present (user clone): real-data/reference test skipped")
    return SHARED_DIR

