"""ament_xmllint on package.xml, plus a check that runs everywhere (schema-free).

ament_xmllint validates against the package format 3 XSD where ROS 2 is installed. The
fallback test parses package.xml with the standard library and checks what colcon and
rosdep rely on, so a broken manifest fails here too.
"""

import xml.etree.ElementTree as ET

import pytest

from conftest import REPO_ROOT

REQUIRED_EXEC = {
    "rclpy", "sensor_msgs", "geometry_msgs", "std_msgs", "nav_msgs", "tf2_ros", "tf2_msgs",
    "message_filters", "sensor_msgs_py", "cv_bridge", "diagnostic_updater", "python3-numpy",
    "python3-opencv",
}
REQUIRED_TEST = {"ament_copyright", "ament_flake8", "ament_pep257", "ament_xmllint",
                 "python3-pytest"}


@pytest.mark.linter
@pytest.mark.xmllint
def test_xmllint():
    main = pytest.importorskip(
        "ament_xmllint.main", reason="ament_xmllint not installed (no ROS 2 here)"
    ).main
    assert main(argv=[str(REPO_ROOT / "package.xml")]) == 0, "Found errors"


def test_package_xml_manifest():
    root = ET.parse(REPO_ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "unihoi_ros"
    assert root.find("export/build_type").text == "ament_python"
    exec_deps = {e.text for e in root.findall("exec_depend")}
    test_deps = {e.text for e in root.findall("test_depend")}
    assert REQUIRED_EXEC <= exec_deps, REQUIRED_EXEC - exec_deps
    assert REQUIRED_TEST <= test_deps, REQUIRED_TEST - test_deps
    for tag in ("version", "description", "maintainer", "license"):
        assert (root.findtext(tag) or "").strip(), f"package.xml lacks <{tag}>"
