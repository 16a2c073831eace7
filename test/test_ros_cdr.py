"""CDR conformance: our Cyclone DDS types have rosbags' layout; the wire codec round-trips.

rosbags' ``serialize_cdr`` (4-byte header ``00 01 00 00`` + plain CDR little endian) is the
reference ROS 2 bag/wire encoding and the package's one codec (``unihoi_ros.ros.wire``).
For every message type the package exchanges, and for the Humble and Jazzy typestores,
Cyclone's own (stock) machinery reads rosbags' bytes into our declared IDL struct with the
same field values and writes the same bytes back: the type Cyclone announces to peers is
the one whose bytes we send. The topic types that carry bytes (``idl.wire_type``) have the
declared types' name and type identifier.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cyclonedds")
pytest.importorskip("rosbags")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unihoi_ros.geometry.quaternions import matrix_from_quaternion
from unihoi_ros.pipeline.results import FrameResult
from unihoi_ros.ros import idl, wire
from unihoi_ros.ros import messages as M
from unihoi_ros.ros.msg.types import as_u8
from unihoi_ros.ros.qos import qos_profile, to_cyclone_qos

DISTROS = ["humble", "jazzy"]


def _frame(seed: int = 0, h: int = 6, w: int = 8, m: int = 5) -> FrameResult:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=4)
    T = np.eye(4)
    T[:3, :3] = matrix_from_quaternion(q / np.linalg.norm(q))
    T[:3, 3] = rng.normal(size=3)
    return FrameResult(
        stamp_ns=1_700_000_000_123_456_789 + seed,
        rgb=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        depth=rng.uniform(0.2, 3.0, (h, w)).astype(np.float32),
        K=np.array([[50.0, 0, w / 2], [0, 51.0, h / 2], [0, 0, 1]]),
        T_world_cam=T,
        confidence=rng.uniform(0, 1, (h, w)).astype(np.float32),
        points=rng.normal(size=(m, 3)).astype(np.float32),
        colors=rng.integers(0, 256, (m, 3), dtype=np.uint8),
    )


def sample_messages(ts) -> dict[str, list]:
    """At least one message of every type in ``M.MESSAGE_TYPES`` (nested ones included)."""
    fr = _frame(1)
    cls = ts.types
    img_odd = cls[M.IMAGE](
        header=M.make_header(-5, "é€ unicode", ts),
        height=3,
        width=5,
        encoding="mono8",
        is_bigendian=1,
        step=7,
        data=np.arange(21, dtype=np.uint8),
    )
    empty_img = cls[M.IMAGE](
        header=M.make_header(0, "", ts),
        height=0,
        width=0,
        encoding="",
        is_bigendian=0,
        step=0,
        data=np.zeros(0, np.uint8),
    )
    tf = M.FrameMessages(fr, "cam_optical_frame", "odom", ts).tf()
    tf2 = M.tf_msg(
        [
            M.transform_stamped_msg(np.eye(4), 1, "a", "b", ts),
            M.transform_stamped_msg(fr.T_world_cam, 2, "odom", "base", ts),
        ],
        ts,
    )
    poses = [M.pose_stamped_msg(_frame(i).T_world_cam, i, "odom", ts) for i in range(3)]
    status = M.diagnostic_status_msg(
        "unihoi: rates", M.DIAG_WARN, "slow", {"fps": 12.5, "drops": 3}, "gpu0", ts
    )
    ci = M.camera_info_from_result(fr, "cam", ts)
    ci_full = cls[M.CAMERA_INFO](
        header=M.make_header(3, "c", ts),
        height=480,
        width=640,
        distortion_model="rational_polynomial",
        d=np.arange(8, dtype=np.float64) * 0.1,
        k=np.arange(9.0),
        r=np.arange(9.0) + 0.5,
        p=np.arange(12.0) - 3,
        binning_x=2,
        binning_y=3,
        roi=cls[M.REGION_OF_INTEREST](x_offset=1, y_offset=2, height=3, width=4, do_rectify=True),
    )
    cloud = M.point_cloud_msg(fr, "cam", ts)
    empty_cloud = M.points_to_cloud(np.zeros((0, 3)), None, 7, "cam", ts)
    return {
        M.TIME: [M.ns_to_stamp(1_234_567_890_123, ts), M.ns_to_stamp(-1, ts)],
        M.HEADER: [M.make_header(42, "x", ts)],
        M.IMAGE: [
            M.rgb_to_image(fr.rgb, fr.stamp_ns, "cam", typestore=ts),
            M.depth_image_msg(fr, "cam", ts),
            img_odd,
            empty_img,
        ],
        M.COMPRESSED_IMAGE: [M.rgb_to_compressed(fr.rgb, 9, "cam", "png", typestore=ts)],
        M.CAMERA_INFO: [ci, ci_full],
        M.REGION_OF_INTEREST: [ci_full.roi],
        M.POINT_FIELD: [cloud.fields[3]],
        M.POINT_CLOUD2: [cloud, empty_cloud],
        M.VECTOR3: [tf.transforms[0].transform.translation],
        M.QUATERNION: [tf.transforms[0].transform.rotation],
        M.TRANSFORM: [tf.transforms[0].transform],
        M.TRANSFORM_STAMPED: [tf.transforms[0]],
        M.POINT: [poses[1].pose.position],
        M.POSE: [poses[1].pose],
        M.POSE_STAMPED: [poses[2]],
        M.TF_MESSAGE: [tf, tf2, M.tf_msg([], ts)],
        M.PATH: [M.path_msg(poses, 5, "odom", ts), M.path_msg([], 5, "odom", ts)],
        M.KEY_VALUE: [status.values[0]],
        M.DIAGNOSTIC_STATUS: [status],
        M.DIAGNOSTIC_ARRAY: [M.diagnostic_array_msg(11, [status, status], ts)],
    }


def _cases():
    for distro in DISTROS:
        ts = M.get_typestore(distro)
        for typename, msgs in sample_messages(ts).items():
            for i, msg in enumerate(msgs):
                yield pytest.param(distro, typename, msg, id=f"{distro}-{typename}-{i}")


CASES = list(_cases())


def _same_values(msg, sample, typename, ts) -> None:
    """Every field of the rosbags ``msg`` equals the IDL ``sample``'s (recursively)."""
    from rosbags.interfaces import Nodetype

    for name, (kind, desc) in ts.fielddefs[typename][1]:
        a, b = getattr(msg, name), getattr(sample, name)
        if kind == Nodetype.NAME:
            _same_values(a, b, desc, ts)
        elif kind == Nodetype.BASE:
            assert a == b, (typename, name, a, b)
        else:
            (sub_kind, sub_desc), _ = desc
            assert len(a) == len(b), (typename, name)
            if sub_kind == Nodetype.NAME:
                for x, y in zip(a, b):
                    _same_values(x, y, sub_desc, ts)
            else:
                np.testing.assert_array_equal(np.asarray(a), np.asarray(list(b)), err_msg=name)


def test_every_message_type_is_covered_and_named_like_ros2():
    covered = {c.values[1] for c in CASES}
    assert covered == set(M.MESSAGE_TYPES) == set(idl.IDL_TYPES)
    for typename, cls in idl.IDL_TYPES.items():
        assert cls.__idl_typename__.replace(".", "::") == idl.dds_type_name(typename)
        # the bytes-carrying topic type is the same IDL type to a peer
        carrier = idl.wire_type(typename)
        assert carrier.__idl_typename__ == cls.__idl_typename__
        for t in (cls, carrier):
            t.__idl__.fill_type_data()
        assert carrier.__idl__.get_type_id() == cls.__idl__.get_type_id(), typename
    assert idl.dds_type_name(M.IMAGE) == "sensor_msgs::msg::dds_::Image_"


@pytest.mark.parametrize(("distro", "typename", "msg"), CASES)
def test_cyclone_bytes_equal_rosbags_bytes(distro, typename, msg):
    ts = M.get_typestore(distro)
    ref = bytes(ts.serialize_cdr(msg, typename))
    assert ref[:4] == b"\x00\x01\x00\x00"  # CDR_LE encapsulation header
    assert bytes(wire.serialize(msg, typename, ts)) == ref

    # Cyclone's stock machinery reads rosbags' bytes into our struct, field for field ...
    sample = idl.idl_type(typename).deserialize(ref)
    _same_values(msg, sample, typename, ts)
    # ... and writes them back unchanged
    assert sample.serialize(use_version_2=False) == ref
    assert sample.serialize() == ref  # the types' native representation is XCDR1 too

    # the codec: bytes -> message -> bytes, DDS padding tolerated
    msg2 = wire.deserialize(wire.pad4(ref), typename, ts)
    assert type(msg2) is type(msg)
    assert bytes(ts.serialize_cdr(msg2, typename)) == ref
    # a DDS sample of the carrier type writes exactly the codec's bytes
    assert idl.wire_type(typename).from_cdr(wire.pad4(ref)).serialize() == wire.pad4(ref)


def test_xcdr2_would_differ_so_the_representation_policy_matters():
    """CameraInfo has float64 after 4-byte fields: XCDR2 aligns them to 4, XCDR1 to 8."""
    ts = M.get_typestore()
    msg = sample_messages(ts)[M.CAMERA_INFO][0]
    ref = bytes(ts.serialize_cdr(msg, M.CAMERA_INFO))
    sample = idl.CameraInfo.deserialize(ref)
    assert sample.serialize(use_version_2=True) != ref
    qos = to_cyclone_qos(qos_profile("SENSOR_DATA"))
    from cyclonedds.qos import Policy

    assert Policy.DataRepresentation(use_cdrv0_representation=True) in list(qos)


def test_uint8_payload_numpy_any_stride_and_clear_errors_otherwise():
    ts = M.get_typestore()
    base = np.arange(24, dtype=np.uint8)

    def image(data):
        return ts.types[M.IMAGE](header=M.make_header(1_000_000_002, "f", ts), height=2,
                                 width=4, encoding="rgb8", is_bigendian=0, step=12, data=data)

    ref = bytes(wire.serialize(image(base), M.IMAGE, ts))
    assert bytes(wire.serialize(image(np.repeat(base, 2)[::2]), M.IMAGE, ts)) == ref
    for data in (base.tobytes(), bytearray(base.tobytes()), list(base),
                 memoryview(base.tobytes())):
        with pytest.raises(wire.CdrError, match="numpy"):
            wire.serialize(image(data), M.IMAGE, ts)
        assert bytes(wire.serialize(image(as_u8(data)), M.IMAGE, ts)) == ref
    back = wire.deserialize(ref, M.IMAGE, ts)
    assert isinstance(back.data, np.ndarray) and back.data.dtype == np.uint8
    np.testing.assert_array_equal(back.data, base)
    assert not back.data.flags.writeable  # a view into the received bytes: no copy


def test_codec_refuses_what_is_not_the_type():
    ts = M.get_typestore()
    ref = bytes(wire.serialize(sample_messages(ts)[M.IMAGE][0], M.IMAGE, ts))
    for bad in (b"", b"\x00\x01", b"\x01\x00\x00\x00" + ref[4:], ref[:-8], ref + b"\0" * 8):
        with pytest.raises(wire.CdrError):
            wire.deserialize(bad, M.IMAGE, ts)
    with pytest.raises(wire.CdrError):
        wire.check_le(b"\x00\x00\x00\x00")  # big endian: not what ROS 2 writes
    assert issubclass(wire.CdrError, ValueError)


def test_big_image_round_trip_has_no_per_element_python_work():
    """A 640x480 rgb8 image (921600 bytes) goes message -> DDS sample -> message without
    element loops: counted in Python trace events (lines and calls), not in time, so a busy
    machine gives the same answer. A loop over the bytes would cost at least one event per
    byte; the buffer path costs a few hundred in all. (Its speed is measured in
    ``bench/``.)"""
    import sys

    ts = M.get_typestore()
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    msg = M.rgb_to_image(rgb, 1, "cam", typestore=ts)
    carrier = idl.wire_type(M.IMAGE)
    wire.deserialize(carrier.from_cdr(wire.pad4(wire.serialize(msg, M.IMAGE, ts))).serialize(),
                     M.IMAGE, ts)  # first use: imports and type set-up
    events = 0

    def trace(frame, event, arg):
        nonlocal events
        events += 1
        return trace

    sys.settrace(trace)
    try:
        raw = carrier.from_cdr(wire.pad4(wire.serialize(msg, M.IMAGE, ts))).serialize()
        back = wire.deserialize(carrier.deserialize(raw).cdr, M.IMAGE, ts)
    finally:
        sys.settrace(None)
    np.testing.assert_array_equal(back.data, msg.data)
    assert events < 0.02 * len(msg.data), f"{events} Python trace events for {len(msg.data)} B"


_names = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame_id=_names,
    encoding=_names,
    stamp=st.integers(-(2**62), 2**62),
    h=st.integers(0, 5),
    w=st.integers(0, 5),
    pad=st.integers(0, 7),
    big=st.integers(0, 1),
    d_len=st.integers(0, 9),
    distortion=_names,
)
def test_random_images_and_camera_infos_match_rosbags(
    frame_id, encoding, stamp, h, w, pad, big, d_len, distortion
):
    ts = M.get_typestore()
    rng = np.random.default_rng(abs(stamp) % 1000)
    step = w + pad
    img = ts.types[M.IMAGE](
        header=M.make_header(stamp // 4, frame_id, ts),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=big,
        step=step,
        data=rng.integers(0, 256, h * step, dtype=np.uint8),
    )
    ci = ts.types[M.CAMERA_INFO](
        header=M.make_header(stamp // 3, frame_id, ts),
        height=h,
        width=w,
        distortion_model=distortion,
        d=rng.normal(size=d_len),
        k=rng.normal(size=9),
        r=rng.normal(size=9),
        p=rng.normal(size=12),
        binning_x=h,
        binning_y=w,
        roi=ts.types[M.REGION_OF_INTEREST](
            x_offset=pad, y_offset=big, height=h, width=w, do_rectify=bool(big)
        ),
    )
    for msg, typename in ((img, M.IMAGE), (ci, M.CAMERA_INFO)):
        ref = bytes(ts.serialize_cdr(msg, typename))
        sample = idl.idl_type(typename).deserialize(ref)
        _same_values(msg, sample, typename, ts)
        assert sample.serialize() == ref
        back = wire.deserialize(wire.pad4(ref), typename, ts)
        assert bytes(wire.serialize(back, typename, ts)) == ref
