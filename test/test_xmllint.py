"""ament_xmllint on package.xml, plus a check that runs everywhere (schema-free).

ament_xmllint validates against the package format 3 XSD where ROS 2 is installed. The
fallback test parses package.xml with the standard library and checks what colcon and
rosdep rely on, so a broken manifest fails here too.
"""

import xml.etree.ElementTree as ET

import pytest

from conftest import REPO_ROOT

# What the node imports from a ROS installation, what rosdep can bring from apt, and the
# MCAP storage plugin `record:=true` needs (cv_bridge and sensor_msgs_py are not used).
REQUIRED_EXEC = {
    "rclpy", "sensor_msgs", "geometry_msgs", "std_msgs", "nav_msgs", "tf2_ros", "tf2_msgs",
    "message_filters", "diagnostic_updater", "diagnostic_msgs", "python3-numpy",
    "python3-opencv", "python3-yaml", "python3-scipy", "python3-tqdm", "ros2bag",
    "rosbag2_storage_mcap",
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
