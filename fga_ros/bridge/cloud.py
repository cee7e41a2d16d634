"""The camera image laid on the table as a coloured ``sensor_msgs/PointCloud2`` (field dict).

One point per pixel, at the table point of the pixel centre in the camera's optical frame
(:meth:`fga_ros.bridge.geometry.CameraModel.pixels_to_points`), coloured by the pixel: RViz
(PointCloud2 display, colour transformer RGB8) then shows the object on the table in 3-D,
under the gripper markers. Built with numpy only (no per-point Python objects).
"""

import numpy as np

from fga_ros.bridge.geometry import CameraModel
from fga_ros.bridge.image import ImageError

FLOAT32 = 7
"""``sensor_msgs/PointField.FLOAT32`` (identical in Humble and Jazzy; checked by the tests)."""

POINT_DTYPE = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('rgb', '<u4')])
"""Layout of one point: x, y, z in m and the colour packed as 0x00RRGGBB (PCL convention)."""
POINT_OFFSETS = tuple((name, POINT_DTYPE.fields[name][1])  # type: ignore[index]
                      for name in POINT_DTYPE.names or ())
"""(field name, byte offset) of each point field, in order."""


def table_cloud_fields(rgb: np.ndarray, camera: CameraModel, header: dict) -> dict:
    """PointCloud2 fields of an (H, W, 3) uint8 image on the table plane (organised H x W).

    ``header.frame_id`` must be the camera's optical frame. The ``rgb`` field is declared
    FLOAT32, as PCL and RViz expect, and holds the packed 8-bit colour bits.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageError(f'image array must be uint8 of shape (H, W, 3), got {rgb.dtype} '
                         f'{rgb.shape}')
    height, width = rgb.shape[:2]
    if (height, width) != (camera.height, camera.width):
        raise ImageError(f'image is {width} x {height} pixels, the camera model '
                         f'{camera.width} x {camera.height}')
    rows, cols = np.mgrid[0:height, 0:width]
    points = camera.pixels_to_points(np.stack([cols.ravel(), rows.ravel()], axis=1))
    cloud = np.empty(height * width, dtype=POINT_DTYPE)
    cloud['x'], cloud['y'], cloud['z'] = points.T
    colour = rgb.reshape(-1, 3).astype(np.uint32)
    cloud['rgb'] = (colour[:, 0] << 16) | (colour[:, 1] << 8) | colour[:, 2]
    return {
        'header': header,
        'height': height,
        'width': width,
        'fields': [{'name': name, 'offset': offset, 'datatype': FLOAT32, 'count': 1}
                   for name, offset in POINT_OFFSETS],
        'is_bigendian': False,
        'point_step': POINT_DTYPE.itemsize,
        'row_step': POINT_DTYPE.itemsize * width,
        'data': cloud.tobytes(),
        'is_dense': True,
    }
