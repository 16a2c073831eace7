"""A real rclpy peer for the ROS 2 test tier (run as a separate process).

It publishes synthetic head-camera frames (``sensor_msgs/Image`` rgb8, optionally with a
``sensor_msgs/CameraInfo`` of a given K, same stamps) at a fixed rate on ``--image-topic``,
subscribes to every output of the node under ``--ns``, and writes what arrived as JSON
(``--out``): per topic, one record per message with the fields the tests check. It
publishes nothing until the node's input subscription and every output publisher have
matched, so start-up time (torch import, model load) does not eat frames. Its publishers
are reliable with a history as long as the clip (``--pub-depth``), so with a reliable
subscription on the node's side no frame can be lost on the way.

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
    ap.add_argument("--match-timeout", type=float, default=90.0)
    ap.add_argument("--drain-timeout", type=float, default=120.0,
                    help="most seconds to wait for outputs after the last frame")
    ap.add_argument("--stall-timeout", type=float, default=10.0,
                    help="stop waiting once no depth image arrived for this long")
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
    for key, (cls, topic, rec) in outputs.items():
        got[key] = []
        add = (lambda m, k=key, r=rec: got[k].extend(r(m))) if key == "tf" else (
            lambda m, k=key, r=rec: got[k].append(r(m)))
        node.create_subscription(cls, topic, add, qos)
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

    # Wait for the node: its input subscription and every output publisher.
    deadline = time.monotonic() + args.match_timeout
    waits = {f"subscriber of {args.image_topic}": lambda: image_pub.get_subscription_count() > 0}
    if info_pub is not None:
        waits[f"subscriber of {args.camera_info_topic}"] = (
            lambda: info_pub.get_subscription_count() > 0)
    waits.update({f"publisher of {topic}": lambda t=topic: node.count_publishers(t) > 0
                  for key, (_, topic, _) in outputs.items() if key != "diagnostics"})
    while not all(w() for w in waits.values()):
        if time.monotonic() > deadline:
            missing = [name for name, w in waits.items() if not w()]
            print(f"peer: the node did not match in time (no {', '.join(missing)}; the "
                  f"graph has {node.get_topic_names_and_types()})", file=sys.stderr)
            node.destroy_node()
            rclpy.try_shutdown()
            return 3
        spin_for(0.1)
    # Let the node's side finish matching too: its writers see this peer's readers later
    # than the peer sees them (Cyclone node, Fast DDS peer); 0.5 s once left the first
    # processed frame without its point cloud (built only while subscribed).
    spin_for(2.0)

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

    # Drain: until the depth count is complete or has not grown for 3 s, and a diagnostics
    # message arrived after the last depth image (its counts then include every frame).
    end = time.monotonic() + args.drain_timeout
    last_n, last_change, diag_at_change = -1, time.monotonic(), 0
    while time.monotonic() < end:
        spin_for(0.2)
        n = len(got["depth"])
        if n != last_n:
            last_n, last_change, diag_at_change = n, time.monotonic(), len(got["diagnostics"])
        done = n >= len(sent) or time.monotonic() - last_change > args.stall_timeout
        if done and len(got["diagnostics"]) > diag_at_change + 1:
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
