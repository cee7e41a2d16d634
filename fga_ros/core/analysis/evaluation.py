"""Section 6 metrics: accuracy and ranked mode shares of a grasp sampler on simulator scenes.

For each shape, ``states`` random scenes are drawn and a sampler proposes ``actions`` grasps
per scene (paper: 1024 and 1024). Per scene:

- accuracy = feasible proposals / proposals (the simulator's ``grasp_success``);
- rank shares: proposals are counted per ground-truth mode (``GroundTruth.mode_of``, the
  connected components of the feasible set, alpha periodic), the counts sorted in
  descending order and divided by the number of proposals, so that
  ``sum(shares) + (1 - accuracy) = 1``; modes the sampler never hits count 0.

Per shape, accuracies are averaged over scenes, and the share vectors, padded with 0 to the
largest number of modes of the shape's scenes, are averaged rank by rank: the last entry is
the least-visited rank. Because scenes of one shape can have different numbers of modes,
the results also hold ``last_share``: the mean over scenes (with at least one mode) of each
scene's own least-visited mode share, the paper's 'ratio of the least frequent mode for
each state' (Table 3, bottom). Keys ending in ``_rejected`` are the same metrics after
dropping the ``reject_fraction`` lowest-density proposals of each scene (the paper's '*').
All shares and accuracies are fractions in [0, 1].

Mode coverage (``coverage.py`` defines it per scene): ``all_modes_hit`` (share of scenes in
which every mode gets a feasible sample), ``mode_recall`` (share of (scene, mode) pairs
whose share of the feasible samples is at least a quarter of the mode's share of the
feasible set), ``tv_distance`` (mean per-scene total-variation distance between the two,
0 = exactly the uniform target) and ``tv_floor`` (what an exactly uniform sampler would
score with the same number of feasible samples), each on the raw samples and, with
``_rejected``, on the samples kept by density rejection. A scene with no feasible sample
hits no mode, recalls none and counts TV = 1; scenes without a feasible grasp are left out.
``worst_scenes`` lists the ``WORST_SCENES`` scenes of worst raw coverage (lowest recall,
then highest TV) with their seeds, to look at with ``fga sim`` or ``fga eval --plots``.

Evaluation scenes never occur in training: their seeds lie in ``[2^62, 2^63)``, while the
training environment (``SimEnvironment``) draws scene seeds from ``[0, 2^62)``.
"""

from dataclasses import dataclass
import math
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Protocol
import zlib

import numpy as np
from numpy.typing import ArrayLike
import torch
from tqdm import tqdm

from fga_ros.core.analysis.coverage import (
    SceneCoverage,
    coverage_order,
    scene_coverage,
    summarise_coverage,
)
from fga_ros.core.common.checks import check_count, check_fraction
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.common.tensors import model_device
from fga_ros.core.inference.defaults import MAX_SAMPLES, PAPER_REJECT_FRACTION
from fga_ros.core.inference.density import keep_densest
from fga_ros.core.inference.proposer import Proposer, sample_with_density
from fga_ros.sim import (
    GroundTruth,
    Scene,
    grasp_success,
    ground_truth,
    heldout_shapes,
    make_scene,
    render,
    validate_actions,
)
from fga_ros.sim.workspace import uniform_actions

if TYPE_CHECKING:
    from fga_ros.core.models.networks import Network
    from fga_ros.core.training.trainer import Trainer

EVAL_SEED_BASE = 2 ** 62
"""Smallest evaluation scene seed; training scene seeds are below it."""

MAX_STATES = 1_000_000
"""Largest number of scenes per shape accepted."""

WORST_SCENES = 3
"""Scenes of worst coverage listed per shape in the results (``worst_scenes``)."""

COVERAGE_KEYS = ('all_modes_hit', 'mode_recall', 'tv_distance', 'tv_floor')
"""Coverage metrics per shape (``coverage.summarise_coverage``); each also ``_rejected``."""


class Sampler(Protocol):
    """What ``evaluate`` samples from: a ``Proposer``, a ``CEMSampler``, a
    ``UniformSampler``."""

    def sample_actions(self, image: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Actions (n, 3) px/rad and their log-densities (n,) for a camera image."""


def evaluation_scenes(shape: str, states: int, seed: int = 0,
                      distortion: str = 'none') -> list[Scene]:
    """The ``states`` evaluation scenes of ``shape`` for ``seed`` (deterministic list).

    Seeds are drawn from ``[EVAL_SEED_BASE, 2 * EVAL_SEED_BASE)`` by a generator seeded with
    ``(seed, crc32(shape))``.
    """
    rng = np.random.default_rng([seed, zlib.crc32(shape.encode('utf-8'))])
    offsets = rng.integers(0, EVAL_SEED_BASE, size=states)
    return [make_scene(shape, EVAL_SEED_BASE + int(k), distortion) for k in offsets]


def rank_shares(modes: ArrayLike, num_modes: int) -> np.ndarray:
    """Shares of proposals per ground-truth mode, sorted in descending order.

    Args:
        modes: (B,) int mode of each proposal (0 = infeasible, 1..num_modes).
        num_modes: number of modes of the scene.

    Returns:
        (num_modes,) float64 fractions of the B proposals; they sum to the accuracy.
    """
    modes = np.asarray(modes, dtype=np.int64)
    if modes.size == 0:
        raise ValueError('modes must hold at least one proposal')
    counts = np.bincount(modes, minlength=num_modes + 1)[1:num_modes + 1]
    return np.sort(counts)[::-1] / modes.size


def _pad_mean(rows: list[np.ndarray]) -> list[float]:
    """Mean of 1-D arrays of different lengths, padded with 0 to the longest: list."""
    width = max((len(r) for r in rows), default=0)
    if not rows or width == 0:
        return []
    padded = np.zeros((len(rows), width))
    for i, row in enumerate(rows):
        padded[i, :len(row)] = row
    return [float(v) for v in padded.mean(axis=0)]


def _mean(values: Iterable[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def _check_samples(actions: ArrayLike, log_density: ArrayLike,
                   n: int) -> tuple[np.ndarray, np.ndarray]:
    actions = validate_actions(actions)
    log_density = np.asarray(log_density, dtype=np.float64)
    if actions.shape != (n, 3) or log_density.shape != (n,):
        raise ValueError(f'sampler must return actions ({n}, 3) and log-densities ({n},), got '
                         f'{actions.shape} and {log_density.shape}')
    return actions, log_density


def _summarise(rows: list[dict[str, Any]], key: str) -> tuple[list[float], float]:
    shares = [r[key] for r in rows]
    last = [r[key][-1] for r in rows if len(r[key]) and not np.isnan(r[key][-1])]
    return _pad_mean(shares), (float(np.mean(last)) if last else math.nan)


def evaluate(sampler: Sampler, shapes: Iterable[str], states: int, actions: int,
             distortion: str = 'none', seed: int = 0,
             reject_fraction: float = PAPER_REJECT_FRACTION, progress: bool = True,
             on_scene: Optional[Callable[[str, Scene, np.ndarray, np.ndarray], Any]] = None
             ) -> dict[str, dict[str, Any]]:
    """Accuracy, rank shares and mode coverage of ``sampler`` on fresh scenes of each shape.

    Args:
        sampler: any object with ``sample_actions(image (128, 128, 3) uint8, n) ->
            (actions (n, 3) px/rad, log_density (n,))``: a ``Proposer``, a ``CEMSampler``,
            a ``UniformSampler``. NaN densities make the ``_rejected`` metrics NaN. Its
            randomness is its own: give it a seed for reproducible figures (``fga eval``
            seeds it with ``--seed``).
        shapes: shape family names.
        states: scenes per shape (paper: 1024); actions: proposals per scene (paper: 1024).
        distortion: camera distortion of the scenes.
        seed: selects the evaluation scenes (``evaluation_scenes``).
        reject_fraction: share of lowest-density proposals dropped for ``_rejected``.
        progress: show a progress bar (rate, ETA) on stderr.
        on_scene: optional ``callable(shape, scene, actions, log_density)`` called with each
            scene's samples (e.g. to keep them for figures).

    Returns:
        ``{shape: {'accuracy', 'accuracy_rejected', 'rank_shares', 'rank_shares_rejected',
        'last_share', 'last_share_rejected', 'num_modes_mean', 'states', 'actions',
        'all_modes_hit', 'mode_recall', 'tv_distance', 'tv_floor', (each also
        '_rejected'), 'worst_scenes'}}``; rank shares are lists, best rank first;
        ``worst_scenes`` is a list of dicts (``seed``, ``num_modes``, ``mode_shares``,
        ``sample_shares``, ``accuracy``, ``mode_recall``, ``tv_distance``); everything else
        is a float or int.
    """
    shapes = tuple(shapes)
    if not shapes:
        raise ValueError('shapes must name at least one shape')
    states = check_count('states', states, 1, MAX_STATES)
    actions = check_count('actions', actions, 1, MAX_SAMPLES)
    reject_fraction = check_fraction('reject_fraction', reject_fraction)
    results = {}
    with tqdm(total=len(shapes) * states, desc='evaluate', unit='state',
              disable=not progress) as bar:
        for shape in shapes:
            rows = []
            for scene in evaluation_scenes(shape, states, seed, distortion):
                acts, log_density = _check_samples(
                    *sampler.sample_actions(render(scene), actions), actions)
                if on_scene is not None:
                    on_scene(shape, scene, acts, log_density)
                rows.append(_scene_metrics(scene, acts, log_density, reject_fraction))
                bar.update(1)
            results[shape] = _shape_summary(rows, states, actions)
    return results


def _shape_summary(rows: list[dict[str, Any]], states: int, actions: int) -> dict[str, Any]:
    """One shape's entry of ``evaluate`` from the ``_scene_metrics`` rows of its scenes."""
    shares, last = _summarise(rows, 'shares')
    shares_rej, last_rej = _summarise(rows, 'shares_rejected')
    summary = {
        'accuracy': _mean([r['accuracy'] for r in rows]),
        'accuracy_rejected': _mean([r['accuracy_rejected'] for r in rows]),
        'rank_shares': shares,
        'rank_shares_rejected': shares_rej,
        'last_share': last,
        'last_share_rejected': last_rej,
        'num_modes_mean': float(np.mean([r['num_modes'] for r in rows])),
        'states': states,
        'actions': actions,
    }
    summary.update(summarise_coverage([r['coverage'] for r in rows]))
    rejected = summarise_coverage([r['coverage_rejected'] for r in rows])
    if any(math.isnan(r['accuracy_rejected']) for r in rows):
        rejected = dict.fromkeys(rejected, math.nan)
    summary.update({f'{k}_rejected': v for k, v in rejected.items()})
    summary['worst_scenes'] = _worst_scenes(rows)
    return summary


def _worst_scenes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i in coverage_order([r['coverage'] for r in rows])[:WORST_SCENES]:
        row, cov = rows[i], rows[i]['coverage']
        if cov is None:
            break
        out.append({'seed': row['seed'], 'num_modes': row['num_modes'],
                    'mode_shares': [float(v) for v in cov.mode_shares],
                    'sample_shares': [float(v) for v in cov.sample_shares],
                    'accuracy': row['accuracy'], 'mode_recall': cov.recall,
                    'tv_distance': cov.tv})
    return out


def _coverage(truth: GroundTruth, modes: np.ndarray) -> Optional[SceneCoverage]:
    return scene_coverage(modes, truth.mode_shares) if truth.num_modes else None


def _scene_metrics(scene: Scene, actions: np.ndarray, log_density: np.ndarray,
                   reject_fraction: float) -> dict[str, Any]:
    truth = ground_truth(scene)
    success = grasp_success(scene, actions)
    modes = truth.mode_of(actions)
    row = {'seed': scene.seed, 'num_modes': truth.num_modes,
           'accuracy': float(success.mean()),
           'shares': rank_shares(modes, truth.num_modes),
           'coverage': _coverage(truth, modes)}
    if np.isnan(log_density).any():
        row['accuracy_rejected'] = math.nan
        row['shares_rejected'] = np.full(truth.num_modes, math.nan)
        row['coverage_rejected'] = None
    else:
        keep = keep_densest(log_density, reject_fraction)
        row['accuracy_rejected'] = float(success[keep].mean())
        row['shares_rejected'] = rank_shares(modes[keep], truth.num_modes)
        row['coverage_rejected'] = _coverage(truth, modes[keep])
    return row


PERIODIC_COVERAGE = {'hit': 'all_modes_hit', 'recall': 'mode_recall', 'tv': 'tv_distance'}
"""Coverage metrics of the periodic evaluation: key prefix -> ``summarise_coverage`` key."""


def quick_metrics(model: 'Network', config: TrainConfig, shapes: Iterable[str],
                  states: int, seed: int = 0, reject_fraction: float = PAPER_REJECT_FRACTION,
                  actions: Optional[int] = None) -> dict[str, float]:
    """Accuracy with and without density rejection and the raw samples' mode coverage, for
    periodic evaluation in training.

    The ground truth of each scene (about 0.1 s) gives the coverage; the rank shares are
    left out. The caller sets the model's mode (e.g. ``eval()``); sampling uses its own
    generator seeded with ``seed``.

    Args:
        model, config: the ``ActorCritic`` (or ``HeatmapModel``) and its ``TrainConfig``
            (image size, bandwidth, distortion, ``eval_actions``).
        shapes: shape family names; states: scenes per shape.
        actions: samples per scene (default ``config.eval_actions``).

    Returns:
        ``{'acc/<shape>', 'acc*/<shape>', 'hit/<shape>', 'recall/<shape>', 'tv/<shape>',
        ..., and the same with '/mean'}``: accuracy, accuracy after rejection, all modes
        hit, mode recall and TV distance of the raw samples (module notes), fractions in
        [0, 1]; the means are over shapes.
    """
    shapes = tuple(shapes)
    if not shapes:
        raise ValueError('shapes must name at least one shape')
    states = check_count('states', states, 1, MAX_STATES)
    n = check_count('actions', config.eval_actions if actions is None else actions, 1,
                    MAX_SAMPLES)
    generator = torch.Generator(device=model_device(model)).manual_seed(seed)
    out = {}
    for shape in shapes:
        plain, rejected, coverage = [], [], []
        for scene in evaluation_scenes(shape, states, seed, config.distortion):
            acts, log_density = sample_with_density(model, config, render(scene), n, generator)
            success = grasp_success(scene, acts)
            plain.append(success.mean())
            rejected.append(success[keep_densest(log_density, reject_fraction)].mean())
            truth = ground_truth(scene)
            coverage.append(_coverage(truth, truth.mode_of(acts)))
        out[f'acc/{shape}'] = float(np.mean(plain))
        out[f'acc*/{shape}'] = float(np.mean(rejected))
        summary = summarise_coverage(coverage)
        for prefix, key in PERIODIC_COVERAGE.items():
            out[f'{prefix}/{shape}'] = summary[key]
    for prefix in ('acc', 'acc*', *PERIODIC_COVERAGE):
        out[f'{prefix}/mean'] = _mean([out[f'{prefix}/{s}'] for s in shapes])
    return out


@dataclass(frozen=True)
class ResampledSampler:
    """A ``Proposer``'s samples with chosen resampling settings, as a ``Sampler``
    (``Proposer.sample_actions``; ``resample`` 1: the actor's own samples)."""

    proposer: Proposer
    resample: int
    explore_share: float
    sharpness: float

    def sample_actions(self, image: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Actions (n, 3) px/rad and their log-densities (n,) for a camera image."""
        return self.proposer.sample_actions(image, n, resample=self.resample,
                                            explore_share=self.explore_share,
                                            sharpness=self.sharpness)


class UniformSampler:
    """Baseline sampler: grasps uniform over the workspace and [0, pi).

    Its density is the constant ``-log(2 * 2 * pi)`` (network units x_n, y_n, radians), so
    rejection drops an arbitrary subset and the '*' metrics equal the plain ones in
    expectation.
    """

    LOG_DENSITY = -math.log(4.0 * math.pi)

    def __init__(self, seed: Optional[int] = None) -> None:
        self.rng = np.random.default_rng(seed)

    def sample_actions(self, image: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` uniform actions (n, 3) and their constant log-density (n,)."""
        return uniform_actions(n, self.rng), np.full(n, self.LOG_DENSITY)


_TABLE_COLUMNS = (
    ('acc %', 'accuracy', 'percent'), ('acc* %', 'accuracy_rejected', 'percent'),
    ('last %', 'last_share', 'percent'), ('last* %', 'last_share_rejected', 'percent'),
    ('modes', 'num_modes_mean', 'count'), ('hit %', 'all_modes_hit', 'percent'),
    ('recall %', 'mode_recall', 'percent'), ('recall* %', 'mode_recall_rejected', 'percent'),
    ('TV', 'tv_distance', 'fraction'), ('TV*', 'tv_distance_rejected', 'fraction'),
    ('TV floor', 'tv_floor', 'fraction'),
)


def _cell(value: Optional[float], kind: str, width: int) -> str:
    if value is None or math.isnan(value):
        return f'{"n/a":>{width}}'
    if kind == 'percent':
        return f'{100.0 * value:{width}.1f}'
    return f'{value:{width}.1f}' if kind == 'count' else f'{value:{width}.3f}'


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Table 3's layout and the coverage: shapes as rows; accuracy, accuracy*, least-ranked
    mode share, least-ranked mode share* (in %), the mean number of ground-truth modes, then
    all modes hit, mode recall, mode recall* (in %), TV distance, TV distance* and the TV
    floor of an exactly uniform sampler (fractions). The last row averages the shapes.

    The least-ranked share is ``last_share`` (each scene's own least-visited mode).
    """
    widths = [max(8, len(name) + 2) for name, _, _ in _TABLE_COLUMNS]
    header = f'{"shape":<8}' + ''.join(
        f'{name:>{w}}' for (name, _, _), w in zip(_TABLE_COLUMNS, widths))
    lines = [header, '-' * len(header)]
    rows = list(results.items())
    if len(results) > 1:
        rows.append(('Avg', {key: _mean([r[key] for r in results.values()])
                             for _, key, _ in _TABLE_COLUMNS}))
    for shape, res in rows:
        lines.append(f'{shape:<8}' + ''.join(
            _cell(res[key], kind, w) for (_, key, kind), w in zip(_TABLE_COLUMNS, widths)))
    return '\n'.join(lines)


TRAINING_EVAL_SEED = 1_000_000
"""First scene seed of the periodic evaluation during training (``fga train --seed-eval``)."""


def periodic_evaluation(seed: int = TRAINING_EVAL_SEED
                        ) -> Callable[['Trainer'], dict[str, float]]:
    """The ``evaluate`` callable of ``Trainer.run`` used by ``fga train`` and trainer_node.

    It returns ``quick_metrics`` of the trainer's model on the run's training shapes and
    the held-out ones, ``config.eval_states`` scenes each from scene seed ``seed``.
    """
    def evaluate(trainer: 'Trainer') -> dict[str, float]:
        config = trainer.config
        shapes = config.shapes + tuple(s for s in heldout_shapes() if s not in config.shapes)
        return quick_metrics(trainer.model, config, shapes, config.eval_states, seed=seed)
    return evaluate
