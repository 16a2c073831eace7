"""``unihoi run --transport dds`` end to end over Cyclone DDS on loopback.

Three processes per test, all with the loopback-only ``CYCLONEDDS_URI`` and a fresh domain
id: the node (``python -m unihoi_ros.cli run ...``), a publisher playing a synthetic clip
and a subscriber collecting every output. This file is also the peers' program
(``python test_node_dds.py publish|subscribe ...``).

The tiny network is untrained (``random:tiny``) and runs at 60x80; only the plumbing is
under test here. The end-to-end runs are lossless (:data:`LOSSLESS`: replay mode, a
reliable input with a long history, a reliable publisher whose history holds the clip):
every frame must come back however busy the machine is; the latency printed is for
reading, not asserted (rates belong in ``bench/``). Nothing rests on a fixed pause: each
peer starts once the node's own ``/diagnostics`` say it has matched it (``# of Publishers
(<input>)``, ``# of Subscribers (<output>)``: a volatile writer never resends to a reader
matched later, and a best-effort one never resends at all), and the publisher waits for
its reliable readers' acknowledgements before it goes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cyclonedds")
pytest.importorskip("rosbags")

import dds_helpers  # sets CYCLONEDDS_URI (loopback) before any participant exists

FRAMES, HEIGHT, WIDTH, RATE_HZ = 60, 120, 160, 15.0
PROCESS = ("60", "80")
ODOM, CAMERA = "test_odom", "test_cam_optical_frame"
OUTPUTS = ("depth/image", "depth/camera_info", "confidence/image", "points", "/tf")
STARTUP_S = 120.0  # model load + DDS discovery on a loaded 2-core machine
NAMESPACE = "/unihoi"  # the node's (the default)
#: Node options under which no frame is lost or dropped: replay mode (a FIFO instead of
#: live mode's pending slot) and a reliable input subscription with a long history.
LOSSLESS = ("--replay", "-p", "input_qos=DEFAULT", "-p", f"input_qos_depth={FRAMES + 40}")


# --------------------------------------------------------------------------- processes
def node_command(domain: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "unihoi_ros.cli", "run", "--transport", "dds",
        "--domain-id", str(domain), "--input-topic", "image", "--model", "random:tiny",
        "--process-height", PROCESS[0], "--process-width", PROCESS[1], "--threads", "1",
        "-p", f"world_frame={ODOM}", "-p", f"camera_frame={CAMERA}", *extra,
    ]


def spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    """Start ``cmd`` with the loopback environment; output to ``log`` (never a full pipe)."""
    with open(log, "w") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, env=dds_helpers.child_env(),
                                cwd=str(dds_helpers.TEST_DIR), stdout=fh,
                                stderr=subprocess.STDOUT, text=True)


def peer(role: str, *args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), role, *map(str, args)]


def wait_for_line(path: Path, text: str, proc: subprocess.Popen, timeout: float,
                  others: tuple[subprocess.Popen, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        for p in (proc, *others):
            if p.poll() is not None:
                raise AssertionError(f"a process exited early (rc {p.returncode})")
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not seen in {path} within {timeout:.0f} s")


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
    """Signal ``proc`` and reap it (killed if it does not exit in ``timeout`` s)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def kill_all(*procs: subprocess.Popen | None) -> None:
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(10)


def summary_of(log: Path) -> dict:
    from unihoi_ros.commands.run import SUMMARY_PREFIX

    for line in log.read_text().splitlines():
        if line.startswith(SUMMARY_PREFIX):
            return json.loads(line[len(SUMMARY_PREFIX):])
    raise AssertionError("no summary line in the node's output:\n" + log.read_text()[-3000:])


class Run:
    """Node + subscriber (+ publisher) of one test; everything is killed in ``close``."""

    def __init__(self, tmp: Path, node_extra: tuple[str, ...] = ()) -> None:
        self.tmp = tmp
        self.domain = dds_helpers.fresh_domain_id()
        self.node_log, self.sub_log = tmp / "node.log", tmp / "sub.log"
        self.pub_log = tmp / "pub.log"
        self.sub_json, self.pub_json = tmp / "sub.json", tmp / "pub.json"
        self.node = self.sub = self.pub = None
        self.node = spawn(node_command(self.domain, *node_extra), self.node_log)

    def start_subscriber(self, expect: int, idle_s: float = 2.5) -> None:
        self.sub = spawn(peer("subscribe", self.domain, self.sub_json, expect, idle_s, 120),
                         self.sub_log)
        try:  # READY: every output topic matched, so the node is up with its model
            wait_for_line(self.sub_log, "READY", self.sub, STARTUP_S, (self.node,))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nnode log:\n{self.node_log.read_text()[-3000:]}\n"
                                 f"subscriber log:\n{self.sub_log.read_text()[-2000:]}") from None

    def start_publisher(self, mode: str, frames: int = FRAMES, rate: float = RATE_HZ) -> None:
        """Publish ``frames`` frames (a raw clip longer than :data:`FRAMES` repeats its
        pictures, with new stamps)."""
        topic = "image/compressed" if mode == "compressed" else "image"
        self.pub = spawn(peer("publish", self.domain, topic, mode, frames, rate, self.pub_json),
                         self.pub_log)

    def published(self) -> list[int]:
        return json.loads(self.pub_json.read_text())["stamps"]

    def received(self) -> dict[str, list[dict]]:
        return json.loads(self.sub_json.read_text())

    def close(self) -> None:
        kill_all(self.pub, self.sub, self.node)


def check_outputs(received: dict, stamps: list[int], min_fraction: float = 0.9) -> dict:
    """Every output carries an input stamp and the configured frame ids; enough frames."""
    fractions = {}
    for topic in OUTPUTS:
        got = [m["stamp"] for m in received[topic]]
        assert set(got) <= set(stamps), f"{topic}: stamps that no input frame had"
        assert len(got) == len(set(got)), f"{topic}: a frame published twice"
        fractions[topic] = len(set(got)) / len(stamps)
        for m in received[topic]:
            if topic == "/tf":
                assert (m["frame_id"], m["child"]) == (ODOM, CAMERA), m
            else:
                assert m["frame_id"] == CAMERA, (topic, m)
    for topic, frac in fractions.items():
        assert frac >= min_fraction, f"{topic}: only {frac:.0%} of the frames ({fractions})"
    depth = received["depth/image"]
    assert all((d["encoding"], d["height"], d["width"]) == ("32FC1", 60, 80) for d in depth)
    return fractions


def latency_ms(received: dict, topic: str = "depth/image") -> tuple[float, float]:
    """p50 and p99 of (receive time - input stamp) in ms (stamps are publish wall times)."""
    lat = np.array([(m["recv"] - m["stamp"]) / 1e6 for m in received[topic]])
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


# --------------------------------------------------------------------------- tests
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["raw", "compressed"])
def test_node_end_to_end_over_dds(tmp_path, mode):
    # The compressed run also refines depth from past frames (node parameter
    # past_refinement), the raw run averages the network with its mirror image
    # (mirror_average): every frame must still come out, and the node must say it.
    extra = (("--compressed", "-p", "past_refinement=true") if mode == "compressed"
             else ("-p", "mirror_average=true"))
    run = Run(tmp_path, (*extra, *LOSSLESS))
    try:
        run.start_subscriber(expect=FRAMES, idle_s=15.0)
        run.start_publisher(mode)
        assert run.pub.wait(300) == 0, run.pub_log.read_text()
        assert run.sub.wait(300) == 0, run.sub_log.read_text()
        assert stop(run.node) == 0, run.node_log.read_text()[-3000:]
        stamps, received = run.published(), run.received()
        assert len(stamps) == FRAMES
        fractions = check_outputs(received, stamps, min_fraction=1.0)
        summary = summary_of(run.node_log)
        p50, p99 = latency_ms(received)
        print(f"\n[{mode}] outputs received: {fractions}; depth latency p50 {p50:.0f} ms, "
              f"p99 {p99:.0f} ms; node: {summary['published']}/{summary['received']} "
              f"published, missed {summary['drops']}, inference "
              f"{summary['mean_inference_ms']:.1f} ms/frame")
        assert summary["received"] == summary["published"] == FRAMES, summary
        assert "ready: model random:tiny" in run.node_log.read_text()
        assert "UNTRAINED" in run.node_log.read_text()
        said = "depth refined from earlier frames (past_refinement)" in run.node_log.read_text()
        assert said == (mode == "compressed")
        said = "averaged with its mirror image (mirror_average)" in run.node_log.read_text()
        assert said == (mode == "raw")
    finally:
        run.close()


@pytest.mark.slow
def test_node_survives_bad_input_over_dds(tmp_path):
    """Replay mode (every frame): bad frames are dropped and counted, good ones go on.
    The input is reliable (:data:`LOSSLESS`): with the default best-effort subscription
    DDS itself may lose a frame (seen once in CI: the last one), which is not the node's
    to count."""
    run = Run(tmp_path, LOSSLESS)
    try:
        run.start_subscriber(expect=len(BAD_PLAN) - 4, idle_s=15.0)
        run.start_publisher("bad", frames=len(BAD_PLAN), rate=10.0)
        assert run.pub.wait(300) == 0, run.pub_log.read_text()
        assert run.sub.wait(300) == 0, run.sub_log.read_text()
        assert stop(run.node, signal.SIGTERM) == 0, run.node_log.read_text()[-3000:]
        stamps, received = run.published(), run.received()
        good = [s for s, kind in zip(stamps, BAD_PLAN) if kind in ("good", "small")]
        got = [m["stamp"] for m in received["depth/image"]]
        summary = summary_of(run.node_log)
        drops = dict(summary["drops"])
        # A degenerate first window of a new stream is published (flagged), not dropped.
        errors = drops.pop("inference_error", 0)
        assert errors == 0, summary
        assert drops == {"unsupported_encoding": 1, "duplicate_stamp": 1, "out_of_order": 1,
                         "malformed_image": 1}, summary
        assert summary["resolution_changes"] == 2
        assert set(got) <= set(good) and got == sorted(got), "good frames only, in order"
        assert len(got) == len(good) - errors == summary["published"]
        assert got[-2:] == good[-2:], "the node keeps running after bad input"
        sizes = [(m["height"], m["width"]) for m in received["depth/image"]]
        assert sizes == [(60, 80)] * len(got)  # all processed at the fixed size
        log = run.node_log.read_text()
        assert log.count("image encoding '32FC1' is not supported") == 1
    finally:
        run.close()


@pytest.mark.slow
def test_record_closes_cleanly_on_sigint(tmp_path):
    """SIGINT mid-stream: the bag opens with rosbags and mcap and holds every published
    frame (the subscriber's and the node's own count)."""
    bag = tmp_path / "bag"
    run = Run(tmp_path, ("--record", str(bag)))
    try:
        run.start_subscriber(expect=FRAMES)
        run.start_publisher("raw", frames=10 * FRAMES)  # 40 s: still flowing at the interrupt
        # Interrupt once outputs flow (the subscriber has its first depth images).
        wait_for_line(run.sub_log, "RECEIVING", run.sub, STARTUP_S, (run.node, run.pub))
        assert run.pub.poll() is None, "the publisher finished before the interrupt"
        assert stop(run.node, signal.SIGINT) == 0, run.node_log.read_text()[-3000:]
        summary = summary_of(run.node_log)
        assert run.sub.wait(300) == 0
        received = run.received()
    finally:
        run.close()
    assert summary["published"] > 0
    from rosbags.rosbag2 import Reader

    from unihoi_ros.ros.messages import get_typestore

    ts = get_typestore()
    stamps: dict[str, list[int]] = {}
    with Reader(bag) as reader:
        for conn, _t, raw in reader.messages():
            msg = ts.deserialize_cdr(raw, conn.msgtype)
            header = msg.transforms[0].header if conn.msgtype.startswith("tf2") else msg.header
            stamps.setdefault(conn.topic, []).append(
                header.stamp.sec * 1_000_000_000 + header.stamp.nanosec)
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
    meta = (bag / "metadata.yaml").read_text()
    assert "version: 8" in meta and "storage_identifier: mcap" in meta
    for topic in ("/unihoi/image", "/unihoi/depth/image", "/unihoi/depth/camera_info",
                  "/unihoi/confidence/image", "/unihoi/points", "/unihoi/trajectory", "/tf",
                  "/diagnostics"):
        assert topic in stamps, f"{topic} missing from the bag ({sorted(stamps)})"
        assert qos[topic], f"{topic} has no offered_qos_profiles"
    assert len(stamps["/unihoi/depth/image"]) == summary["published"]
    assert summary["bag_counts"]["/unihoi/depth/image"] == summary["published"]
    for topic, key in (("/unihoi/depth/image", "depth/image"), ("/tf", "/tf"),
                       ("/unihoi/points", "points")):
        seen = {m["stamp"] for m in received[key]}
        assert seen <= set(stamps[topic]), f"{topic}: frames published but not in the bag"
    assert set(stamps["/unihoi/depth/image"]) <= set(stamps["/unihoi/image"])

    from mcap.reader import make_reader

    (mcap_file,) = bag.glob("*.mcap")
    with open(mcap_file, "rb") as fh:
        reader = make_reader(fh)
        assert reader.get_summary() is not None, "MCAP has no summary: not closed cleanly"
        n = sum(1 for _ in reader.iter_messages())
    assert n == sum(len(v) for v in stamps.values())


# --------------------------------------------------------------------------- peer programs
# Publisher plan of the bad-input test: what each message is.
BAD_PLAN = ("good", "good", "good", "good", "good", "nan_float", "dup", "back", "good", "good",
            "truncated", "small", "small", "small", "good", "good", "good")


class NodeReport:
    """The node's latest ``/diagnostics`` values, read over DDS: what the peers wait on."""

    def __init__(self, participant) -> None:
        from unihoi_ros.ros import dds
        from unihoi_ros.ros import messages as M
        from unihoi_ros.ros.transport import DIAGNOSTICS_QOS

        self._lock = threading.Lock()
        self.values: dict[str, str] = {}
        self._sub = dds.Subscriber(participant, "/diagnostics", M.DIAGNOSTIC_ARRAY,
                                   callback=self._on, qos=DIAGNOSTICS_QOS)

    def _on(self, msg) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if "# of Frames Published" in values:  # the node's status (not "starting up")
                with self._lock:
                    self.values = values

    def wait(self, keys: list[str], timeout: float) -> str | None:
        """Until the node counts at least one for every key; None, else what was missing
        at the deadline (the keys and the last values seen)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                values = dict(self.values)
            missing = [k for k in keys if int(values.get(k, 0)) < 1]
            if not missing:
                return None
            if time.monotonic() > deadline:
                return f"{missing} after {timeout:.0f} s; last report: {values or 'none'}"
            time.sleep(0.05)

    def close(self) -> None:
        self._sub.close()


def _publish(args: argparse.Namespace) -> int:
    from unihoi_ros.ros import dds
    from unihoi_ros.ros import messages as M
    from unihoi_ros.ros.qos import qos_profile
    from unihoi_ros.sim import make_sequence

    participant = dds_helpers.loopback_participant(args.domain)
    compressed = args.mode == "compressed"
    pub = dds.Publisher(participant, args.topic, M.COMPRESSED_IMAGE if compressed else M.IMAGE,
                        qos=qos_profile("DEFAULT", args.frames))  # the clip fits its history
    seq = make_sequence(0, max(min(args.frames, FRAMES), 1), HEIGHT, WIDTH)
    small = make_sequence(1, 3, 96, 128) if args.mode == "bad" else None
    if not pub.wait_for_subscribers(1, timeout=STARTUP_S):
        print("no subscriber matched", flush=True)
        return 3
    report = NodeReport(participant)  # the node's reader matched this writer too
    missing = report.wait([f"# of Publishers ({NAMESPACE}/{args.topic})"], STARTUP_S)
    report.close()
    if missing:
        print(f"the node did not match this publisher: {missing}", flush=True)
        return 3
    print("START", flush=True)
    stamps: list[int] = []
    t0 = time.monotonic()
    n_small = 0
    for i in range(args.frames):
        time.sleep(max(0.0, t0 + i / args.rate - time.monotonic()))
        stamp = time.time_ns()
        rgb = seq.rgb[i % len(seq.rgb)]
        if args.mode == "raw":
            msg = M.rgb_to_image(rgb, stamp, "camera")
        elif compressed:
            msg = M.rgb_to_compressed(rgb, stamp, "camera", "jpeg", 90)
        else:
            kind = BAD_PLAN[i]
            if kind == "nan_float":
                msg = M.array_to_image(np.full((HEIGHT, WIDTH), np.nan, np.float32), stamp, "c")
            elif kind == "dup":
                stamp = stamps[-1]
                msg = M.rgb_to_image(rgb, stamp, "camera")
            elif kind == "back":
                stamp = stamps[-3]
                msg = M.rgb_to_image(rgb, stamp, "camera")
            elif kind == "truncated":
                msg = M.rgb_to_image(rgb, stamp, "camera")
                msg.data = msg.data[: len(msg.data) // 2]
            elif kind == "small":
                msg = M.rgb_to_image(small.rgb[n_small], stamp, "camera")
                n_small += 1
            else:
                msg = M.rgb_to_image(rgb, stamp, "camera")
        pub.publish(msg)
        stamps.append(stamp)
    Path(args.out).write_text(json.dumps({"stamps": stamps}))
    if not pub.wait_for_acks(STARTUP_S):  # reliable: the node has every frame before we go
        print("the node did not acknowledge every frame", flush=True)
        return 3
    pub.close()
    print("published", len(stamps), flush=True)
    return 0


def _subscribe(args: argparse.Namespace) -> int:
    import threading

    from unihoi_ros.ros import dds
    from unihoi_ros.ros import messages as M
    from unihoi_ros.ros.qos import qos_profile

    participant = dds_helpers.loopback_participant(args.domain)
    lock = threading.Lock()
    got: dict[str, list[dict]] = {t: [] for t in (*OUTPUTS, "trajectory")}
    last = [time.monotonic()]

    def record(topic: str):
        def cb(msg) -> None:
            now = time.time_ns()
            if topic == "/tf":
                t = msg.transforms[0]
                item = {"stamp": M.stamp_to_ns(t.header.stamp), "frame_id": t.header.frame_id,
                        "child": t.child_frame_id}
            else:
                item = {"stamp": M.stamp_to_ns(msg.header.stamp),
                        "frame_id": msg.header.frame_id}
                if topic.endswith("image"):
                    item.update(encoding=msg.encoding, height=msg.height, width=msg.width)
                if topic == "trajectory":
                    item["poses"] = len(msg.poses)
            item["recv"] = now
            with lock:
                got[topic].append(item)
                last[0] = time.monotonic()
                if topic == "depth/image" and len(got[topic]) == 3:
                    print("RECEIVING", flush=True)  # outputs flow (the record test waits)
        return cb

    types = {"depth/image": M.IMAGE, "depth/camera_info": M.CAMERA_INFO,
             "confidence/image": M.IMAGE, "points": M.POINT_CLOUD2, "/tf": M.TF_MESSAGE,
             "trajectory": M.PATH}
    qos = qos_profile("DEFAULT", 200)
    subs = [dds.Subscriber(participant, t, ty, callback=record(t), qos=qos)
            for t, ty in types.items()]
    for s in subs:
        if not s.wait_for_publishers(1, timeout=STARTUP_S):
            print("no publisher for", s.topic_name, flush=True)
            return 3
    report = NodeReport(participant)  # the node's writers matched these readers too
    missing = report.wait([f"# of Subscribers ({t if t.startswith('/') else f'{NAMESPACE}/{t}'})"
                           for t in types], STARTUP_S)
    report.close()
    if missing:
        print(f"the node did not match these readers: {missing}", flush=True)
        return 3
    print("READY", flush=True)
    t_end = time.monotonic() + args.timeout
    while time.monotonic() < t_end:
        time.sleep(0.1)
        with lock:
            done = all(len(got[t]) >= args.expect for t in OUTPUTS)
            idle = any(got.values()) and time.monotonic() - last[0] > args.idle
        if done or idle:
            break
    time.sleep(0.3)
    with lock:
        Path(args.out).write_text(json.dumps(got))
    for s in subs:
        s.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="peer processes of test_node_dds")
    sub = ap.add_subparsers(dest="role", required=True)
    p = sub.add_parser("publish")
    p.add_argument("domain", type=int)
    p.add_argument("topic")
    p.add_argument("mode", choices=("raw", "compressed", "bad"))
    p.add_argument("frames", type=int)
    p.add_argument("rate", type=float)
    p.add_argument("out")
    s = sub.add_parser("subscribe")
    s.add_argument("domain", type=int)
    s.add_argument("out")
    s.add_argument("expect", type=int)
    s.add_argument("idle", type=float)
    s.add_argument("timeout", type=float)
    args = ap.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return _publish(args) if args.role == "publish" else _subscribe(args)


if __name__ == "__main__":
    sys.exit(main())
