"""Fitting and measuring the calibration and the novelty gate on simulator scenes.

Scenes: calibration scenes have seeds in ``[CALIBRATION_SEED_BASE, CALIBRATION_SEED_BASE +
2^62)``, disjoint from the training scenes (``[0, 2^62)``) and from the evaluation scenes
(``[2^62, 2^63)``, :func:`evaluation_scenes`). Only training shapes are ever fitted on; the
held-out Box is measured, never fitted.

Calibration samples: for each scene, the candidates a default proposal scores (actor samples
kept after the density rejection, ``MIN_CANDIDATES`` of them drawn), labelled by the
simulator's ``grasp_success``. The novelty gate is fitted on the pooled trunk features of
half of the scenes, its threshold taken at ``GATE_QUANTILE`` of the other half's distances.
"""

from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence
import zlib

import numpy as np
import torch

from fga_ros.core.analysis.evaluation import EVAL_SEED_BASE, evaluation_scenes
from fga_ros.core.common.actions import decode_actor, normalise_actor_output
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.common.tensors import images_to_tensor, make_generator
from fga_ros.core.inference.calibration import (
    Calibration,
    NoveltyGate,
    expected_calibration_error,
    fit_novelty_gate,
    fit_platt,
    pooled_features,
    reliability_bins,
)
from fga_ros.core.inference.defaults import MIN_CANDIDATES, REJECT_FRACTION
from fga_ros.core.inference.density import num_to_reject, self_log_density
from fga_ros.sim import Scene, grasp_success, make_scene, render

if TYPE_CHECKING:
    from fga_ros.core.inference.proposer import Proposer
    from fga_ros.core.models.networks import Network

CALIBRATION_SEED_BASE = 2 ** 63
"""Smallest calibration scene seed (above every evaluation seed)."""

CALIBRATION_SCENES = 300
"""Calibration scenes per training shape drawn by ``fga calibrate``."""

GATE_QUANTILE = 0.995
"""Quantile of held-out in-distribution novelty distances used as the gate's threshold."""


def calibration_scenes(shape: str, count: int, seed: int = 0) -> list[Scene]:
    """``count`` calibration scenes of ``shape`` (deterministic for ``seed``)."""
    rng = np.random.default_rng([seed, zlib.crc32(shape.encode('utf-8')), 7])
    offsets = rng.integers(0, EVAL_SEED_BASE, size=count)
    return [make_scene(shape, CALIBRATION_SEED_BASE + int(k)) for k in offsets]


def candidate_logits(model: 'Network', config: TrainConfig, scenes: Sequence[Scene],
                     seed: int = 0, num_sampled: int = MIN_CANDIDATES,
                     reject_fraction: float = REJECT_FRACTION
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw critic logits, outcomes and pooled features of default-proposal candidates.

    Returns:
        (logits (N,) float64, feasible (N,) bool, scene index (N,) int64, pooled features
        (len(scenes), D) float64).
    """
    device = next(model.parameters()).device
    generator = make_generator(device, seed=seed)
    logits, labels, owner, pooled = [], [], [], []
    keep_count = num_sampled - num_to_reject(num_sampled, reject_fraction)
    with torch.inference_mode():
        for i, scene in enumerate(scenes):
            features = model.features(images_to_tensor(render(scene), config.image_size,
                                                       device))
            out = model.sample(features, num_sampled, generator)[0]
            keep = torch.topk(self_log_density(out, config.kde_bandwidth), keep_count).indices
            inputs = normalise_actor_output(out[keep])
            logit = model.score(features, inputs[None])[0]
            actions = decode_actor(inputs).cpu().numpy().astype(np.float64)
            logits.append(logit.cpu().numpy().astype(np.float64))
            labels.append(grasp_success(scene, actions))
            owner.append(np.full(len(actions), i))
            pooled.append(pooled_features(features.trunk).cpu().numpy().astype(np.float64))
    return (np.concatenate(logits), np.concatenate(labels), np.concatenate(owner),
            np.concatenate(pooled))


def fit_calibration(model: 'Network', config: TrainConfig, shapes: Sequence[str],
                    scenes_per_shape: int = CALIBRATION_SCENES, seed: int = 0,
                    progress: Optional[Callable[[int, int], Any]] = None
                    ) -> tuple[Calibration, NoveltyGate, dict[str, Any]]:
    """Fit Platt scaling and the novelty gate on calibration scenes of ``shapes``.

    Args:
        shapes: training shapes only (the caller refuses held-out ones).
        progress: optional callable(done, total) after each shape.

    Returns:
        (Calibration, NoveltyGate, report dict with the fit's sample counts and ECEs).
    """
    logit_parts: list[np.ndarray] = []
    label_parts: list[np.ndarray] = []
    pooled_fit: list[np.ndarray] = []
    pooled_held: list[np.ndarray] = []
    for k, shape in enumerate(shapes):
        scenes = calibration_scenes(shape, scenes_per_shape, seed)
        logit, label, _, pooled = candidate_logits(model, config, scenes, seed=seed + k)
        logit_parts.append(logit)
        label_parts.append(label)
        half = len(pooled) // 2
        pooled_fit.append(pooled[:half])
        pooled_held.append(pooled[half:])
        if progress:
            progress(k + 1, len(shapes))
    logits, labels = np.concatenate(logit_parts), np.concatenate(label_parts)
    temperature, bias = fit_platt(logits, labels)
    info = (('shapes', list(shapes)), ('scenes_per_shape', int(scenes_per_shape)),
            ('samples', int(len(logits))), ('seed', int(seed)))
    calibration = Calibration(temperature, bias, info)
    gate = fit_novelty_gate(np.concatenate(pooled_fit), np.concatenate(pooled_held),
                            GATE_QUANTILE, info=info[:2] + (('seed', int(seed)),))
    raw = 1.0 / (1.0 + np.exp(-logits))
    report = {'samples': int(len(logits)), 'feasible': float(labels.mean()),
              'ece_raw': expected_calibration_error(raw, labels),
              'ece_fit': expected_calibration_error(calibration.scores(logits), labels),
              'temperature': temperature, 'bias': bias, 'gate_threshold': gate.threshold}
    return calibration, gate, report


def measure_calibration(proposer: 'Proposer', shapes: Sequence[str], states: int,
                        seed: int = 0) -> dict[str, dict[str, Any]]:
    """ECE and reliability bins of the proposer's calibrated scores on evaluation scenes.

    Returns:
        ``{shape: {'ece', 'ece_raw', 'samples', 'feasible', 'bins': reliability_bins dict
        as lists}}``.
    """
    state = proposer.snapshot()
    out = {}
    for k, shape in enumerate(shapes):
        scenes = evaluation_scenes(shape, states, seed)
        logits, labels, _, _ = candidate_logits(state.model, state.config, scenes,
                                                seed=seed + 1000 + k)
        scores = state.calibration.scores(logits)
        bins = reliability_bins(scores, labels)
        out[shape] = {
            'ece': expected_calibration_error(scores, labels),
            'ece_raw': expected_calibration_error(1.0 / (1.0 + np.exp(-logits)), labels),
            'samples': int(len(labels)), 'feasible': float(np.mean(labels)),
            'bins': {name: [float(v) for v in value] for name, value in bins.items()},
        }
    return out
