"""RGB-D rigs whose depth is not registered to colour: camera parameters and registration.

The maths is :mod:`unihoi_ros.geometry.registration` (:func:`register_depth`,
:func:`color_poses_from_depth_poses`); this module holds the parameters of the rigs we
read, and applies them to whole recordings.

**7-Scenes (Microsoft, Kinect v1)** publishes the depth camera's nominal intrinsics
(``fx = fy = 585, cx = 320, cy = 240``; its ``camera-intrinsics.txt``) and the depth
camera's poses, but neither the colour camera's intrinsics nor the depth-to-colour
transform, and its depth is not registered to colour. :data:`SEVEN_SCENES` was estimated
from the shared frames ``../shared/data/7scenes_redkitchen_300_699`` by
``bench/estimate_registration.py``: the depth map's occluding contours (near side of each
depth jump), projected into the colour camera, should lie on colour (Canny) edges; the
mean distance to the nearest colour edge, capped at 8 px, over 100 frames (every 4th,
3000 contour points each) was minimised over the colour focal length ``f = fx = fy``, the
principal point and a baseline along x (no rotation), by a coarse grid then coordinate
descent. Figures: objective 4.71 px unregistered (585, 320, 240, no baseline) and 2.79 px
at ``f = 526.6, cx = 322.4, cy = 238.0, tx = -3.09 cm`` (3.18 / 3.08 px at f -/+ 10 px,
3.06 / 3.10 px at tx -/+ 1 cm); i.e. the colour camera's centre sits 3.1 cm along the
depth camera's +x axis (``T_color_depth`` translates depth-camera points by -3.1 cm in x).
The colour focal length agrees with the 525-530 px reported for Kinect v1 colour cameras.
Spread of the estimate over subsets of the frames (every 2nd frame of 300-499, of
500-699, odd frames): f 526.6-528.1 px, cy 237.5-238.5 px; cx (322.4-325.0 px) and the
baseline (3.1-4.1 cm) trade against each other (both shift contours along x), so their
combination is what is known to about a pixel. The frames' motion agrees: the ground
truth's motion reprojects SIFT matches between colour frames 5 apart best at this focal
length (median 1.48 px; 474 px: 1.87, 585 px: 2.31; ``bench/real_motion_check.py``), and
the depth camera's own contours follow the truth best at 555-585 px.

**TUM RGB-D** depth is registered to colour by the OpenNI driver already (the dataset's
pages). Its colour cameras' calibration is published per camera (Freiburg 1, 2, 3:
:data:`TUM_FREIBURG_K`; Freiburg 1 and 2 images also carry lens distortion that the
published K alone does not undo); :func:`tum_color_K` picks one by the folder's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unihoi_ros.geometry.registration import color_poses_from_depth_poses, register_depth

__all__ = [
    "SEVEN_SCENES",
    "SEVEN_SCENES_K_COLOR",
    "SEVEN_SCENES_K_DEPTH",
    "SEVEN_SCENES_T_COLOR_DEPTH",
    "TUM_FREIBURG_K",
    "RGBDRig",
    "color_poses_from_depth_poses",
    "register_depth",
    "tum_color_K",
]

SEVEN_SCENES_K_DEPTH = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])
"""7-Scenes depth camera, 640x480 (the dataset's nominal ``camera-intrinsics.txt``)."""

SEVEN_SCENES_K_COLOR = np.array([[526.6, 0.0, 322.4], [0.0, 526.6, 238.0], [0.0, 0.0, 1.0]])
"""7-Scenes colour camera, 640x480, estimated (module docstring)."""

SEVEN_SCENES_T_COLOR_DEPTH = np.array([[1.0, 0.0, 0.0, -0.0309], [0.0, 1.0, 0.0, 0.0],
                                       [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
"""7-Scenes depth-camera-to-colour-camera transform (metres), estimated (module docstring)."""


@dataclass(frozen=True)
class RGBDRig:
    """A depth camera and a colour camera fixed to each other.

    Attributes:
        K_depth: ``(3, 3)`` depth camera intrinsics at ``depth_hw``, pixels.
        K_color: ``(3, 3)`` colour camera intrinsics at ``color_hw``, pixels.
        T_color_depth: ``(4, 4)`` depth-camera-to-colour-camera rigid transform, metres.
        depth_hw, color_hw: ``(H, W)`` image sizes the intrinsics belong to, pixels.
        name: for reports.
    """

    K_depth: np.ndarray
    K_color: np.ndarray
    T_color_depth: np.ndarray
    depth_hw: tuple[int, int] = (480, 640)
    color_hw: tuple[int, int] = (480, 640)
    name: str = field(default="")

    def register(self, depth_m: np.ndarray) -> np.ndarray:
        """``(H, W)`` or ``(N, H, W)`` depth-camera depth (metres, 0/NaN invalid) to the
        colour camera: ``(Hc, Wc)`` / ``(N, Hc, Wc)`` float32 metres, NaN where no sample
        (:func:`register_depth`)."""
        d = np.asarray(depth_m)
        if d.shape[-2:] != tuple(self.depth_hw):
            raise ValueError(f"{self.name or 'rig'}: depth of size {d.shape[-2:]} given, the "
                             f"depth camera's is {tuple(self.depth_hw)}")
        if d.ndim == 2:
            return register_depth(d, self.K_depth, self.K_color, self.T_color_depth,
                                  self.color_hw)
        return np.stack([register_depth(x, self.K_depth, self.K_color, self.T_color_depth,
                                        self.color_hw) for x in d.reshape(-1, *d.shape[-2:])]
                        ).reshape(*d.shape[:-2], *self.color_hw)

    def color_poses(self, T_world_depth: np.ndarray) -> np.ndarray:
        """``(..., 4, 4)`` colour-camera-to-world poses from the depth camera's
        (:func:`color_poses_from_depth_poses`)."""
        return color_poses_from_depth_poses(T_world_depth, self.T_color_depth)


SEVEN_SCENES = RGBDRig(SEVEN_SCENES_K_DEPTH, SEVEN_SCENES_K_COLOR, SEVEN_SCENES_T_COLOR_DEPTH,
                       name="7-Scenes (Kinect v1)")
"""The 7-Scenes rig (module docstring: how its colour camera was estimated)."""


def _pinhole(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


TUM_FREIBURG_K = {
    1: _pinhole(517.306408, 516.469215, 318.643040, 255.313989),
    2: _pinhole(520.908620, 521.007327, 325.141442, 249.701764),
    3: _pinhole(535.4, 539.2, 320.1, 247.6),
}
"""TUM RGB-D colour cameras (640x480), the dataset's published calibration, by Freiburg
camera number (``rgbd_dataset_freiburgN_*``)."""


def tum_color_K(path: str | Path) -> np.ndarray | None:
    """``(3, 3)`` K of the TUM RGB-D Freiburg camera that recorded the sequence folder
    ``path`` (named ``rgbd_dataset_freiburgN_...`` by the dataset, or any folder name with
    ``freiburgN`` / ``fr1``-``fr3``), or None when the name does not say."""
    for part in reversed(Path(path).resolve().parts):
        m = re.search(r"(?:freiburg|(?<![a-z])fr)([123])(?![0-9])", part.lower())
        if m:
            return TUM_FREIBURG_K[int(m.group(1))].copy()
    return None
