"""ament_copyright over the package (skips where ROS 2's ament linters are not installed)."""

import pytest

from conftest import REPO_ROOT

ament_copyright_main = pytest.importorskip(
    "ament_copyright.main", reason="ament_copyright not installed (no ROS 2 here)"
)


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright():
    rc = ament_copyright_main.main(
        argv=[str(REPO_ROOT / d) for d in ("unihoi_ros", "test", "bench", "launch")]
    )
    assert rc == 0, "Found files without a copyright header"
