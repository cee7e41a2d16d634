"""Reading camera images from PNG and JPEG files, bounded before decoding.

The image size is read from the file's header (PNG ``IHDR``, JPEG start-of-frame marker)
and refused when it exceeds :data:`MAX_IMAGE_PIXELS` before any pixel is decoded: a
730 KB PNG can otherwise claim 30000 x 20000 pixels and make the decoder allocate 1.8 GB.
"""

from pathlib import Path
import struct

import numpy as np

MAX_IMAGE_FILE_BYTES = 32 * 1024 * 1024
"""Largest image file read, bytes."""
MAX_IMAGE_SIDE = 4096
"""Largest width or height accepted, pixels."""
MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest width * height accepted, pixels (about 50 MB of RGB)."""

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageFileError(ValueError):
    """An image file that cannot be used; the message names the file and the problem."""


def _png_size(data: bytes):
    if len(data) < 24 or data[12:16] != b'IHDR':
        raise ValueError('PNG without an IHDR header')
    width, height = struct.unpack('>II', data[16:24])
    return width, height


def _jpeg_size(data: bytes):
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError('JPEG marker expected')
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack('>H', data[pos + 2:pos + 4])
        if length < 2:
            raise ValueError('JPEG segment of length < 2')
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack('>HH', data[pos + 5:pos + 9])
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        pos += 2 + length
    raise ValueError('JPEG without a frame header')


def image_size_of(data: bytes):
    """(width, height) from a PNG or JPEG header, without decoding.

    Raises:
        ValueError: neither PNG nor JPEG, or a damaged header.
    """
    if data.startswith(_PNG_SIGNATURE):
        return _png_size(data)
    if data.startswith(b'\xff\xd8'):
        return _jpeg_size(data)
    raise ValueError('not a PNG or JPEG file')


def decode_image(data: bytes, source: str = 'image') -> np.ndarray:
    """Decode PNG or JPEG bytes into an (H, W, 3) uint8 RGB array, size checked first.

    Raises:
        ImageFileError: not PNG/JPEG, damaged, or larger than the module's bounds.
    """
    try:
        width, height = image_size_of(data)
    except (ValueError, struct.error) as error:
        raise ImageFileError(f'{source}: {error} (PNG and JPEG are read)') from None
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE) \
            or width * height > MAX_IMAGE_PIXELS:
        raise ImageFileError(f'{source}: {width} x {height} pixels is outside 1..'
                             f'{MAX_IMAGE_SIDE} per side (not decoded)')
    import cv2  # after the size check: importing OpenCV alone takes ~15 MB

    # the pixels as stored: an EXIF orientation would turn them away from the camera's own
    # pixel grid, the one its calibration and the returned grasp coordinates refer to
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8),
                         cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None or image.shape[:2] != (height, width):
        raise ImageFileError(f'{source}: damaged image data (cannot be decoded)')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path) -> np.ndarray:
    """Read a PNG or JPEG file as an (H, W, 3) uint8 RGB array (bounded, see module doc).

    Raises:
        FileNotFoundError: no such file. ImageFileError: unreadable, too large, not
            PNG/JPEG, damaged.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageFileError(f'{path} is a directory, not an image file')
    if not path.is_file():
        raise FileNotFoundError(f'image not found: {path}')
    try:
        with open(path, 'rb') as stream:
            data = stream.read(MAX_IMAGE_FILE_BYTES + 1)
    except OSError as error:
        raise ImageFileError(f'{path}: cannot read: {error.strerror or error}') from None
    if len(data) > MAX_IMAGE_FILE_BYTES:
        raise ImageFileError(f'{path}: larger than {MAX_IMAGE_FILE_BYTES} bytes')
    return decode_image(data, str(path))
