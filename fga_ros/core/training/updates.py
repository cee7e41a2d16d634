"""One gradient step's worth of the training algorithm (Algorithm 1), as pure functions.

Each function takes the model, a batch and the config, and returns a loss tensor (and
numbers worth logging); the trainer owns optimisers, replay memory and the environment.
Shapes: K states per actor step, N actor samples per state, M = m N resampled points,
L experiences per critic step, U proposals per interaction.
"""

import math
from typing import Callable, Optional

import torch
from torch import Tensor

from fga_ros.core.common.actions import decode_actor, encode_actions, normalise_actor_output
from fga_ros.core.common.choices import F_DIVERGENCES
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.estimators.divergences import (
    RADIUS_MEAN,
    SCORE_FLOOR,
    categorical_divergence,
    choice_costs,
    choice_surrogate,
    critic_loss,
    f_divergence_surrogate,
    gan_actor_loss,
    me_actor_loss,
    radius_weight,
    target_log_density,
    target_log_density_at,
)
from fga_ros.core.estimators.kde import Bandwidth, kde_log_density, resample
from fga_ros.core.models.feasibility import feasibility
from fga_ros.core.models.heads import ImageFeatures
from fga_ros.core.models.heatmap_nets import HeatmapModel
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.models.networks import Network
from fga_ros.core.models.spatial_actor import REACH_CELLS, SpatialActor

CELL_TARGET_POINTS = 2
"""Critic evaluations per trunk cell and state in ``cell_target``."""


def f_divergence_loss(kind: str, supports: Tensor, g_fn: Callable[[Tensor], Tensor], m: int,
                      kde_bandwidth: Bandwidth, proposal_bandwidth: Bandwidth,
                      generator: Optional[torch.Generator] = None,
                      log_choice: Optional[Tensor] = None, choice_weight: float = 1.0
                      ) -> Tensor:
    """Surrogate loss of eq. 10 for KDE supports drawn from the actor (lines 23-32).

    Resamples m points around each support (bandwidth sigma'), evaluates the target weight
    ``g_fn`` there, estimates p (eq. 1, 11) and returns the surrogate whose gradient with
    respect to the supports is the f-divergence estimator. With ``log_choice`` (an actor
    with discrete choices, ``SpatialActor``) it adds the score-function term of the same
    divergence for those choices, f'(q/p) at the supports (``choice_costs``), times
    ``choice_weight``.

    Args:
        kind: one of F_DIVERGENCES.
        supports: (K, N, 4) actor outputs, differentiable w.r.t. the actor's parameters.
        g_fn: callable, resampled points (K, N * m, 4) -> target weights (K, N * m) in
            [0, 1], e.g. ``feasibility`` of the critic or the environment's outcomes.
        m: resampled points per support.
        kde_bandwidth, proposal_bandwidth: (4,) sigma and sigma'.
        generator: optional ``torch.Generator`` for the resampling noise.
        log_choice: optional (K, N) log-probabilities of the supports' discrete choices.
        choice_weight: weight of their score-function term (0: left out).

    Returns:
        scalar tensor.
    """
    points = resample(supports, m, proposal_bandwidth, generator)
    log_q = kde_log_density(points, supports, kde_bandwidth)
    log_q_prop = kde_log_density(points, supports.detach(), proposal_bandwidth)
    scores = g_fn(points)
    log_p = target_log_density(scores, log_q_prop)
    loss = f_divergence_surrogate(kind, log_q, log_q_prop.detach(), log_p)
    if log_choice is None or choice_weight == 0:
        return loss
    with torch.no_grad():
        own = supports.detach()
        log_p_own = target_log_density_at(g_fn(own), scores, log_q_prop)
        costs = choice_costs(kind, kde_log_density(own, own, kde_bandwidth), log_p_own)
    return loss + choice_weight * choice_surrogate(costs, log_choice)


def _spatial_actor(model: ActorCritic) -> SpatialActor:
    """The model's actor head, which the cell term needs to be the spatial one."""
    if not isinstance(model.actor, SpatialActor):
        raise ValueError('the cell term needs the spatial actor head (actor_head: spatial)')
    return model.actor


def cell_target(model: ActorCritic, features: ImageFeatures,
                points_per_cell: int = CELL_TARGET_POINTS,
                generator: Optional[torch.Generator] = None) -> Tensor:
    """Target probabilities of the spatial actor's reachable choices (cell, angle bin):
    the critic's feasibility mass of grasps centred in the cell with alpha in the bin, as
    log-probabilities (S, R), detached.

    Each choice gets ``points_per_cell`` grasps with centres uniform over its cell's square
    (one cell wide) and alpha uniform over its bin (all of [0, pi) with one bin) at the
    radius weight's peak r = RADIUS_MEAN; a choice's mass is their mean ``feasibility``
    (critic score, workspace indicator), raised to SCORE_FLOOR. R: choices not
    ``unreachable``, in index order.
    """
    actor = _spatial_actor(model)
    choices = torch.nonzero(~actor.unreachable).squeeze(1)  # (R,)
    centres = actor.centres[choices // actor.angle_bins]  # (R, 2)
    bins = (choices % actor.angle_bins).to(centres.dtype)
    num_states, count = features.num_states, centres.shape[0]
    u = torch.rand((num_states, count, points_per_cell, 3), generator=generator,
                   device=features.device)
    half_cell = 0.5 * actor.reach / REACH_CELLS
    xy = centres[None, :, None, :] + (2.0 * u[..., :2] - 1.0) * half_cell
    angle = 2.0 * math.pi * (bins[:, None] + u[..., 2]) / actor.angle_bins  # 2 alpha
    actions4 = torch.cat([xy, RADIUS_MEAN * torch.sin(angle)[..., None],
                          RADIUS_MEAN * torch.cos(angle)[..., None]], dim=-1)
    g = feasibility(model, features, actions4.reshape(num_states, -1, 4))
    log_mass = torch.log(g.reshape(num_states, count, -1).mean(-1).clamp_min(SCORE_FLOOR))
    return log_mass - torch.logsumexp(log_mass, dim=-1, keepdim=True)


def cell_fkl_loss(model: ActorCritic, features: ImageFeatures,
                  generator: Optional[torch.Generator] = None) -> Tensor:
    """Forward KL from ``cell_target`` to the spatial actor's choice probabilities pi (per
    cell, or per (cell, angle bin) with ``actor_angle_bins`` > 1), mean over states;
    differentiable w.r.t. the cell scorer.

    Its gradient on the logit of cell c is ``pi_c - p_c`` (a cross-entropy): unlike the
    score-function term of the sampled choices it reaches every cell, and a cell the actor
    never picks but the critic finds feasible is pulled up in proportion to its target
    mass p_c, however small pi_c is (mode covering).
    """
    actor = _spatial_actor(model)
    log_pi = actor.cell_log_probs(features.trunk.detach())[:, ~actor.unreachable]
    log_p = cell_target(model, features, generator=generator)
    return categorical_divergence('fkl', log_pi, log_p).mean()


def critic_step_loss(model: ActorCritic, images: Tensor, actions_px: Tensor,
                     labels: Tensor) -> tuple[Tensor, float]:
    """Class-balanced cross-entropy of the critic on replayed experiences (line 18).

    Args:
        images: (L, 3, H, W) uint8 tensor.
        actions_px: (L, k, 3) pixel actions tensor, k experiences per state.
        labels: (L, k) bool or {0, 1} tensor.

    Returns:
        (loss, accuracy): scalar loss tensor and the class-balanced batch accuracy (float).
    """
    features = model.features(images)
    logits = model.score(features, encode_actions(actions_px).float())
    loss = critic_loss(logits, labels)
    return loss, balanced_accuracy(logits, labels)


def heatmap_step_loss(model: HeatmapModel, images: Tensor, actions_px: Tensor,
                      labels: Tensor) -> tuple[Tensor, float]:
    """The heat-map baselines' cross-entropy on replayed experiences (appendix D.1): the
    class-balanced loss of ``critic_step_loss`` on the heat map's logits at the grasps.

    Args:
        images: (L, 3, H, W) uint8 tensor.
        actions_px: (L, k, 3) pixel actions tensor, k experiences per state.
        labels: (L, k) bool or {0, 1} tensor.

    Returns:
        (loss, accuracy) as in ``critic_step_loss``.
    """
    logits = model.logits_at(images, encode_actions(actions_px).float())
    return critic_loss(logits, labels), balanced_accuracy(logits, labels)


def balanced_accuracy(logits: Tensor, labels: Tensor) -> float:
    """Mean of the accuracies on positives and on negatives (a class absent is left out)."""
    correct = ((logits > 0) == labels.bool()).float()
    labels = labels.bool()
    rates = [correct[mask].mean().item() for mask in (labels, ~labels) if mask.any()]
    return sum(rates) / len(rates)


def discriminator_step_loss(model: ActorCritic, images: Tensor, actions_px: Tensor,
                            generator: Optional[torch.Generator] = None
                            ) -> tuple[Tensor, float]:
    """GAN discriminator loss (eq. 13): replayed successes are real, actor samples fake.

    Args:
        images: (L, 3, H, W) states of positive experiences.
        actions_px: (L, k, 3) their successful pixel actions; as many fakes are drawn.

    Returns:
        (loss, accuracy) as in ``critic_step_loss``.
    """
    features = model.features(images)
    real = encode_actions(actions_px).float()
    with torch.no_grad():
        fake = normalise_actor_output(model.sample(features, real.shape[1], generator))
    logits = model.score(features, torch.cat([real, fake], dim=1))  # (L, 2k)
    labels = torch.zeros_like(logits)
    labels[:, :real.shape[1]] = 1.0
    return critic_loss(logits, labels), balanced_accuracy(logits, labels)


def actor_step_loss(model: ActorCritic, config: TrainConfig, images: Tensor,
                    generator: Optional[torch.Generator] = None
                    ) -> tuple[Tensor, dict[str, float]]:
    """Actor loss for K states (Algorithm 1, lines 21-34; Table 2 for the baselines).

    For the f-divergences the value is a surrogate whose gradient is the estimator of
    eq. 10; the returned ``stats`` carry the mean critic score of the actor's samples. An
    actor with discrete choices (``SpatialActor``) also gets the score-function gradient
    of the same loss for them (``divergences.choice_surrogate``, times
    ``choice_surrogate_weight``) and, with
    ``cell_fkl_weight`` > 0, that weight times ``cell_fkl_loss``.

    Args:
        images: (K, 3, H, W) uint8 tensor of replayed states.

    Returns:
        (loss, stats dict of floats).
    """
    features = model.features(images).detach()
    kind = config.divergence
    samples, log_choice = model.sample_with_choice(features, config.num_supports, generator)
    if kind in F_DIVERGENCES:
        loss = f_divergence_loss(
            kind, samples, lambda points: feasibility(model, features, points),
            config.resample_per_support, config.kde_bandwidth, config.proposal_bandwidth,
            generator, log_choice, config.choice_surrogate_weight)
        if config.cell_fkl_weight > 0:
            loss = loss + config.cell_fkl_weight * cell_fkl_loss(model, features, generator)
        score = feasibility(model, features, samples.detach()).mean().item()
        return loss, {'actor_score': score}
    xi = torch.sigmoid(model.score(features, normalise_actor_output(samples)))
    xi = xi * radius_weight(samples)
    log_xi = torch.log(xi.clamp_min(SCORE_FLOOR))
    if kind == 'gan':
        loss = gan_actor_loss(xi)
        costs = torch.log1p(-xi.clamp_max(1.0 - SCORE_FLOOR))
    elif kind == 'me':
        log_q = kde_log_density(samples, samples, config.kde_bandwidth)
        loss = me_actor_loss(log_q, xi, log_scores=True)
        costs = log_q - log_xi
    else:
        raise ValueError(f'unknown divergence {kind!r}')
    if log_choice is not None:
        loss = loss + config.choice_surrogate_weight * choice_surrogate(costs, log_choice)
    return loss, {'actor_score': xi.mean().item()}


def most_uncertain_actions(model: Network, images: Tensor, proposals: int, count: int = 1,
                           generator: Optional[torch.Generator] = None
                           ) -> tuple[Tensor, Tensor]:
    """Maximum-uncertainty collection (section 4.2, Algorithm 1 lines 5-8): of U proposals
    of the actor (a heat-map model: U draws of eq. 14), the ones the critic (the heat map) is
    least sure of.

    Args:
        images: (S, 3, H, W) uint8 tensor, one state per row.
        proposals: U, actor proposals per state.
        count: how many to pick per state, the ``count`` scores closest to 0.5 (<= U).

    Returns:
        (actions_px (S, count, 3) tensor, critic scores (S, count) of the picked proposals).
    """
    with torch.no_grad():
        features = model.features(images)
        samples = model.sample(features, proposals, generator)
        xi = torch.sigmoid(model.score(features, normalise_actor_output(samples)))
        pick = (xi - 0.5).abs().topk(count, dim=1, largest=False).indices
        chosen = torch.gather(samples, 1, pick.unsqueeze(-1).expand(-1, -1, samples.shape[-1]))
        return decode_actor(chosen), torch.gather(xi, 1, pick)
