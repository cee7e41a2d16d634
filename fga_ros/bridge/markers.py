"""RViz markers for grasp proposals, as plain ``visualization_msgs/Marker`` field dicts.

Every array starts with one DELETEALL marker in the empty namespace (RViz then clears every
marker of the display, so the proposals of an earlier call disappear), followed by

- namespace ``grippers``, ids 0 .. n-1 (= rank): one LINE_LIST per grasp in the grasp's pose
  (see :mod:`fga_ros.bridge.geometry`), drawn at the gripper's true size: the two claws as
  bars on the table (``claw_width`` long, ``claw_thickness`` wide, their inner edges
  ``aperture`` apart, as in the PNG glyph of :func:`fga_ros.sim.drawing.grasp_glyphs`),
  the fingers rising from them to the palm and a short wrist above the palm;
- namespace ``labels``, ids 0 .. k-1: a text "#rank score" above each of the k = min(n,
  :data:`LABELLED_GRASPS`) best-ranked grasps.

So no two markers of an array share (ns, id), which RViz reports as an error. Colours come
from the mode palette of the PNG figures (:data:`fga_ros.sim.drawing.MODE_COLORS`).
"""

from dataclasses import dataclass

import numpy as np

from fga_ros.sim.drawing import mode_color

# visualization_msgs/Marker constants (identical in Humble and Jazzy; checked by the tests).
LINE_LIST = 5
TEXT_VIEW_FACING = 9
ADD = 0
DELETEALL = 3

GRIPPER_NS = 'grippers'
LABEL_NS = 'labels'

LABELLED_GRASPS = 10
"""Grasps of the best ranks that get a text label (more would hide the scene)."""

LABEL_HEIGHT_PX = 4.0
"""Height of a label's letters, in pixels of the table plane."""

IDENTITY = {'x': 0.0, 'y': 0.0, 'z': 0.0, 'w': 1.0}


@dataclass(frozen=True)
class GripperSize:
    """Gripper dimensions on the table, m (from ``sim/gripper.yaml`` times the pixel size).

    Attributes:
        aperture: inner distance between the open claws.
        claw_width: extent of a claw across the closing direction.
        claw_thickness: extent of a claw along the closing direction (the line width).
    """

    aperture: float
    claw_width: float
    claw_thickness: float

    def __post_init__(self):
        for name in ('aperture', 'claw_width', 'claw_thickness'):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f'gripper {name} must be positive, got {value}')

    @property
    def finger_height(self) -> float:
        """Height of the palm above the table, m (drawn, not simulated: half the aperture)."""
        return self.aperture / 2.0


def mode_colours(mode_ids) -> np.ndarray:
    """RGB (n, 3) in [0, 1] of 0-based proposal mode ids, as in the PNG figures.

    Proposal mode k has the PNG colour of (1-based) mode k + 1; an unknown mode (-1) is
    drawn white, like an infeasible grasp in the PNGs.
    """
    ids = np.asarray(mode_ids, dtype=np.int64).reshape(-1)
    return np.array([mode_color(int(m) + 1) for m in ids], dtype=np.float64).reshape(-1, 3) / 255


def gripper_segments(size: GripperSize) -> np.ndarray:
    """LINE_LIST end points (12, 3) of the gripper outline in the grasp frame, m.

    x = closing direction, z = approach (into the table, so the palm has negative z); the
    claw bars stand on z = 0 with their centre lines at x = +-(aperture + claw_thickness) / 2.
    """
    h = (size.aperture + size.claw_thickness) / 2.0
    w, top = size.claw_width / 2.0, -size.finger_height
    return np.array([
        [-h, -w, 0.0], [-h, w, 0.0],      # claw 1
        [h, -w, 0.0], [h, w, 0.0],        # claw 2
        [-h, 0.0, 0.0], [-h, 0.0, top],   # finger 1
        [h, 0.0, 0.0], [h, 0.0, top],     # finger 2
        [-h, 0.0, top], [h, 0.0, top],    # palm
        [0.0, 0.0, top], [0.0, 0.0, 2 * top],  # wrist
    ])


def delete_all_marker(header: dict) -> dict:
    """A DELETEALL marker in the empty namespace: RViz clears every marker of the display."""
    return {'header': header, 'ns': '', 'id': 0, 'action': DELETEALL,
            'pose': {'orientation': IDENTITY}}


def _colour(rgb, alpha=1.0) -> dict:
    r, g, b = (float(c) for c in rgb)
    return {'r': r, 'g': g, 'b': b, 'a': float(alpha)}


def proposal_markers(poses, mode_ids, scores, header: dict, size: GripperSize,
                     pixel_size: float) -> list:
    """Marker dicts of one proposal: DELETEALL, a gripper per grasp, labels of the best.

    Args:
        poses: ``geometry_msgs/Pose`` dicts in rank order (best first), in
            ``header.frame_id`` (the camera's optical frame: z points into the table).
        mode_ids: (n,) 0-based mode ids (colours); scores: (n,) critic scores (labels).
        header: ``std_msgs/Header`` dict.
        size: gripper dimensions in m.
        pixel_size: table-plane size of one pixel, m/px (sets the label height).
    """
    mode_ids = np.asarray(mode_ids).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not len(mode_ids) == len(scores) == len(poses):
        raise ValueError(f'got {len(poses)} poses, {len(mode_ids)} mode ids and '
                         f'{len(scores)} scores')
    colours = mode_colours(mode_ids)
    points = [{'x': float(x), 'y': float(y), 'z': float(z)}
              for x, y, z in gripper_segments(size)]
    markers = [delete_all_marker(header)]
    for rank, (pose, colour) in enumerate(zip(poses, colours)):
        markers.append({
            'header': header, 'ns': GRIPPER_NS, 'id': rank, 'type': LINE_LIST, 'action': ADD,
            'pose': pose, 'scale': {'x': float(size.claw_thickness), 'y': 0.0, 'z': 0.0},
            'color': _colour(colour), 'points': points,
        })
    label_height = LABEL_HEIGHT_PX * pixel_size
    for rank, (pose, score) in enumerate(zip(poses[:LABELLED_GRASPS], scores)):
        above = dict(pose['position'])  # the optical z axis points down: above = smaller z
        above['z'] = float(above['z'] - 2 * size.finger_height - label_height)
        markers.append({
            'header': header, 'ns': LABEL_NS, 'id': rank, 'type': TEXT_VIEW_FACING,
            'action': ADD, 'pose': {'position': above, 'orientation': IDENTITY},
            'scale': {'x': 0.0, 'y': 0.0, 'z': float(label_height)},
            'color': _colour(colours[rank]), 'text': f'#{rank} {score:.2f}',
        })
    return markers

