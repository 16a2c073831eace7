"""A real rclpy peer for the ROS 2 test tier (run as a separate process).

It publishes synthetic head-camera frames (``sensor_msgs/Image`` rgb8, optionally with a
``sensor_msgs/CameraInfo`` of a given K, same stamps) at a fixed rate on ``--image-topic``,
subscribes to every output of the node under ``--ns``, and writes what arrived as JSON
(``--out``): per topic, one record per message with the fields the tests check.

It publishes nothing until every reader the run needs has matched, on both sides, however
long discovery takes on a busy machine (``--match-timeout``; then it fails naming each
topic and the counts seen): its publishers have matched the node's input subscription
(reliable, once the node has adapted it to this reliable publisher), its subscriptions the
node's publishers, and the node's publishers its subscriptions, as the node's own
``/diagnostics`` say (``# of Subscribers (<topic>)``; ``# of Publishers (<input>)``): a
volatile publisher never resends to a reader matched later. ``--readers TOPIC=N`` asks
for N readers in all on TOPIC (where others read it too: a recorder). Its
publishers are reliable with a history as long as the clip (``--pub-depth``), so with a
reliable subscription on the node's side no frame can be lost on the way. After the last
frame it waits until the node's ``/diagnostics`` account for every frame it received
(published or dropped) and every output of each published frame has arrived.

With ``--tf`` it also records ``/tf`` (needs tf2_msgs); ``--static-tf`` first broadcasts
a static transform (tf2_ros' StaticTransformBroadcaster, ``/tf_static``), and
``--lookup PARENT,CHILD`` looks that transform up in a tf2_ros ``Buffer`` (fed by a
``TransformListener``) at the stamp of every frame whose depth image arrived.

Needs rclpy and the message packages (the ``ros-*`` wheels or a ROS 2 installation) and a
loopback DDS configuration in the environment (the test sets it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def frames(count: int, height: int, width: int) -> np.ndarray:
    """``(count, H, W, 3)`` uint8: a textured scene panning slowly (flow and depth cues)."""
    from unihoi_ros.sim import make_sequence

    return make_sequence(3, count, height, width).rgb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image-topic", required=True)
    ap.add_argument("--ns", required=True, help="namespace of the node's outputs")
    ap.add_argument("--camera-info-topic", default="")
    ap.add_argument("--K", default="", help="fx,fy,cx,cy of the published camera_info")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--frame-id", default="head_camera_optical")
    ap.add_argument("--match-timeout", type=float, default=120.0,
                    help="most seconds to wait for every reader to match")
    ap.add_argument("--readers", action="append", default=[], metavar="TOPIC=N",
                    help="readers TOPIC's publisher must have matched before the first "
                         "frame (default: the node on an input, this peer's own on an output)")
    ap.add_argument("--expect-no-flow", action="store_true",
                    help="nothing is to reach the node (a setting that stops the flow): wait "
                         "only for the matches this peer sees itself")
    ap.add_argument("--drain-timeout", type=float, default=180.0,
                    help="most seconds to wait for outputs after the last frame")
    ap.add_argument("--stall-timeout", type=float, default=10.0,
                    help="a lossy input: stop waiting once the node's count of frames "
                         "received has not grown for this long")
    ap.add_argument("--pub-depth", type=int, default=0,
                    help="history of the (reliable) publishers; 0: the number of frames")
    ap.add_argument("--tf", action="store_true", help="record /tf (needs tf2_msgs)")
    ap.add_argument("--static-tf", default="",
                    help="PARENT,CHILD,x,y,z,qx,qy,qz,qw broadcast on /tf_static first")
    ap.add_argument("--lookup", default="", help="PARENT,CHILD looked up in a tf2 Buffer "
                    "at every received depth stamp")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Path
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    rgb = frames(args.frames, args.height, args.width)
    rclpy.init()
    node = rclpy.create_node("unihoi_test_peer")
    ns = "/" + args.ns.strip("/") if args.ns.strip("/") else ""
    got: dict[str, list[dict]] = {}

    def stamp(msg) -> int:
        return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)

    def image_rec(m):
        return {"stamp": stamp(m), "frame_id": m.header.frame_id, "encoding": m.encoding,
                "height": m.height, "width": m.width, "step": m.step, "bytes": len(m.data)}

    def info_rec(m):
        return {"stamp": stamp(m), "frame_id": m.header.frame_id, "height": m.height,
                "width": m.width, "k": [float(v) for v in m.k],
                "distortion_model": m.distortion_model}

    def cloud_rec(m):
        return {"stamp": stamp(m), "frame_id": m.header.frame_id,
                "fields": [[f.name, int(f.datatype), int(f.offset)] for f in m.fields],
                "points": int(m.width) * int(m.height), "point_step": m.point_step}

    def tracks_rec(m):
        rec = cloud_rec(m)
        fields = {f.name: (int(f.offset), int(f.datatype)) for f in m.fields}
        data = np.frombuffer(bytes(m.data), np.uint8).reshape(-1, int(m.point_step))
        off = fields["id"][0]
        rec["ids"] = data[:, off:off + 4].copy().view("<u4").ravel().tolist()
        rec["dynamic"] = int(data[:, fields["dynamic"][0]].sum())
        return rec

    def pose_rec(m):
        p, q = m.pose.position, m.pose.orientation
        return {"stamp": stamp(m), "frame_id": m.header.frame_id,
                "t": [p.x, p.y, p.z], "q": [q.x, q.y, q.z, q.w]}

    def tf_rec(m):
        return [{"stamp": stamp(t), "parent": t.header.frame_id, "child": t.child_frame_id,
                 "t": [t.transform.translation.x, t.transform.translation.y,
                       t.transform.translation.z],
                 "q": [t.transform.rotation.x, t.transform.rotation.y,
                       t.transform.rotation.z, t.transform.rotation.w]}
                for t in m.transforms]

    def path_rec(m):
        return {"stamp": stamp(m), "frame_id": m.header.frame_id, "poses": len(m.poses),
                "last_stamp": stamp(m.poses[-1]) if m.poses else None}

    def diag_rec(m):
        return {"status": [{"name": s.name, "level": int.from_bytes(bytes(s.level), "little")
                            if isinstance(s.level, bytes) else int(s.level),
                            "message": s.message,
                            "values": {kv.key: kv.value for kv in s.values}}
                           for s in m.status]}

    outputs = {
        "depth": (Image, f"{ns}/depth/image", image_rec),
        "camera_info": (CameraInfo, f"{ns}/depth/camera_info", info_rec),
        "confidence": (Image, f"{ns}/confidence/image", image_rec),
        "points": (PointCloud2, f"{ns}/points", cloud_rec),
        "tracks": (PointCloud2, f"{ns}/tracks", tracks_rec),
        "trajectory": (Path, f"{ns}/trajectory", path_rec),
        "pose": (PoseStamped, f"{ns}/pose", pose_rec),
        "diagnostics": (DiagnosticArray, "/diagnostics", diag_rec),
    }
    if args.tf:
        from tf2_msgs.msg import TFMessage

        outputs["tf"] = (TFMessage, "/tf", tf_rec)
    buffer = None
    if args.lookup:
        from tf2_ros import Buffer, TransformListener

        buffer = Buffer()
        listener = TransformListener(buffer, node)  # noqa: F841 - kept alive until the end
    if args.static_tf:
        from geometry_msgs.msg import TransformStamped
        from tf2_ros import StaticTransformBroadcaster

        parent, child, *vals = args.static_tf.split(",")
        st = TransformStamped()
        st.header.stamp = node.get_clock().now().to_msg()
        st.header.frame_id, st.child_frame_id = parent, child
        tr, rot = st.transform.translation, st.transform.rotation
        tr.x, tr.y, tr.z, rot.x, rot.y, rot.z, rot.w = map(float, vals)
        static_broadcaster = StaticTransformBroadcaster(node)
        static_broadcaster.sendTransform(st)
    qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
    subs = {}
    for key, (cls, topic, rec) in outputs.items():
        got[key] = []
        add = (lambda m, k=key, r=rec: got[k].extend(r(m))) if key == "tf" else (
            lambda m, k=key, r=rec: got[k].append(r(m)))
        subs[key] = node.create_subscription(cls, topic, add, qos)
    pub_qos = QoSProfile(depth=args.pub_depth or max(1, args.frames),
                         reliability=ReliabilityPolicy.RELIABLE)
    image_pub = node.create_publisher(Image, args.image_topic, pub_qos)
    info_pub = (node.create_publisher(CameraInfo, args.camera_info_topic, pub_qos)
                if args.camera_info_topic else None)

    def spin_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            rclpy.spin_once(node, timeout_sec=min(left, 0.01))

    def node_report() -> dict[str, str] | None:
        """Values of the node's latest /diagnostics status (None before its first)."""
        for d in reversed(got["diagnostics"]):
            for s in d["status"]:
                if "# of Frames Published" in s["values"]:
                    return s["values"]
        return None

    need = {}
    for spec in args.readers:
        topic, n = spec.rsplit("=", 1)
        need[topic] = int(n)
    own = {topic: 1 for _, topic, _ in outputs.values()}  # this peer's readers per topic
    if buffer is not None:  # the TransformListener reads /tf too
        own["/tf"] = own.get("/tf", 0) + 1

    def input_ready(pub, topic: str, node_input: bool = True) -> tuple[bool, str]:
        """This peer's publisher of ``topic`` matched every reader, none best effort (the
        node makes its input subscription again, reliable, once it sees this reliable
        publisher: input_qos_match_publishers; a frame sent before would be lost), and
        (``node_input``) the node reports this publisher (matched, over Cyclone DDS)."""
        n = pub.get_subscription_count()
        graph = node.get_subscriptions_info_by_topic(topic)
        best_effort = sum(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                          for i in graph)
        want = need.get(topic, 1)
        rep = node_report() if node_input else None
        theirs = None if rep is None else rep.get(f"# of Publishers ({topic})")
        ok = n >= want and (args.expect_no_flow or (
            n >= len(graph) and best_effort == 0
            and (not node_input or (theirs is not None and int(theirs) >= 1))))
        return ok, (f"{n} reader(s) matched of {want}; the graph has {len(graph)} "
                    f"subscription(s), {best_effort} best effort"
                    + (f"; the node reports {theirs} publisher(s)" if node_input else ""))

    def output_ready(key: str, topic: str) -> tuple[bool, str]:
        """This peer's reader of ``topic`` matched the node's publisher, and (the node's
        report) the node's publisher matched every reader wanted: ``--readers``, and at
        least every subscription this peer sees (its own among them; another reader
        counted by the node does not stand for this peer's)."""
        if key not in subs:
            mine = 1  # not this peer's reader: only the node's count matters
        elif args.expect_no_flow:  # matched in the graph (Fast DDS 3 with Cyclone: no data)
            mine = node.count_publishers(topic)
        else:
            mine = subs[key].get_publisher_count()
        rep = node_report()
        theirs = None if rep is None else rep.get(f"# of Subscribers ({topic})")
        want = max(need.get(topic, 0), own.get(topic, 0),
                   len(node.get_subscriptions_info_by_topic(topic)))
        ok = mine >= 1 and (args.expect_no_flow or key == "diagnostics"
                            or (theirs is not None and int(theirs) >= want))
        return ok, (f"this peer matched {mine} publisher(s); the node reports "
                    f"{'no count yet' if theirs is None else theirs} reader(s) of {want}")

    checks = {f"input {args.image_topic}": lambda: input_ready(image_pub, args.image_topic)}
    if info_pub is not None:
        checks[f"input {args.camera_info_topic}"] = (
            lambda: input_ready(info_pub, args.camera_info_topic))
    if args.static_tf:  # the node's tf2 listener must hold it before the first frame
        checks["/tf_static"] = lambda: input_ready(static_broadcaster.pub_tf, "/tf_static",
                                                   node_input=False)
        need.setdefault("/tf_static", 1 + (buffer is not None))
    for key, (_, topic, _) in outputs.items():
        checks[f"output {topic}"] = lambda k=key, t=topic: output_ready(k, t)
    if buffer is not None and "tf" not in outputs:
        checks["output /tf"] = lambda: output_ready("tf", "/tf")
    if not args.expect_no_flow:
        checks["the node's /diagnostics"] = lambda: (node_report() is not None,
                                                     "no status with values yet")
    for topic in need:  # a --readers topic that is neither an input nor an output
        if not any(topic == name.split(" ", 1)[-1] for name in checks):
            checks[f"output {topic}"] = lambda t=topic: output_ready("", t)
    deadline = time.monotonic() + args.match_timeout
    while True:
        states = {name: check() for name, check in checks.items()}
        if all(ok for ok, _ in states.values()):
            break
        if time.monotonic() > deadline:
            missing = "; ".join(f"{name}: {seen}" for name, (ok, seen) in states.items()
                                if not ok)
            print(f"peer: not every reader matched in {args.match_timeout:g} s ({missing}; "
                  f"the graph has {node.get_topic_names_and_types()})", file=sys.stderr)
            node.destroy_node()
            rclpy.try_shutdown()
            return 3
        spin_for(0.1)

    K = [float(v) for v in args.K.split(",")] if args.K else None
    sent = []
    period = 1.0 / args.rate
    t_next = time.monotonic()
    base_ns = 1_700_000_000 * 1_000_000_000
    for i, frame in enumerate(rgb):
        ns_stamp = base_ns + i * round(period * 1e9)
        msg = Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns_stamp, 1_000_000_000)
        msg.header.frame_id = args.frame_id
        msg.height, msg.width = frame.shape[:2]
        msg.encoding, msg.step = "rgb8", frame.shape[1] * 3
        msg.data = frame.tobytes()
        if info_pub is not None and K is not None:
            info = CameraInfo()
            info.header = msg.header
            info.height, info.width = msg.height, msg.width
            info.distortion_model = "plumb_bob"
            info.d = [0.0] * 5
            fx, fy, cx, cy = K
            info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
            info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
            info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
            info_pub.publish(info)
        image_pub.publish(msg)
        sent.append(ns_stamp)
        t_next += period
        spin_for(max(0.0, t_next - time.monotonic()))

    # Drain: until the node's /diagnostics account for every frame it received (published
    # or dropped) and every output of each published frame is here. Received: every frame
    # sent, or (a lossy input) no more for --stall-timeout s. No pace is assumed.
    per_frame = [key for key in outputs if key != "diagnostics"]
    end = time.monotonic() + args.drain_timeout
    last_received, received_at = None, time.monotonic()
    while time.monotonic() < end:
        spin_for(0.1)
        rep = node_report()
        if rep is None:
            continue
        received, published, missed = (int(rep[f"# of {k}"]) for k in (
            "Frames Received", "Frames Published", "Missed Frames"))
        if received != last_received:
            last_received, received_at = received, time.monotonic()
        all_in = received >= len(sent) or (
            received > 0 and time.monotonic() - received_at > args.stall_timeout)
        if (all_in and published + missed == received
                and all(len(got[key]) >= published for key in per_frame)):
            break
    spin_for(0.3)
    if buffer is not None:
        from rclpy.time import Time

        parent, child = args.lookup.split(",")
        got["lookup"] = []
        for s in sorted({m["stamp"] for m in got["depth"]}):
            try:
                t = buffer.lookup_transform(parent, child, Time(nanoseconds=s)).transform
            except Exception as exc:  # recorded: the test says which stamp failed and why
                got["lookup"].append({"stamp": s, "error": f"{type(exc).__name__}: {exc}"})
                continue
            got["lookup"].append({"stamp": s, "t": [t.translation.x, t.translation.y,
                                                    t.translation.z],
                                  "q": [t.rotation.x, t.rotation.y, t.rotation.z,
                                        t.rotation.w]})
    with open(args.out, "w") as f:
        json.dump({"sent": sent, "height": args.height, "width": args.width,
                   "frame_id": args.frame_id, "got": got}, f)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
