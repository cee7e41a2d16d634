"""A tilted pinhole camera of any resolution looking at the simulator's table.

Ground truth for the camera mapping of :mod:`fga_ros.bridge.camera_geometry`: this module
has its own projection code (look-at pose, pinhole), so that a check of the mapping against
it compares two independent implementations.

Table frame (``TABLE_FRAME``, the physics frame of the grasp check, in metres): origin under
the centre of the 128 x 128 top-down image, x = image right, y = image up, z up out of the
table. Top-down pixel (x, y) is the table point ``((x - c) * s, -(y - c) * s, 0)`` with
``c = 63.5`` and ``s = pixel_size_m`` of sim/camera.yaml (:func:`pixels_to_table`).

The object is a planar extrusion lying on the table: its top face is treated as lying *on*
the table plane (height 0), so the camera image is the top-down outline mapped by the exact
plane-to-image homography. The renderer maps the outline polygon's vertices (exact for
straight edges; curved outlines are already 64-gons) and fills them like :func:`render`, so
no image resampling is involved; the physics is the unchanged top-down mask.
"""

from dataclasses import dataclass
import math

import cv2
import numpy as np
from numpy.typing import ArrayLike

from fga_ros.sim.render import SUBPIXEL_BITS, load_camera, world_contours
from fga_ros.sim.scene import Scene
from fga_ros.sim.workspace import IMAGE_SIZE

TABLE_FRAME = 'world'
"""Name of the simulator's table frame (the frame of ``fga_ros.bridge.geometry``'s world)."""

DEFAULT_WIDTH = 640
DEFAULT_HEIGHT = 480
DEFAULT_DISTANCE_M = 0.6
"""Default distance from the optical centre to the table origin, m."""

FILL_FRACTION = 0.9
"""Share of the image half-width/height the table square of the top-down image may fill
when :func:`tilted_view` chooses the focal length."""


def pixels_to_table(xy: ArrayLike) -> np.ndarray:
    """Table points (n, 2), m, of top-down image pixels ``xy`` (n, 2)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    c, s = (IMAGE_SIZE - 1) / 2.0, load_camera().pixel_size_m
    return np.stack([(xy[:, 0] - c) * s, -(xy[:, 1] - c) * s], axis=1)


def table_to_pixels(points: ArrayLike) -> np.ndarray:
    """Top-down image pixels (n, 2) of table points ``points`` (n, 2), m."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    c, s = (IMAGE_SIZE - 1) / 2.0, load_camera().pixel_size_m
    return np.stack([points[:, 0] / s + c, -points[:, 1] / s + c], axis=1)


def table_direction_to_angle(direction: ArrayLike) -> np.ndarray:
    """Top-down grasp angles (n,), rad in [0, pi), of table-plane directions (n, 2)."""
    direction = np.asarray(direction, dtype=np.float64).reshape(-1, 2)
    return np.arctan2(-direction[:, 1], direction[:, 0]) % math.pi


@dataclass(frozen=True, eq=False)
class PinholeView:
    """An ideal pinhole camera (no lens distortion) and its pose over the table.

    Attributes:
        width, height: image size, px.
        fx, fy, cx, cy: intrinsics, px.
        rotation: (3, 3) camera-from-table rotation: ``p_cam = rotation @ p_table + translation``
            (camera frame: REP 103 optical, x right, y down, z along the view).
        translation: (3,) m.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    rotation: np.ndarray
    translation: np.ndarray

    @property
    def k(self) -> np.ndarray:
        """3 x 3 intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def project_table(self, points: ArrayLike) -> np.ndarray:
        """Image pixels (n, 2) of table-plane points (n, 2), m (z = 0)."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        cam = points @ self.rotation[:, :2].T + self.translation
        if np.any(cam[:, 2] <= 0):
            raise ValueError('table points behind the camera')
        return np.stack([self.fx * cam[:, 0] / cam[:, 2] + self.cx,
                         self.fy * cam[:, 1] / cam[:, 2] + self.cy], axis=1)

    def camera_info_fields(self, header: dict) -> dict:
        """``sensor_msgs/CameraInfo`` fields (plumb_bob, zero distortion)."""
        fx, fy, cx, cy = self.fx, self.fy, self.cx, self.cy
        return {
            'header': header, 'height': self.height, 'width': self.width,
            'distortion_model': 'plumb_bob', 'd': [0.0] * 5,
            'k': [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
            'r': [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            'p': [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        }


def _look_at(tilt, yaw, distance):
    """Camera-from-table rotation and translation of a camera looking at the table origin
    from ``distance`` m, tilted by ``tilt`` rad from straight down, azimuth ``yaw`` rad."""
    offset = np.array([math.sin(tilt) * math.sin(yaw), -math.sin(tilt) * math.cos(yaw),
                       math.cos(tilt)])
    centre = distance * offset
    z_axis = -offset  # looking at the origin
    x_axis = np.array([math.cos(yaw), math.sin(yaw), 0.0])  # horizontal, image right
    y_axis = np.cross(z_axis, x_axis)  # image down
    rotation = np.stack([x_axis, y_axis, z_axis])
    return rotation, -rotation @ centre


def tilted_view(tilt_deg: float, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT,
                distance_m: float = DEFAULT_DISTANCE_M, yaw_deg: float = 0.0,
                focal_px: float | None = None) -> PinholeView:
    """A camera ``distance_m`` from the table origin, tilted ``tilt_deg`` from straight down.

    ``tilt_deg`` in [0, 80); 0 = straight down with the image axes along the top-down image
    axes (yaw 0). The camera leans back towards -y of the table (the near edge of the table
    is at the bottom of the image). ``focal_px`` (fx = fy) defaults to the largest focal
    length at which the top-down image's table square (128 px = 0.256 m) fills at most
    ``FILL_FRACTION`` of the image around the principal point (the image centre).
    """
    if not 0.0 <= tilt_deg < 80.0:
        raise ValueError(f'tilt_deg must be in [0, 80), got {tilt_deg}')
    if width < 2 or height < 2:
        raise ValueError(f'image size must be at least 2 x 2, got {width} x {height}')
    if not distance_m > 0:
        raise ValueError(f'distance_m must be positive, got {distance_m}')
    rotation, translation = _look_at(math.radians(tilt_deg), math.radians(yaw_deg), distance_m)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    if focal_px is None:
        unit = PinholeView(width, height, 1.0, 1.0, 0.0, 0.0, rotation, translation)
        corners = pixels_to_table([[-0.5, -0.5], [IMAGE_SIZE - 0.5, -0.5],
                                   [IMAGE_SIZE - 0.5, IMAGE_SIZE - 0.5], [-0.5, IMAGE_SIZE - 0.5]])
        reach = np.abs(unit.project_table(corners)).max(axis=0)
        focal_px = FILL_FRACTION * min(cx / reach[0], cy / reach[1])
    if not focal_px > 0:
        raise ValueError(f'focal_px must be positive, got {focal_px}')
    return PinholeView(int(width), int(height), float(focal_px), float(focal_px), cx, cy,
                       rotation, translation)


def render_view(scene: Scene, view: PinholeView) -> np.ndarray:
    """Image (height, width, 3) uint8 RGB of an undistorted scene seen by ``view``.

    The whole visible table has the scene's background colour; the object outline is mapped
    exactly (see the module notes). Raises ValueError for a distorted scene: the camera pose
    replaces the fixed distortions.
    """
    if scene.distortion != 'none':
        raise ValueError(f'render_view needs an undistorted scene, got {scene.distortion!r}: '
                         'the camera pose is the distortion')
    params = scene.params
    out = np.empty((view.height, view.width, 3), dtype=np.uint8)
    out[...] = np.asarray(params['background_color'], dtype=np.uint8)
    color = tuple(int(v) for v in params['object_color'])
    for group in world_contours(scene):
        polys = [np.round(view.project_table(pixels_to_table(c)) * (1 << SUBPIXEL_BITS))
                 .astype(np.int32) for c in group]
        cv2.fillPoly(out, polys, color, cv2.LINE_8, SUBPIXEL_BITS)
    return out
