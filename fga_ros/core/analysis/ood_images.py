"""Images without a graspable simulator object: blank, noise, photographs (128 x 128 RGB).

Photographs: matplotlib ships one photograph (``grace_hopper.jpg``, a portrait) and two
drawn images (``logo2.png``, ``Minduka_Present_Blue_Pack.png``) in ``mpl-data/sample_data``;
every image beyond those three is a random crop (at least 40 % of the shorter side),
rescale and flip of one of them, so they are variations of three sources, one of which is
a photograph.
"""

import glob
import os

import cv2
import matplotlib
import numpy as np

from fga_ros.sim import IMAGE_SIZE

SOURCES = ('grace_hopper.jpg', 'logo2.png', 'Minduka_Present_Blue_Pack.png')
"""The sample images of matplotlib used (the first is the only photograph)."""

KINDS = ('blank', 'uniform_noise', 'gaussian_noise', 'photo')


def _sources() -> list[np.ndarray]:
    folder = os.path.join(matplotlib.get_data_path(), 'sample_data')
    images = []
    for name in SOURCES:
        paths = glob.glob(os.path.join(folder, name))
        if not paths:
            continue
        bgr = cv2.imread(paths[0], cv2.IMREAD_COLOR)
        if bgr is not None:
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return images


def _crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    side = int(rng.integers(int(0.4 * min(h, w)), min(h, w) + 1))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out = cv2.resize(image[y:y + side, x:x + side], (IMAGE_SIZE, IMAGE_SIZE),
                     interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.5:
        out = out[::-1]
    return np.ascontiguousarray(out)


def ood_images(count: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """``count`` (kind, image) pairs, the kinds of ``KINDS`` in turn.

    blank: one random RGB colour; uniform_noise: independent uniform pixels; gaussian_noise:
    a random mean (0..255) and standard deviation (2..80) per image; photo: a crop of a
    matplotlib sample image (module docstring).
    """
    rng = np.random.default_rng(seed)
    sources = _sources()
    out = []
    shape = (IMAGE_SIZE, IMAGE_SIZE, 3)
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        if kind == 'photo' and not sources:
            kind = 'blank'
        if kind == 'blank':
            image = np.empty(shape, np.uint8)
            image[:] = rng.integers(0, 256, 3)
        elif kind == 'uniform_noise':
            image = rng.integers(0, 256, shape).astype(np.uint8)
        elif kind == 'gaussian_noise':
            noise = rng.normal(rng.uniform(0, 255), rng.uniform(2, 80), shape)
            image = np.clip(noise, 0, 255).astype(np.uint8)
        else:
            image = _crop(sources[(i // len(KINDS)) % len(sources)], rng)
        out.append((kind, image))
    return out
