"""RViz markers for grasp proposals, as plain ``visualization_msgs/Marker`` field dicts.

Every array starts with one DELETEALL marker in the empty namespace (RViz then clears every
marker of the display, so the proposals of an earlier call disappear), followed by

- namespace ``grippers``, ids 0 .. n-1 (= rank): one LINE_LIST per grasp in the grasp's pose
  (see :mod:`fga_ros.bridge.geometry`), drawn at the gripper's true size: the two jaws as
  bars on the table, ``aperture`` apart and ``claw_width`` long as in the glyph of
  :func:`fga_ros.sim.drawing.grasp_glyphs`, ``claw_thickness`` wide, the fingers rising
  from them to the palm and a short wrist above the palm;
- namespace ``labels``, ids 0 .. k-1: a text "#rank score" above each of the k = min(n,
  :data:`LABELLED_GRASPS`) best-ranked grasps.

So no two markers of an array share (ns, id), which RViz reports as an error. Colours come
from the one palette of :mod:`fga_ros.sim.drawing` (as in the PNG figures).
"""

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from fga_ros.sim.drawing import cluster_numbers, mode_rgb

# visualization_msgs/Marker constants (identical in Humble and Jazzy; checked by the tests).
LINE_LIST = 5
TEXT_VIEW_FACING = 9
ADD = 0
DELETEALL = 3

GRIPPER_NS = 'grippers'
LABEL_NS = 'labels'

COLOUR_MODES = ('cluster', 'score')

LABELLED_GRASPS = 10
"""Grasps of the best ranks that get a text label (more would hide the scene)."""

LABEL_HEIGHT_PX = 4.0
"""Height of a label's letters, in pixels of the table plane."""

IDENTITY = {'x': 0.0, 'y': 0.0, 'z': 0.0, 'w': 1.0}


def score_colours(scores: ArrayLike) -> np.ndarray:
    """RGB (n, 3) in [0, 1]: red (score 0) -> yellow (0.5) -> green (1); scores are clipped."""
    s = np.clip(np.nan_to_num(np.asarray(scores, dtype=np.float64).reshape(-1)), 0.0, 1.0)
    red = np.clip(2.0 * (1.0 - s), 0.0, 1.0)
    green = np.clip(2.0 * s, 0.0, 1.0)
    return np.stack([red, green, np.zeros_like(s)], axis=1)


def cluster_colours(cluster_ids: ArrayLike) -> np.ndarray:
    """RGB (n, 3) in [0, 1] of a proposal's cluster ids (from 1): the colour of number id in
    the one palette of :mod:`fga_ros.sim.drawing` (as in the figures and the annotated
    image); id 0 (unknown) is grey."""
    return mode_rgb(cluster_numbers(cluster_ids))


def grasp_colours(colour_by: str, scores: ArrayLike, cluster_ids: ArrayLike) -> np.ndarray:
    """RGB (n, 3) by ``colour_by`` ('cluster' or 'score')."""
    if colour_by == 'score':
        return score_colours(scores)
    if colour_by == 'cluster':
        return cluster_colours(cluster_ids)
    raise ValueError(f'colour_by must be one of {", ".join(COLOUR_MODES)}, got {colour_by!r}')


@dataclass(frozen=True)
class GripperSize:
    """Gripper dimensions on the table, m (from ``sim/gripper.yaml`` times the pixel size).

    Attributes:
        aperture: distance between the open jaws (their centre lines, as in the glyph).
        claw_width: extent of a claw across the closing direction.
        claw_thickness: extent of a claw along the closing direction (the line width).
    """

    aperture: float
    claw_width: float
    claw_thickness: float

    def __post_init__(self) -> None:
        for name in ('aperture', 'claw_width', 'claw_thickness'):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f'gripper {name} must be positive, got {value}')

    @property
    def finger_height(self) -> float:
        """Height of the palm above the table, m (drawn, not simulated: half the aperture)."""
        return self.aperture / 2.0


def gripper_segments(size: GripperSize) -> np.ndarray:
    """LINE_LIST end points (12, 3) of the gripper outline in the grasp frame, m.

    x = closing direction, z = approach (into the table, so the palm has negative z); the
    jaw bars stand on z = 0 with their centre lines at x = +-aperture / 2.
    """
    h = size.aperture / 2.0
    w, top = size.claw_width / 2.0, -size.finger_height
    return np.array([
        [-h, -w, 0.0], [-h, w, 0.0],      # claw 1
        [h, -w, 0.0], [h, w, 0.0],        # claw 2
        [-h, 0.0, 0.0], [-h, 0.0, top],   # finger 1
        [h, 0.0, 0.0], [h, 0.0, top],     # finger 2
        [-h, 0.0, top], [h, 0.0, top],    # palm
        [0.0, 0.0, top], [0.0, 0.0, 2 * top],  # wrist
    ])


def delete_all_marker(header: dict[str, Any]) -> dict[str, Any]:
    """A DELETEALL marker in the empty namespace: RViz clears every marker of the display."""
    return {'header': header, 'ns': '', 'id': 0, 'action': DELETEALL,
            'pose': {'orientation': IDENTITY}}


def _colour(rgb: Sequence[float] | np.ndarray, alpha: float = 1.0) -> dict[str, float]:
    r, g, b = (float(c) for c in rgb)
    return {'r': r, 'g': g, 'b': b, 'a': float(alpha)}


def proposal_markers(poses: Sequence[dict[str, Any]], colours: np.ndarray, scores: ArrayLike,
                     header: dict[str, Any], size: GripperSize,
                     pixel_size: float) -> list[dict[str, Any]]:
    """Marker dicts of one proposal: DELETEALL, a gripper per grasp, labels of the best.

    Args:
        poses: ``geometry_msgs/Pose`` dicts in rank order (best first), in
            ``header.frame_id`` (the camera's optical frame: z points into the table).
        colours: RGB (n, 3) in [0, 1] (:func:`grasp_colours`); scores: (n,) critic scores
            (labels).
        header: ``std_msgs/Header`` dict.
        size: gripper dimensions in m.
        pixel_size: table-plane size of one pixel, m/px (sets the label height).
    """
    colours = np.asarray(colours, dtype=np.float64).reshape(-1, 3)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not len(colours) == len(scores) == len(poses):
        raise ValueError(f'got {len(poses)} poses, {len(colours)} colours and '
                         f'{len(scores)} scores')
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

