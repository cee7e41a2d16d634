"""RViz markers for grasp proposals, as plain ``visualization_msgs/Marker`` field dicts.

Each grasp is one LINE_LIST marker in the grasp's pose (see :mod:`fga_ros.bridge.geometry`):
the two claws, drawn as bars across the closing direction on the table, the fingers rising
from them to the palm, and a short wrist above the palm. The first marker of every array is
a DELETEALL, so that proposals of an earlier call disappear.
"""

import numpy as np

from fga_ros.sim.drawing import cluster_numbers, mode_rgb

# visualization_msgs/Marker constants (identical in Humble and Jazzy; checked by the tests).
LINE_LIST = 5
ADD = 0
DELETEALL = 3

COLOUR_MODES = ('score', 'cluster')


def score_colours(scores) -> np.ndarray:
    """RGB (n, 3) in [0, 1]: red (score 0) -> yellow (0.5) -> green (1); scores are clipped."""
    s = np.clip(np.nan_to_num(np.asarray(scores, dtype=np.float64).reshape(-1)), 0.0, 1.0)
    red = np.clip(2.0 * (1.0 - s), 0.0, 1.0)
    green = np.clip(2.0 * s, 0.0, 1.0)
    return np.stack([red, green, np.zeros_like(s)], axis=1)


def cluster_colours(cluster_ids) -> np.ndarray:
    """RGB (n, 3) in [0, 1] of a proposal's cluster ids (from 1): the colour of number id in
    the one palette of :mod:`fga_ros.sim.drawing` (as in the figures and the annotated
    image); id 0 (unknown) is grey."""
    return mode_rgb(cluster_numbers(cluster_ids))


def grasp_colours(colour_by: str, scores, cluster_ids) -> np.ndarray:
    """RGB (n, 3) by ``colour_by`` ('score' or 'cluster')."""
    if colour_by == 'score':
        return score_colours(scores)
    if colour_by == 'cluster':
        return cluster_colours(cluster_ids)
    raise ValueError(f'colour_by must be one of {", ".join(COLOUR_MODES)}, got {colour_by!r}')


def gripper_segments(opening: float, claw_width: float, finger_height: float) -> np.ndarray:
    """LINE_LIST end points (12, 3) of the gripper outline in the grasp frame, in m.

    x = closing direction, z = approach (into the table); the claws stand on z = 0 at
    x = +-opening / 2, ``claw_width`` long along y; fingers rise to the palm at
    z = -finger_height, the wrist to z = -2 * finger_height.
    """
    h, w, top = opening / 2.0, claw_width / 2.0, -finger_height
    return np.array([
        [-h, -w, 0.0], [-h, w, 0.0],      # claw 1
        [h, -w, 0.0], [h, w, 0.0],        # claw 2
        [-h, 0.0, 0.0], [-h, 0.0, top],   # finger 1
        [h, 0.0, 0.0], [h, 0.0, top],     # finger 2
        [-h, 0.0, top], [h, 0.0, top],    # palm
        [0.0, 0.0, top], [0.0, 0.0, 2 * top],  # wrist
    ])


def delete_all_marker(header: dict, ns: str = 'grasps') -> dict:
    """A DELETEALL marker: clears every marker of this publisher in RViz."""
    return {'header': header, 'ns': ns, 'id': 0, 'action': DELETEALL}


def grasp_markers(poses, colours, header: dict, opening: float, claw_width: float,
                  ns: str = 'grasps', line_width: float = 0.002, alpha: float = 1.0) -> list:
    """Marker dicts: DELETEALL, then one gripper LINE_LIST per grasp.

    Args:
        poses: ``geometry_msgs/Pose`` dicts, one per grasp, in ``header.frame_id``.
        colours: RGB (n, 3) in [0, 1].
        header: ``std_msgs/Header`` dict.
        opening, claw_width: gripper size in m (the claws' distance and length).
        ns: marker namespace; marker ids are 0 .. n-1 in the order of ``poses``.
        line_width: line width in m.
        alpha: opacity in [0, 1].
    """
    colours = np.asarray(colours, dtype=np.float64).reshape(-1, 3)
    if len(colours) != len(poses):
        raise ValueError(f'got {len(poses)} poses but {len(colours)} colours')
    points = [{'x': float(x), 'y': float(y), 'z': float(z)}
              for x, y, z in gripper_segments(opening, claw_width, opening / 2.0)]
    markers = [delete_all_marker(header, ns)]
    for index, (pose, colour) in enumerate(zip(poses, colours)):
        r, g, b = (float(c) for c in colour)
        markers.append({
            'header': header,
            'ns': ns,
            'id': index,
            'type': LINE_LIST,
            'action': ADD,
            'pose': pose,
            'scale': {'x': float(line_width), 'y': 0.0, 'z': 0.0},
            'color': {'r': r, 'g': g, 'b': b, 'a': float(alpha)},
            'points': points,
        })
    return markers
