"""Pixels <-> metric poses for the simulated top-down camera.

Frames (all right-handed):

- ``camera_optical_frame`` (REP 103 optical convention): x = image right (pixel x),
  y = image down (pixel y), z = viewing direction, straight down onto the table.
- ``world``: z up, x = image right, y = image up; the camera's optical centre is at
  (0, 0, camera_height) above the world origin, which lies under the image centre.

A pixel (x, y) (pixel centres at integers) is the table point
``((x - cx) * pixel_size, (y - cy) * pixel_size, camera_height)`` in the optical frame, with
``cx = cy = (128 - 1) / 2``. That is a pinhole camera of focal length
``camera_height / pixel_size`` pixels, exact on the table plane.

A grasp pose is the gripper frame on the table: origin at the grasp centre, x axis along the
closing direction (cos angle, sin angle) of the image, z axis along the approach direction
(into the table, = optical z), so its orientation is a rotation by ``angle`` about optical z.
"""

from dataclasses import dataclass
import math
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from fga_ros.sim import IMAGE_SIZE, load_camera, load_gripper_config

DEFAULT_CAMERA_FRAME = 'camera_optical_frame'
DEFAULT_WORLD_FRAME = 'world'


def real_array(name: str, values: ArrayLike, columns: int) -> np.ndarray:
    """``values`` as a float64 (n, columns) array; ValueError unless all are finite reals."""
    if np.iscomplexobj(values):
        raise ValueError(f'{name} must be real numbers, got complex values')
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f'{name} must be numbers') from None
    if array.size % columns:
        raise ValueError(f'{name} must have {columns} values per row, got shape {array.shape}')
    array = array.reshape(-1, columns)
    if not np.isfinite(array).all():
        raise ValueError(f'{name} must be finite, got NaN or infinite values')
    return array


def default_pixel_size() -> float:
    """Table-plane size of one pixel, m/px, of the simulated camera (``sim/camera.yaml``)."""
    return load_camera().pixel_size_m


def default_camera_height() -> float:
    """Optical centre above the table, m, of the simulated camera (``sim/camera.yaml``)."""
    return load_camera().camera_height_m


def default_opening_px() -> float:
    """Inner distance between the open claws, px (``sim/gripper.yaml``, ``aperture``)."""
    return float(load_gripper_config().aperture)


def default_claw_width_px() -> float:
    """Extent of the claws across the closing direction, px (``sim/gripper.yaml``)."""
    return float(load_gripper_config().claw_width)


def default_claw_thickness_px() -> float:
    """Extent of each claw along the closing direction, px (``sim/gripper.yaml``)."""
    return float(load_gripper_config().claw_thickness)


@dataclass(frozen=True)
class CameraModel:
    """Top-down camera over the table plane.

    Attributes:
        pixel_size: table-plane size of one pixel, m/px (> 0).
        camera_height: optical centre above the table, m (> 0).
        width, height: image size, px.
        frame_id: the optical frame the poses are expressed in.
    """

    pixel_size: float
    camera_height: float
    width: int = IMAGE_SIZE
    height: int = IMAGE_SIZE
    frame_id: str = DEFAULT_CAMERA_FRAME

    def __post_init__(self) -> None:
        for name in ('pixel_size', 'camera_height'):
            value = getattr(self, name)
            number = isinstance(value, (int, float, np.integer, np.floating))
            if isinstance(value, bool) or not number or not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a positive number, got {value}')
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'image size must be positive, got {self.width} x {self.height}')
        if not self.frame_id:
            raise ValueError('frame_id must name the camera frame, got an empty string')

    @property
    def cx(self) -> float:
        """Principal point column, px."""
        return (self.width - 1) / 2.0

    @property
    def cy(self) -> float:
        """Principal point row, px."""
        return (self.height - 1) / 2.0

    @property
    def focal_length(self) -> float:
        """Focal length, px."""
        return self.camera_height / self.pixel_size

    def pixels_to_points(self, xy: ArrayLike) -> np.ndarray:
        """Table points (n, 3) in m in the optical frame for pixel coordinates ``xy`` (n, 2)."""
        xy = real_array('pixel coordinates', xy, 2)
        points = np.empty((len(xy), 3))
        points[:, 0] = (xy[:, 0] - self.cx) * self.pixel_size
        points[:, 1] = (xy[:, 1] - self.cy) * self.pixel_size
        points[:, 2] = self.camera_height
        return points

    def points_to_pixels(self, points: ArrayLike) -> np.ndarray:
        """Pixel coordinates (n, 2) of optical-frame points (n, 3) in m (pinhole projection)."""
        points = real_array('points', points, 3)
        if np.any(points[:, 2] <= 0):
            raise ValueError('points must lie in front of the camera (z > 0)')
        return np.stack([
            self.focal_length * points[:, 0] / points[:, 2] + self.cx,
            self.focal_length * points[:, 1] / points[:, 2] + self.cy,
        ], axis=1)

    def table_pixels(self, points: ArrayLike) -> np.ndarray:
        """Pixels (n, 2) of optical-frame points (n, 3) in m projected onto the table plane.

        The projection is along the table normal (optical z): a point's height above the
        table does not move it, as for a polygon drawn by a planner above the table.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if not np.isfinite(points).all():
            raise ValueError('points must be finite')
        return np.stack([points[:, 0] / self.pixel_size + self.cx,
                         points[:, 1] / self.pixel_size + self.cy], axis=1)

    def camera_info_fields(self, header: dict[str, Any]) -> dict[str, Any]:
        """``sensor_msgs/CameraInfo`` fields: ideal pinhole, no distortion."""
        f, cx, cy = self.focal_length, self.cx, self.cy
        return {
            'header': header,
            'height': self.height,
            'width': self.width,
            'distortion_model': 'plumb_bob',
            'd': [0.0] * 5,
            'k': [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0],
            'r': [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            'p': [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        }

    def world_transform_fields(self, header: dict[str, Any]) -> dict[str, Any]:
        """``geometry_msgs/TransformStamped`` fields of the static transform world -> camera.

        ``header.frame_id`` must be the world frame. The optical frame is the world frame
        rotated by pi about x (x kept, y and z flipped), raised by ``camera_height``.
        """
        return {
            'header': header,
            'child_frame_id': self.frame_id,
            'transform': {
                'translation': {'x': 0.0, 'y': 0.0, 'z': self.camera_height},
                'rotation': {'x': 1.0, 'y': 0.0, 'z': 0.0, 'w': 0.0},
            },
        }

    def action_poses(self, actions: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Grasp poses of planar actions (n, 3) (x px, y px, angle rad).

        Returns (positions (n, 3) in m, quaternions (n, 4) as x, y, z, w) in the optical frame.
        """
        actions = real_array('actions', actions, 3)
        positions = self.pixels_to_points(actions[:, :2])
        return positions, yaw_quaternions(actions[:, 2])

    def pose_fields(self, actions: ArrayLike) -> list[dict[str, Any]]:
        """``geometry_msgs/Pose`` fields, one per action (n, 3)."""
        positions, quaternions = self.action_poses(actions)
        return [pose_dict(p, q) for p, q in zip(positions, quaternions)]


def transform_points(points: ArrayLike, translation: ArrayLike,
                     rotation: ArrayLike) -> np.ndarray:
    """Points (n, 3) mapped by a TF transform: ``R(rotation) p + translation``.

    Args:
        translation: (3,) m; rotation: quaternion (4,) as x, y, z, w (normalised here).
    """
    x, y, z, w = np.asarray(rotation, dtype=np.float64) / np.linalg.norm(rotation)
    matrix = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return points @ matrix.T + np.asarray(translation, dtype=np.float64)


def yaw_quaternions(angles: ArrayLike) -> np.ndarray:
    """Quaternions (n, 4) as x, y, z, w of rotations by ``angles`` (n,) rad about z."""
    half = 0.5 * real_array('angles', angles, 1)[:, 0]
    zeros = np.zeros_like(half)
    return np.stack([zeros, zeros, np.sin(half), np.cos(half)], axis=1)


def pose_dict(position: Sequence[float] | np.ndarray,
              quaternion: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """``geometry_msgs/Pose`` fields from a position (3,) and a quaternion (4,) x, y, z, w."""
    x, y, z = (float(v) for v in position)
    qx, qy, qz, qw = (float(v) for v in quaternion)
    return {
        'position': {'x': x, 'y': y, 'z': z},
        'orientation': {'x': qx, 'y': qy, 'z': qz, 'w': qw},
    }
