"""Undistort camera images (OpenCV) so a known K describes a pinhole camera.

The network and every output assume a pinhole camera. A ``sensor_msgs/CameraInfo`` with
distortion describes *distorted* pixels: labelling them with its K alone would be wrong,
so frames are rectified first, to the same K (``newCameraMatrix = K``), and the outputs
then carry ``D = 0`` (what ``camera_info_from_result`` writes). Maps are built once per
camera (K, D, size) and reused: one ``cv2.remap`` per frame.

Supported ``distortion_model`` values: ``plumb_bob`` and ``rational_polynomial``
(``cv2.initUndistortRectifyMap``), ``equidistant`` (``cv2.fisheye``). An unknown model is
an error the caller reports (the node then refuses the camera's K for that frame).
"""

from __future__ import annotations

import numpy as np

from unihoi_ros.errors import ConfigError

#: Distortion models this module can undo.
PINHOLE_MODELS = ("plumb_bob", "rational_polynomial")
FISHEYE_MODELS = ("equidistant",)


def has_distortion(D: np.ndarray | None) -> bool:
    """True when any distortion coefficient is non-zero."""
    return D is not None and np.asarray(D).size > 0 and bool(np.any(np.asarray(D) != 0.0))


class Rectifier:
    """Undistorts ``(H, W, 3)`` frames to the camera's own K; caches the remap tables."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._maps: tuple[np.ndarray, np.ndarray] | None = None

    def rectify(self, rgb: np.ndarray, K: np.ndarray, D: np.ndarray, model: str) -> np.ndarray:
        """The undistorted frame.

        Args:
            rgb: ``(H, W, C)`` or ``(H, W)`` image with distortion ``D``.
            K: ``(3, 3)`` intrinsics of ``rgb`` (pixels; same size as ``rgb``).
            D: distortion coefficients in ``model``'s order (OpenCV's).
            model: ``plumb_bob``, ``rational_polynomial`` or ``equidistant``.

        Returns:
            the image resampled (bilinear) as a pinhole camera with intrinsics ``K``;
            pixels that map outside the input are 0.

        Raises:
            ConfigError: an unsupported distortion model or coefficient count.
        """
        import cv2

        K = np.asarray(K, np.float64).reshape(3, 3)
        D = np.asarray(D, np.float64).ravel()
        h, w = rgb.shape[:2]
        key = (h, w, model, K.tobytes(), D.tobytes())
        if key != self._key:
            if model in PINHOLE_MODELS:
                if D.size not in (4, 5, 8, 12, 14):
                    raise ConfigError(f"{model} distortion needs 4, 5, 8, 12 or 14 "
                                      f"coefficients, got {D.size}")
                maps = cv2.initUndistortRectifyMap(K, D, None, K, (w, h), cv2.CV_32FC1)
            elif model in FISHEYE_MODELS:
                if D.size != 4:
                    raise ConfigError(f"equidistant distortion needs 4 coefficients, got {D.size}")
                maps = cv2.fisheye.initUndistortRectifyMap(K, D, np.eye(3), K, (w, h),
                                                           cv2.CV_32FC1)
            else:
                raise ConfigError(f"distortion model {model!r} is not supported (supported: "
                                  f"{', '.join(PINHOLE_MODELS + FISHEYE_MODELS)})")
            self._key, self._maps = key, maps
        return cv2.remap(rgb, self._maps[0], self._maps[1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT)
