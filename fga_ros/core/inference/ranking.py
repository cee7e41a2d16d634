"""Ranking of grasp proposals: by score, or round-robin over modes."""

import numpy as np


def rank_order(scores, mode_ids, ranking):
    """Indices ordering candidates best first.

    'score': by descending score. 'diverse': round-robin over modes: the best grasp of every
    mode (modes ordered by their best score), then the second best of every mode, ...

    Args:
        scores: (n,) scores; mode_ids: (n,) ids numbered by best score (``cluster_modes``).
    """
    scores = np.asarray(scores)
    by_score = np.argsort(-scores, kind='stable')
    if ranking == 'score':
        return by_score
    modes = np.asarray(mode_ids)[by_score]
    grouped = np.argsort(modes, kind='stable')  # by mode, by score within a mode
    counts = np.bincount(modes)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    within = np.empty(len(scores), dtype=np.int64)
    within[by_score[grouped]] = np.arange(len(scores)) - starts
    return np.lexsort((mode_ids, within))
