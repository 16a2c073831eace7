"""Message conversion checked against independent code (OpenCV, numpy, scipy).

Image decoding is compared with ``cv2.cvtColor`` on the same bytes (padded ``step``
included) and with an independent BT.601 YUV encoder; PointCloud2 with a structured-array
decoding of the raw bytes; CameraInfo/TF with the FrameResult they came from.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from unihoi_ros.geometry.quaternions import matrix_from_quaternion, quaternion_from_matrix
from unihoi_ros.pipeline.results import FrameResult

pytest.importorskip("rosbags")

from unihoi_ros.ros import messages as M
from unihoi_ros.ros.messages import MalformedImageError, UnsupportedEncodingError

H, W = 6, 10
RNG = np.random.default_rng(7)
TS = M.get_typestore()


def raw_image(pixels: np.ndarray, encoding: str, pad: int = 0, big: int = 0, fill: int = 0xAB):
    """An Image whose rows are ``pixels``' bytes followed by ``pad`` garbage bytes."""
    h = pixels.shape[0]
    rows = np.ascontiguousarray(pixels).reshape(h, -1).view(np.uint8)
    step = rows.shape[1] + pad
    buf = np.full((h, step), fill, dtype=np.uint8)
    buf[:, : rows.shape[1]] = rows
    return TS.types[M.IMAGE](  # pixels are (H, W, C); yuv422 variants: C = 2 bytes/pixel
        header=M.make_header(5, "cam", TS),
        height=h,
        width=pixels.shape[1],
        encoding=encoding,
        is_bigendian=big,
        step=step,
        data=buf.reshape(-1),
    )


def make_frame(seed: int = 0, h: int = H, w: int = W, m: int = 50) -> FrameResult:
    rng = np.random.default_rng(seed)
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=seed).as_matrix()
    T[:3, 3] = rng.normal(size=3)
    depth = rng.uniform(0.3, 4.0, (h, w)).astype(np.float32)
    depth[0, 0], depth[0, 1], depth[1, 0] = np.nan, 0.0, -1.0
    return FrameResult(
        stamp_ns=1_700_000_123_987_654_321,
        rgb=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        depth=depth,
        K=np.array([[120.0, 0.0, w / 2 - 0.5], [0.0, 121.0, h / 2 - 0.5], [0.0, 0.0, 1.0]]),
        T_world_cam=T,
        confidence=rng.uniform(-0.2, 1.2, (h, w)).astype(np.float32),
        points=rng.normal(size=(m, 3)).astype(np.float32),
        colors=rng.integers(0, 256, (m, 3), dtype=np.uint8),
    )


# --------------------------------------------------------------------------- raw images
@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize(
    ("encoding", "channels", "code"),
    [
        ("rgb8", 3, None),
        ("bgr8", 3, cv2.COLOR_BGR2RGB),
        ("rgba8", 4, cv2.COLOR_RGBA2RGB),
        ("bgra8", 4, cv2.COLOR_BGRA2RGB),
        ("mono8", 1, cv2.COLOR_GRAY2RGB),
        ("yuv422", 2, cv2.COLOR_YUV2RGB_UYVY),
        ("uyvy", 2, cv2.COLOR_YUV2RGB_UYVY),
        ("yuv422_yuy2", 2, cv2.COLOR_YUV2RGB_YUY2),
        ("yuyv", 2, cv2.COLOR_YUV2RGB_YUY2),
    ],
)
def test_image_to_rgb_matches_opencv(encoding, channels, code, pad):
    pixels = RNG.integers(0, 256, (H, W, channels), dtype=np.uint8)
    msg = raw_image(pixels, encoding, pad=pad)
    got = M.image_to_rgb(msg)
    src = pixels[..., 0] if channels == 1 else pixels
    want = pixels if code is None else cv2.cvtColor(np.ascontiguousarray(src), code)
    assert got.shape == (H, W, 3) and got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)


def _bt601_yuv(rgb: np.ndarray) -> np.ndarray:
    """Studio-swing BT.601 RGB -> YUV, written from the standard (not via OpenCV)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return np.clip(np.rint(np.stack([y, u, v], -1)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2"])
def test_yuv422_byte_order_against_independent_encoder(encoding):
    """Pixel pairs share chroma; build UYVY / YUY2 bytes by hand, decode, compare to RGB."""
    rgb_half = RNG.integers(40, 216, (H, W // 2, 3), dtype=np.uint8)
    rgb = np.repeat(rgb_half, 2, axis=1)
    yuv = _bt601_yuv(rgb)
    y0, y1 = yuv[:, 0::2, 0], yuv[:, 1::2, 0]
    u, v = yuv[:, 0::2, 1], yuv[:, 0::2, 2]
    quad = [u, y0, v, y1] if encoding == "yuv422" else [y0, u, y1, v]  # ROS yuv422 is UYVY
    packed = np.stack(quad, axis=-1).reshape(H, W, 2)
    got = M.image_to_rgb(raw_image(packed, encoding, pad=3)).astype(int)
    assert np.abs(got - rgb.astype(int)).max() <= 3
    other = "yuv422_yuy2" if encoding == "yuv422" else "yuv422"
    wrong = M.image_to_rgb(raw_image(packed, other)).astype(int)
    assert np.abs(wrong - rgb.astype(int)).max() > 20  # the byte order is really checked


@pytest.mark.parametrize("big", [0, 1])
@pytest.mark.parametrize("pad", [0, 6])
def test_float_image_honours_endianness_and_step(big, pad):
    arr = RNG.normal(size=(H, W)).astype(np.float32)
    arr[2, 3] = np.nan
    stored = arr.astype(">f4" if big else "<f4")
    msg = raw_image(stored.reshape(H, W, 1), "32FC1", pad=pad, big=big)
    got = M.image_to_array(msg)
    assert got.dtype == np.float32 and got.dtype.isnative and got.shape == (H, W)
    np.testing.assert_array_equal(got, arr)


def test_mono16_big_endian_to_rgb_and_array():
    arr = RNG.integers(0, 65536, (H, W), dtype=np.uint16)
    msg = raw_image(arr.astype(">u2").reshape(H, W, 1), "mono16", pad=2, big=1)
    np.testing.assert_array_equal(M.image_to_array(msg), arr)
    rgb = M.image_to_rgb(msg)
    np.testing.assert_array_equal(rgb[..., 1], (arr >> 8).astype(np.uint8))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_rgb_encode_decode_round_trip(encoding):
    rgb = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    msg = M.rgb_to_image(rgb, 77, "cam", encoding)
    assert msg.encoding == encoding and msg.step == W * (4 if "a" in encoding else 3)
    assert msg.data.size == msg.step * H and msg.is_bigendian == 0
    assert M.stamp_to_ns(msg.header.stamp) == 77 and msg.header.frame_id == "cam"
    np.testing.assert_array_equal(M.image_to_rgb(msg), rgb)


def test_mono8_encoding_matches_opencv_gray():
    rgb = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    msg = M.rgb_to_image(rgb, 0, "cam", "mono8")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert np.abs(M.image_to_array(msg).astype(int) - gray).max() <= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.uint8])
def test_array_to_image_round_trip(dtype):
    arr = (RNG.uniform(0, 200, (H, W))).astype(dtype)
    msg = M.array_to_image(arr, 3, "d")
    np.testing.assert_array_equal(M.image_to_array(msg), arr)


# --------------------------------------------------------------------------- bad input
def test_bad_images_raise_specific_errors():
    good = raw_image(RNG.integers(0, 256, (H, W, 3), dtype=np.uint8), "rgb8", pad=2)
    with pytest.raises(UnsupportedEncodingError, match="bayer_rggb8"):
        M.image_to_rgb(raw_image(np.zeros((2, 2, 1), np.uint8), "bayer_rggb8"))
    small = TS.types[M.IMAGE](**{**good.__dict__, "step": W * 3 - 1})
    with pytest.raises(MalformedImageError, match="step"):
        M.image_to_rgb(small)
    truncated = TS.types[M.IMAGE](**{**good.__dict__, "data": good.data[:-1]})
    with pytest.raises(MalformedImageError, match="truncated"):
        M.image_to_rgb(truncated)
    odd = raw_image(np.zeros((2, 3, 2), np.uint8), "yuv422")
    with pytest.raises(MalformedImageError, match="odd width"):
        M.image_to_rgb(odd)
    with pytest.raises(UnsupportedEncodingError):
        M.image_to_rgb(raw_image(np.zeros((2, 2, 1), np.float32), "32FC1"))
    assert issubclass(UnsupportedEncodingError, ValueError)
    assert issubclass(MalformedImageError, ValueError)
    with pytest.raises(UnsupportedEncodingError):
        M.rgb_to_image(np.zeros((2, 2, 3), np.uint8), 0, "c", "nv12")


# --------------------------------------------------------------------------- compressed
def test_compressed_png_and_jpeg_against_opencv():
    rgb = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    png = M.rgb_to_compressed(rgb, 5, "cam", "png")
    assert png.format == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(M.compressed_to_rgb(png), rgb)
    smooth = np.repeat(np.repeat(rgb[:2, :2], 16, 0), 16, 1)  # constant per 16x16 MCU
    jpg = M.rgb_to_compressed(smooth, 5, "cam", "jpeg", quality=95)
    assert bytes(jpg.data[:2]) == b"\xff\xd8" and "jpeg" in jpg.format
    ref = cv2.cvtColor(cv2.imdecode(np.asarray(jpg.data), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    got = M.compressed_to_rgb(jpg)
    np.testing.assert_array_equal(got, ref)
    assert np.abs(got.astype(int) - smooth).mean() < 3


def test_corrupt_compressed_images_raise():
    rgb = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    jpg = M.rgb_to_compressed(rgb, 5, "cam", "jpeg")
    data = np.asarray(jpg.data)
    cls = TS.types[M.COMPRESSED_IMAGE]
    for bad in (
        data[: data.size // 2],
        np.frombuffer(b"not an image at all" * 4, np.uint8),
        np.zeros(0, np.uint8),
    ):
        with pytest.raises(MalformedImageError):
            M.compressed_to_rgb(cls(header=jpg.header, format="jpeg", data=bad))
    png = np.asarray(M.rgb_to_compressed(rgb, 5, "cam", "png").data)
    with pytest.raises(MalformedImageError):
        M.compressed_to_rgb(cls(header=jpg.header, format="png", data=png[:-40]))
    with pytest.raises(UnsupportedEncodingError):
        M.compressed_to_rgb(cls(header=jpg.header, format="16UC1; compressedDepth", data=png))


# --------------------------------------------------------------------------- FrameResult
def test_depth_confidence_and_camera_info_from_frame():
    fr = make_frame(3)
    depth = M.depth_image_msg(fr, "cam_optical_frame")
    assert (depth.encoding, depth.height, depth.width, depth.step) == ("32FC1", H, W, W * 4)
    assert M.stamp_to_ns(depth.header.stamp) == fr.stamp_ns
    assert depth.header.frame_id == "cam_optical_frame"
    d = np.frombuffer(np.asarray(depth.data).tobytes(), "<f4").reshape(H, W)
    assert np.isnan(d[0, 0]) and np.isnan(d[0, 1]) and np.isnan(d[1, 0])
    valid = fr.depth > 0
    np.testing.assert_array_equal(d[valid], fr.depth[valid])

    conf = M.image_to_array(M.confidence_image_msg(fr, "cam_optical_frame"))
    np.testing.assert_allclose(conf, np.clip(fr.confidence, 0, 1))

    ci = M.camera_info_from_result(fr, "cam_optical_frame")
    assert (ci.height, ci.width, ci.distortion_model) == (H, W, "plumb_bob")
    assert M.stamp_to_ns(ci.header.stamp) == fr.stamp_ns
    np.testing.assert_array_equal(ci.d, np.zeros(5))
    np.testing.assert_array_equal(np.asarray(ci.k).reshape(3, 3), fr.K)
    np.testing.assert_array_equal(np.asarray(ci.r).reshape(3, 3), np.eye(3))
    P = np.asarray(ci.p).reshape(3, 4)
    np.testing.assert_array_equal(P[:, :3], fr.K)
    np.testing.assert_array_equal(P[:, 3], 0)


def test_point_cloud_against_structured_decoding_of_raw_bytes():
    fr = make_frame(4, m=37)
    msg = M.point_cloud_msg(fr, "cam_optical_frame")
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 37, 16, 37 * 16)
    assert msg.is_dense and not msg.is_bigendian
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, 7, 1),
        ("y", 4, 7, 1),
        ("z", 8, 7, 1),
        ("rgb", 12, 7, 1),
    ]
    raw = bytes(TS.serialize_cdr(msg, M.POINT_CLOUD2))  # what goes on the wire
    data = np.asarray(TS.deserialize_cdr(raw, M.POINT_CLOUD2).data).tobytes()
    dt = np.dtype(
        {
            "names": ["x", "y", "z", "rgb"],
            "formats": ["<f4"] * 4,
            "offsets": [0, 4, 8, 12],
            "itemsize": 16,
        }
    )
    cloud = np.frombuffer(data, dt)
    np.testing.assert_array_equal(np.stack([cloud["x"], cloud["y"], cloud["z"]], 1), fr.points)
    packed = cloud["rgb"].view(np.uint32)
    np.testing.assert_array_equal((packed >> 16) & 0xFF, fr.colors[:, 0])
    np.testing.assert_array_equal((packed >> 8) & 0xFF, fr.colors[:, 1])
    np.testing.assert_array_equal(packed & 0xFF, fr.colors[:, 2])
    first = data[12:16]
    assert first == bytes([*fr.colors[0, ::-1], 0])  # bytes B, G, R, 0
    pts, cols = M.cloud_to_points(msg)
    np.testing.assert_array_equal(pts, fr.points)
    np.testing.assert_array_equal(cols, fr.colors)


def test_empty_point_cloud():
    msg = M.points_to_cloud(np.zeros((0, 3)), np.zeros((0, 3), np.uint8), 1, "c")
    assert msg.width == 0 and msg.data.size == 0
    pts, cols = M.cloud_to_points(msg)
    assert pts.shape == (0, 3) and cols.shape == (0, 3)


def test_tf_path_and_quaternions_against_scipy():
    fr = make_frame(5)
    tfm = M.FrameMessages(fr, M.optical_frame_id("head_cam")).tf()
    (t,) = tfm.transforms
    assert t.header.frame_id == "unihoi_world" and t.child_frame_id == "head_cam_optical_frame"
    assert M.stamp_to_ns(t.header.stamp) == fr.stamp_ns
    # The world frame has REP-103 body axes: optical z -> x, x -> -y, y -> -z.
    R_body_optical = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)
    q = t.transform.rotation
    np.testing.assert_allclose(Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix(),
                               R_body_optical @ fr.T_world_cam[:3, :3], atol=1e-12)
    tr = t.transform.translation
    np.testing.assert_allclose([tr.x, tr.y, tr.z], R_body_optical @ fr.T_world_cam[:3, 3])

    poses = [M.pose_stamped_msg(make_frame(i).T_world_cam, i * 10, "odom") for i in range(4)]
    path = M.path_msg(poses, 30, "odom")
    assert len(path.poses) == 4 and M.stamp_to_ns(path.header.stamp) == 30
    p = path.poses[2].pose
    o = p.orientation
    np.testing.assert_allclose(
        Rotation.from_quat([o.x, o.y, o.z, o.w]).as_matrix(),
        make_frame(2).T_world_cam[:3, :3],
        atol=1e-12,
    )
    assert M.stamp_to_ns(path.poses[2].header.stamp) == 20


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**31))
def test_quaternion_from_matrix_matches_scipy(seed):
    rot = Rotation.random(random_state=seed)
    if seed % 4 == 0:  # exercise near-180-degree rotations
        v = rot.as_rotvec()
        rot = Rotation.from_rotvec(v / np.linalg.norm(v) * (np.pi - 1e-9 * (seed % 3)))
    q = quaternion_from_matrix(rot.as_matrix())
    assert q[3] >= 0 and abs(np.linalg.norm(q) - 1) < 1e-12
    ref = rot.as_quat()
    assert min(np.abs(q - ref).max(), np.abs(q + ref).max()) < 1e-9
    np.testing.assert_allclose(matrix_from_quaternion(q), rot.as_matrix(), atol=1e-12)


def test_old_quaternion_names_are_aliases_of_the_geometry_functions():
    assert M.rotation_to_quaternion is quaternion_from_matrix
    assert M.quaternion_to_rotation is matrix_from_quaternion


def test_diagnostics():
    st_ = M.diagnostic_status_msg("unihoi: input", M.DIAG_WARN, "drops", {"rate": 29.97, "n": 3})
    arr = M.diagnostic_array_msg(123, [st_])
    assert M.stamp_to_ns(arr.header.stamp) == 123
    (s,) = arr.status
    assert (s.name, s.level, s.message) == ("unihoi: input", 1, "drops")
    assert [(kv.key, kv.value) for kv in s.values] == [("rate", "29.97"), ("n", "3")]
    with pytest.raises(ValueError):
        M.diagnostic_status_msg("x", 7)


def test_frame_result_messages_bundle():
    fr = make_frame(6)
    out = M.frame_result_messages(fr, camera="cam")
    assert set(out) == {"depth/image", "depth/camera_info", "confidence/image", "points", "/tf",
                        "pose"}
    for key, msg in out.items():
        assert msg.__msgtype__ == M.DEFAULT_OUTPUT_TOPICS[key]
        header = msg.transforms[0].header if key == "/tf" else msg.header
        assert M.stamp_to_ns(header.stamp) == fr.stamp_ns
    assert "points" not in M.frame_result_messages(fr, points=False)
    # pose and /tf hold the same (body-axes) camera pose, converted once
    t, p = out["/tf"].transforms[0].transform, out["pose"].pose
    assert (t.translation.x, t.translation.y, t.translation.z) == (
        p.position.x, p.position.y, p.position.z)
    assert (t.rotation.x, t.rotation.w) == (p.orientation.x, p.orientation.w)
    # the table is every topic the node publishes, and nothing else
    assert set(M.DEFAULT_OUTPUT_TOPICS) == {o.topic for o in M.OUTPUTS} | {"/diagnostics"}
    assert M.output("points").on_demand and not M.output("depth").on_demand
    with pytest.raises(KeyError):
        M.output("nope")


def test_compact_encodings_for_bags():
    fr = make_frame(3)
    msgs = M.FrameMessages(fr, "cam", compact=True)
    depth, conf = msgs.build("depth"), msgs.build("confidence")
    assert (depth.encoding, conf.encoding) == ("16UC1", "mono8")
    mm = M.image_to_array(depth).astype(np.float64)
    valid = np.isfinite(fr.depth) & (fr.depth > 0)
    np.testing.assert_allclose(mm[valid], np.round(fr.depth[valid] * 1000.0), atol=1)
    assert (mm[~valid] == 0).all()  # invalid: 0 (REP-118 for integer depth)
    np.testing.assert_allclose(M.image_to_array(conf) / 255.0,
                               np.clip(fr.confidence, 0, 1), atol=0.5 / 255 + 1e-6)


# --------------------------------------------------------------------------- time, stores
@given(st.integers(-(2**31) * 10**9, (2**31 - 1) * 10**9 + 999_999_999))
def test_stamp_round_trip(ns):
    stamp = M.ns_to_stamp(ns)
    assert 0 <= stamp.nanosec < 10**9
    assert M.stamp_to_ns(stamp) == ns


def test_stamp_out_of_range_and_typestores():
    with pytest.raises(ValueError):
        M.ns_to_stamp(2**31 * 10**9)
    assert M.get_typestore("jazzy") is M.get_typestore("JAZZY")
    assert M.get_typestore() is M.get_typestore("humble")
    with pytest.raises(ValueError, match="unknown ROS 2 distribution"):
        M.get_typestore("rolling-nope")


def test_messages_module_needs_no_cyclonedds():
    code = (
        "import sys; sys.modules['cyclonedds'] = None\n"
        "import unihoi_ros.ros.messages as m, unihoi_ros.ros.qos as q\n"
        "assert 'cv2' not in sys.modules\n"
        "m.rgb_to_image(__import__('numpy').zeros((2, 2, 3), 'uint8'), 0, 'c')\n"
        "q.to_rosbags_qos('DEFAULT')\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=root)


# --------------------------------------------------------------------------- module layout
_ROOT = Path(__file__).resolve().parents[1]
_FAMILIES = ("types", "image", "camera_info", "cloud", "tf", "diagnostics", "bundle")


def test_facade_re_exports_every_family_name():
    import importlib

    from unihoi_ros.ros.msg import types

    defined = {}
    for fam in _FAMILIES[1:]:
        mod = importlib.import_module(f"unihoi_ros.ros.msg.{fam}")
        for name in mod.__all__:
            assert name not in defined, f"{name} defined in {defined.get(name)} and {fam}"
            defined[name] = fam
            assert getattr(M, name) is getattr(mod, name), name
    aliases = {"rotation_to_quaternion", "quaternion_to_rotation"}
    rest = set(M.__all__) - set(defined) - aliases
    assert {"IMAGE", "get_typestore", "MalformedImageError", "WORLD_FRAME"} <= rest
    for name in rest:  # everything else lives in msg.types
        assert getattr(M, name) is getattr(types, name), name
    assert all(hasattr(M, name) for name in M.__all__)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add(node.module or "")
    return out


def test_quaternions_module_is_numpy_only():
    path = _ROOT / "unihoi_ros" / "geometry" / "quaternions.py"
    assert _imports(path) <= {"__future__", "collections.abc", "numpy"}
    code = (  # loaded by path: runs without torch and without the package __init__
        "import importlib.util, sys; sys.modules['torch'] = None\n"
        f"spec = importlib.util.spec_from_file_location('q', {str(path)!r})\n"
        "q = importlib.util.module_from_spec(spec); spec.loader.exec_module(q)\n"
        "import numpy as np\n"
        "assert np.allclose(q.matrix_from_quaternion(q.quaternion_from_matrix(np.eye(3))),"
        " np.eye(3))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=_ROOT)


def test_message_modules_pack_values_and_leave_the_maths_to_geometry():
    for fam in _FAMILIES:
        path = _ROOT / "unihoi_ros" / "ros" / "msg" / f"{fam}.py"
        text = path.read_text()
        assert not re.search(r"\blinalg\b|\beigh\b", text), fam
        assert "docs/conventions.md" in text and "DESIGN.md" not in text, fam
        assert not {m for m in _imports(path) if "torch" in m}, fam
