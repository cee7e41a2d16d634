"""Clustering of grasp proposals: grid cells, connected components, numbering by score.

A *cluster* groups proposals close to each other; it is the proposer's guess at one way of
holding the object. The simulator's ground-truth components of the feasible set are
*modes* (``GroundTruth.mode_of``); the two need not coincide."""

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from fga_ros.core.common.actions import HALF_WIDTH

CLUSTER_CELL_PX = 2.0
"""Grid spacing of the clustering along x and y, pixels (with 3 px, two ways of holding
the Spoon a few pixels apart often formed one cluster: default answers held every mode in
87 % of 100 scenes, against 96 % with 2 px; README "Asking for grasps from a planner")."""

CLUSTER_CELL_ANGLE = 0.5
"""Grid spacing of the clustering along the doubled-angle unit vector
(sin 2a, cos 2a): a chord of 0.5 is a gripper-angle difference of about 14.5 degrees."""


def cell_coordinates(critic_inputs: ArrayLike, cell_px: float = CLUSTER_CELL_PX,
                     cell_angle: float = CLUSTER_CELL_ANGLE) -> np.ndarray:
    """Critic inputs (n, 4) ``[x_n, y_n, sin 2a, cos 2a]`` in units of the clustering grid's
    spacing: (n, 4) float64, x and y in ``cell_px`` pixels, the doubled-angle vector in
    ``cell_angle``."""
    spacing = np.array([cell_px / HALF_WIDTH] * 2 + [cell_angle] * 2)
    return np.asarray(critic_inputs, dtype=np.float64) / spacing


def cluster_grasps(critic_inputs: ArrayLike, scores: ArrayLike,
                   cell_px: float = CLUSTER_CELL_PX,
                   cell_angle: float = CLUSTER_CELL_ANGLE) -> np.ndarray:
    """Cluster grasps on a grid in (x_n, y_n, sin 2a, cos 2a), angle periodic.

    Each grasp falls into a cell of a 4-D grid (spacing ``cell_px`` pixels along x and y,
    ``cell_angle`` along the doubled-angle unit vector); clusters are the connected components
    of the occupied cells, a cell touching its 80 neighbours (Chebyshev distance 1). So two
    grasps closer than one spacing in every coordinate share a cluster, and grasps two
    spacings apart in some coordinate are only joined through grasps between them. Unlike
    a radius graph, the cost does not grow with the number of close pairs: O(n log n).

    Args:
        critic_inputs: (n, 4) ``[x_n, y_n, sin 2a, cos 2a]`` (unit angle vectors).
        scores: (n,) scores; clusters are numbered by their best score, 0 = best.

    Returns:
        (n,) int64 cluster labels in 0..K-1.
    """
    critic_inputs = np.asarray(critic_inputs, dtype=np.float64)
    n = len(critic_inputs)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cells = np.floor(cell_coordinates(critic_inputs, cell_px, cell_angle)).astype(np.int64)
    cells -= cells.min(axis=0)
    radix = cells.max(axis=0) + 1
    keys = np.ravel_multi_index(cells.T, radix)
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    occupied = np.stack(np.unravel_index(unique_keys, radix), axis=1)
    pairs = cKDTree(occupied).query_pairs(1.0, p=np.inf, output_type='ndarray')
    return _renumber_by_score(connected_labels(len(occupied), pairs)[inverse], scores)


def cluster_by_floor(critic_inputs: ArrayLike, scores: ArrayLike, floor: float) -> np.ndarray:
    """``cluster_grasps`` of the candidates at or above ``floor`` and, apart, of those below.

    Low-scoring grasps often lie between two ways of holding the object (a gap in the
    feasible set); clustered together with the good ones, they join the two into one
    cluster, and the diverse ranking then skips one of them. Every cluster holds grasps of
    one side of the floor only, so clusters above it are numbered first (by best score).

    Args:
        critic_inputs: (n, 4) ``[x_n, y_n, sin 2a, cos 2a]``; scores: (n,); floor: score.

    Returns:
        (n,) int64 cluster labels in 0..K-1, numbered by best score, 0 = best.
    """
    critic_inputs = np.asarray(critic_inputs, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    above = scores >= floor
    labels = np.empty(len(scores), dtype=np.int64)
    labels[above] = cluster_grasps(critic_inputs[above], scores[above])
    first_below = int(labels[above].max()) + 1 if above.any() else 0
    labels[~above] = first_below + cluster_grasps(critic_inputs[~above], scores[~above])
    return labels


def connected_labels(count: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components of an undirected graph: (count,) labels, one node id per component.

    Union-find by vectorised root hooking (the larger root of every edge points to the
    smaller) and pointer jumping, repeated until every edge joins equal labels; for the
    small graphs of ``cluster_grasps`` this is several times cheaper than building a
    ``scipy.sparse`` matrix.

    Args:
        count: number of nodes; pairs: (E, 2) int edges.
    """
    labels = np.arange(count)
    first, second = pairs[:, 0], pairs[:, 1]
    while True:
        root_a, root_b = labels[first], labels[second]
        low = np.minimum(root_a, root_b)
        hooked = labels.copy()
        np.minimum.at(hooked, root_a, low)
        np.minimum.at(hooked, root_b, low)
        while True:  # pointer jumping until every node points at a root
            jumped = hooked[hooked]
            if np.array_equal(jumped, hooked):
                break
            hooked = jumped
        if np.array_equal(hooked, labels):
            return labels
        labels = hooked


def _renumber_by_score(labels: np.ndarray, scores: ArrayLike) -> np.ndarray:
    """Renumber labels 0..K-1 in the order of their best score (ties: first occurrence)."""
    order = np.argsort(-np.asarray(scores), kind='stable')
    _, first = np.unique(labels[order], return_index=True)
    ranked = labels[order][np.sort(first)]  # labels in order of their best member
    lookup = np.empty(labels.max() + 1, dtype=np.int64)
    lookup[ranked] = np.arange(len(ranked))
    return lookup[labels]
