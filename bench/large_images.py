"""Large images into ``unihoi_node`` over rclpy (Fast DDS): frames received of those sent.

A camera stand-in (a child process, rclpy) publishes ``--frames`` synthetic 456x256 rgb8
frames (350 KB each) at ``--rate`` Hz to ``unihoi_node`` (another child: bundled model on
the torch backend, the busiest CPU case; input resolution, live mode, as a user runs it),
after the node's input subscription has
matched and settled. The node's shutdown summary line gives the frames it received (and
its stamp-gap estimate of those lost on the way); received / sent is the figure.

Variants (``--variants``): the camera's reliability x the node's input QoS x Fast DDS's
socket buffers:

- ``reliable/match``: reliable camera, node at its defaults (``input_qos_match_publishers``:
  it subscribes reliable when every publisher offers reliable);
- ``reliable/best_effort``: the same camera, the node forced to a best-effort reader
  (``input_qos_match_publishers:=false``; the node before this option);
- ``reliable/best_effort/4MiB``: the same with 4 MiB socket buffers in both processes;
- ``best_effort/best_effort`` and ``best_effort/best_effort/4MiB``: a best-effort camera
  (``SENSOR_DATA``), kernel-default and 4 MiB buffers.

Every process keeps DDS on loopback: the package's ``fastdds_loopback.xml`` (UDPv4 on
127.0.0.1, no shared memory), for the 4 MiB variants the same with
``<sendBufferSize>``/``<receiveBufferSize>`` of 4 MiB (what
``config/fastdds_large_buffers.xml`` asks for; the kernel caps them at
``net.core.rmem_max``/``wmem_max``, printed with the results). ``--python`` runs both
children with another interpreter (e.g. a venv with the ``ros-jazzy-*`` wheels: ROS 2
Jazzy, Fast DDS 2.14); the package comes from this checkout (``PYTHONPATH``).

Writes ``bench/results/large_images.json`` (appends one entry per run) and prints a table.

Usage::

    python bench/large_images.py                       # Kilted (this venv)
    python bench/large_images.py --jazzy               # the test tier's cached Jazzy venv
    python bench/large_images.py --python ~/jazzy/bin/python --label jazzy
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

from unihoi_ros.ros.loopback import (  # noqa: E402
    LOOPBACK_FASTDDS_PROFILE,
    unique_domain_id,
    use_loopback,
)

BUFFER_BYTES = 4 * 1024 * 1024
VARIANTS = {  # name: (camera reliable, node matches publishers, 4 MiB buffers)
    "reliable/match": (True, True, False),
    "reliable/best_effort": (True, False, False),
    "reliable/best_effort/4MiB": (True, False, True),
    "best_effort/best_effort": (False, True, False),
    "best_effort/best_effort/4MiB": (False, True, True),
}
SUMMARY = re.compile(r"summary: received (\d+) frame\(s\) \(about (\d+) lost before arrival"
                     r".*processed (\d+), published (\d+), dropped (\d+)")
TOPIC = "/bench_big/image"


# --------------------------------------------------------------------------- camera (child)
def camera(args: argparse.Namespace) -> int:
    """The camera stand-in: wait for the node's reader, publish, report what was sent."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from unihoi_ros.sim import make_sequence

    rgb = make_sequence(3, args.frames, args.height, args.width).rgb
    rclpy.init()
    node = rclpy.create_node("unihoi_bench_camera")
    reliability = ReliabilityPolicy.RELIABLE if args.reliable else ReliabilityPolicy.BEST_EFFORT
    pub = node.create_publisher(Image, TOPIC, QoSProfile(depth=10, reliability=reliability))
    deadline = time.monotonic() + 180
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            print("camera: the node's subscription did not match", file=sys.stderr)
            return 3
        rclpy.spin_once(node, timeout_sec=0.1)
    settle = time.monotonic() + 3.0  # the node re-subscribes within 0.5 s when it adapts
    while time.monotonic() < settle:
        rclpy.spin_once(node, timeout_sec=0.1)
    readers = [i.qos_profile.reliability.name.lower()
               for i in node.get_subscriptions_info_by_topic(TOPIC)]
    period, t_next = 1.0 / args.rate, time.monotonic()
    base = 1_700_000_000 * 10**9
    for i, frame in enumerate(rgb):
        msg = Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(base + i * round(period * 1e9),
                                                                10**9)
        msg.header.frame_id = "bench_camera_optical"
        msg.height, msg.width = frame.shape[:2]
        msg.encoding, msg.step = "rgb8", frame.shape[1] * 3
        msg.data = frame.tobytes()
        pub.publish(msg)
        t_next += period
        while (left := t_next - time.monotonic()) > 0:
            rclpy.spin_once(node, timeout_sec=min(left, 0.01))
    end = time.monotonic() + 3.0  # reliable: repairs still in flight
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    print("CAMERA " + json.dumps({"sent": len(rgb), "readers": readers}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# --------------------------------------------------------------------------- one run
def buffers_profile(folder: Path) -> Path:
    """The package's loopback profile with 4 MiB send and receive buffers on its UDPv4."""
    text = LOOPBACK_FASTDDS_PROFILE.read_text()
    marker = "<type>UDPv4</type>"
    assert text.count(marker) == 1, "the loopback profile changed: update the bench"
    text = text.replace(marker, marker + f"\n        <sendBufferSize>{BUFFER_BYTES}"
                        f"</sendBufferSize>\n        <receiveBufferSize>{BUFFER_BYTES}"
                        "</receiveBufferSize>")
    path = folder / "fastdds_loopback_4MiB.xml"
    path.write_text(text)
    return path


def child_env(python: str) -> dict[str, str]:
    """This process's environment for a child of ``python``, loopback DDS. The ROS wheels'
    bootstrapper (a .pth run at start-up) put this venv's library folders on
    ``LD_LIBRARY_PATH`` and marked itself done: a child of another venv (Jazzy) would load
    Kilted's libraries, so both are undone there and the child bootstraps itself (as the
    test tier's ``ros2_support.ros_env`` does)."""
    env = use_loopback(dict(os.environ))
    venv = Path(python).absolute().parent.parent  # not resolved: venvs link one python
    if os.path.realpath(venv) != os.path.realpath(sys.prefix):
        env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
        prefix = os.path.realpath(sys.prefix)
        keep = [q for q in env.get("LD_LIBRARY_PATH", "").split(os.pathsep)
                if q and os.path.commonpath([prefix, os.path.realpath(q)]) != prefix]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(keep)
        if not keep:
            env.pop("LD_LIBRARY_PATH")
    return env


def run_variant(name: str, args: argparse.Namespace, workdir: Path, salt: int) -> dict:
    reliable, match, big = VARIANTS[name]
    env = child_env(args.python)
    if big:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(buffers_profile(workdir))
    env["ROS_DOMAIN_ID"] = str(unique_domain_id(salt))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_COLORIZED_OUTPUT"] = "0"
    node_log = workdir / f"node_{salt}.log"
    node_cmd = [args.python, "-m", "unihoi_ros.ros.node_main", "--ros-args",
                "-r", "__ns:=/bench_big", "-r", f"image:={TOPIC}",
                "-p", "backend:=torch",
                "-p", f"input_qos_match_publishers:={str(match).lower()}"]
    with open(node_log, "w") as log:
        node = subprocess.Popen(node_cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            cam = subprocess.run(
                [args.python, __file__, "--camera", "--frames", str(args.frames), "--rate",
                 str(args.rate), "--height", str(args.height), "--width", str(args.width)]
                + (["--reliable"] if reliable else []),
                env=env, capture_output=True, text=True, timeout=600)
        finally:
            os.killpg(node.pid, signal.SIGINT)
            try:
                node.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
    out = node_log.read_text(errors="replace")
    sent = next((json.loads(line[len("CAMERA "):]) for line in cam.stdout.splitlines()
                 if line.startswith("CAMERA ")), None)
    found = SUMMARY.search(out)
    if sent is None or found is None:
        raise RuntimeError(f"variant {name} failed:\ncamera: {cam.stderr[-2000:]}\n"
                           f"node: {out[-3000:]}")
    received, lost, processed, published, dropped = (int(v) for v in found.groups())
    return {"variant": name, "camera_reliable": reliable, "node_matches": match,
            "buffers_4MiB": big, "node_reader": sent["readers"], "sent": sent["sent"],
            "received": received, "received_fraction": round(received / sent["sent"], 3),
            "lost_estimate_from_stamps": lost, "processed": processed,
            "published": published, "dropped_by_node": dropped}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--camera", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--reliable", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--frames", type=int, default=123)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=456)
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter of the node and the camera (another ROS 2 venv)")
    ap.add_argument("--label", default="kilted", help="name of the ROS 2 stack in the results")
    ap.add_argument("--jazzy", action="store_true",
                    help="--python: the Jazzy venv the ROS 2 test tier built and cached "
                         "($UNIHOI_CI_CACHE, default ~/.cache/unihoi-ci/jazzy-venv-*)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "large_images.json")
    args = ap.parse_args(argv)
    if args.camera:
        return camera(args)
    if args.jazzy:
        cache = Path(os.environ.get("UNIHOI_CI_CACHE") or Path(
            os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unihoi-ci")
        found = sorted(cache.glob("jazzy-venv-*/bin/python"), key=lambda q: q.stat().st_mtime)
        if not found:
            ap.error(f"no Jazzy venv under {cache}: run the ROS 2 test tier once, or --python")
        args.python, args.label = str(found[-1]), "jazzy"

    from tqdm import tqdm

    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}")
    sysctl = {k: Path(f"/proc/sys/net/core/{k}").read_text().strip()
              for k in ("rmem_default", "rmem_max", "wmem_default", "wmem_max")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="unihoi_bench_big_") as tmp:
        for i, name in enumerate(tqdm(names, desc=f"large images ({args.label})", unit="run")):
            rows.append(run_variant(name, args, Path(tmp), salt=os.getpid() % 50 + i))
    stack = subprocess.run([args.python, "-c", "import importlib.metadata as m; print(next("
                            "(d.metadata['Name'] + ' ' + d.version for d in m.distributions() "
                            "if d.metadata['Name'] in ('ros-rclpy', 'ros-jazzy-rclpy')), '?'))"],
                           capture_output=True, text=True,
                           env=child_env(args.python)).stdout.strip()
    entry = {"label": args.label, "rclpy": stack, "frames": args.frames, "rate_hz": args.rate,
             "size": f"{args.width}x{args.height} rgb8", "sysctl_net_core": sysctl,
             "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%d %H:%M"), "runs": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    history = json.loads(args.out.read_text()) if args.out.exists() else []
    args.out.write_text(json.dumps([*history, entry], indent=2))
    print(f"\n{args.label} ({stack}), {args.width}x{args.height} rgb8 at {args.rate:g} Hz, "
          f"kernel buffers {sysctl}")
    print("| camera | node reader | buffers | received / sent | est. lost (stamps) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {'reliable' if r['camera_reliable'] else 'best effort'} | "
              f"{'/'.join(r['node_reader'])} | {'4 MiB' if r['buffers_4MiB'] else 'default'} | "
              f"{r['received']}/{r['sent']} | {r['lost_estimate_from_stamps']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
