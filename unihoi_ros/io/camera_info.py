"""A known camera for offline processing: ``--K``, a calibration YAML, a bag's camera_info.

:class:`CameraCalibration` carries what a ``sensor_msgs/CameraInfo`` carries for the
reconstructor (``height``, ``width``, ``k``, ``d``, ``distortion_model``, with the message's
field names), so offline frames go through the node's own
:class:`unihoi_ros.ros.camera_input.CameraInput`: distortion undone (rectified to the same
K), K rescaled to the frame's size; the reconstructor then rescales it to the processing
size and reads the network's depth with it (``ReconstructorConfig.known_k_rescales_depth``),
exactly as with the node's ``use_camera_info``.

Sources, in the order ``unihoi process`` prefers them (:func:`choose_camera`):

1. ``--K fx,fy,cx,cy`` (pixels of the input frames) or ``--camera-info FILE.yaml`` (the
   YAML ``camera_calibration`` / ``camera_info_manager`` write: ``image_width``,
   ``image_height``, ``camera_matrix``, ``distortion_model``, ``distortion_coefficients``;
   :func:`read_camera_info_yaml`);
2. a bag's ``sensor_msgs/CameraInfo`` beside the image topic (:func:`bag_camera_info`),
   unless ``--ignore-camera-info``;
3. ``--K dataset``: the K the dataset reader knows (7-Scenes: the colour camera's; TUM
   RGB-D: the Freiburg camera's; our synthetic TUM export: its ``intrinsics.txt``);
4. otherwise the network's K (one per stream, ``stream_intrinsics``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unihoi_ros.errors import ConfigError
from unihoi_ros.pipeline.rectify import FISHEYE_MODELS, PINHOLE_MODELS, has_distortion

log = logging.getLogger(__name__)

#: ``--K`` value that asks for the dataset reader's K.
DATASET_K = "dataset"


@dataclass(frozen=True)
class CameraCalibration:
    """A camera's intrinsics (and distortion) with CameraInfo's field names.

    Attributes:
        height, width: image size ``k`` belongs to, pixels; 0 means "the frames' size"
            (``--K``: the values are given for the input frames).
        k: ``(9,)`` row-major 3x3 intrinsics, pixels.
        d: distortion coefficients in ``distortion_model``'s (OpenCV's) order; empty: none.
        distortion_model: ``plumb_bob``, ``rational_polynomial``, ``equidistant``, or ``""``.
        source: where it came from (for logs and the run's report).
    """

    height: int
    width: int
    k: np.ndarray
    d: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distortion_model: str = ""
    source: str = ""

    @property
    def K(self) -> np.ndarray:
        """``(3, 3)`` float64 intrinsics at ``(height, width)``, pixels."""
        return np.asarray(self.k, np.float64).reshape(3, 3)

    def report(self) -> dict:
        """JSON-friendly description (what the run's ``report.json`` records)."""
        return {"source": self.source, "K": self.K.tolist(),
                "size_hw": [self.height, self.width] if self.height > 0 else "input frames",
                "distortion_model": self.distortion_model,
                "distortion": np.asarray(self.d, np.float64).tolist(),
                "rectified": has_distortion(self.d)}


def _checked(cal: CameraCalibration) -> CameraCalibration:
    K = cal.K
    if not (np.isfinite(K).all() and K[0, 0] > 0 and K[1, 1] > 0 and K[2, 2] == 1
            and K[1, 0] == 0 and K[2, 0] == 0 and K[2, 1] == 0):
        raise ConfigError(f"{cal.source}: not a pinhole camera matrix: {K.tolist()}")
    if cal.height < 0 or cal.width < 0:
        raise ConfigError(f"{cal.source}: negative image size {cal.height}x{cal.width}")
    if has_distortion(cal.d) and cal.distortion_model not in PINHOLE_MODELS + FISHEYE_MODELS:
        raise ConfigError(f"{cal.source}: distortion model {cal.distortion_model!r} cannot be "
                          f"undone (supported: {', '.join(PINHOLE_MODELS + FISHEYE_MODELS)})")
    return cal


def from_K(K: np.ndarray, source: str, hw: tuple[int, int] = (0, 0)) -> CameraCalibration:
    """A distortion-free calibration from a ``(3, 3)`` K at ``hw`` (0: the frames' size)."""
    return _checked(CameraCalibration(int(hw[0]), int(hw[1]),
                                      np.asarray(K, np.float64).reshape(9), source=source))


def parse_K(text: str) -> CameraCalibration:
    """``"fx,fy,cx,cy"`` (pixels of the input frames) to a calibration.

    Raises:
        ConfigError: not four positive-focal finite numbers.
    """
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ConfigError(f"--K {text!r}: expected fx,fy,cx,cy in pixels (or '{DATASET_K}')")
    fx, fy, cx, cy = values
    return from_K(np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), f"--K {text}")


def _matrix(doc: dict, key: str, path: Path, shape: tuple[int, ...] | None) -> np.ndarray:
    node = doc.get(key)
    if not isinstance(node, dict) or "data" not in node:
        raise ConfigError(f"{path}: {key} must be a mapping with rows, cols and data")
    data = np.asarray(node["data"], np.float64).ravel()
    rows, cols = node.get("rows"), node.get("cols")
    if rows is not None and cols is not None and data.size != int(rows) * int(cols):
        raise ConfigError(f"{path}: {key} has {data.size} values for {rows}x{cols}")
    if shape is not None and data.size != int(np.prod(shape)):
        raise ConfigError(f"{path}: {key} must have {int(np.prod(shape))} values, got "
                          f"{data.size}")
    return data


def read_camera_info_yaml(path: str | Path) -> CameraCalibration:
    """The calibration file ``camera_calibration`` / ``camera_info_manager`` write.

    Keys: ``image_width``, ``image_height``, ``camera_matrix`` ``{rows: 3, cols: 3,
    data: [9]}`` (K), ``distortion_model``, ``distortion_coefficients`` ``{rows, cols,
    data}`` (optional); ``rectification_matrix`` and ``projection_matrix`` are not needed
    (a monocular camera is rectified to its own K, as the node does).

    Raises:
        ConfigError: unreadable file, missing or malformed keys, invalid K.
    """
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read camera info {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not a camera calibration YAML (a mapping expected)")
    for key in ("image_width", "image_height", "camera_matrix"):
        if key not in doc:
            raise ConfigError(f"{path}: missing {key}")
    k = _matrix(doc, "camera_matrix", path, (3, 3))
    d = (_matrix(doc, "distortion_coefficients", path, None)
         if doc.get("distortion_coefficients") is not None else np.zeros(0))
    try:
        h, w = int(doc["image_height"]), int(doc["image_width"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: image_width / image_height must be integers") from exc
    if h <= 0 or w <= 0:
        raise ConfigError(f"{path}: image size {w}x{h} must be positive")
    model = str(doc.get("distortion_model") or ("plumb_bob" if d.size else ""))
    return _checked(CameraCalibration(h, w, k, d, model, f"--camera-info {path}"))


def camera_info_topic_for(image_topic: str) -> str:
    """The CameraInfo topic beside an image topic (image_transport's rule: the image
    topic's namespace + ``camera_info``; ``/compressed`` is a transport suffix)."""
    base = image_topic.removesuffix("/compressed")
    ns = base.rsplit("/", 1)[0] if "/" in base else ""
    return f"{ns}/camera_info"


def bag_camera_info(path: str | Path, image_topic: str) -> CameraCalibration | None:
    """The first valid ``sensor_msgs/CameraInfo`` of a bag's camera, or None.

    The topic is the one beside ``image_topic`` (:func:`camera_info_topic_for`), or the
    bag's only CameraInfo topic. A camera's calibration is fixed within a recording, so
    the first message with a valid K stands for all frames. A CameraInfo with an invalid
    K or an unsupported distortion model is skipped with a warning (the node does the
    same: predicted K rather than distorted pixels labelled pinhole).
    """
    from rosbags.highlevel import AnyReader

    info_type = "sensor_msgs/msg/CameraInfo"
    with AnyReader([Path(path)]) as reader:
        infos = [c for c in reader.connections if c.msgtype == info_type]
        want = camera_info_topic_for(image_topic)
        conns = [c for c in infos if c.topic == want]
        if not conns and len({c.topic for c in infos}) == 1:
            conns = infos
        if not conns:
            return None
        topic = conns[0].topic
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            cal = CameraCalibration(int(msg.height), int(msg.width),
                                    np.asarray(msg.k, np.float64).reshape(9),
                                    np.asarray(msg.d, np.float64).ravel(),
                                    str(msg.distortion_model), f"bag camera_info {topic}")
            try:
                return _checked(cal)
            except ConfigError as exc:
                log.warning("%s: skipped (%s)", topic, exc)
    return None


def choose_camera(source, K_text: str | None = None, camera_info: str | Path | None = None,
                  ignore_camera_info: bool = False) -> CameraCalibration | None:
    """The known camera of an offline run (module docstring's order), or None (predict).

    Args:
        source: the :class:`~unihoi_ros.io.sources.FrameSource` (its ``kind``, ``path``,
            ``K`` and, for bags, ``topic``).
        K_text: ``--K``: ``"fx,fy,cx,cy"`` or ``"dataset"``.
        camera_info: ``--camera-info`` YAML path.
        ignore_camera_info: ``--ignore-camera-info``: a bag's CameraInfo is not used.

    Raises:
        ConfigError: both ``--K`` values and ``--camera-info``, a bad value, or ``--K
            dataset`` for an input whose reader knows no K.
    """
    if K_text and camera_info and K_text != DATASET_K:
        raise ConfigError("give --K fx,fy,cx,cy or --camera-info, not both")
    if camera_info:
        return read_camera_info_yaml(camera_info)
    if K_text and K_text != DATASET_K:
        return parse_K(K_text)
    if source.kind == "rosbag2" and not ignore_camera_info and getattr(source, "topic", None):
        cal = bag_camera_info(source.path, source.topic)
        if cal is not None:
            return cal
    if K_text == DATASET_K:
        if source.K is None:
            raise ConfigError(f"--K {DATASET_K}: the {source.kind} reader knows no K for "
                              f"{source.path} (give --K fx,fy,cx,cy or --camera-info)")
        return from_K(source.K, f"dataset ({source.kind} reader)")
    return None
