"""Where a spatial actor loses mode coverage: in its choice probabilities, in its placement,
or already in the critic it learns from (``fga choices``).

The spatial actor draws a choice c (a trunk cell, or a (cell, angle bin) pair) from
pi(c | s), then its MLP places the grasp within the choice's reach. The cell term of
training pulls pi towards the critic's feasibility mass per choice, p(c)
(``updates.cell_target``). Per scene, against the ground truth's mode shares s_m:

- **mode TV** of the actor's samples, ``1/2 sum_m |share_m - s_m|`` over its feasible
  samples (as ``coverage.scene_coverage``);
- **mode TV, choices from the target**: the same with each sample weighted by
  p(c) / pi(c), i.e. an estimate (importance sampling) of what the actor would give if its
  choices followed the critic's target and its placement stayed as it is. Much lower than
  the mode TV: the choice probabilities are what is off; about as high: the placement (or
  the critic) is. The weighting cannot reach choices no sample drew; their target mass is
  reported (``unsampled_target_mass``) and should be small for the estimate to hold;
- **choice TV**, ``1/2 sum_c |pi(c) - p(c)|`` (fine-grained: neighbouring cells may trade
  mass without changing any mode's share);
- **critic's mode TV**: the mode shares of the critic's own target density, uniform grasps
  over the workspace weighted by their feasibility (``feasibility.feasibility``), and that
  density's mass on infeasible grasps. A high value means the critic, not the actor, is
  what keeps the target from being met.
"""

from dataclasses import asdict, dataclass
import math
from typing import Any, Iterable, Optional

import numpy as np
from numpy.typing import ArrayLike
import torch
from tqdm import tqdm

from fga_ros.core.analysis.coverage import scene_coverage
from fga_ros.core.analysis.evaluation import MAX_STATES, evaluation_scenes
from fga_ros.core.common.actions import decode_actor, encode_actions
from fga_ros.core.common.checks import check_count
from fga_ros.core.common.tensors import images_to_tensor, model_device, sample_latent
from fga_ros.core.estimators.divergences import RADIUS_MEAN
from fga_ros.core.models.feasibility import feasibility
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.models.spatial_actor import SpatialActor, choose_cells
from fga_ros.core.training.updates import cell_target
from fga_ros.sim import Scene, ground_truth, render
from fga_ros.sim.workspace import uniform_actions

TARGET_POINTS = 64
"""Grasps per choice in the cell target p (training draws ``CELL_TARGET_POINTS`` a step)."""
UNIFORM_GRASPS = 20_000
"""Uniform grasps per scene for the critic's own mode shares."""
MAX_DIAGNOSIS_SAMPLES = 65_536
"""Most actor samples per scene accepted."""
COLUMNS = (('accuracy', 'acc %', 100.0),
           ('accuracy_target_choices', 'acc, target choices %', 100.0),
           ('mode_tv', 'mode TV', 1.0),
           ('mode_tv_target_choices', 'mode TV, target choices', 1.0),
           ('choice_tv', 'choice TV', 1.0),
           ('unsampled_target_mass', 'unsampled target', 1.0),
           ('critic_mode_tv', "critic's mode TV", 1.0),
           ('critic_infeasible_mass', "critic's infeasible mass", 1.0))
"""(figure, column heading, scale) of ``format_diagnosis``."""


@dataclass(frozen=True)
class ChoiceDiagnosis:
    """One scene's figures (module notes); fractions and distances in [0, 1]."""

    accuracy: float  # feasible fraction of the actor's samples
    accuracy_target_choices: float  # the same, samples weighted by p(c) / pi(c)
    mode_tv: float
    mode_tv_target_choices: float
    choice_tv: float
    unsampled_target_mass: float
    critic_mode_tv: float
    critic_infeasible_mass: float


def weighted_mode_shares(modes: ArrayLike, weights: ArrayLike, num_modes: int) -> np.ndarray:
    """Shares (K,) of modes 1..K among the feasible samples (mode > 0), each sample counted
    with its weight; all 0 when no weight falls on a feasible sample.

    Args:
        modes: (n,) int mode of each sample, 0 = infeasible (``GroundTruth.mode_of``).
        weights: (n,) non-negative weights.
        num_modes: K >= 1.
    """
    modes, weights = np.asarray(modes, dtype=np.int64), np.asarray(weights, dtype=np.float64)
    if modes.shape != weights.shape or modes.ndim != 1:
        raise ValueError('modes and weights must be 1-D arrays of one length')
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise ValueError('weights must be finite and >= 0')
    mass = np.bincount(modes, weights=weights, minlength=num_modes + 1)[1:num_modes + 1]
    total = mass.sum()
    return mass / total if total > 0 else np.zeros(num_modes)


def shares_tv(shares: ArrayLike, truth: ArrayLike) -> float:
    """``1/2 sum_m |shares_m - truth_m|``; 1 when ``shares`` are all 0 (nothing feasible)."""
    shares, truth = np.asarray(shares, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    return 1.0 if shares.sum() == 0 else float(0.5 * np.abs(shares - truth).sum())


def _spatial(model: Any) -> SpatialActor:
    if not isinstance(model, ActorCritic) or not isinstance(model.actor, SpatialActor):
        raise ValueError('the choice diagnosis needs a model with the spatial actor head '
                         '(actor_head: spatial)')
    return model.actor


def diagnose_scene(model: ActorCritic, scene: Scene, samples: int,
                   generator: torch.Generator, rng: np.random.Generator
                   ) -> Optional[ChoiceDiagnosis]:
    """The figures of one scene from ``samples`` actor samples; None when the scene has no
    feasible grasp. ``generator`` draws the latents and the target's grasps, ``rng`` the
    uniform grasps."""
    actor = _spatial(model)
    truth = ground_truth(scene)
    if not truth.num_modes:
        return None
    device = model_device(model)
    with torch.inference_mode():
        features = model.features(images_to_tensor(render(scene), model.input_size, device))
        log_pi = actor.cell_log_probs(features.trunk)  # (1, C)
        target = torch.zeros_like(log_pi)
        target[:, ~actor.unreachable] = cell_target(model, features, TARGET_POINTS,
                                                    generator).exp()
        z = sample_latent(1, samples, model.latent_dim, generator, device)
        choices = choose_cells(log_pi, z[..., 0])  # (1, n)
        actions = decode_actor(actor.place(features.trunk, choices, z[..., 1:]))[0]
        grasps = uniform_actions(UNIFORM_GRASPS, rng)
        inputs = torch.as_tensor(encode_actions(grasps), dtype=torch.float32, device=device)
        inputs[:, 2:] *= RADIUS_MEAN  # the radius weight's peak, as in the cell target
        critic = feasibility(model, features, inputs[None])[0].cpu().numpy()
    pi, p = log_pi[0].double().exp().cpu().numpy(), target[0].double().cpu().numpy()
    picked = choices[0].cpu().numpy()
    weights = p[picked] / pi[picked]
    modes = truth.mode_of(actions.cpu().numpy())
    uniform_modes = truth.mode_of(grasps)
    k = truth.num_modes
    return ChoiceDiagnosis(
        accuracy=float((modes > 0).mean()),
        accuracy_target_choices=float(weights[modes > 0].sum() / max(weights.sum(), 1e-300)),
        mode_tv=scene_coverage(modes, truth.mode_shares).tv,
        mode_tv_target_choices=shares_tv(weighted_mode_shares(modes, weights, k),
                                         truth.mode_shares),
        choice_tv=float(0.5 * np.abs(pi - p).sum()),
        unsampled_target_mass=float(np.delete(p, np.unique(picked)).sum()),
        critic_mode_tv=shares_tv(weighted_mode_shares(uniform_modes, critic, k),
                                 truth.mode_shares),
        critic_infeasible_mass=float(critic[uniform_modes == 0].sum()
                                     / max(critic.sum(), 1e-300)))


def summarise(scenes: Iterable[Optional[ChoiceDiagnosis]]) -> dict[str, float]:
    """Mean of each figure over the scenes with a feasible grasp (NaN when none)."""
    counted = [asdict(s) for s in scenes if s is not None]
    return {name: float(np.mean([s[name] for s in counted])) if counted else math.nan
            for name in ChoiceDiagnosis.__dataclass_fields__}


def diagnose(model: ActorCritic, shapes: Iterable[str], states: int, samples: int,
             seed: int = 0, progress: bool = True) -> dict[str, dict[str, float]]:
    """``summarise`` of ``diagnose_scene`` per shape over the evaluation scenes of ``fga
    eval`` with the same ``seed`` (``evaluation_scenes``).

    Returns:
        ``{shape: {figure: mean}}``, figures as the ``ChoiceDiagnosis`` fields.
    """
    _spatial(model)
    shapes = tuple(shapes)
    states = check_count('states', states, 1, MAX_STATES)
    samples = check_count('samples', samples, 1, MAX_DIAGNOSIS_SAMPLES)
    generator = torch.Generator(device=model_device(model)).manual_seed(seed)
    rng = np.random.default_rng(seed)
    out = {}
    with tqdm(total=len(shapes) * states, desc='diagnose', unit='state',
              disable=not progress) as bar:
        for shape in shapes:
            rows = []
            for scene in evaluation_scenes(shape, states, seed):
                rows.append(diagnose_scene(model, scene, samples, generator, rng))
                bar.update()
            out[shape] = summarise(rows)
    return out


def format_diagnosis(results: dict[str, dict[str, float]]) -> str:
    """A markdown table of ``diagnose``'s results, one row per shape."""
    lines = ['| shape | ' + ' | '.join(head for _, head, _ in COLUMNS) + ' |',
             '| --- ' * (len(COLUMNS) + 1) + '|']
    for shape, figures in results.items():
        cells = [f'{scale * figures[name]:.1f}' if scale != 1.0 else f'{figures[name]:.3f}'
                 for name, _, scale in COLUMNS]
        lines.append(f'| {shape} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
