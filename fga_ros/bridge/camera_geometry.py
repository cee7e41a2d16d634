"""Any pinhole camera over the table -> the model's 128 x 128 top-down input, and back.

The model was trained on top-down images of the table at ``pixel_size`` m/px
(sim/camera.yaml: 2 mm/px, 128 px = 0.256 m). A camera at any pose sees the table plane
through a homography, so the service **rectifies the table plane**: the workspace square on
the table (centre and side in the table frame) is resampled (bilinear) into a 128 x 128
top-down view, the model proposes grasps on that view, and each grasp (a point and a closing
direction on the table plane) is mapped back to metric poses in the table frame and in the
camera frame. Objects are taken to be flat: a point's height above the table is ignored
(the simulator's objects are planar extrusions; a tall object's top face appears shifted
away from the camera by ``height * tan(view angle)``).

Frames and conventions:

- table frame: z up out of the table plane (z = 0 is the table), x and y on the table;
- top-down view pixel (u, v) (the model input; pixel centres at integers) is the table point
  ``centre + ((u - c) * s, -(v - c) * s)`` with ``c = 63.5`` and ``s = size / 128``: u along
  table x, v along table -y (like a camera looking straight down with its image x along
  table x);
- camera frame: REP 103 optical (x right, y down, z along the view); ``TableToCamera`` maps
  table points into it, ``p_cam = R p_table + t``: the transform TF returns for
  ``lookup_transform(target=camera_frame, source=table_frame)``;
- a grasp pose is the gripper frame on the table: x = jaw closing direction, z = approach
  direction (into the table, table -z), origin = grasp centre.

Lens distortion: ``plumb_bob`` and ``rational_polynomial`` with any coefficients are
applied exactly when resampling (each top-down pixel's table point is projected through the
distorted camera with ``cv2.projectPoints``), so no separate undistortion step is needed;
other models are refused. With zero coefficients the mapping is the homography
:attr:`CameraMapping.homography` (top-down pixel -> camera pixel).
"""

from dataclasses import dataclass
import math
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike

from fga_ros.bridge.geometry import DEFAULT_WORLD_FRAME, CameraModel, pose_dict
from fga_ros.safe_yaml import clip
from fga_ros.sim.render import load_camera
from fga_ros.sim.workspace import IMAGE_SIZE

SUPPORTED_DISTORTION_MODELS = ('plumb_bob', 'rational_polynomial')
"""Distortion models applied exactly; '' is accepted only with all-zero coefficients."""

MIN_ELEVATION_DEG = 10.0
"""Smallest angle between the view ray to the workspace centre and the table plane, deg;
below it the table is seen (nearly) edge-on and the service refuses."""

MIN_SCALE = 0.5
"""Smallest number of camera pixels per top-down pixel (along any direction, anywhere on the
workspace); below it the camera image is too coarse for the workspace and the service
refuses (the model would see an image upsampled more than 2x)."""


class CameraGeometryError(ValueError):
    """Camera model, pose or workspace the mapping cannot use; the message names the problem."""


MAX_CAMERA_SIDE = 65535
"""Largest image width or height a camera_info may state, px (sensor_msgs' uint32 field,
bounded to what an image can hold)."""


def _finite(name: str, values: ArrayLike) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise CameraGeometryError(f'{name} must be a list of numbers, got '
                                  f'{clip(values)}') from None
    if not np.all(np.isfinite(arr)):
        raise CameraGeometryError(f'{name} must be finite, got {clip(arr.tolist())}')
    return arr


def _side(name: str, value: Any) -> int:
    """An image width or height: a whole number of pixels in 1..MAX_CAMERA_SIDE."""
    whole = isinstance(value, (int, np.integer)) or (
        isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value))
    if isinstance(value, bool) or not whole or not 0 <= value <= MAX_CAMERA_SIDE:
        raise CameraGeometryError(f'camera_info {name} must be a whole number of pixels in '
                                  f'0..{MAX_CAMERA_SIDE}, got {clip(value)}')
    return int(value)


@dataclass(frozen=True, eq=False)
class CameraIntrinsics:
    """A pinhole camera as described by ``sensor_msgs/CameraInfo``.

    Attributes:
        width, height: image size, px.
        k: (3, 3) intrinsic matrix (fx, fy, cx, cy in px).
        distortion_model: ``plumb_bob``, ``rational_polynomial`` or '' (none).
        d: distortion coefficients (k1, k2, t1, t2, k3, ...).
    """

    width: int
    height: int
    k: np.ndarray
    distortion_model: str = 'plumb_bob'
    d: tuple = ()

    @classmethod
    def from_fields(cls, width: Any, height: Any, k: ArrayLike,
                    distortion_model: str = 'plumb_bob',
                    d: ArrayLike = ()) -> 'CameraIntrinsics':
        """Validated intrinsics from CameraInfo fields (``k`` row-major, 9 numbers)."""
        width, height = _side('width', width), _side('height', height)
        if width <= 0 or height <= 0:
            raise CameraGeometryError(
                f'camera_info has no image size (width {width}, height {height}): '
                'is a camera_info being published?')
        k_arr = _finite('camera_info k', k).reshape(-1)
        if k_arr.size != 9:
            raise CameraGeometryError(f'camera_info k must be 9 numbers, got {k_arr.size}')
        k_mat = k_arr.reshape(3, 3)
        if not np.any(k_mat):
            raise CameraGeometryError('camera_info k is all zero: the camera is uncalibrated')
        if not (k_mat[0, 0] > 0 and k_mat[1, 1] > 0):
            raise CameraGeometryError(
                f'camera_info focal lengths must be positive, got fx = {k_mat[0, 0]}, '
                f'fy = {k_mat[1, 1]}')
        if not np.allclose(k_mat[2], [0.0, 0.0, 1.0]) or k_mat[1, 0] != 0:
            raise CameraGeometryError(
                f'camera_info k must be [fx s cx; 0 fy cy; 0 0 1], got rows {k_mat.tolist()}')
        coeffs = tuple(float(v) for v in _finite('camera_info d', d).reshape(-1))
        model = str(distortion_model)
        if model not in SUPPORTED_DISTORTION_MODELS:
            if model == '' and not any(coeffs):
                model = 'plumb_bob'
            else:
                raise CameraGeometryError(
                    f'distortion model {model!r} is not supported; use one of '
                    f'{", ".join(SUPPORTED_DISTORTION_MODELS)} (or rectified images with '
                    'zero coefficients)')
        limit = 5 if model == 'plumb_bob' else 8
        if len(coeffs) > limit:
            raise CameraGeometryError(
                f'{model} takes at most {limit} coefficients, got {len(coeffs)}')
        return cls(width, height, k_mat, model,
                   coeffs + (0.0,) * (limit - len(coeffs)) if any(coeffs) else ())

    @property
    def distorted(self) -> bool:
        return any(self.d)

    def project(self, points: ArrayLike) -> np.ndarray:
        """Pixels (n, 2) of camera-frame points (n, 3) with z > 0, m (lens distortion
        included)."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if self.distorted:
            pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), self.k,
                                          np.array(self.d, dtype=np.float64))
            return pixels.reshape(-1, 2)
        uvw = points @ self.k.T
        return uvw[:, :2] / uvw[:, 2:]


def quaternion_to_matrix(q: ArrayLike) -> np.ndarray:
    """(3, 3) rotation of a quaternion (x, y, z, w) (normalised here; zero is an error)."""
    quat = _finite('rotation quaternion', q)
    largest = float(np.abs(quat).max()) if quat.size else 0.0
    if quat.shape != (4,) or largest < 1e-9:
        raise CameraGeometryError(f'rotation quaternion must be 4 numbers (x, y, z, w), not '
                                  f'all zero, got {clip(quat.tolist())}')
    quat = quat / largest  # no overflow in the norm
    x, y, z, w = quat / np.linalg.norm(quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quaternions(rotations: ArrayLike) -> np.ndarray:
    """Quaternions (n, 4) x, y, z, w (w >= 0) of rotation matrices (n, 3, 3)."""
    r = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    out = np.empty((len(r), 4))
    for i, m in enumerate(r):
        trace = m[0, 0] + m[1, 1] + m[2, 2]
        if trace > 0:
            s = 2.0 * math.sqrt(trace + 1.0)
            q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s,
                 0.25 * s]
        else:
            j = int(np.argmax(np.diag(m)))
            a, b = (j + 1) % 3, (j + 2) % 3
            s = 2.0 * math.sqrt(1.0 + m[j, j] - m[a, a] - m[b, b])
            q = [0.0, 0.0, 0.0, (m[b, a] - m[a, b]) / s]
            q[j] = 0.25 * s
            q[a] = (m[a, j] + m[j, a]) / s
            q[b] = (m[b, j] + m[j, b]) / s
        q_arr = np.array(q)
        out[i] = q_arr if q_arr[3] >= 0 else -q_arr
    return out


@dataclass(frozen=True, eq=False)
class TableToCamera:
    """Rigid transform of table-frame points into the camera frame: ``R p + t`` (m)."""

    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)

    @classmethod
    def from_fields(cls, translation: ArrayLike, quaternion: ArrayLike) -> 'TableToCamera':
        """From a ``geometry_msgs/Transform``'s translation (x, y, z) and rotation (x, y, z, w)."""
        t = _finite('transform translation', translation).reshape(-1)
        if t.size != 3:
            raise CameraGeometryError(f'transform translation must be 3 numbers, got {t.size}')
        return cls(quaternion_to_matrix(quaternion), t)

    @property
    def camera_centre(self) -> np.ndarray:
        """Optical centre in the table frame, (3,) m."""
        return -self.rotation.T @ self.translation


@dataclass(frozen=True)
class Workspace:
    """The table square the model sees: centre (m, table frame) and side (m).

    The side defaults to the training image's footprint (128 px at sim/camera.yaml's pixel
    size); another side rescales the scene for the model, which was trained at that scale.
    """

    center_x: float
    center_y: float
    size: float

    def __post_init__(self) -> None:
        for name in ('center_x', 'center_y', 'size'):
            if not math.isfinite(getattr(self, name)):
                raise CameraGeometryError(f'workspace {name} must be finite')
        if not self.size > 0:
            raise CameraGeometryError(f'workspace size must be positive, got {self.size} m')

    @property
    def pixel_size(self) -> float:
        """Table-plane size of one top-down pixel, m/px."""
        return self.size / IMAGE_SIZE

    def top_down_to_table(self, uv: ArrayLike) -> np.ndarray:
        """Table points (n, 2), m, of top-down pixels (n, 2)."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        c, s = (IMAGE_SIZE - 1) / 2.0, self.pixel_size
        return np.stack([self.center_x + (uv[:, 0] - c) * s,
                         self.center_y - (uv[:, 1] - c) * s], axis=1)

    def table_to_top_down(self, xy: ArrayLike) -> np.ndarray:
        """Top-down pixels (n, 2) of table points (n, 2), m."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        c, s = (IMAGE_SIZE - 1) / 2.0, self.pixel_size
        return np.stack([(xy[:, 0] - self.center_x) / s + c,
                         -(xy[:, 1] - self.center_y) / s + c], axis=1)

    def affine(self) -> np.ndarray:
        """(3, 3) matrix: homogeneous top-down pixel -> homogeneous table point (x, y, 1)."""
        c, s = (IMAGE_SIZE - 1) / 2.0, self.pixel_size
        return np.array([[s, 0.0, self.center_x - c * s],
                         [0.0, -s, self.center_y + c * s],
                         [0.0, 0.0, 1.0]])


def default_workspace() -> Workspace:
    """The training images' footprint: centre (0, 0), side 128 px x sim/camera.yaml's pixel
    size (0.256 m): with the simulator's camera, the rectified view is its top-down image."""
    return Workspace(0.0, 0.0, IMAGE_SIZE * load_camera().pixel_size_m)


_EDGES = np.array([[-0.5, -0.5], [IMAGE_SIZE - 0.5, -0.5], [IMAGE_SIZE - 0.5, IMAGE_SIZE - 0.5],
                   [-0.5, IMAGE_SIZE - 0.5]])
"""Outer corners of the top-down view (pixel edges), in top-down pixels."""

_CORNER_NAMES = ('top-left', 'top-right', 'bottom-right', 'bottom-left')


@dataclass(frozen=True, eq=False)
class CameraMapping:
    """A validated camera -> top-down mapping; build it with :func:`camera_mapping`."""

    intrinsics: CameraIntrinsics
    pose: TableToCamera
    workspace: Workspace
    camera_frame: str
    table_frame: str

    @property
    def pixel_size(self) -> float:
        """Table-plane size of one model-input pixel, m/px."""
        return self.workspace.pixel_size

    @property
    def homography(self) -> np.ndarray:
        """(3, 3) top-down pixel -> camera pixel, ignoring lens distortion; H[2, 2] = 1."""
        r, t = self.pose.rotation, self.pose.translation
        h = self.intrinsics.k @ np.column_stack([r[:, 0], r[:, 1], t]) @ self.workspace.affine()
        return h / h[2, 2]

    def table_to_camera_points(self, xy: ArrayLike) -> np.ndarray:
        """Camera-frame points (n, 3), m, of table-plane points (n, 2), m."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return xy @ self.pose.rotation[:, :2].T + self.pose.translation

    def top_down_to_camera_pixels(self, uv: ArrayLike) -> np.ndarray:
        """Camera-image pixels (n, 2) of top-down pixels (n, 2) (lens distortion included)."""
        points = self.table_to_camera_points(self.workspace.top_down_to_table(uv))
        return self.intrinsics.project(points)

    def camera_pixels_to_table(self, xy: ArrayLike) -> np.ndarray:
        """Table points (n, 2), m, of camera pixels (n, 2) of an undistorted camera (the
        inverse homography)."""
        if self.intrinsics.distorted:
            raise CameraGeometryError('camera_pixels_to_table needs an undistorted camera')
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        uv = cv2.perspectiveTransform(xy[None], np.linalg.inv(self.homography))[0]
        return self.workspace.top_down_to_table(uv)

    def warp(self, image: np.ndarray) -> np.ndarray:
        """The model input (128, 128, 3) uint8: the workspace square of the camera ``image``
        (height, width, 3) uint8, resampled bilinearly onto the table plane."""
        image = np.asarray(image)
        expected = (self.intrinsics.height, self.intrinsics.width)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise CameraGeometryError(
                f'camera image must be uint8 (H, W, 3), got {image.dtype} {image.shape}')
        if image.shape[:2] != expected:
            raise CameraGeometryError(
                f'image is {image.shape[1]} x {image.shape[0]} px but camera_info says '
                f'{expected[1]} x {expected[0]} (width x height)')
        grid = np.stack(np.meshgrid(np.arange(IMAGE_SIZE), np.arange(IMAGE_SIZE)), axis=-1)
        maps = self.top_down_to_camera_pixels(grid.reshape(-1, 2)).astype(np.float32)
        maps = maps.reshape(IMAGE_SIZE, IMAGE_SIZE, 2)
        if np.allclose(maps, grid, atol=1e-4) and expected == (IMAGE_SIZE, IMAGE_SIZE):
            return np.ascontiguousarray(image)  # the identity: keep the pixels exactly
        return cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def table_poses(self, actions: ArrayLike) -> tuple:
        """Grasp poses in the table frame of top-down actions (n, 3) (u px, v px, angle rad).

        Returns (positions (n, 3) m on the table plane, rotations (n, 3, 3)); the columns of
        a rotation are the gripper's x (closing direction (cos a, -sin a, 0): the view's v
        axis is table -y), y and z (= table -z, the approach) axes.
        """
        actions = np.asarray(actions, dtype=np.float64).reshape(-1, 3)
        xy = self.workspace.top_down_to_table(actions[:, :2])
        positions = np.column_stack([xy, np.zeros(len(xy))])
        c, s = np.cos(actions[:, 2]), np.sin(actions[:, 2])
        rotations = np.zeros((len(actions), 3, 3))
        rotations[:, 0, 0], rotations[:, 1, 0] = c, -s  # x: closing direction
        rotations[:, 0, 1], rotations[:, 1, 1] = -s, -c  # y = z cross x
        rotations[:, 2, 2] = -1.0  # z: approach, into the table
        return positions, rotations

    def camera_poses(self, actions: ArrayLike) -> tuple:
        """The grasp poses of :meth:`table_poses` in the camera frame: (positions, rotations)."""
        positions, rotations = self.table_poses(actions)
        r, t = self.pose.rotation, self.pose.translation
        return positions @ r.T + t, np.einsum('ij,njk->nik', r, rotations)

    def action_poses(self, actions: ArrayLike) -> tuple:
        """(positions (n, 3) m, quaternions (n, 4) x, y, z, w) in the camera frame."""
        positions, rotations = self.camera_poses(actions)
        return positions, matrix_to_quaternions(rotations)

    def table_action_poses(self, actions: ArrayLike) -> tuple:
        """(positions (n, 3) m, quaternions (n, 4) x, y, z, w) in the table frame."""
        positions, rotations = self.table_poses(actions)
        return positions, matrix_to_quaternions(rotations)

    @property
    def frame_id(self) -> str:
        """The camera frame: the frame of :meth:`action_poses`."""
        return self.camera_frame

    def table_pixels(self, points: ArrayLike) -> np.ndarray:
        """Top-down pixels (n, 2) of camera-frame points (n, 3), m, projected onto the table
        plane along its normal (a point's height above the table does not move it)."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if not np.isfinite(points).all():
            raise ValueError('points must be finite')
        table = (points - self.pose.translation) @ self.pose.rotation  # R^T (p - t)
        return self.workspace.table_to_top_down(table[:, :2])

    def pose_fields(self, actions: ArrayLike) -> list:
        """``geometry_msgs/Pose`` fields (camera frame), one per action (n, 3)."""
        positions, quaternions = self.action_poses(actions)
        return [pose_dict(p, q) for p, q in zip(positions, quaternions)]


def top_down_mapping(model: CameraModel, table_frame: str = DEFAULT_WORLD_FRAME
                     ) -> 'CameraMapping':
    """The mapping of the simulator-style top-down camera ``model`` (128 x 128, optical axis
    straight down onto the centre of the image; see :mod:`fga_ros.bridge.geometry`): the
    identity on pixels, so that the node's default behaviour is the top-down service."""
    info = model.camera_info_fields({})
    intrinsics = CameraIntrinsics.from_fields(info['width'], info['height'], info['k'],
                                              info['distortion_model'], info['d'])
    # table (world: z up, y = image up) -> optical frame (y, z flipped), camera_height above
    pose = TableToCamera(np.diag([1.0, -1.0, -1.0]), np.array([0.0, 0.0, model.camera_height]))
    workspace = Workspace(0.0, 0.0, model.pixel_size * IMAGE_SIZE)
    return camera_mapping(intrinsics, pose, workspace, model.frame_id, table_frame)


def camera_mapping(intrinsics: CameraIntrinsics, pose: TableToCamera, workspace: Workspace,
                   camera_frame: str = 'camera', table_frame: str = 'table') -> CameraMapping:
    """Validate the camera, its pose and the workspace and return the mapping.

    Raises CameraGeometryError naming the problem: the camera is on or under the table
    plane (the table is behind it), the workspace lies behind the camera, the table is seen
    edge-on (< ``MIN_ELEVATION_DEG``), a workspace corner falls outside the image, or the
    image is too coarse for the workspace (< ``MIN_SCALE`` camera px per model px).
    """
    mapping = CameraMapping(intrinsics, pose, workspace, camera_frame, table_frame)
    where = f'{camera_frame!r} seen from table frame {table_frame!r}'
    height = float(pose.camera_centre[2])
    if height <= 1e-6:
        raise CameraGeometryError(
            f'the table plane is behind the camera: camera {where} is {height:.3f} m above '
            'the table (it must be above it, z > 0)')
    corners_table = workspace.top_down_to_table(_EDGES)
    corners_cam = mapping.table_to_camera_points(corners_table)
    behind = [n for n, z in zip(_CORNER_NAMES, corners_cam[:, 2]) if z <= 1e-6]
    if behind:
        raise CameraGeometryError(
            f'the workspace lies behind camera {where} (corners {", ".join(behind)}); '
            'point the camera at the workspace or move the workspace centre')
    centre = mapping.table_to_camera_points([[workspace.center_x, workspace.center_y]])[0]
    normal = pose.rotation[:, 2]  # table z in the camera frame
    elevation = math.degrees(math.asin(min(1.0, abs(normal @ centre) / np.linalg.norm(centre))))
    if elevation < MIN_ELEVATION_DEG:
        raise CameraGeometryError(
            f'the table plane is seen edge-on by camera {where}: the view ray to the '
            f'workspace centre is {elevation:.1f} deg above the table, the mapping needs at '
            f'least {MIN_ELEVATION_DEG:g} deg')
    pixels = mapping.top_down_to_camera_pixels(_EDGES)
    w, h = intrinsics.width, intrinsics.height
    outside = [f'{n} at ({u:.0f}, {v:.0f})' for n, (u, v) in zip(_CORNER_NAMES, pixels)
               if not (-0.5 <= u <= w - 0.5 and -0.5 <= v <= h - 0.5)]
    if outside:
        raise CameraGeometryError(
            f'the workspace ({workspace.size:.3f} m square at ({workspace.center_x:.3f}, '
            f'{workspace.center_y:.3f}) m in {table_frame!r}) is not inside the '
            f'{w} x {h} camera image: corners {"; ".join(outside)} px')
    scale = _min_scale(mapping)
    if scale < MIN_SCALE:
        raise CameraGeometryError(
            f'the {w} x {h} camera image is too coarse for the workspace: one model pixel '
            f'({1000 * workspace.pixel_size:.2f} mm) spans only {scale:.2f} camera pixels '
            f'somewhere on it, the mapping needs at least {MIN_SCALE:g} (use a closer or '
            'higher-resolution camera or a smaller workspace)')
    return mapping


def _min_scale(mapping: 'CameraMapping', steps: int = 5) -> float:
    """Smallest singular value of the top-down -> camera Jacobian over a grid of the view."""
    ticks = np.linspace(0.0, IMAGE_SIZE - 1.0, steps)
    points = np.array([[u, v] for u in ticks for v in ticks])
    base = mapping.top_down_to_camera_pixels(points)
    du = mapping.top_down_to_camera_pixels(points + [0.5, 0.0]) - base
    dv = mapping.top_down_to_camera_pixels(points + [0.0, 0.5]) - base
    jac = np.stack([du, dv], axis=-1) / 0.5  # (n, 2, 2)
    return float(np.linalg.svd(jac, compute_uv=False).min())
