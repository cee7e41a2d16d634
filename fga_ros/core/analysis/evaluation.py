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

Evaluation scenes never occur in training: their seeds lie in ``[2^62, 2^63)``, while the
training environment (``SimEnvironment``) draws scene seeds from ``[0, 2^62)``.
"""

import math
import zlib

import numpy as np
import torch
from tqdm import tqdm

from fga_ros.core.common.checks import check_count, check_fraction
from fga_ros.core.common.tensors import model_device
from fga_ros.core.inference.defaults import MAX_SAMPLES, REJECT_FRACTION
from fga_ros.core.inference.density import keep_densest
from fga_ros.core.inference.proposer import sample_with_density
from fga_ros.sim import grasp_success, ground_truth, make_scene, render, validate_actions
from fga_ros.sim.workspace import uniform_actions

EVAL_SEED_BASE = 2 ** 62
"""Smallest evaluation scene seed; training scene seeds are below it."""

MAX_STATES = 1_000_000
"""Largest number of scenes per shape accepted."""


def evaluation_scenes(shape, states, seed=0, distortion='none'):
    """The ``states`` evaluation scenes of ``shape`` for ``seed`` (deterministic list).

    Seeds are drawn from ``[EVAL_SEED_BASE, 2 * EVAL_SEED_BASE)`` by a generator seeded with
    ``(seed, crc32(shape))``.
    """
    rng = np.random.default_rng([seed, zlib.crc32(shape.encode('utf-8'))])
    offsets = rng.integers(0, EVAL_SEED_BASE, size=states)
    return [make_scene(shape, EVAL_SEED_BASE + int(k), distortion) for k in offsets]


def rank_shares(modes, num_modes):
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


def _pad_mean(rows):
    """Mean of 1-D arrays of different lengths, padded with 0 to the longest: list."""
    width = max((len(r) for r in rows), default=0)
    if not rows or width == 0:
        return []
    padded = np.zeros((len(rows), width))
    for i, row in enumerate(rows):
        padded[i, :len(row)] = row
    return [float(v) for v in padded.mean(axis=0)]


def _mean(values):
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def _check_samples(actions, log_density, n):
    actions = validate_actions(actions)
    log_density = np.asarray(log_density, dtype=np.float64)
    if actions.shape != (n, 3) or log_density.shape != (n,):
        raise ValueError(f'sampler must return actions ({n}, 3) and log-densities ({n},), got '
                         f'{actions.shape} and {log_density.shape}')
    return actions, log_density


def _summarise(rows, key):
    shares = [r[key] for r in rows]
    last = [r[key][-1] for r in rows if len(r[key]) and not np.isnan(r[key][-1])]
    return _pad_mean(shares), (float(np.mean(last)) if last else math.nan)


def evaluate(sampler, shapes, states, actions, distortion='none', seed=0,
             reject_fraction=REJECT_FRACTION, progress=True):
    """Accuracy and rank shares of ``sampler`` on fresh scenes of each shape (section 6).

    Args:
        sampler: any object with ``sample_actions(image (128, 128, 3) uint8, n) ->
            (actions (n, 3) px/rad, log_density (n,))``: a ``Proposer``, a ``CEMSampler``,
            a ``UniformSampler``. NaN densities make the ``_rejected`` metrics NaN.
        shapes: shape family names.
        states: scenes per shape (paper: 1024); actions: proposals per scene (paper: 1024).
        distortion: camera distortion of the scenes.
        seed: selects the evaluation scenes (``evaluation_scenes``).
        reject_fraction: share of lowest-density proposals dropped for ``_rejected``.
        progress: show a progress bar (rate, ETA) on stderr.

    Returns:
        ``{shape: {'accuracy', 'accuracy_rejected', 'rank_shares', 'rank_shares_rejected',
        'last_share', 'last_share_rejected', 'num_modes_mean', 'states', 'actions'}}``;
        rank shares are lists, best rank first; everything else is a float or int.
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
                rows.append(_scene_metrics(scene, acts, log_density, reject_fraction))
                bar.update(1)
            shares, last = _summarise(rows, 'shares')
            shares_rej, last_rej = _summarise(rows, 'shares_rejected')
            results[shape] = {
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
    return results


def _scene_metrics(scene, actions, log_density, reject_fraction):
    truth = ground_truth(scene)
    success = grasp_success(scene, actions)
    modes = truth.mode_of(actions)
    row = {'num_modes': truth.num_modes, 'accuracy': float(success.mean()),
           'shares': rank_shares(modes, truth.num_modes)}
    if np.isnan(log_density).any():
        row['accuracy_rejected'] = math.nan
        row['shares_rejected'] = np.full(truth.num_modes, math.nan)
    else:
        keep = keep_densest(log_density, reject_fraction)
        row['accuracy_rejected'] = float(success[keep].mean())
        row['shares_rejected'] = rank_shares(modes[keep], truth.num_modes)
    return row


def quick_accuracy(model, config, shapes, states, seed=0, reject_fraction=REJECT_FRACTION,
                   actions=None):
    """Accuracy with and without density rejection, for periodic evaluation in training.

    No ground truth is computed (only ``grasp_success``), so it is fast. The caller sets the
    model's mode (e.g. ``eval()``); sampling uses its own generator seeded with ``seed``.

    Args:
        model, config: the ``ActorCritic`` and its ``TrainConfig`` (image size, bandwidth,
            distortion, ``eval_actions``).
        shapes: shape family names; states: scenes per shape.
        actions: samples per scene (default ``config.eval_actions``).

    Returns:
        ``{'acc/<shape>': .., 'acc*/<shape>': .., ..., 'acc/mean': .., 'acc*/mean': ..}``,
        fractions in [0, 1]; the means are over shapes.
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
        plain, rejected = [], []
        for scene in evaluation_scenes(shape, states, seed, config.distortion):
            acts, log_density = sample_with_density(model, config, render(scene), n, generator)
            success = grasp_success(scene, acts)
            plain.append(success.mean())
            rejected.append(success[keep_densest(log_density, reject_fraction)].mean())
        out[f'acc/{shape}'] = float(np.mean(plain))
        out[f'acc*/{shape}'] = float(np.mean(rejected))
    out['acc/mean'] = float(np.mean([out[f'acc/{s}'] for s in shapes]))
    out['acc*/mean'] = float(np.mean([out[f'acc*/{s}'] for s in shapes]))
    return out


class UniformSampler:
    """Baseline sampler: grasps uniform over the workspace and [0, pi).

    Its density is the constant ``-log(2 * 2 * pi)`` (network units x_n, y_n, radians), so
    rejection drops an arbitrary subset and the '*' metrics equal the plain ones in
    expectation.
    """

    LOG_DENSITY = -math.log(4.0 * math.pi)

    def __init__(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def sample_actions(self, image, n):
        return uniform_actions(n, self.rng), np.full(n, self.LOG_DENSITY)


def _percent(value):
    return '   n/a' if value is None or math.isnan(value) else f'{100.0 * value:6.1f}'


def format_table(results):
    """Table 3's layout: shapes as rows; accuracy, accuracy*, least-ranked mode share,
    least-ranked mode share*, all in %, and the mean number of ground-truth modes.

    The least-ranked share is ``last_share`` (each scene's own least-visited mode).
    """
    header = f'{"shape":<8}{"acc %":>8}{"acc* %":>8}{"last %":>8}{"last* %":>9}{"modes":>7}'
    lines = [header, '-' * len(header)]
    columns = ('accuracy', 'accuracy_rejected', 'last_share', 'last_share_rejected')
    for shape, res in results.items():
        cells = ''.join(f'{_percent(res[c]):>8}' for c in columns[:3])
        lines.append(f'{shape:<8}{cells}{_percent(res[columns[3]]):>9}'
                     f'{res["num_modes_mean"]:7.1f}')
    if len(results) > 1:
        means = [_mean([r[c] for r in results.values()]) for c in columns]
        modes = float(np.mean([r['num_modes_mean'] for r in results.values()]))
        cells = ''.join(f'{_percent(m):>8}' for m in means[:3])
        lines.append(f'{"Avg":<8}{cells}{_percent(means[3]):>9}{modes:7.1f}')
    return '\n'.join(lines)
