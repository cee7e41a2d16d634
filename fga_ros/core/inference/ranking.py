"""Ranking of grasp proposals: by cost, or round-robin over clusters, above a score floor."""

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike

from fga_ros.core.inference.defaults import SPREAD_MARGIN


def rank_order(scores: ArrayLike, cluster_ids: ArrayLike, ranking: str, floor: float = 0.0,
               cost: Optional[ArrayLike] = None, cells: Optional[ArrayLike] = None,
               count: int = 0) -> np.ndarray:
    """Indices ordering candidates best first.

    Candidates scoring at least ``floor`` always come before those below it; within each of
    the two groups:

    - 'score': by ascending cost;
    - 'diverse': round-robin over clusters: the best grasp of every cluster (clusters in
      the order of their best grasp), then the second of every cluster, ... Within a
      cluster, with ``cells``, up to ``count`` grasps scoring nearly as well as its best are
      chosen by non-maximum suppression (:func:`spread_order`), so that a cluster's next
      grasp is not a near-copy of one already ranked; the others follow by ascending cost.

    Args:
        scores: (n,) scores in [0, 1].
        cluster_ids: (n,) int cluster of each candidate (any labels).
        ranking: 'score' or 'diverse'.
        floor: score floor.
        cost: (n,) ranking cost, lower first (default ``1 - scores``).
        cells: optional (n, d) coordinates in which two grasps less than 1 apart in every
            coordinate are near-copies ('diverse' only).
        count: grasps chosen by suppression per cluster (the rest follow by cost).
    """
    scores = np.asarray(scores, dtype=np.float64)
    cost = 1.0 - scores if cost is None else np.asarray(cost, dtype=np.float64)
    cluster_ids = np.asarray(cluster_ids)
    points = None if cells is None else np.asarray(cells, dtype=np.float64)
    above = np.flatnonzero(scores >= floor)
    below = np.flatnonzero(~(scores >= floor))
    return np.concatenate([
        group[_order(cost[group], cluster_ids[group], ranking,
                     None if points is None else points[group], count)]
        for group in (above, below)])


def spread_order(cost: np.ndarray, cells: np.ndarray, count: int,
                 margin: float = SPREAD_MARGIN) -> np.ndarray:
    """Order of one cluster's members: up to ``count`` kept by non-maximum suppression, then
    every other member, each part by ascending cost.

    Members whose cost is at most the best cost + ``margin`` are taken by ascending cost; one
    is kept unless a kept member lies less than 1 from it in every coordinate of ``cells``
    (Chebyshev distance < 1).

    Args:
        cost: (m,) ranking cost; cells: (m, d) coordinates; count: most members kept.
    """
    by_cost = np.argsort(cost, kind='stable')
    if len(cost) == 0:
        return by_cost
    kept: list[int] = []
    far = cost <= cost[by_cost[0]] + margin  # eligible, not within 1 of a kept member
    for i in by_cost:
        if len(kept) >= count:
            break
        if far[i]:
            kept.append(int(i))
            far &= np.abs(cells - cells[i]).max(axis=1) >= 1.0
    rest = np.setdiff1d(by_cost, kept, assume_unique=True)
    return np.concatenate([np.asarray(kept, dtype=np.int64), rest[np.argsort(cost[rest],
                                                                              kind='stable')]])


def _order(cost: np.ndarray, cluster_ids: np.ndarray, ranking: str,
           cells: Optional[np.ndarray], count: int) -> np.ndarray:
    by_cost = np.argsort(cost, kind='stable')
    if ranking == 'score' or len(cost) == 0:
        return by_cost
    _, labels = np.unique(cluster_ids, return_inverse=True)
    labels = labels.reshape(-1)
    within = np.empty(len(cost), dtype=np.int64)
    for label in range(labels.max() + 1):
        members = np.flatnonzero(labels == label)
        order = (spread_order(cost[members], cells[members], count) if cells is not None
                 else np.argsort(cost[members], kind='stable'))
        within[members[order]] = np.arange(len(members))
    # cluster rank: order of each cluster's best member along by_cost
    first = np.full(labels.max() + 1, len(cost), dtype=np.int64)
    np.minimum.at(first, labels[by_cost], np.arange(len(cost)))
    cluster_rank = np.empty(len(first), dtype=np.int64)
    cluster_rank[np.argsort(first, kind='stable')] = np.arange(len(first))
    return np.lexsort((cluster_rank[labels], within))
