"""Grasps drawn onto the camera image (for the annotated image topic)."""

import cv2
import numpy as np


def draw_grasps(rgb: np.ndarray, actions, colours, opening_px: float,
                claw_width_px: float) -> np.ndarray:
    """Return a copy of ``rgb`` (H, W, 3) uint8 with each grasp drawn as a jaw line and claws.

    ``actions`` (n, 3) are x px, y px, angle rad; ``colours`` (n, 3) RGB in [0, 1]. The best
    grasp should come last so that it is drawn on top.
    """
    scale = 4  # draw at 4x for sub-pixel accuracy, as cv2 shift bits
    out = np.ascontiguousarray(rgb, dtype=np.uint8).copy()
    actions = np.asarray(actions, dtype=np.float64).reshape(-1, 3)
    colours = np.asarray(colours, dtype=np.float64).reshape(-1, 3)
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
