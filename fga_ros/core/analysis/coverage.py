"""Mode coverage of a grasp sampler on one scene: does it reach every ground-truth mode, and
in proportion to the mode's size?

A scene has K ground-truth modes with shares ``s_m`` of its feasible set
(``GroundTruth.mode_shares``, sum 1). Of a set of samples, F land in the feasible set, c_m of
them in mode m (sum c_m = F). The **sample share** of mode m is ``p_m = c_m / F``, a share of
the *feasible* samples, so that coverage is measured apart from accuracy. Per scene:

- **all modes hit**: ``c_m >= 1`` for every mode (True / False);
- **recalled modes**: ``p_m >= RECALL_RATIO * s_m`` (RECALL_RATIO = 1/4); the *mode recall*
  of a set of scenes is the share of its (scene, mode) pairs that are recalled;
- **TV distance** ``1/2 sum_m |p_m - s_m|`` in [0, 1]: 0 when the feasible samples spread
  over the modes exactly like the uniform distribution over the feasible set (the actor's
  target), ``1 - s_m`` when all of them fall into mode m.

A scene in which no sample is feasible (F = 0) hits no mode, recalls none and has TV = 1
(nothing of the target is covered). A scene without any feasible grasp (K = 0) has nothing
to cover: it is left out of every coverage figure.

Even an exactly uniform sampler has TV > 0 at finite F. Its expectation, ``tv_floor``, is
about ``1/2 sum_m sqrt(2 s_m (1 - s_m) / (pi F))`` (the binomial mean absolute deviation in
its normal approximation): e.g. 0.025 on an H scene (5 modes of 16-23 %) at F = 1000, 0.05
at F = 250.
"""

from dataclasses import dataclass
import math
from typing import Iterable, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike

RECALL_RATIO = 0.25
"""A mode is recalled when its sample share is at least this fraction of its true share."""


@dataclass(frozen=True)
class SceneCoverage:
    """Coverage of one scene by a set of samples (module notes; K = number of modes)."""

    mode_shares: np.ndarray  # (K,) s_m, true shares of the feasible set
    counts: np.ndarray  # (K,) int c_m, samples per mode
    recalled: np.ndarray  # (K,) bool
    all_hit: bool
    tv: float  # total-variation distance; 1.0 when no sample is feasible
    tv_floor: float  # expected TV of an exactly uniform sampler with the same F; NaN if F = 0

    @property
    def feasible_samples(self) -> int:
        return int(self.counts.sum())

    @property
    def sample_shares(self) -> np.ndarray:
        """(K,) p_m = c_m / F; all 0 when F = 0."""
        total = self.counts.sum()
        return self.counts / total if total else np.zeros(len(self.counts))

    @property
    def recall(self) -> float:
        """Share of this scene's modes that are recalled, in [0, 1]."""
        return float(self.recalled.mean())


def tv_floor(mode_shares: ArrayLike, feasible_samples: int) -> float:
    """Expected TV distance of F samples drawn exactly uniformly from the feasible set
    (normal approximation, module notes); NaN when ``feasible_samples`` is 0."""
    shares = np.asarray(mode_shares, dtype=np.float64)
    if feasible_samples <= 0:
        return math.nan
    deviation = np.sqrt(2.0 * shares * (1.0 - shares) / (math.pi * feasible_samples))
    return float(0.5 * deviation.sum())


def scene_coverage(modes: ArrayLike, mode_shares: ArrayLike) -> SceneCoverage:
    """Coverage of one scene by samples whose ground-truth modes are ``modes``.

    Args:
        modes: (B,) int mode of each sample, 0 = infeasible, 1..K (``GroundTruth.mode_of``).
        mode_shares: (K,) true shares s_m of the K >= 1 modes (sum 1).

    Returns:
        :class:`SceneCoverage`.
    """
    modes = np.asarray(modes, dtype=np.int64)
    shares = np.asarray(mode_shares, dtype=np.float64)
    if shares.ndim != 1 or shares.size == 0:
        raise ValueError('mode_shares must list at least one mode (a scene without a '
                         'feasible grasp has no coverage)')
    if modes.ndim != 1 or (modes.size and (modes.min() < 0 or modes.max() > shares.size)):
        raise ValueError(f'modes must be a 1-D array of ids in [0, {shares.size}]')
    counts = np.bincount(modes, minlength=shares.size + 1)[1:]
    total = int(counts.sum())
    if total:
        sample_shares = counts / total
        recalled = sample_shares >= RECALL_RATIO * shares
        tv = float(0.5 * np.abs(sample_shares - shares).sum())
    else:
        recalled = np.zeros(shares.size, dtype=bool)
        tv = 1.0
    return SceneCoverage(shares, counts, recalled, bool((counts > 0).all()), tv,
                         tv_floor(shares, total))


def summarise_coverage(scenes: Iterable[Optional[SceneCoverage]]) -> dict[str, float]:
    """Coverage of a set of scenes: ``{'all_modes_hit', 'mode_recall', 'tv_distance',
    'tv_floor'}``.

    Args:
        scenes: :class:`SceneCoverage` of each scene; None for a scene without a feasible
            grasp (left out).

    Returns:
        all_modes_hit: share of scenes with every mode hit; mode_recall: share of (scene,
        mode) pairs recalled; tv_distance, tv_floor: means over scenes (tv_floor over the
        scenes with a feasible sample). Fractions in [0, 1]; NaN when no scene counts.
    """
    counted = [s for s in scenes if s is not None]
    if not counted:
        return {'all_modes_hit': math.nan, 'mode_recall': math.nan, 'tv_distance': math.nan,
                'tv_floor': math.nan}
    floors = [s.tv_floor for s in counted if not math.isnan(s.tv_floor)]
    return {
        'all_modes_hit': float(np.mean([s.all_hit for s in counted])),
        'mode_recall': float(np.concatenate([s.recalled for s in counted]).mean()),
        'tv_distance': float(np.mean([s.tv for s in counted])),
        'tv_floor': float(np.mean(floors)) if floors else math.nan,
    }


def coverage_order(scenes: Sequence[Optional[SceneCoverage]]) -> list[int]:
    """Indices of ``scenes`` (SceneCoverage or None), worst coverage first: lowest recall,
    then highest TV distance; scenes without modes (None) last."""
    def key(i: int) -> tuple[float, float, int]:
        s = scenes[i]
        return (2.0, 0.0, i) if s is None else (s.recall, -s.tv, i)
    return sorted(range(len(scenes)), key=key)
