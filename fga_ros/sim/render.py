"""Rasterisation: the physics mask (world frame) and the camera image (with distortions).

Both are drawn with ``cv2.fillPoly`` from the same outline polygons (1/16 pixel precision,
no anti-aliasing), so without distortion the object's image pixels equal the mask exactly.
Distortions map the polygon vertices through a fixed homography (sim/camera.yaml) before
drawing, which is exact for straight edges; they never affect the mask.
"""

from dataclasses import dataclass
import functools
import math
import os
from typing import Iterable, Optional

import cv2
import numpy as np

from fga_ros.resources import share_path
from fga_ros.safe_yaml import clip, read_yaml_mapping
from fga_ros.sim.scene import DISTORTIONS, Scene
from fga_ros.sim.workspace import IMAGE_SIZE

SUBPIXEL_BITS = 4
"""Fixed-point fraction bits of polygon vertices passed to cv2.fillPoly."""


@dataclass(frozen=True)
class Camera:
    """The simulated camera (sim/camera.yaml)."""

    image_size: int  # pixels
    pixel_size_m: float  # metres per pixel on the table plane
    camera_height_m: float  # metres
    roll_deg: float  # 'rotation' distortion: roll about the image centre, degrees
    projection_corners: tuple  # 'projection' distortion: image of the 4 corners, pixels

    def homography(self, distortion: str) -> np.ndarray:
        """3x3 homography from world (undistorted image) to distorted image pixels."""
        if distortion not in DISTORTIONS:
            raise ValueError(f'unknown distortion {distortion!r}; '
                             f'valid distortions: {", ".join(DISTORTIONS)}')
        c = (self.image_size - 1) / 2.0
        rot = cv2.getRotationMatrix2D((c, c), self.roll_deg, 1.0)
        rotation = np.vstack([rot, [0.0, 0.0, 1.0]])
        e = float(self.image_size - 1)
        src = np.array([[0, 0], [e, 0], [e, e], [0, e]], dtype=np.float32)
        projection = cv2.getPerspectiveTransform(
            src, np.array(self.projection_corners, dtype=np.float32)).astype(np.float64)
        return {'none': np.eye(3), 'rotation': rotation, 'projection': projection,
                'both': projection @ rotation}[distortion]


@functools.lru_cache(maxsize=None)
def load_camera(path: Optional[str | os.PathLike] = None) -> Camera:
    """Load and validate sim/camera.yaml (default: the installed copy); cached per path."""
    path = share_path('sim', 'camera.yaml') if path is None else path
    data = read_yaml_mapping(path)
    try:
        camera = Camera(int(data['image_size']), float(data['pixel_size_m']),
                        float(data['camera_height_m']),
                        float(data['distortions']['rotation']['roll_deg']),
                        tuple(tuple(float(v) for v in p)
                              for p in data['distortions']['projection']['corners']))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f'{path}: malformed camera description: '
                         f'{type(exc).__name__}: {clip(exc)}') from None
    if camera.image_size != IMAGE_SIZE:
        raise ValueError(f'{path}: image_size must be {IMAGE_SIZE}, got {camera.image_size}')
    if len(camera.projection_corners) != 4 or any(len(p) != 2 for p in camera.projection_corners):
        raise ValueError(f'{path}: projection corners must be 4 points [x, y]')
    return camera


@functools.lru_cache(maxsize=8192)
def _world_contours(shape, seed, overrides):
    scene = Scene(shape, seed, 'none', overrides)
    params = scene.params
    c, s = math.cos(params['theta']), math.sin(params['theta'])
    rot = np.array([[c, -s], [s, c]])
    offset = np.array([params['x'], params['y']])
    return tuple(tuple(contour @ rot.T + offset for contour in group)
                 for group in scene.family.contours(params))


def world_contours(scene: Scene) -> tuple:
    """Object outline in world (undistorted image) pixels: a tuple of contour groups, one per
    primitive, each a tuple of (P, 2) float arrays (x, y). Holes are inner contours."""
    return _world_contours(scene.shape, scene.seed, scene.overrides)


def _fixed_point(contours):
    return [np.round(c * (1 << SUBPIXEL_BITS)).astype(np.int32) for c in contours]


@functools.lru_cache(maxsize=8192)
def _image_polygons(scene):
    groups = world_contours(scene)
    if scene.distortion != 'none':
        hom = load_camera().homography(scene.distortion)
        groups = tuple(tuple(cv2.perspectiveTransform(c[None], hom)[0] for c in group)
                       for group in groups)
    return tuple(_fixed_point(group) for group in groups)


@functools.lru_cache(maxsize=4096)
def _mask(shape, seed, overrides):
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for group in world_contours(Scene(shape, seed, 'none', overrides)):
        cv2.fillPoly(canvas, _fixed_point(group), 1, cv2.LINE_8, SUBPIXEL_BITS)
    mask = canvas.astype(bool)
    mask.setflags(write=False)
    return mask


def object_mask(scene: Scene) -> np.ndarray:
    """Undistorted top-down object mask, (128, 128) bool, read-only, cached per scene.

    This is the physics: grasps are checked against it whatever the camera distortion.
    """
    return _mask(scene.shape, scene.seed, scene.overrides)


def _draw(scene, out):
    params = scene.params
    # One row of background pixels, broadcast over the rows (much faster than (3,) -> HxWx3).
    row = np.tile(np.asarray(params['background_color'], dtype=np.uint8), IMAGE_SIZE)
    out.reshape(IMAGE_SIZE, IMAGE_SIZE * 3)[...] = row
    color = tuple(int(v) for v in params['object_color'])
    for group in _image_polygons(scene):
        cv2.fillPoly(out, group, color, cv2.LINE_8, SUBPIXEL_BITS)


def render(scene: Scene) -> np.ndarray:
    """Camera image of the scene, (128, 128, 3) uint8 RGB; deterministic."""
    out = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    _draw(scene, out)
    return out


def render_batch(scenes: Iterable[Scene]) -> np.ndarray:
    """Camera images of several scenes, (S, 128, 128, 3) uint8 RGB."""
    scenes = list(scenes)
    out = np.empty((len(scenes), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, scene in enumerate(scenes):
        _draw(scene, out[i])
    return out
