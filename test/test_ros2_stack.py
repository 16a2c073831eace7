"""The package under a real ROS 2 stack, as users run it, on two distributions from PyPI:
Kilted (rclpy 9 on Fast DDS 3.2, this venv) and Jazzy (rclpy 7.1 on Fast DDS 2.14, a venv
of its own: :mod:`ros2_builds`). Tests taking ``tier`` run on both.

- ``colcon build`` in a scratch workspace, and the install space's layout;
- ``egocentric.launch.py`` from that install space through ``launch.LaunchService`` (what
  ``ros2 launch`` does), driven by a real rclpy peer in another process: every output is
  checked against the input (stamps, frame ids, encodings, sizes, K, cloud fields,
  trajectory, /diagnostics), with and without ``use_camera_info``, in two namespaces, with
  absolute and relative input topics;
- ``unihoi_node --ros-args ...`` (remapping, parameters) and ``unihoi run --transport rclpy``;
- ``unihoi run --transport dds`` (Cyclone DDS) against rclpy publishers and subscribers: the
  Fast DDS 3 compatibility setting is what lets data flow (without it: nothing).

``tf2_msgs`` is not among the wheels, so these runs also show the node without it: TF off,
said once, every other output published for every processed frame (TF itself, with tf2
built from source: ``test_ros2_tf.py``).

No assertion depends on how fast the machine is: the runs are lossless (:data:`LOSSLESS`:
replay mode, reliable input with a long history; the peer's publishers are reliable too),
so every frame sent must come back with every output; the one run in live mode (drops
when busy) checks the node's accounting, which holds at any speed. Rates belong in
``bench/``.

Skips only where the wheels cannot exist (not x86_64 Linux / CPython 3.10-3.13) or, for
launch, where ``../shared/ros2-python`` (upstream launch packages) is absent.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import ros2_support as R

pytestmark = pytest.mark.slow

NODE_FRAME = "head_camera_optical"  # the peer's header frame_id: outputs follow the input
FLOAT32 = 7


#: Node parameters under which every frame sent is processed and every output reaches its
#: readers, on a machine however busy: replay mode (a FIFO instead of live mode's one
#: pending slot), a reliable input subscription and output publishers whose histories
#: outlast any clip here (a reliable keep-last endpoint drops its oldest sample when its
#: history is full: a reader not taking them, a writer whose reader is slow to
#: acknowledge).
LOSSLESS = {"live_mode": "false", "input_qos": "DEFAULT", "input_qos_depth": "100",
            "output_qos_depth": "100"}
_INSTALLS: dict[str, Path] = {}


def lossless_yaml(folder: Path, **more: str) -> Path:
    """A ROS 2 parameter file of :data:`LOSSLESS` (and ``more``) for ``params_file:=``."""
    path = folder / "lossless.yaml"
    lines = [f"    {k}: {v}" for k, v in {**LOSSLESS, **more}.items()]
    path.write_text("/**:\n  ros__parameters:\n" + "\n".join(lines) + "\n")
    return path


def ros_args(params: dict[str, str], sep: str = ":=") -> list[str]:
    """``-p name:=value`` for each parameter (``sep="="`` for ``unihoi run``)."""
    return [a for k, v in params.items() for a in ("-p", f"{k}{sep}{v}")]


def installed(tier: R.Tier, factory) -> Path:
    """The colcon install space of the package built with ``tier``'s colcon (once)."""
    if tier.name not in _INSTALLS:
        _INSTALLS[tier.name] = R.colcon_build(factory.mktemp(f"colcon_ws_{tier.name}"), tier)
    return _INSTALLS[tier.name]


@pytest.fixture(scope="module", params=R.TIERS)
def tier(request) -> R.Tier:
    return R.get_tier(request.param)


@pytest.fixture(scope="module")
def tier_install(tier, tmp_path_factory) -> Path:
    return installed(tier, tmp_path_factory)


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> Path:
    """Kilted's install space (for the tests that run on Kilted only)."""
    R.require_rclpy()
    return installed(R.KILTED, tmp_path_factory)


# --------------------------------------------------------------------------- checks
def check_outputs(res: dict, *, lossless: bool = True, frame_id: str = NODE_FRAME,
                  K: tuple[float, float, float, float] | None = None,
                  world_frame: str = "unihoi_world") -> list[int]:
    """Every output against the input; returns the processed stamps.

    ``lossless``: every frame sent was received and published (a :data:`LOSSLESS` run);
    otherwise (live mode) at least one, and every frame received is either published or
    dropped with a counted reason.
    """
    got, sent, H, W = res["got"], res["sent"], res["height"], res["width"]
    depth = got["depth"]
    stamps = [m["stamp"] for m in depth]
    if lossless:
        assert stamps == sent, f"{len(stamps)} of {len(sent)} frames came back"
    else:
        assert stamps, f"none of {len(sent)} frames came back"
    assert set(stamps) <= set(sent) and stamps == sorted(stamps) and len(set(stamps)) == len(
        stamps), "output stamps must be the input stamps, in order, once each"
    # Every other output for every processed frame, with the same stamp.
    for key in ("camera_info", "confidence", "points", "trajectory"):
        assert [m["stamp"] for m in got[key]] == stamps, key
    for key in ("depth", "confidence"):
        for m in got[key]:
            assert (m["encoding"], m["height"], m["width"]) == ("32FC1", H, W), key
            assert m["step"] == 4 * W and m["bytes"] == 4 * W * H and m["frame_id"] == frame_id
    for m in got["camera_info"]:
        assert (m["height"], m["width"], m["frame_id"]) == (H, W, frame_id)
        k = np.array(m["k"]).reshape(3, 3)
        assert np.isfinite(k).all() and k[2, 2] == 1.0 and k[0, 1] == k[1, 0] == 0.0
        if K is not None:  # the camera's K, as given (same size: no scaling)
            np.testing.assert_allclose([k[0, 0], k[1, 1], k[0, 2], k[1, 2]], K, rtol=1e-9)
        else:  # predicted: positive focal lengths, principal point inside the image
            assert k[0, 0] > 0 and k[1, 1] > 0 and 0 < k[0, 2] < W and 0 < k[1, 2] < H
    for m in got["points"]:
        assert m["frame_id"] == frame_id and m["points"] > 0 and m["point_step"] == 16
        assert m["fields"] == [["x", FLOAT32, 0], ["y", FLOAT32, 4], ["z", FLOAT32, 8],
                               ["rgb", FLOAT32, 12]]
    tracks = got["tracks"]  # world frame; id uint32 (6), dynamic uint8 (2); ids persist
    assert [m["stamp"] for m in tracks] == stamps
    for m in tracks:
        assert m["frame_id"] == world_frame and m["point_step"] == 24
        assert m["fields"] == [["x", FLOAT32, 0], ["y", FLOAT32, 4], ["z", FLOAT32, 8],
                               ["id", 6, 12], ["dynamic", 2, 16], ["rgb", FLOAT32, 20]]
        assert m["points"] > 0 and len(set(m["ids"])) == len(m["ids"])
    kept = [len(set(a["ids"]) & set(b["ids"])) / max(1, len(a["ids"]))
            for a, b in itertools.pairwise(tracks)]
    assert np.median(kept) > 0.5, kept  # most tracks live on to the next frame
    for i, m in enumerate(got["trajectory"]):  # one pose more per processed frame
        assert m["frame_id"] == world_frame and m["poses"] == i + 1
        assert m["last_stamp"] == m["stamp"]
    status = [s for d in got["diagnostics"] for s in d["status"]  # ("Node starting up" has
              if s["name"].endswith("unihoi_node: UniHOI reconstruction")  # no values yet)
              and "# of Frames Published" in s["values"]]
    assert status, "no /diagnostics status of unihoi_node"
    assert all(s["level"] in (0, 1) for s in status), [(s["level"], s["message"]) for s in status]
    last = status[-1]["values"]  # after the last frame (the peer waits for it)
    published, received = int(last["# of Frames Published"]), int(last["# of Frames Received"])
    missed = int(last["# of Missed Frames"])
    counts = {k: v for k, v in last.items() if "Frames" in k or "Missed" in k}
    assert published == len(stamps) and received == published + missed, counts
    if lossless:
        assert received == len(sent) and missed == 0, counts
    else:
        assert received <= len(sent)  # best-effort input: a sample may be lost
    return stamps


def check_tf_note(log: str) -> None:
    """Without tf2_msgs (not among the wheels): said once at start-up, naming it."""
    assert log.count("TF disabled") == 1 and "tf2_msgs" in log, log[-3000:]


# --------------------------------------------------------------------------- colcon
def test_colcon_install_space(tier, tier_install):
    install = tier_install
    # colcon build says nothing on stderr (no setuptools warnings: package data of the data
    # packages, unknown options)
    assert (install.parent / R.COLCON_STDERR).read_text() == ""
    pkg = install / "unihoi_ros"
    share = pkg / "share" / "unihoi_ros"
    assert (share / "package.xml").is_file()
    assert (share / "launch" / "egocentric.launch.py").is_file()
    for name in ("egocentric.yaml", "unihoi.rviz", "unihoi.foxglove.json"):
        assert (share / "config" / name).is_file(), name
    assert (pkg / "share" / "ament_index" / "resource_index" / "packages" / "unihoi_ros").is_file()
    for exe in ("unihoi_node", "unihoi"):
        assert (pkg / "lib" / "unihoi_ros" / exe).stat().st_mode & 0o111, exe
    site = next((pkg / "lib").glob("python3.*/site-packages"))
    assert (site / "unihoi_ros" / "model" / "weights" / "unihoi-tiny.safetensors").is_file()
    assert (site / "unihoi_ros" / "ros" / "fastdds_loopback.xml").is_file()
    assert (site / "unihoi_ros" / "train" / "configs" / "unihoi_tiny.yaml").is_file()
    # Sourcing the install space makes the package findable through the ament index.
    code = ("from ament_index_python.packages import get_package_share_directory as g; "
            "print(g('unihoi_ros'))")
    out = subprocess.run(R.sourced(install, [str(tier.python), "-c", code]), env=R.ros_env(
        upstream=False, tier=tier), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and Path(out.stdout.strip()) == share, out.stderr


# --------------------------------------------------------------------------- launch
def test_launch_absolute_input_topic(tier, tier_install, tmp_path):
    env = R.ros_env(tier=tier)
    node = R.Background(R.sourced(tier_install, [
        str(tier.python), str(R.LAUNCH), "image_topic:=/cam/color/image_raw",
        f"params_file:={lossless_yaml(tmp_path)}"]), tmp_path / "launch.log", env)
    try:
        res = R.run_peer(tmp_path, env, node, image_topic="/cam/color/image_raw",
                         ns="unihoi", frames=30, rate=10, tier=tier)
    finally:
        rc = node.stop()
    check_outputs(res)
    check_tf_note(node.output)
    assert rc == 0, node.output[-3000:]
    assert "unihoi_node ready" in node.output and "Traceback" not in node.output


def test_launch_camera_info_other_namespace_relative_topic(install, tmp_path):
    env = R.ros_env()
    K = (70.5, 71.25, 63.0, 47.5)
    node = R.Background(R.sourced(install, [
        sys.executable, str(R.LAUNCH), "namespace:=lab", "image_topic:=image",
        "use_camera_info:=true", "camera_info_topic:=camera_info",
        f"params_file:={lossless_yaml(tmp_path)}"]), tmp_path / "launch.log", env)
    try:
        res = R.run_peer(tmp_path, env, node, image_topic="/lab/image",
                         camera_info_topic="/lab/camera_info", K=",".join(map(str, K)),
                         ns="lab", frames=24, rate=10)
    finally:
        rc = node.stop()
    check_outputs(res, K=K)
    assert rc == 0 and "K from /lab/camera_info" in node.output, node.output[-3000:]


# --------------------------------------------------------------------------- executables
def test_unihoi_node_ros_args_remap_and_parameters(tier, tier_install, tmp_path):
    env = R.ros_env(tier=tier)
    exe = tier_install / "unihoi_ros" / "lib" / "unihoi_ros" / "unihoi_node"
    node = R.Background(R.sourced(tier_install, [
        str(exe), "--ros-args", "-r", "__ns:=/direct", "-r", "image:=/remapped/image_raw",
        "-p", "camera_frame:=head_cam_opt", "-p", "world_frame:=head_world",
        "-p", "point_stride:=4", *ros_args(LOSSLESS)]), tmp_path / "node.log", env)
    try:
        res = R.run_peer(tmp_path, env, node, image_topic="/remapped/image_raw", ns="direct",
                         frames=16, rate=10, tier=tier)
    finally:
        rc = node.stop()
    check_outputs(res, frame_id="head_cam_opt", world_frame="head_world")
    assert rc == 0, node.output[-3000:]
    assert "Traceback" not in node.output, node.output[-3000:]
    _check_interpreter(tier_install / "unihoi_ros" / "lib" / "unihoi_ros" / "unihoi_node",
                       tier)


def _check_interpreter(script: Path, tier: R.Tier) -> None:
    """colcon wrote the entry point for the tier's venv (so it runs that distribution)."""
    shebang = script.read_text().splitlines()[0]
    assert Path(shebang[2:].split()[0]).parent == tier.bin, (shebang, tier)


def test_unihoi_run_rclpy_transport(tier, tier_install, tmp_path):
    env = R.ros_env(tier=tier)
    node = R.Background(R.sourced(tier_install, [
        "unihoi", "run", "--transport", "rclpy", "--namespace", "/runner",
        "--input-topic", "/runner_cam/image", *ros_args(LOSSLESS, "=")]),
        tmp_path / "run.log", env)
    try:
        res = R.run_peer(tmp_path, env, node, image_topic="/runner_cam/image", ns="runner",
                         frames=16, rate=10, tier=tier)
    finally:
        rc = node.stop()
    check_outputs(res)
    assert rc == 0, node.output[-3000:]
    _check_interpreter(tier_install / "unihoi_ros" / "lib" / "unihoi_ros" / "unihoi", tier)


def test_live_mode_defaults_account_for_every_frame(install, tmp_path):
    """The defaults (live mode, best-effort input) with frames coming faster than the node
    processes them: what is published is right, and every frame received is published or
    dropped as ``busy`` (counted), however fast this machine happens to be."""
    env = R.ros_env()
    exe = install / "unihoi_ros" / "lib" / "unihoi_ros" / "unihoi_node"
    node = R.Background(R.sourced(install, [str(exe), "--ros-args", "-r", "__ns:=/live"]),
                        tmp_path / "node.log", env)
    try:
        res = R.run_peer(tmp_path, env, node, image_topic="/live/image", ns="live",
                         frames=30, rate=30)
    finally:
        rc = node.stop()
    check_outputs(res, lossless=False)
    assert rc == 0, node.output[-3000:]


# --------------------------------------------------------------------------- Cyclone <-> rclpy
def _dds_node(tmp_path: Path, env: dict[str, str], *flags: str,
              tier: R.Tier = R.KILTED) -> R.Background:
    return R.Background([str(tier.python), "-m", "unihoi_ros.cli", "run", "--transport", "dds",
                         "--namespace", "/ddsnode", "--input-topic", "/rclpy_cam/image",
                         *flags], tmp_path / "dds.log", env)


def test_dds_transport_with_rclpy_peers(tier, tmp_path):
    """rclpy publisher -> Cyclone DDS node -> rclpy subscribers: all 60 frames (Kilted: the
    Fast DDS 3 compatibility setting; Jazzy's Fast DDS 2.14 needs none). The rclpy peer
    starts after the node is up: the order in which Fast DDS 2.x once found no Cyclone
    participant (the loopback configuration's 1 s announcements fix it)."""
    env = R.ros_env(upstream=False, tier=tier)
    node = _dds_node(tmp_path, env, *ros_args(LOSSLESS, "="), tier=tier)
    try:
        R.wait_for_output(node, "DDS domain", 180)
        res = R.run_peer(tmp_path, env, node, image_topic="/rclpy_cam/image", ns="ddsnode",
                         frames=60, rate=10, height=72, width=96, tier=tier)
    finally:
        rc = node.stop()
    check_outputs(res)
    assert rc == 0, node.output[-3000:]


def test_dds_transport_without_compat_setting_exchanges_nothing(tmp_path):
    """The opt-out shows why the setting exists: Fast DDS 3 matches, no sample flows."""
    R.require_rclpy()
    env = R.ros_env(upstream=False)
    node = _dds_node(tmp_path, env, "--no-fastdds-compat")
    try:
        res = R.run_peer(tmp_path, env, node, image_topic="/rclpy_cam/image", ns="ddsnode",
                         frames=10, rate=10, height=48, width=64, drain_timeout=4,
                         expect_no_flow=True)
    finally:
        node.stop()
    assert res["got"]["depth"] == [] and res["got"]["diagnostics"] == []
    assert '"received": 0' in node.output, node.output[-2000:]


# --------------------------------------------------------------------------- launch options
def test_launch_params_file_and_empty_namespace(install, tmp_path):
    """A user's YAML over the defaults takes effect (96x128 processing of a 120x160
    camera: every output describes the 96x128 image); namespace:='' puts topics at /."""
    params = tmp_path / "lab.yaml"
    params.write_text("/**:\n  ros__parameters:\n    process_height: 96\n"
                      "    process_width: 128\n    world_frame: lab_world\n    live_mode: false\n"
                      "    input_qos: DEFAULT\n    input_qos_depth: 100\n"
                      "    output_qos_depth: 100\n")
    env = R.ros_env()
    node = R.Background(R.sourced(install, [
        sys.executable, str(R.LAUNCH), "namespace:=", f"params_file:={params}",
        "image_topic:=/root_cam/image", "log_level:=warn"]), tmp_path / "launch.log", env)
    try:
        res = R.run_peer(tmp_path, env, node, image_topic="/root_cam/image", ns="",
                         frames=12, rate=10, height=120, width=160)
    finally:
        rc = node.stop()
    res["height"], res["width"] = 96, 128  # what every output must describe
    check_outputs(res, world_frame="lab_world")
    assert rc == 0 and "unihoi_node ready" not in node.output  # log_level warn: no INFO


_LAUNCH_HELPERS_CHECK = """
import importlib.util as iu, sys
spec = iu.spec_from_file_location("egocentric_launch", sys.argv[1] + "/launch/egocentric.launch.py")
L = iu.module_from_spec(spec)
spec.loader.exec_module(L)
over = L.parameter_overrides({"process_height": "96", "live_mode": "false",
                              "world_frame": "lab_world", "model": "", "device": "cpu"})
assert over == {"process_height": 96, "live_mode": False, "world_frame": "lab_world",
                "device": "cpu"}, over
files = L.parameter_files(sys.argv[1], sys.argv[2])
merged = L.effective_parameters(files, {"camera_info_topic": "/cam/info"})
topics = L.recorded_topics("lab", merged)
assert topics[:2] == ["/cam/image_raw/compressed", "/cam/info"], topics  # really used
assert "/lab/pose" in topics and "/lab/trajectory" not in topics  # no Path per frame
assert {"/tf", "/tf_static", "/diagnostics", "/lab/depth/image"} <= set(topics)
assert L.recorded_topics("", {"image_topic": "image"})[0] == "/image"
a, b = L.record_command("", topics, now=0), L.record_command("", topics, now=1)
assert a[:5] == ["ros2", "bag", "record", "--storage", "mcap"] and a != b  # unique dirs
assert L.record_command("/data/run1", topics)[6] == "/data/run1"
print("launch helpers ok")
"""


def test_launch_recording_and_parameter_helpers(tmp_path):
    """The launch file's pure helpers (in a child: importing ``launch`` reconfigures the
    logging of the process that imports it)."""
    R.require_rclpy()
    user = tmp_path / "u.yaml"
    user.write_text("/**:\n  ros__parameters:\n    use_compressed: true\n"
                    "    use_camera_info: true\n    image_topic: /cam/image_raw\n")
    proc = subprocess.run([sys.executable, "-c", _LAUNCH_HELPERS_CHECK, str(R.REPO_ROOT),
                           str(user)], env=R.ros_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "launch helpers ok" in proc.stdout, proc.stderr[-3000:]


# --------------------------------------------------------------------------- start-up failures
def _blocker(tmp_path: Path, module: str) -> Path:
    """A directory that makes ``import module`` fail (a missing dependency)."""
    d = tmp_path / f"block_{module}"
    (d / module).mkdir(parents=True)
    (d / module / "__init__.py").write_text(f"raise ImportError('{module} blocked by the test')")
    return d


def _failure_cases(tmp_path: Path) -> dict[str, tuple[list[str], str, Path | None]]:
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00\x01 not a model " * 50)
    return {  # name: (parameters, text the one line must contain, import blocker)
        "wrong type": (["min_confidence:=1"], "min_confidence", None),
        "unknown parameter": (["min_confidenc:=0.5"], "did you mean 'min_confidence'", None),
        "unknown value": (["pose_solver:=icp"], "pose_solver must be one of", None),
        "missing model": (["model:=/nonexistent/m.safetensors"], "model file not found", None),
        "corrupt model": ([f"model:={corrupt}"], "cannot read model", None),
        "no usable backend": (["backend:=tensorrt"], "no usable backend", None),
        "missing dependency": (["backend:=onnxruntime", f"onnx_file_path:={tmp_path}/g.onnx"],
                               "onnxruntime", _blocker(tmp_path, "onnxruntime")),
    }


def _check_one_line(proc: subprocess.CompletedProcess, prefix: str, text: str) -> None:
    out = proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(prefix)]
    assert proc.returncode == 2, out[-2000:]
    assert len(lines) == 1 and text in lines[0], out[-2000:]
    assert "Traceback" not in out, out[-2000:]


def test_unihoi_node_start_up_failures_are_one_line(install, tmp_path):
    exe = install / "unihoi_ros" / "lib" / "unihoi_ros" / "unihoi_node"
    for name, (params, text, blocker) in _failure_cases(tmp_path).items():
        extra = {}
        if blocker is not None:
            extra["PYTHONPATH"] = f"{blocker}:{R.ros_env(upstream=False)['PYTHONPATH']}"
        argv = [str(exe), "--ros-args"] + [a for p in params for a in ("-p", p)]
        cmd = (f". {install}/setup.bash && " + (f"export PYTHONPATH={blocker}:$PYTHONPATH && "
               if blocker else "") + "exec " + " ".join(argv))
        proc = subprocess.run(["bash", "-c", cmd], env=R.ros_env(upstream=False),
                              capture_output=True, text=True, timeout=120)
        try:
            _check_one_line(proc, "unihoi_node: error:", text)
        except AssertionError as exc:
            raise AssertionError(f"case {name!r}: {exc}") from None


def test_unihoi_run_start_up_failures_are_one_line(tmp_path):
    """The same failures through ``unihoi run`` (Cyclone DDS transport, no ROS needed)."""
    R.require_rclpy()
    for name, (params, text, blocker) in _failure_cases(tmp_path).items():
        if name == "wrong type":  # `unihoi run` reads 1 as 1.0; a word is still wrong
            params, text = ["min_confidence:=high"], "'min_confidence' must be float"
        env = R.ros_env(upstream=False)
        if blocker is not None:
            env["PYTHONPATH"] = f"{blocker}:{env['PYTHONPATH']}"
        argv = [sys.executable, "-m", "unihoi_ros.cli", "run", "--transport", "dds",
                "--duration", "1"] + [a for p in params for a in ("-p", p.replace(":=", "="))]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        try:
            _check_one_line(proc, "unihoi run: error:", text)
        except AssertionError as exc:
            raise AssertionError(f"case {name!r}: {exc}") from None


# --------------------------------------------------------------------------- core install
def test_core_install_runs_unihoi_node_under_rclpy(tmp_path):
    """``pip install .`` (no extras) in a fresh venv, plus ROS 2 itself (the Kilted wheels
    stand in for /opt/ros): the node starts and answers a peer."""
    R.require_rclpy()
    import shutil
    import venv

    src = tmp_path / "src"
    shutil.copytree(R.REPO_ROOT, src, ignore=R._IGNORED)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q"]
    torch_version = __import__("torch").__version__.split("+")[0]
    ros = ["ros-rclpy[fastrtps]", "ros-std-msgs", "ros-sensor-msgs", "ros-geometry-msgs",
           "ros-nav-msgs", "ros-diagnostic-msgs"]
    proc = subprocess.run([*pip, f"torch=={torch_version}", str(src), *ros],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = R.ros_env(upstream=False)
    env["PYTHONPATH"] = ""  # only what the core install brought
    env["PATH"] = f"{env_dir / 'bin'}:{env['PATH']}"
    node = R.Background([str(env_dir / "bin" / "unihoi_node"), "--ros-args", "-r",
                         "__ns:=/core", *ros_args(LOSSLESS)], tmp_path / "node.log", env)
    try:
        res = R.run_peer(tmp_path, R.ros_env(upstream=False), node, image_topic="/core/image",
                         ns="core", frames=12, rate=10)
    finally:
        rc = node.stop()
    check_outputs(res)
    assert rc == 0 and "Traceback" not in node.output, node.output[-3000:]
