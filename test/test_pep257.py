"""ament_pep257 over the package (skips where ROS 2's ament linters are not installed)."""

import pytest

from conftest import REPO_ROOT

ament_pep257_main = pytest.importorskip(
    "ament_pep257.main", reason="ament_pep257 not installed (no ROS 2 here)"
)


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    rc = ament_pep257_main.main(argv=[str(REPO_ROOT / "unihoi_ros"), str(REPO_ROOT / "test")])
    assert rc == 0, "Found code style errors / warnings"
