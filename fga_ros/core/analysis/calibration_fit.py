"""Fitting and measuring the calibration and the novelty gates on simulator scenes.

Scenes: calibration scenes have seeds in ``[CALIBRATION_SEED_BASE, CALIBRATION_SEED_BASE +
2^62)``, disjoint from the training scenes (``[0, 2^62)``) and from the evaluation scenes
(``[2^62, 2^63)``, :func:`evaluation_scenes`). Only training shapes are ever fitted on; the
held-out Box is measured, never fitted.

Two calibration sets per training shape: *familiar* scenes (:func:`calibration_scenes`, the
training distribution) and *novel* ones (:func:`novel_scenes`: the same family with its
geometry drawn beyond the training ranges, objects the model has never seen, standing in
for unseen shapes). Platt scaling is fitted on both, the novel set weighing
``NOVEL_SHARE`` of the likelihood: a model's critic is over-confident on objects it has
not learned, and a calibration fitted on familiar scenes alone carries that into every
unseen shape (measured in the README). The fit is then checked family by family
(:func:`choose_scaling`): fitted on the other families, is it better calibrated on the
left-out family's novel scenes than the critic's own probability? If not, the identity
scaling (T = 1, b = 0) is stored.

Calibration samples: for each scene, the actor samples a proposal scores (those kept after the
density rejection, ``CALIBRATION_SAMPLES`` of them drawn), their critic logits
averaged over the image's ``CALIBRATION_TURNS``, labelled by the simulator's
``grasp_success``. The
novelty gates are fitted on the trunk statistics of half of the familiar scenes, their
thresholds taken at ``GATE_QUANTILE`` of the other half's distances.
"""

from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional, Sequence
import zlib

import numpy as np
import torch

from fga_ros.core.analysis.evaluation import EVAL_SEED_BASE, evaluation_scenes
from fga_ros.core.common.actions import decode_actor, normalise_actor_output
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.common.tensors import images_to_tensor, make_generator
from fga_ros.core.inference.calibration import (
    GATE_STATISTICS,
    QUARTER_TURNS,
    Calibration,
    NoveltyGate,
    expected_calibration_error,
    fit_novelty_gate,
    fit_platt,
    reliability_bins,
)
from fga_ros.core.inference.defaults import REJECT_FRACTION
from fga_ros.core.inference.density import num_to_reject, self_log_density
from fga_ros.sim import Scene, grasp_success, load_world, make_scene, render

if TYPE_CHECKING:
    from fga_ros.core.inference.proposer import Proposer
    from fga_ros.core.models.networks import Network

CALIBRATION_SEED_BASE = 2 ** 63
"""Smallest calibration scene seed (above every evaluation seed)."""

CALIBRATION_SCENES = 300
"""Familiar and novel calibration scenes per training shape drawn by ``fga calibrate``."""

MIN_CALIBRATION_SCENES, MAX_CALIBRATION_SCENES = 8, 5000
"""Bounds of ``fga calibrate --scenes`` (fewer leave the gates' thresholds to a handful of
scenes; more would take a day and tens of GiB for the samples)."""

CALIBRATION_SAMPLES = 512
"""Actor samples drawn per scene for the calibration samples (the default request's count
when the bundled model was calibrated; ``defaults.MIN_CANDIDATES`` is the request's own)."""

GATE_QUANTILE = 0.995
"""Quantile of held-out in-distribution novelty distances used as the gates' thresholds."""

CALIBRATION_TURNS = QUARTER_TURNS
"""Views of a fitted calibration: the image turned by 0, 1, 2 and 3 quarter turns (measured
in the README against colour views, both together and mirror images). A model whose
``table_images`` are not the table (heat maps in camera pixels) gets the image alone."""

FAMILIAR_ECE_LIMIT = 0.02
"""Largest left-out family's familiar-scene ECE a scaling may have to be chosen
(:func:`choose_scaling`)."""

NOVEL_WIDEN = 1.0
"""Novel scenes: each geometry parameter drawn from its training range [lo, hi] widened by
NOVEL_WIDEN * (hi - lo) on either side (the low end at least lo / 2)."""

NOVEL_SHARE = 0.5
"""Share of the calibration likelihood carried by the novel scenes."""


def calibration_scenes(shape: str, count: int, seed: int = 0) -> list[Scene]:
    """``count`` calibration scenes of ``shape`` (deterministic for ``seed``)."""
    rng = np.random.default_rng([seed, zlib.crc32(shape.encode('utf-8')), 7])
    offsets = rng.integers(0, EVAL_SEED_BASE, size=count)
    return [make_scene(shape, CALIBRATION_SEED_BASE + int(k)) for k in offsets]


def novel_scenes(shape: str, count: int, seed: int = 0) -> list[Scene]:
    """``count`` calibration-range scenes of training family ``shape`` with novel geometry
    (``NOVEL_WIDEN``): every parameter drawn from its widened range, at least one outside
    the training range; pose and colours from the scene's seed (deterministic for
    ``seed``)."""
    family = load_world().family(shape)
    rng = np.random.default_rng([seed, zlib.crc32(shape.encode('utf-8')), 11])
    scenes = []
    for base in calibration_scenes(shape, count, seed + 1):
        while True:
            params, novel = {}, False
            for name, (lo, hi) in family.param_ranges:
                spread = NOVEL_WIDEN * (hi - lo)
                value = float(rng.uniform(max(lo - spread, 0.5 * lo), hi + spread))
                novel |= not lo <= value <= hi
                params[name] = value
            if novel:
                break
        scenes.append(make_scene(shape, base.seed, params=params))
    return scenes


class Candidates(NamedTuple):
    """Scored default-proposal candidates of a list of scenes."""

    logits: np.ndarray
    """(N,) float64 critic logits, averaged over the calibration's views"""
    feasible: np.ndarray
    """(N,) bool simulator outcomes"""
    owner: np.ndarray
    """(N,) int64 scene index of each candidate"""
    statistics: dict
    """{gate statistic name: (len(scenes), D) float64} of each scene's trunk map"""


def candidate_logits(model: 'Network', config: TrainConfig, scenes: Sequence[Scene],
                     seed: int = 0, calibration: Optional[Calibration] = None,
                     num_sampled: int = CALIBRATION_SAMPLES,
                     reject_fraction: float = REJECT_FRACTION) -> Candidates:
    """Critic logits (over ``calibration``'s views; default: the image alone), outcomes and
    trunk statistics of default-proposal candidates."""
    calibration = calibration or Calibration()
    device = next(model.parameters()).device
    generator = make_generator(device, seed=seed)
    logits, labels, owner = [], [], []
    statistics: dict[str, list] = {name: [] for name in GATE_STATISTICS}
    keep_count = num_sampled - num_to_reject(num_sampled, reject_fraction)
    with torch.inference_mode():
        for i, scene in enumerate(scenes):
            features = model.features(images_to_tensor(render(scene), model.input_size,
                                                       device))
            out = model.sample(features, num_sampled, generator)[0]
            keep = torch.topk(self_log_density(out, config.kde_bandwidth), keep_count).indices
            inputs = normalise_actor_output(out[keep])
            logit = calibration.logits(model, features, inputs)
            actions = decode_actor(inputs).cpu().numpy().astype(np.float64)
            logits.append(logit.cpu().numpy().astype(np.float64))
            labels.append(grasp_success(scene, actions))
            owner.append(np.full(len(actions), i))
            for name, (_, function) in GATE_STATISTICS.items():
                statistics[name].append(function(features.trunk).cpu().numpy()
                                        .astype(np.float64))
    return Candidates(np.concatenate(logits), np.concatenate(labels), np.concatenate(owner),
                      {k: np.concatenate(v) for k, v in statistics.items()})


def _platt(sets: dict[str, list[Candidates]], keep: Sequence[int]) -> tuple[float, float]:
    """Platt (temperature, bias) on the familiar and novel sets of the shapes at ``keep``,
    the novel ones weighing ``NOVEL_SHARE``."""
    share = {'familiar': 1.0 - NOVEL_SHARE, 'novel': NOVEL_SHARE}
    logits, labels, weights = [], [], []
    for name, found in sets.items():
        x = np.concatenate([found[k].logits for k in keep])
        logits.append(x)
        labels.append(np.concatenate([found[k].feasible for k in keep]))
        weights.append(np.full(len(x), share[name] / len(x)))
    return fit_platt(np.concatenate(logits), np.concatenate(labels),
                     weights=np.concatenate(weights))


def choose_scaling(sets: dict[str, list[Candidates]]) -> tuple[tuple[float, float], dict]:
    """Platt scaling fitted on every shape, or the identity (1, 0), by leave-one-family-out.

    For each shape, a fit on the other shapes and the identity are scored on the left-out
    shape's familiar and novel sets. Kept: of the two whose left-out familiar ECE stays within
    ``FAMILIAR_ECE_LIMIT`` on every shape, the one with the lower mean left-out novel ECE
    (the fit when neither or fewer than two shapes). Returns ((temperature, bias), report
    {'kept': 'fitted' | 'identity', per choice: {'familiar', 'novel'} lists of ECEs}).
    """
    count = len(sets['familiar'])
    fitted = _platt(sets, range(count))
    if count < 2:
        return fitted, {'kept': 'fitted'}
    ece: dict[str, dict[str, list[float]]] = {
        choice: {'familiar': [], 'novel': []} for choice in ('fitted', 'identity')}
    for out in range(count):
        scalings = {'fitted': _platt(sets, [k for k in range(count) if k != out]),
                    'identity': (1.0, 0.0)}
        for choice, scaling in scalings.items():
            score = Calibration(*scaling).scores
            for name in ('familiar', 'novel'):
                found = sets[name][out]
                ece[choice][name].append(expected_calibration_error(score(found.logits),
                                                                    found.feasible))
    eligible = [c for c in ece if max(ece[c]['familiar']) <= FAMILIAR_ECE_LIMIT] or ['fitted']
    kept = min(eligible, key=lambda c: float(np.mean(ece[c]['novel'])))
    return (fitted if kept == 'fitted' else (1.0, 0.0)), {'kept': kept, **ece}


def calibration_turns(model: 'Network') -> tuple[int, ...]:
    """The quarter turns a calibration of ``model`` averages over: ``CALIBRATION_TURNS``
    when its ``table_images`` are the table seen from above, else the image alone (0,)."""
    return CALIBRATION_TURNS if model.reads_the_table else (0,)


def min_scenes(config: TrainConfig, num_shapes: int) -> int:
    """Fewest calibration scenes per shape the novelty gates can be fitted on: half of them
    (over all shapes) must outnumber a gate statistic's 2C features (C = embed_channels)."""
    return 2 * (2 * config.embed_channels // max(1, num_shapes) + 1)


def fit_calibration(model: 'Network', config: TrainConfig, shapes: Sequence[str],
                    scenes_per_shape: int = CALIBRATION_SCENES, seed: int = 0,
                    progress: Optional[Callable[[int, int], Any]] = None
                    ) -> tuple[Calibration, tuple[NoveltyGate, ...], dict[str, Any]]:
    """Fit the scaling (familiar and novel scenes, :func:`choose_scaling`) and the novelty
    gates (familiar scenes) of ``shapes``.

    Args:
        shapes: training shapes only (the caller refuses held-out ones).
        progress: optional callable(done, total) after each shape.

    Returns:
        (Calibration, gates (one per ``GATE_STATISTICS``), report dict with the fit's sample
        counts, ECEs and the leave-one-family-out choice).
    """
    turns = calibration_turns(model)
    views = Calibration(turns=turns)
    needed = min_scenes(config, len(shapes))
    if scenes_per_shape < needed:
        raise ValueError(f'{scenes_per_shape} calibration scenes per shape are too few for '
                         f'{len(shapes)} shape(s): the novelty gates are fitted on half of '
                         f'them and need more than their {2 * config.embed_channels} '
                         f'features; use at least {needed} (fga calibrate --scenes)')
    sets: dict[str, list[Candidates]] = {'familiar': [], 'novel': []}
    for k, shape in enumerate(shapes):
        sets['familiar'].append(candidate_logits(
            model, config, calibration_scenes(shape, scenes_per_shape, seed), seed + k, views))
        sets['novel'].append(candidate_logits(
            model, config, novel_scenes(shape, scenes_per_shape, seed), seed + 100 + k, views))
        if progress:
            progress(k + 1, len(shapes))
    (temperature, bias), choice = choose_scaling(sets)
    info = (('shapes', list(shapes)), ('scenes_per_shape', int(scenes_per_shape)),
            ('samples', int(sum(len(c.logits) for found in sets.values() for c in found))),
            ('seed', int(seed)), ('novel_share', NOVEL_SHARE), ('novel_widen', NOVEL_WIDEN),
            ('kept', choice['kept']))
    calibration = Calibration(temperature, bias, info, turns=turns)
    gates = []
    for name in GATE_STATISTICS:
        values = [c.statistics[name] for c in sets['familiar']]
        gates.append(fit_novelty_gate(
            np.concatenate([v[:len(v) // 2] for v in values]),
            np.concatenate([v[len(v) // 2:] for v in values]), GATE_QUANTILE,
            info=info[:2] + (('seed', int(seed)),), statistic=name))
    report: dict[str, Any] = {'samples': dict(info)['samples'], 'temperature': temperature,
                              'bias': bias, 'gate_thresholds': [g.threshold for g in gates],
                              'choice': choice}
    for name, found in sets.items():
        x = np.concatenate([c.logits for c in found])
        y = np.concatenate([c.feasible for c in found])
        report[name] = {'samples': int(len(x)), 'feasible': float(y.mean()),
                        'ece_raw': expected_calibration_error(1.0 / (1.0 + np.exp(-x)), y),
                        'ece_fit': expected_calibration_error(calibration.scores(x), y)}
    return calibration, tuple(gates), report


def measure_calibration(proposer: 'Proposer', shapes: Sequence[str], states: int,
                        seed: int = 0) -> dict[str, dict[str, Any]]:
    """ECE and reliability bins of the proposer's calibrated scores on evaluation scenes.

    Returns:
        ``{shape: {'ece', 'ece_raw' (the critic on the image alone), 'samples', 'feasible',
        'bins': reliability_bins dict as lists}}``.
    """
    state = proposer.snapshot()
    out = {}
    for k, shape in enumerate(shapes):
        scenes = evaluation_scenes(shape, states, seed)
        found = candidate_logits(state.model, state.config, scenes, seed + 1000 + k,
                                 state.calibration)
        raw = candidate_logits(state.model, state.config, scenes, seed + 1000 + k).logits
        scores = state.calibration.scores(found.logits)
        bins = reliability_bins(scores, found.feasible)
        out[shape] = {
            'ece': expected_calibration_error(scores, found.feasible),
            'ece_raw': expected_calibration_error(1.0 / (1.0 + np.exp(-raw)), found.feasible),
            'samples': int(len(found.feasible)), 'feasible': float(np.mean(found.feasible)),
            'bins': {name: [float(v) for v in value] for name, value in bins.items()},
        }
    return out
