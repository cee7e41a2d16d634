"""Grasps drawn onto the camera image (for the annotated image topic)."""

import cv2
import numpy as np

from fga_ros.bridge.geometry import real_array


def draw_grasps(rgb: np.ndarray, actions, colours, opening_px: float,
                claw_width_px: float) -> np.ndarray:
    """Return a copy of ``rgb`` (H, W, 3) uint8 with each grasp drawn as a jaw line and claws.

    ``actions`` (n, 3) are x px, y px, angle rad; ``colours`` (n, 3) RGB in [0, 1]. The best
    grasp should come last so that it is drawn on top.
    """
    scale = 4  # draw at 4x for sub-pixel accuracy, as cv2 shift bits
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'image must be (H, W, 3) uint8, got {rgb.dtype} {rgb.shape}')
    out = rgb.copy()
    actions = real_array('actions', actions, 3)
    colours = real_array('colours', colours, 3)
    if len(colours) != len(actions) or ((colours < 0) | (colours > 1)).any():
        raise ValueError(f'colours must be {len(actions)} RGB triples in [0, 1]')
    for (x, y, angle), colour in zip(actions, colours):
        c = tuple(int(round(255 * v)) for v in colour)
        d = np.array([np.cos(angle), np.sin(angle)])
        n = np.array([-d[1], d[0]])
        centre = np.array([x, y])
        a, b = centre - d * opening_px / 2, centre + d * opening_px / 2
        for p, q in ((a, b), (a - n * claw_width_px / 2, a + n * claw_width_px / 2),
                     (b - n * claw_width_px / 2, b + n * claw_width_px / 2)):
            cv2.line(out, tuple(int(v) for v in np.round(p * scale)),
                     tuple(int(v) for v in np.round(q * scale)), c, 1, cv2.LINE_AA, shift=2)
    return out
