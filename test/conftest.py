"""Shared pytest fixtures.

``../shared`` (beside the repository root) holds real recordings, reference layouts and
conformance fixtures. It exists in CI and developer checkouts but not in a user's clone:
tests that need it take the ``shared_dir`` fixture and skip cleanly when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


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

