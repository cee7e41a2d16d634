"""Calibrated critic scores and the novelty gate, both stored in a model file's metadata.

Calibration (Platt scaling, a temperature and a bias, over views): the critic's logit l
becomes the score ``sigmoid(l / temperature + bias)``, fitted by maximum likelihood on the
simulator's outcomes of the candidates a default proposal scores
(:mod:`fga_ros.core.analysis.calibration_fit`). With several views, l is the mean of the
critic's logits for the same grasp on transformed copies of the image that are equally likely
scenes with the same physics: ``views`` reorder the RGB channels (object and background
colours are drawn uniformly) and ``turns`` rotate the image by quarter turns about its
centre, the grasp turned with it (objects are placed at uniform orientations, symmetrically
about the centre). The critic's disagreement between views, largest on shapes it has not
learned, pulls the mean logit towards 0. Temperature 1, bias 0 and the image alone (no
calibration stored) leave the critic's probability as it is.

Novelty gates: the squared Mahalanobis distance of a statistic of the image's trunk map
(the feature extractor's (C, G, G) output) from its mean over training-shape scenes; an
image farther than a gate's ``threshold`` (a high quantile of the distances of other,
held-out training-shape scenes) is not a scene the model has learned to read, and a
proposal for it abstains. Statistics (``GATE_STATISTICS``, 2C values each): the per-channel
mean and standard deviation ('pooled'), and the per-channel mean absolute difference
between horizontally and between vertically neighbouring cells ('texture', high on noise
and clutter whose overall statistics look like a scene's).

Expected calibration error (ECE): scores are put into ``ECE_BINS`` equal-width bins on
[0, 1] (the last bin closed); ECE = sum over bins b of (n_b / N) |mean score_b - feasible
fraction_b|, a fraction in [0, 1].

Metadata layout (JSON-like, ``meta['calibration']``, ``meta['novelty']`` (pooled) and
``meta['novelty_texture']``), see :meth:`Calibration.to_meta` and :meth:`NoveltyGate.to_meta`;
everything read back is checked and bounded (at most ``MAX_VIEWS`` channel orders, the
quarter turns distinct in 0..3, at most ``MAX_GATE_DIM`` gate features, finite numbers,
temperature in [1e-3, 1e3], |bias| <= 100).
"""

from dataclasses import dataclass
import itertools
import math
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, TypeVar

import numpy as np
from numpy.typing import ArrayLike
import torch

from fga_ros.core.common.actions import turn_critic_inputs
from fga_ros.core.models.heads import ImageFeatures

if TYPE_CHECKING:
    from fga_ros.core.models.networks import Network

Logits = TypeVar('Logits', np.ndarray, torch.Tensor)
"""Critic logits as a numpy array or a torch tensor; the scores come back as the same."""

ECE_BINS = 15
"""Equal-width score bins of the expected calibration error and the reliability diagram."""

_MIN_TEMPERATURE = 1e-3
_MAX_TEMPERATURE = 1e3
_MAX_BIAS = 100.0

IDENTITY_VIEW = (0, 1, 2)
ALL_VIEWS = tuple(itertools.permutations(range(3)))
"""The six orders of the RGB channels (the identity first)."""
MAX_VIEWS = len(ALL_VIEWS)
QUARTER_TURNS = (0, 1, 2, 3)
"""The image's four rotations by quarter turns (none first)."""
MAX_GATE_DIM = 4096
"""Largest feature dimension of a stored novelty gate (bounds what a model file may hold)."""


def _number(data: Mapping[str, Any], key: str, where: str) -> float:
    """``float(data[key])`` of a stored mapping, finite, or a ValueError naming it."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f"meta['{where}']['{key}'] must be a finite number, got {value!r:.40}")
    return float(value)


def _check_views(views: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """Channel orders as a tuple of tuples: distinct permutations of (0, 1, 2), the
    identity first, at most ``MAX_VIEWS``; ValueError otherwise."""
    try:
        out = tuple(tuple(int(c) for c in view) for view in views)
    except (TypeError, ValueError):
        raise ValueError(f'views must be lists of channel indices, got {views!r:.80}') from None
    if not out or out[0] != IDENTITY_VIEW or len(out) > MAX_VIEWS \
            or len(set(out)) != len(out) or not set(out) <= set(ALL_VIEWS):
        raise ValueError(f'views must be 1 to {MAX_VIEWS} distinct orders of the channels '
                         f'(0, 1, 2), the identity first, got {views!r:.80}')
    return out


def _check_turns(turns: Sequence[int]) -> tuple[int, ...]:
    """Quarter turns as a tuple: distinct values of ``QUARTER_TURNS``, 0 first; ValueError
    otherwise."""
    out = tuple(turns)
    if not all(isinstance(t, int) and not isinstance(t, bool) and t in QUARTER_TURNS
               for t in out) or not out or out[0] != 0 or len(set(out)) != len(out):
        raise ValueError(f'quarter_turns must be distinct values of {list(QUARTER_TURNS)}, 0 '
                         f'first, got {turns!r:.80}')
    return out


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of critic logits over views: score = sigmoid(l / T + b).

    Attributes:
        temperature: T in [1e-3, 1e3]; bias: b, |b| <= 100.
        views: RGB channel orders (module docstring), the identity first.
        turns: quarter turns of the image (module docstring), 0 first; l is the mean of the
            critic's logits over every (turn, channel order) pair.
        info: how and on what it was fitted (JSON-like pairs).
    """

    temperature: float = 1.0
    bias: float = 0.0
    info: tuple = ()
    views: tuple = (IDENTITY_VIEW,)
    turns: tuple = (0,)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature)
                and _MIN_TEMPERATURE <= self.temperature <= _MAX_TEMPERATURE):
            raise ValueError(f'temperature must be a number in [{_MIN_TEMPERATURE:g}, '
                             f'{_MAX_TEMPERATURE:g}], got {self.temperature}')
        if not (math.isfinite(self.bias) and abs(self.bias) <= _MAX_BIAS):
            raise ValueError(f'bias must be finite, at most {_MAX_BIAS:g} in size, got '
                             f'{self.bias}')
        object.__setattr__(self, 'views', _check_views(self.views))
        object.__setattr__(self, 'turns', _check_turns(self.turns))

    @property
    def num_views(self) -> int:
        """Number of transformed images the logit is averaged over (the image included)."""
        return len(self.views) * len(self.turns)

    def _others(self) -> list[tuple[int, tuple[int, ...]]]:
        """(turn, channel order) of every view beyond the image as it is."""
        return [(turn, view) for turn in self.turns for view in self.views][1:]

    @property
    def fitted(self) -> bool:
        """Whether this is a fitted calibration (not the identity)."""
        return bool(self.info)

    def scores(self, logits: Logits) -> Logits:
        """Calibrated scores in [0, 1] of (view-averaged) critic logits (tensor or array,
        any shape)."""
        if isinstance(logits, torch.Tensor):
            return torch.sigmoid(logits / self.temperature + self.bias)
        z = np.asarray(logits, dtype=np.float64) / self.temperature + self.bias
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow warnings

    def view_images(self, images: torch.Tensor) -> torch.Tensor:
        """One image (1, 3, H, W), any dtype, followed by its views beyond the image as it
        is: (num_views, 3, H, W)."""
        return torch.cat([images] + [torch.rot90(images[:, list(view)], turn, dims=(-2, -1))
                                     for turn, view in self._others()])

    def view_features(self, model: 'Network', features: ImageFeatures
                      ) -> Optional[ImageFeatures]:
        """``ImageFeatures`` (num_views - 1 states) of one image's views beyond the image as
        it is, from its features (1 state); None with the image alone."""
        if self.num_views == 1:
            return None
        return model.features_of_table(self.view_images(features.images[:1])[1:])

    def logits(self, model: 'Network', features: ImageFeatures, critic_inputs: torch.Tensor,
               first: Optional[torch.Tensor] = None,
               views: Optional[ImageFeatures] = None) -> torch.Tensor:
        """Mean critic logit over the views of grasps (n, 4) on one image: (n,) tensor.

        Args:
            features: the image's features (1 state); critic_inputs: (n, 4).
            first: the image's own logits (n,) when already computed.
            views: ``view_features`` of the image when already computed.
        """
        if first is None:
            first = model.score(features, critic_inputs[None])[0]
        if self.num_views == 1 or len(critic_inputs) == 0:
            return first
        if views is None:
            views = self.view_features(model, features)
        assert views is not None
        turned = {turn: turn_critic_inputs(critic_inputs, turn) for turn in self.turns}
        others = model.score(views, torch.stack([turned[turn] for turn, _ in self._others()]))
        return (first + others.sum(dim=0)) / self.num_views

    def to_meta(self) -> dict[str, Any]:
        """``{'method': 'platt', 'temperature', 'bias', 'views', 'quarter_turns', **info}``
        for a model file."""
        return {'method': 'platt', 'temperature': float(self.temperature),
                'bias': float(self.bias), 'views': [list(v) for v in self.views],
                'quarter_turns': list(self.turns), **dict(self.info)}

    @classmethod
    def from_meta(cls, meta: Optional[Mapping[str, Any]]) -> 'Calibration':
        """The calibration in a model's metadata (identity when there is none; a stored one
        without ``views`` or ``quarter_turns`` reads the image alone in that respect).

        Raises:
            ValueError: a stored calibration that is malformed or out of bounds (names the
                problem).
        """
        data = (meta or {}).get('calibration')
        if data is None:
            return cls()
        if not isinstance(data, dict) or data.get('method') != 'platt':
            raise ValueError(f"meta['calibration'] must be a dict with method 'platt', "
                             f'got {data!r:.80}')
        info = tuple((k, v) for k, v in data.items()
                     if k not in ('method', 'temperature', 'bias', 'views', 'quarter_turns'))
        views = data.get('views', [IDENTITY_VIEW])
        if not isinstance(views, (list, tuple)) or len(views) > MAX_VIEWS:
            raise ValueError(f"meta['calibration']['views'] must be a list of at most "
                             f'{MAX_VIEWS} channel orders, got {views!r:.80}')
        turns = data.get('quarter_turns', [0])
        if not isinstance(turns, (list, tuple)) or len(turns) > len(QUARTER_TURNS):
            raise ValueError(f"meta['calibration']['quarter_turns'] must be a list of at most "
                             f'{len(QUARTER_TURNS)} quarter turns, got {turns!r:.80}')
        try:
            return cls(_number(data, 'temperature', 'calibration'),
                       _number(data, 'bias', 'calibration'), info or (('fitted', 1),),
                       _check_views(views), _check_turns(turns))
        except ValueError as error:
            raise ValueError(f"meta['calibration']: {error}") from None


def fit_platt(logits: ArrayLike, labels: ArrayLike, max_iter: int = 100,
              weights: Optional[ArrayLike] = None) -> tuple[float, float]:
    """Maximum-likelihood temperature and bias for critic ``logits`` (n,) and 0/1 ``labels``.

    Newton's method on (a, b) with score = sigmoid(a l + b), a = 1 / temperature, started at
    (1, 0) with step halving; a is kept >= 1 / 1000 (scores never reverse their order).

    Args:
        weights: optional (n,) non-negative weights of the samples (default: equal).

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
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != len(x) or not np.all(np.isfinite(w)) or w.min() < 0 or w.sum() <= 0:
        raise ValueError(f'weights must be {len(x)} finite non-negative numbers, not all 0')
    w = w / w.sum()
    features = np.stack([x, np.ones_like(x)], axis=1)

    def loss(params: np.ndarray) -> float:
        z = features @ params
        return float(np.sum(w * (np.logaddexp(0.0, z) - y * z)))

    params = np.array([1.0, 0.0])
    current = loss(params)
    for _ in range(max_iter):
        p = 0.5 * (1.0 + np.tanh(0.5 * (features @ params)))
        grad = features.T @ (w * (p - y))
        hess = (features * (w * p * (1 - p))[:, None]).T @ features + 1e-9 * np.eye(2)
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


def texture_features(trunk: torch.Tensor) -> torch.Tensor:
    """Per-channel mean absolute difference of horizontally, then of vertically
    neighbouring cells of trunk maps (S, C, G, G): (S, 2C) tensor."""
    across = (trunk[:, :, :, 1:] - trunk[:, :, :, :-1]).abs().mean(dim=(2, 3))
    down = (trunk[:, :, 1:, :] - trunk[:, :, :-1, :]).abs().mean(dim=(2, 3))
    return torch.cat([across, down], dim=1)


GATE_STATISTICS: dict[str, tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = {
    'pooled': ('trunk channel mean and std', pooled_features),
    'texture': ('trunk channel mean absolute neighbour difference', texture_features),
}
"""Gate statistics by name: (description stored in the model file, function of the trunk
map (S, C, G, G) -> (S, 2C))."""

GATE_KEYS = {'pooled': 'novelty', 'texture': 'novelty_texture'}
"""The ``meta`` key of each statistic's gate."""


@dataclass(frozen=True, eq=False)
class NoveltyGate:
    """Squared Mahalanobis distance of a trunk statistic, and its abstention threshold.

    Attributes:
        mean: (D,) float64 mean of the fitted features.
        precision: (D, D) float64 inverse of their (shrunk) covariance.
        threshold: distances above it abstain.
        info: how and on what it was fitted (JSON-like pairs).
        statistic: a name of ``GATE_STATISTICS``.
    """

    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    info: tuple = ()
    statistic: str = 'pooled'

    def __post_init__(self) -> None:
        d = len(self.mean)
        if self.statistic not in GATE_STATISTICS:
            raise ValueError(f'novelty gate: unknown statistic {self.statistic!r:.40}, not one '
                             f'of {", ".join(GATE_STATISTICS)}')
        if self.mean.ndim != 1 or not 0 < d <= MAX_GATE_DIM or self.precision.shape != (d, d):
            raise ValueError(f'novelty gate: mean must be (D,) with D <= {MAX_GATE_DIM} and '
                             f'precision (D, D), got {self.mean.shape} and '
                             f'{self.precision.shape}')
        if not (np.isfinite(self.mean).all() and np.isfinite(self.precision).all()
                and math.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError('novelty gate: mean, precision and threshold must be finite, '
                             'threshold positive')

    def features(self, trunk: torch.Tensor) -> np.ndarray:
        """The gate's statistic (S, D) float64 of trunk maps (S, C, G, G)."""
        values = GATE_STATISTICS[self.statistic][1](trunk)
        if values.shape[1] != len(self.mean):
            raise ValueError(f'novelty gate {self.statistic!r} holds {len(self.mean)} features, '
                             f'the model gives {values.shape[1]}: gate and model do not match')
        return values.cpu().numpy().astype(np.float64)

    def distances(self, pooled: ArrayLike) -> np.ndarray:
        """Squared Mahalanobis distances (S,) float64 of statistics (S, D)."""
        x = np.asarray(pooled, dtype=np.float64).reshape(-1, len(self.mean)) - self.mean
        return np.einsum('ij,jk,ik->i', x, self.precision, x)

    def to_meta(self) -> dict[str, Any]:
        """JSON-like dict for a model file's ``meta[GATE_KEYS[statistic]]``."""
        return {'features': GATE_STATISTICS[self.statistic][0], 'mean': self.mean.tolist(),
                'precision': self.precision.tolist(), 'threshold': float(self.threshold),
                **dict(self.info)}

    @classmethod
    def from_meta(cls, meta: Optional[Mapping[str, Any]],
                  statistic: str = 'pooled') -> Optional['NoveltyGate']:
        """The gate of ``statistic`` in a model's metadata, or None when there is none.

        Raises:
            ValueError: a stored gate that is malformed or out of bounds.
        """
        key = GATE_KEYS[statistic]
        data = (meta or {}).get(key)
        if data is None:
            return None
        try:
            if data['features'] != GATE_STATISTICS[statistic][0]:
                raise ValueError(f"features {data['features']!r:.60} are not "
                                 f'{GATE_STATISTICS[statistic][0]!r}')
            mean, precision = data['mean'], data['precision']
            if not (isinstance(mean, list) and isinstance(precision, list)
                    and 0 < len(mean) <= MAX_GATE_DIM and len(precision) == len(mean)
                    and all(isinstance(row, list) and len(row) == len(mean)
                            for row in precision)):
                raise ValueError(f'mean must be a list of D <= {MAX_GATE_DIM} numbers and '
                                 f'precision D lists of D')
            info = tuple((k, v) for k, v in data.items()
                         if k not in ('features', 'mean', 'precision', 'threshold'))
            return cls(np.asarray(mean, dtype=np.float64),
                       np.asarray(precision, dtype=np.float64),
                       _number(data, 'threshold', key), info, statistic)
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"meta['{key}'] is malformed: {error}") from None


def gates_from_meta(meta: Optional[Mapping[str, Any]]) -> tuple[NoveltyGate, ...]:
    """Every gate stored in a model's metadata, 'pooled' first (ValueError: malformed)."""
    gates = (NoveltyGate.from_meta(meta, name) for name in GATE_STATISTICS)
    return tuple(gate for gate in gates if gate is not None)


def gate_verdict(gates: Sequence[NoveltyGate], trunk: torch.Tensor) -> tuple[float, str]:
    """(novelty, reason) of one image's trunk map (1, C, G, G) under ``gates``.

    novelty: the first gate's distance (NaN without gates); reason: '' when every gate
    passes the image, else which distance exceeds which threshold.
    """
    novelty, reasons = math.nan, []
    for k, gate in enumerate(gates):
        distance = float(gate.distances(gate.features(trunk))[0])
        novelty = distance if k == 0 else novelty
        if distance > gate.threshold:
            reasons.append(f'{gate.statistic} novelty {distance:.1f} > threshold '
                           f'{gate.threshold:.1f}')
    return novelty, '; '.join(reasons)


def fit_novelty_gate(fit_features: ArrayLike, held_features: ArrayLike, quantile: float,
                     shrinkage: float = 0.01, info: tuple = (),
                     statistic: str = 'pooled') -> 'NoveltyGate':
    """Gate from a statistic (``GATE_STATISTICS``) of training-shape scenes.

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
    gate = NoveltyGate(mean, np.linalg.inv(cov), 1.0, statistic=statistic)
    threshold = float(np.quantile(gate.distances(held_features), quantile))
    return NoveltyGate(mean, gate.precision, threshold,
                       tuple(info) + (('quantile', float(quantile)),
                                      ('shrinkage', float(shrinkage))), statistic)
