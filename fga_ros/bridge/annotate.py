"""Grasps drawn onto the camera image (for the annotated image topic), with the glyph and
palette of :mod:`fga_ros.sim.drawing`."""

import numpy as np
from numpy.typing import ArrayLike

from fga_ros.bridge.geometry import real_array
from fga_ros.sim.drawing import draw_grasps as _draw

ANNOTATION_SCALE = 4
"""The annotated image is the camera image upscaled this many times (nearest neighbour), so
the glyphs get the black outline of the PNG figures."""


def draw_grasps(rgb: np.ndarray, actions: ArrayLike, colours: ArrayLike, opening_px: float,
                claw_width_px: float, scale: int = ANNOTATION_SCALE) -> np.ndarray:
    """Return a copy of ``rgb`` (H, W, 3) uint8, upscaled ``scale`` times, with each grasp's
    gripper glyph drawn: (H * scale, W * scale, 3) uint8.

    ``actions`` (n, 3) are x px, y px, angle rad; ``colours`` (n, 3) RGB in [0, 1]
    (:func:`fga_ros.bridge.markers.grasp_colours`); ``opening_px`` / ``claw_width_px`` the
    gripper's size. The best grasp should come last so that it is drawn on top.
    """
    actions = real_array('actions', actions, 3)  # the image must be uint8: checked by _draw
    return _draw(rgb, actions, colours, scale=scale, aperture=opening_px,
                 claw_width=claw_width_px)
