"""A decoded frame and its CameraInfo -> what the reconstructor takes: a pinhole image
and its K (or None: predict it).

A CameraInfo with distortion is undone first (:mod:`unihoi_ros.pipeline.rectify`, to the
same K); an unsupported model or an invalid K is refused (said, counted), and the frame
goes on with the predicted intrinsics rather than with distorted pixels labelled pinhole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from unihoi_ros.errors import ConfigError
from unihoi_ros.geometry.camera import scale_intrinsics
from unihoi_ros.pipeline.rectify import Rectifier, has_distortion
from unihoi_ros.ros.ratelog import RateLimitedLog


class CameraInput:
    """Prepares frames for the reconstructor from their CameraInfo (worker thread only).

    Args:
        count: ``count(key, n)`` for events (``rectified_frames``, ``distortion_refused``).
        ratelog: rate-limited logger.
    """

    def __init__(self, count: Callable[[str, int], None], ratelog: RateLimitedLog) -> None:
        self._count = count
        self._ratelog = ratelog
        self._rectifier = Rectifier()

    def prepare(self, rgb: np.ndarray, info: Any | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(image, K)``: ``rgb`` (rectified where ``info`` has distortion) and the
        camera's ``(3, 3)`` K at its size, or None to use the predicted intrinsics."""
        if info is None:
            return rgb, None
        K = self.camera_K(info, rgb.shape[:2])
        if K is None or not has_distortion(info.d):
            return rgb, K
        try:
            out = self._rectifier.rectify(rgb, K, np.asarray(info.d), info.distortion_model)
        except ConfigError as exc:
            self._count("distortion_refused", 1)
            self._ratelog(logging.WARNING, "distortion", "camera_info distortion cannot be "
                          "undone (%s): the camera's K is not used for these frames (predicted "
                          "K instead; pixels are not labelled as a pinhole camera)", exc)
            return rgb, None
        self._count("rectified_frames", 1)
        self._ratelog(logging.INFO, "rectify", "input has %s distortion: frames are rectified "
                      "(OpenCV) before inference; outputs describe the rectified image (D = 0)",
                      info.distortion_model)
        return out, K

    def camera_K(self, info: Any, image_hw: tuple[int, int]) -> np.ndarray | None:
        """The CameraInfo K at the decoded image's size, or None when it is not valid."""
        K = np.asarray(info.k, np.float64).reshape(3, 3)
        if not (np.isfinite(K).all() and K[0, 0] > 0 and K[1, 1] > 0):
            self._ratelog(logging.WARNING, "bad_camera_info", "camera_info has no valid K "
                          "(%s): using the predicted intrinsics", K.ravel().tolist())
            return None
        info_hw = (int(info.height), int(info.width))
        if info_hw[0] <= 0 or info_hw[1] <= 0:
            return K
        return scale_intrinsics(K, info_hw, tuple(image_hw))
