"""``sensor_msgs/Image`` <-> numpy RGB arrays, with validation that names the problem.

Plain numpy instead of cv_bridge: cv_bridge's compiled module breaks when the Python
environment carries a numpy of another ABI (common once torch is pip-installed), and the
only conversions needed here are rgb8/bgr8 copies.
"""

from typing import Any

import numpy as np

from fga_ros.sim.workspace import IMAGE_SIZE

SUPPORTED_ENCODINGS = ('rgb8', 'bgr8')
"""Encodings the nodes accept: 8-bit, 3 channels."""

CHANNELS = 3


class ImageError(ValueError):
    """An image message the nodes cannot use; the message names the problem."""


def is_empty(msg: Any) -> bool:
    """True for an image message with no pixels (height, width or data empty)."""
    return msg.height == 0 or msg.width == 0 or len(msg.data) == 0


def check_image(msg: Any, height: int = IMAGE_SIZE, width: int = IMAGE_SIZE) -> None:
    """Raise :class:`ImageError` unless ``msg`` is a usable ``height`` x ``width`` image.

    Checks the encoding (rgb8 or bgr8), the size, the row stride (``step`` >= width * 3) and
    that ``len(data) == step * height``.
    """
    encoding = msg.encoding
    if encoding not in SUPPORTED_ENCODINGS:
        raise ImageError(
            f'image encoding {encoding!r} is not supported; use one of '
            f'{", ".join(SUPPORTED_ENCODINGS)}')
    if (msg.height, msg.width) != (height, width):
        raise ImageError(
            f'image must be {width} x {height} pixels (width x height), '
            f'got {msg.width} x {msg.height}')
    row_bytes = width * CHANNELS
    if msg.step < row_bytes:
        raise ImageError(
            f'image step {msg.step} is smaller than width * 3 = {row_bytes} bytes')
    expected = msg.step * msg.height
    if len(msg.data) != expected:
        raise ImageError(
            f'image data has {len(msg.data)} bytes, expected step * height = {expected}')


def image_to_rgb(msg: Any, height: int = IMAGE_SIZE, width: int = IMAGE_SIZE) -> np.ndarray:
    """Check ``msg`` and return its pixels as a new (height, width, 3) uint8 RGB array."""
    check_image(msg, height, width)
    buffer = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.step)
    pixels = buffer[:, :width * CHANNELS].reshape(height, width, CHANNELS)
    if msg.encoding == 'bgr8':
        pixels = pixels[..., ::-1]
    return np.ascontiguousarray(pixels)


def rgb_image_fields(rgb: np.ndarray, header: dict[str, Any]) -> dict[str, Any]:
    """``sensor_msgs/Image`` fields (rgb8, tightly packed) for a (H, W, 3) uint8 array."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != CHANNELS:
        raise ImageError(
            f'image array must be uint8 of shape (H, W, 3), got {rgb.dtype} {rgb.shape}')
    height, width = rgb.shape[:2]
    return {
        'header': header,
        'height': height,
        'width': width,
        'encoding': 'rgb8',
        'is_bigendian': 0,
        'step': width * CHANNELS,
        'data': np.ascontiguousarray(rgb).tobytes(),
    }
