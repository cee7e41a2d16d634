"""Ranking of grasp proposals: by cost, or round-robin over clusters, above a score floor."""

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike


def rank_order(scores: ArrayLike, cluster_ids: ArrayLike, ranking: str, floor: float = 0.0,
               cost: Optional[ArrayLike] = None) -> np.ndarray:
    """Indices ordering candidates best first.

    Candidates scoring at least ``floor`` always come before those below it; within each of
    the two groups:

    - 'score': by ascending cost;
    - 'diverse': round-robin over clusters: the best grasp of every cluster (clusters in
      the order of their best grasp), then the second best of every cluster, ...

    Args:
        scores: (n,) scores in [0, 1].
        cluster_ids: (n,) int cluster of each candidate (any labels).
        ranking: 'score' or 'diverse'.
        floor: score floor.
        cost: (n,) ranking cost, lower first (default ``1 - scores``).
    """
    scores = np.asarray(scores, dtype=np.float64)
    cost = 1.0 - scores if cost is None else np.asarray(cost, dtype=np.float64)
    cluster_ids = np.asarray(cluster_ids)
    above = np.flatnonzero(scores >= floor)
    below = np.flatnonzero(~(scores >= floor))
    return np.concatenate([above[_order(cost[above], cluster_ids[above], ranking)],
                           below[_order(cost[below], cluster_ids[below], ranking)]])


def _order(cost: np.ndarray, cluster_ids: np.ndarray, ranking: str) -> np.ndarray:
    by_cost = np.argsort(cost, kind='stable')
    if ranking == 'score' or len(cost) == 0:
        return by_cost
    _, labels = np.unique(cluster_ids, return_inverse=True)
    labels = labels.reshape(-1)[by_cost]
    # cluster rank: order of each cluster's best (first) member along by_cost
    _, first = np.unique(labels, return_index=True)
    cluster_rank = np.empty(len(first), dtype=np.int64)
    cluster_rank[np.argsort(first, kind='stable')] = np.arange(len(first))
    grouped = np.argsort(labels, kind='stable')  # by cluster, by cost within a cluster
    counts = np.bincount(labels)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    within = np.empty(len(cost), dtype=np.int64)
    within[grouped] = np.arange(len(cost)) - starts
    return by_cost[np.lexsort((cluster_rank[labels], within))]
