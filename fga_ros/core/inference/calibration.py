"""Calibrated critic scores and the novelty gate, both stored in a model file's metadata.

Calibration (Platt scaling, a temperature and a bias): the critic's logit l becomes the
score ``sigmoid(l / temperature + bias)``, fitted by maximum likelihood on the simulator's
outcomes of the candidates a default proposal scores, on held-out scenes of the training
shapes (:mod:`fga_ros.core.analysis.calibration_fit`). Temperature 1 and bias 0 (no
calibration stored) leave the critic's probability as it is.

Novelty gate: the squared Mahalanobis distance of an image's pooled trunk features (the
per-channel mean and standard deviation of the feature extractor's trunk map, 2C values)
from their mean over training-shape scenes; an image farther than ``threshold`` (a high
quantile of the distances of other, held-out training-shape scenes) is not a scene the
model has learned to read, and a proposal for it abstains.

Expected calibration error (ECE): scores are put into ``ECE_BINS`` equal-width bins on
[0, 1] (the last bin closed); ECE = sum over bins b of (n_b / N) |mean score_b - feasible
fraction_b|, a fraction in [0, 1].

Metadata layout (JSON-like, ``meta['calibration']`` and ``meta['novelty']``), see
:meth:`Calibration.to_meta` and :meth:`NoveltyGate.to_meta`.
"""

from dataclasses import dataclass
import math
from typing import Any, Mapping, Optional, TypeVar

import numpy as np
from numpy.typing import ArrayLike
import torch

Logits = TypeVar('Logits', np.ndarray, torch.Tensor)
"""Critic logits as a numpy array or a torch tensor; the scores come back as the same."""

ECE_BINS = 15
"""Equal-width score bins of the expected calibration error and the reliability diagram."""

_MIN_TEMPERATURE = 1e-3


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of critic logits: score = sigmoid(logit / temperature + bias).

    Attributes:
        temperature: > 0; bias: finite; info: how and on what it was fitted (JSON-like).
    """

    temperature: float = 1.0
    bias: float = 0.0
    info: tuple = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f'temperature must be a positive number, got {self.temperature}')
        if not math.isfinite(self.bias):
            raise ValueError(f'bias must be finite, got {self.bias}')

    @property
    def fitted(self) -> bool:
        """Whether this is a fitted calibration (not the identity)."""
        return bool(self.info)

    def scores(self, logits: Logits) -> Logits:
        """Calibrated scores in [0, 1] of critic logits (tensor or array, any shape)."""
        if isinstance(logits, torch.Tensor):
            return torch.sigmoid(logits / self.temperature + self.bias)
        z = np.asarray(logits, dtype=np.float64) / self.temperature + self.bias
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow warnings

    def to_meta(self) -> dict[str, Any]:
        """``{'method': 'platt', 'temperature', 'bias', **info}`` for a model file."""
        return {'method': 'platt', 'temperature': float(self.temperature),
                'bias': float(self.bias), **dict(self.info)}

    @classmethod
    def from_meta(cls, meta: Optional[Mapping[str, Any]]) -> 'Calibration':
        """The calibration in a model's metadata (identity when there is none).

        Raises:
            ValueError: a stored calibration that is malformed (names the problem).
        """
        data = (meta or {}).get('calibration')
        if data is None:
            return cls()
        if not isinstance(data, dict) or data.get('method') != 'platt':
            raise ValueError(f"meta['calibration'] must be a dict with method 'platt', "
                             f'got {data!r:.80}')
        info = tuple((k, v) for k, v in data.items()
                     if k not in ('method', 'temperature', 'bias'))
        return cls(float(data['temperature']), float(data['bias']), info or (('fitted', 1),))


def fit_platt(logits: ArrayLike, labels: ArrayLike, max_iter: int = 100) -> tuple[float, float]:
    """Maximum-likelihood temperature and bias for critic ``logits`` (n,) and 0/1 ``labels``.

    Newton's method on (a, b) with score = sigmoid(a l + b), a = 1 / temperature, started at
    (1, 0) with step halving; a is kept >= 1 / 1000 (scores never reverse their order).

    Returns:
        (temperature, bias) floats.
    """
    x = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f'need matching logits and labels (at least 2), got {len(x)} and '
                         f'{len(y)}')
    if y.min() == y.max():
        raise ValueError('labels must hold both outcomes (feasible and infeasible) to fit a '
                         'calibration')
    features = np.stack([x, np.ones_like(x)], axis=1)

    def loss(params: np.ndarray) -> float:
        z = features @ params
        return float(np.mean(np.logaddexp(0.0, z) - y * z))

    params = np.array([1.0, 0.0])
    current = loss(params)
    for _ in range(max_iter):
        p = 0.5 * (1.0 + np.tanh(0.5 * (features @ params)))
        grad = features.T @ (p - y) / len(x)
        hess = (features * (p * (1 - p))[:, None]).T @ features / len(x) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6:
            trial = params - scale * step
            trial[0] = max(trial[0], _MIN_TEMPERATURE)
            value = loss(trial)
            if value <= current:
                break
            scale *= 0.5
        else:
            break
        converged = current - value < 1e-12
        params, current = trial, value
        if converged:
            break
    return 1.0 / params[0], float(params[1])


def reliability_bins(scores: ArrayLike, labels: ArrayLike,
                     bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Per-bin counts, mean scores and feasible fractions on ``bins`` equal-width bins.

    Args:
        scores: (n,) in [0, 1]; labels: (n,) bool or 0/1.

    Returns:
        dict of (bins,) arrays 'count' (int), 'mean_score', 'feasible' (NaN where empty),
        and 'edges' (bins + 1,).
    """
    scores = np.clip(np.asarray(scores, dtype=np.float64).reshape(-1), 0.0, 1.0)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    if len(scores) != len(labels):
        raise ValueError(f'scores and labels differ in length: {len(scores)} and {len(labels)}')
    index = np.minimum((scores * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid='ignore', divide='ignore'):
        mean_score = np.bincount(index, scores, minlength=bins) / count
        feasible = np.bincount(index, labels, minlength=bins) / count
    return {'count': count, 'mean_score': mean_score, 'feasible': feasible,
            'edges': np.linspace(0.0, 1.0, bins + 1)}


def expected_calibration_error(scores: ArrayLike, labels: ArrayLike,
                               bins: int = ECE_BINS) -> float:
    """ECE (module docstring) of ``scores`` (n,) against 0/1 ``labels`` (n,): a float."""
    table = reliability_bins(scores, labels, bins)
    count = table['count']
    if count.sum() == 0:
        return math.nan
    used = count > 0
    gaps = np.abs(table['mean_score'][used] - table['feasible'][used])
    return float(np.sum(count[used] * gaps) / count.sum())


# -- novelty gate -------------------------------------------------------------------------


def pooled_features(trunk: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and standard deviation of trunk maps (S, C, G, G): (S, 2C) tensor."""
    return torch.cat([trunk.mean(dim=(2, 3)), trunk.std(dim=(2, 3))], dim=1)


@dataclass(frozen=True, eq=False)
class NoveltyGate:
    """Squared Mahalanobis distance of pooled trunk features, and its abstention threshold.

    Attributes:
        mean: (D,) float64 mean of the fitted features.
        precision: (D, D) float64 inverse of their (shrunk) covariance.
        threshold: distances above it abstain.
        info: how and on what it was fitted (JSON-like pairs).
    """

    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    info: tuple = ()

    def __post_init__(self) -> None:
        d = len(self.mean)
        if self.mean.ndim != 1 or self.precision.shape != (d, d):
            raise ValueError(f'novelty gate: mean must be (D,) and precision (D, D), got '
                             f'{self.mean.shape} and {self.precision.shape}')
        if not (np.isfinite(self.mean).all() and np.isfinite(self.precision).all()
                and math.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError('novelty gate: mean, precision and threshold must be finite, '
                             'threshold positive')

    def distances(self, pooled: ArrayLike) -> np.ndarray:
        """Squared Mahalanobis distances (S,) float64 of pooled features (S, D)."""
        x = np.asarray(pooled, dtype=np.float64).reshape(-1, len(self.mean)) - self.mean
        return np.einsum('ij,jk,ik->i', x, self.precision, x)

    def to_meta(self) -> dict[str, Any]:
        """JSON-like dict for a model file's ``meta['novelty']``."""
        return {'features': 'trunk channel mean and std', 'mean': self.mean.tolist(),
                'precision': self.precision.tolist(), 'threshold': float(self.threshold),
                **dict(self.info)}

    @classmethod
    def from_meta(cls, meta: Optional[Mapping[str, Any]]) -> Optional['NoveltyGate']:
        """The gate in a model's metadata, or None when there is none.

        Raises:
            ValueError: a stored gate that is malformed.
        """
        data = (meta or {}).get('novelty')
        if data is None:
            return None
        try:
            info = tuple((k, v) for k, v in data.items()
                         if k not in ('features', 'mean', 'precision', 'threshold'))
            return cls(np.asarray(data['mean'], dtype=np.float64),
                       np.asarray(data['precision'], dtype=np.float64),
                       float(data['threshold']), info)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"meta['novelty'] is malformed: {error}") from None


def fit_novelty_gate(fit_features: ArrayLike, held_features: ArrayLike, quantile: float,
                     shrinkage: float = 0.01, info: tuple = ()) -> 'NoveltyGate':
    """Gate from pooled features of training-shape scenes.

    Args:
        fit_features: (N, D) features of the scenes the mean and covariance come from.
        held_features: (M, D) features of other in-distribution scenes; the threshold is
            their distances' ``quantile``.
        quantile: in (0, 1), e.g. 0.995.
        shrinkage: covariance + shrinkage * mean variance * identity (stable inverse).
    """
    x = np.asarray(fit_features, dtype=np.float64)
    if x.ndim != 2 or len(x) <= x.shape[1]:
        raise ValueError(f'need more scenes than feature dimensions to fit the gate, got '
                         f'{x.shape}')
    if not 0.0 < quantile < 1.0:
        raise ValueError(f'quantile must be in (0, 1), got {quantile}')
    mean = x.mean(axis=0)
    cov = np.cov(x, rowvar=False)
    cov += shrinkage * np.trace(cov) / len(cov) * np.eye(len(cov))
    gate = NoveltyGate(mean, np.linalg.inv(cov), 1.0)
    threshold = float(np.quantile(gate.distances(held_features), quantile))
    return NoveltyGate(mean, gate.precision, threshold,
                       tuple(info) + (('quantile', float(quantile)),
                                      ('shrinkage', float(shrinkage))))
