"""ament_flake8 over the package (skips where ROS 2's ament linters are not installed)."""

import pytest

from conftest import REPO_ROOT

ament_flake8_main = pytest.importorskip(
    "ament_flake8.main", reason="ament_flake8 not installed (no ROS 2 here)"
)


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    rc, errors = ament_flake8_main.main_with_errors(
        argv=["--linelength", "100"]
        + [str(REPO_ROOT / d) for d in ("unihoi_ros", "test", "bench", "launch")]
    )
    assert rc == 0, f"Found {len(errors)} code style errors / warnings:\n" + "\n".join(errors)
