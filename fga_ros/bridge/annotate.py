"""Grasps drawn onto the camera image (for the annotated image topic), as in the PNG figures."""

import numpy as np

from fga_ros.sim.drawing import draw_grasps

ANNOTATION_SCALE = 4
"""The annotated image is the camera image upscaled this many times (nearest neighbour)."""


def annotated_image(rgb: np.ndarray, actions, mode_ids) -> np.ndarray:
    """The camera image (H, W, 3) uint8 upscaled by ANNOTATION_SCALE with the grasp glyphs.

    ``actions`` (n, 3) px/rad and 0-based ``mode_ids`` (n,) in rank order, best first; the
    best grasp is drawn last (on top). Colours and glyph are those of
    :func:`fga_ros.sim.drawing.draw_grasps` (mode k has the PNG colour of mode k + 1; an
    unknown mode, -1, is white). Returns a new (H * 4, W * 4, 3) uint8 array.
    """
    actions = np.asarray(actions, dtype=np.float64).reshape(-1, 3)
    modes = np.asarray(mode_ids, dtype=np.int64).reshape(-1) + 1
    if len(modes) != len(actions):
        raise ValueError(f'got {len(actions)} actions but {len(modes)} mode ids')
    return draw_grasps(rgb, actions[::-1], modes[::-1], scale=ANNOTATION_SCALE)
