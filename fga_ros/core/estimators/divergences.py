"""Actor and critic losses: f-divergence gradient estimators and the GAN / ME baselines.

The f-divergence losses are *surrogates*: their value is meaningless, but ``backward()``
yields the paper's gradient estimator (eq. 10, Table 2)

    grad D_f ~ (1/M) sum_j (q/q')(a*_j) (f'(q/p)(a*_j) + lambda) grad log q(a*_j),

with q the KDE with bandwidth sigma (gradient flowing to its supports), q' the proposal
KDE with bandwidth sigma' the samples a*_j were drawn from, and p the estimated target
(eq. 1 with the volume of eq. 11). Conventions of Table 1: t = q/p, D_f = int p f(q/p),
FKL = int p log(p/q), RKL = int q log(q/p). Everything detached is computed in log space.

Shapes: K states (or any leading dims) by M samples; all inputs of one call share a shape.
"""

import math
from typing import Optional

import torch
from torch import Tensor

from fga_ros.core.common.choices import F_DIVERGENCES
from fga_ros.core.estimators.kde import log_volume

SCORE_FLOOR = 1e-6
"""Smallest feasibility score used for the target: p is never below SCORE_FLOOR / V.

It bounds the RKL penalty at infeasible samples, log(q V / SCORE_FLOOR), and keeps the
volume V > 0 when every score is 0. It also bounds log(xi) and log(1 - xi) of the GAN/ME
losses."""

LOG_DENSITY_FLOOR = math.log(1e-20)
"""Guard of the logarithms in the estimator weights and divergence values: there, log q
and log p are raised to it (the ratios q/q' and p/q' are not), so -inf inputs (g = 0 passed
directly, a q that underflowed) give finite values. Far below the densities that
target_log_density produces, so it only matters for such inputs."""

# Unnormalised Gaussian on r = ||(a3, a4)|| scaling g and xi (appendix B).
RADIUS_MEAN = 0.5
RADIUS_STD = 0.4

_LOG2 = math.log(2.0)


def _check_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    first = next(iter(shapes.values()))
    if len(first) < 1 or first[-1] == 0 or any(s != first for s in shapes.values()):
        raise ValueError(f'expected equal shapes (..., M) with M >= 1, got {shapes}')


def _check_kind(kind: str, allowed: tuple[str, ...]) -> None:
    if kind not in allowed:
        raise ValueError(f'divergence must be one of {allowed}, got {kind!r}')


def _check_scores(name: str, scores: Tensor) -> None:
    if not bool(torch.all((scores >= 0) & (scores <= 1))):  # also rejects NaN
        raise ValueError(f'{name} must lie in [0, 1]')


def radius_weight(actions4: Tensor) -> Tensor:
    """Unnormalised Gaussian exp(-(r - 0.5)^2 / (2 0.4^2)) on r = ||(a3, a4)|| (appendix B).

    Args:
        actions4: (..., 4) actor actions [x, y, r sin(alpha), r cos(alpha)].

    Returns:
        (...) weights in [0, 1], differentiable w.r.t. the actions.
    """
    if actions4.ndim < 1 or actions4.shape[-1] != 4:
        raise ValueError(f'actions4 must have shape (..., 4), got {tuple(actions4.shape)}')
    r = torch.linalg.vector_norm(actions4[..., 2:], dim=-1)
    return torch.exp(-0.5 * ((r - RADIUS_MEAN) / RADIUS_STD).square())


def target_log_density(critic_scores: Tensor, log_q_prop: Tensor,
                       radius_weight: Optional[Tensor] = None,
                       score_floor: float = SCORE_FLOOR) -> Tensor:
    """Estimated log target density log p(a*_j) = log r_j - log V (Algorithm 1, lines 29-31).

    r_j = max(xi_j * w_j, score_floor) with w the radius weight, and
    V = (1/M) sum_j r_j / q'_j (eq. 11) self-normalised over the M samples of each row.

    Args:
        critic_scores: (..., M) feasibility xi (or the environment's g) in [0, 1] at a*_j.
        log_q_prop: (..., M) log proposal density log q'(a*_j).
        radius_weight: optional (..., M) weights from ``radius_weight`` at a*_j.
        score_floor: lower bound of r_j, see SCORE_FLOOR.

    Returns:
        (..., M) log p, detached.
    """
    _check_same_shape(critic_scores=critic_scores, log_q_prop=log_q_prop)
    _check_scores('critic_scores', critic_scores)
    scores = critic_scores.detach()
    if radius_weight is not None:
        _check_same_shape(critic_scores=critic_scores, radius_weight=radius_weight)
        _check_scores('radius_weight', radius_weight)
        scores = scores * radius_weight.detach()
    log_r = torch.log(scores.clamp_min(score_floor))
    log_v = log_volume(log_r, log_q_prop.detach())
    return log_r - log_v.unsqueeze(-1)


def target_log_density_at(scores: Tensor, critic_scores: Tensor, log_q_prop: Tensor,
                          score_floor: float = SCORE_FLOOR) -> Tensor:
    """log p at other points, e.g. the actor's own samples: log max(scores, floor) - log V,
    V estimated as in ``target_log_density`` from the samples a*_j ~ q'.

    Args:
        scores: (..., n) feasibility in [0, 1] at the points (radius weight included).
        critic_scores, log_q_prop: (..., M) as in ``target_log_density``.

    Returns:
        (..., n) log p, detached.
    """
    _check_same_shape(critic_scores=critic_scores, log_q_prop=log_q_prop)
    for name, value in (('scores', scores), ('critic_scores', critic_scores)):
        _check_scores(name, value)
    if scores.shape[:-1] != critic_scores.shape[:-1]:
        raise ValueError(f'scores and critic_scores must share their leading dims, got '
                         f'{tuple(scores.shape)} and {tuple(critic_scores.shape)}')
    log_v = log_volume(torch.log(critic_scores.detach().clamp_min(score_floor)),
                       log_q_prop.detach())
    return torch.log(scores.detach().clamp_min(score_floor)) - log_v.unsqueeze(-1)


def estimator_weights(kind: str, log_q: Tensor, log_q_prop: Tensor, log_p: Tensor) -> Tensor:
    """Per-sample weights w_j = (q/q') (f'(q/p) + lambda) of eq. 10 / Table 2, detached.

    js:  (q/q') (1/2) log(2q / (q + p)),  lambda = 0
    fkl: -p/q'                            (f' = -p/q, lambda = 0)
    rkl: (q/q') log(q/p)                  (f' = log(q/p) + 1, lambda = -1)

    Args:
        kind: one of F_DIVERGENCES.
        log_q, log_q_prop, log_p: (..., M) log q_sigma, log q_sigma', log p at a*_j.

    Returns:
        (..., M) weights, finite for samples drawn from q' (then q/q' <= prod(sigma'/sigma)
        and p/q' is bounded by the volume estimate); see LOG_DENSITY_FLOOR.
    """
    _check_kind(kind, F_DIVERGENCES)
    _check_same_shape(log_q=log_q, log_q_prop=log_q_prop, log_p=log_p)
    lq, lqp, lp = log_q.detach(), log_q_prop.detach(), log_p.detach()
    if kind == 'fkl':
        return -torch.exp(lp - lqp)
    lq_c, lp_c = lq.clamp_min(LOG_DENSITY_FLOOR), lp.clamp_min(LOG_DENSITY_FLOOR)
    if kind == 'rkl':
        log_term = lq_c - lp_c
    else:
        log_term = 0.5 * (_LOG2 + lq_c - torch.logaddexp(lq_c, lp_c))
    return torch.exp(lq - lqp) * log_term


def f_divergence_surrogate(kind: str, log_q: Tensor, log_q_prop: Tensor, log_p: Tensor) -> Tensor:
    """Scalar surrogate whose gradient is the estimator of eq. 10, averaged over rows.

    loss = mean over rows and samples of w_j * log q(a*_j), w from ``estimator_weights``
    (detached), so d loss / d theta = (1/K) sum_k (1/M) sum_j w_kj grad log q_kj
    (Algorithm 1, lines 32 and 34).

    Args:
        kind: one of F_DIVERGENCES.
        log_q: (..., M) log q_sigma(a*_j), differentiable w.r.t. the KDE supports.
        log_q_prop: (..., M) log q_sigma'(a*_j) (detached here).
        log_p: (..., M) log target density, e.g. from ``target_log_density`` (detached here).

    Returns:
        scalar tensor.
    """
    weights = estimator_weights(kind, log_q, log_q_prop, log_p)
    return (weights * log_q).mean()


def choice_costs(kind: str, log_q: Tensor, log_p: Tensor) -> Tensor:
    """Per-sample costs f'(q/p)(a_i) at the actor's own samples a_i, detached.

    For an actor that is a mixture q = sum_c pi_c q_c over discrete choices c,
    d D_f / d pi_c = E_{a ~ q_c}[f'(q/p)(a)] (with D_f = int p f(q/p)), so these costs,
    paired with log pi of each sample's choice in ``choice_surrogate``, give the
    score-function gradient of the same divergence. Table 1's f' with t = q/p:

    js:  (1/2) log(2q / (q + p));  fkl: -p/q;  rkl: log(q/p) (+ 1, a constant dropped).

    Args:
        kind: one of F_DIVERGENCES.
        log_q: (..., n) log KDE density at the samples; log_p: (..., n) log target there.

    Returns:
        (..., n) costs.
    """
    _check_kind(kind, F_DIVERGENCES)
    _check_same_shape(log_q=log_q, log_p=log_p)
    lq = log_q.detach().clamp_min(LOG_DENSITY_FLOOR)
    lp = log_p.detach().clamp_min(LOG_DENSITY_FLOOR)
    if kind == 'fkl':
        return -torch.exp(lp - lq)
    if kind == 'rkl':
        return lq - lp
    return 0.5 * (_LOG2 + lq - torch.logaddexp(lq, lp))


def choice_surrogate(costs: Tensor, log_choice: Tensor) -> Tensor:
    """Score-function surrogate for an actor's discrete choices: its gradient is
    mean_i A_i grad log pi(c_i), with A the costs less their mean over each row (the
    baseline) divided by their root mean square over the batch (scale-free steps).

    Args:
        costs: (K, n) cost of each sample (``choice_costs``, or the GAN / ME per-sample
            losses), detached here.
        log_choice: (K, n) log pi of each sample's choice, differentiable.

    Returns:
        scalar tensor (its value is meaningless).
    """
    _check_same_shape(costs=costs, log_choice=log_choice)
    advantage = costs.detach() - costs.detach().mean(-1, keepdim=True)
    advantage = advantage / advantage.square().mean().sqrt().clamp_min(1e-12)
    return (advantage * log_choice).mean()


def categorical_divergence(kind: str, log_pi: Tensor, log_p: Tensor) -> Tensor:
    """Exact D_f(p || pi) of two distributions over the same categories (last dim),
    differentiable w.r.t. ``log_pi``; Table 1 with t = pi / p:

    fkl: sum p log(p / pi);  rkl: sum pi log(pi / p);
    js:  (1/2) sum [p log(2p / (p + pi)) + pi log(2 pi / (p + pi))].

    Its gradient d D / d pi_c is f'(pi_c / p_c) (``choice_costs`` for the same kind, plus
    1 for rkl).

    Args:
        kind: one of F_DIVERGENCES.
        log_pi: (..., C) finite log-probabilities (sum 1), differentiable.
        log_p: (..., C) finite log-probabilities of the target (detached here).

    Returns:
        (...) divergences.
    """
    _check_kind(kind, F_DIVERGENCES)
    _check_same_shape(log_pi=log_pi, log_p=log_p)
    if not bool(torch.isfinite(log_pi).all() and torch.isfinite(log_p).all()):
        raise ValueError('log_pi and log_p must be finite (leave out empty categories)')
    log_p = log_p.detach()
    pi, p = log_pi.exp(), log_p.exp()
    if kind == 'fkl':
        return (p * (log_p - log_pi)).sum(-1)
    if kind == 'rkl':
        return (pi * (log_pi - log_p)).sum(-1)
    log_mix = torch.logaddexp(log_pi, log_p) - _LOG2
    return 0.5 * (p * (log_p - log_mix) + pi * (log_pi - log_mix)).sum(-1)


def divergence_value(kind: str, log_q: Tensor, log_q_prop: Tensor, log_p: Tensor) -> Tensor:
    """Importance-sampled D_f(p || q) = E_q'[(p/q') f(q/p)] per row, for logging and tests.

    rkl: E_q'[(q/q') log(q/p)]; fkl: E_q'[(p/q') log(p/q)];
    js: (1/2) E_q'[(p/q') log(2p/(p+q)) + (q/q') log(2q/(p+q))], at most log 2.

    Args:
        kind: one of F_DIVERGENCES.
        log_q, log_q_prop, log_p: (..., M) log-densities at samples a*_j ~ q'.

    Returns:
        (...) estimates, detached (their gradient is not the divergence's: a* depends on
        theta). log q and log p are raised to LOG_DENSITY_FLOOR, so an RKL with q > 0
        where p = 0 is finite, of order log(q) - LOG_DENSITY_FLOOR.
    """
    _check_kind(kind, F_DIVERGENCES)
    _check_same_shape(log_q=log_q, log_q_prop=log_q_prop, log_p=log_p)
    lq, lqp, lp = log_q.detach(), log_q_prop.detach(), log_p.detach()
    lq_c, lp_c = lq.clamp_min(LOG_DENSITY_FLOOR), lp.clamp_min(LOG_DENSITY_FLOOR)
    q_ratio, p_ratio = torch.exp(lq - lqp), torch.exp(lp - lqp)
    if kind == 'rkl':
        terms = q_ratio * (lq_c - lp_c)
    elif kind == 'fkl':
        terms = p_ratio * (lp_c - lq_c)
    else:
        log_mix = torch.logaddexp(lq_c, lp_c)
        terms = 0.5 * (p_ratio * (_LOG2 + lp_c - log_mix) + q_ratio * (_LOG2 + lq_c - log_mix))
    return terms.mean(-1)


def gan_actor_loss(critic_scores: Tensor, non_saturating: bool = False) -> Tensor:
    """GAN generator loss on the critic's scores of the actor's own actions.

    Default: the minimax form of Table 2 / eq. 13, mean log(1 - xi) (descending it raises
    xi). ``non_saturating=True``: -mean log(xi), the usual non-saturating variant, whose
    gradient does not vanish while the critic rejects the actor's actions (xi ~ 0).
    xi is clipped to [SCORE_FLOOR, 1 - SCORE_FLOOR].

    Args:
        critic_scores: (...) xi(s, pi(s, z)) in [0, 1], differentiable w.r.t. the actions.

    Returns:
        scalar tensor.
    """
    if critic_scores.numel() == 0:
        raise ValueError('critic_scores must not be empty')
    _check_scores('critic_scores', critic_scores)
    xi = critic_scores.clamp(SCORE_FLOOR, 1.0 - SCORE_FLOOR)
    if non_saturating:
        return -torch.log(xi).mean()
    return torch.log1p(-xi).mean()


def me_actor_loss(log_q: Tensor, critic_scores: Tensor, log_scores: bool = False) -> Tensor:
    """Maximum-entropy actor loss of eq. 12: mean(log q(a_i) - xi(a_i)).

    ``log_q`` is the KDE log-density at the actor's own samples (supports and points both
    the samples, so gradients flow through both); ``critic_scores`` is xi at the same
    samples, differentiable w.r.t. them (reparameterisation). ``log_scores=True`` uses
    log(xi) instead of xi, the form of Table 2 (the paper's text and table differ).

    Args:
        log_q: (..., N) log q_sigma(a_i).
        critic_scores: (..., N) xi(s, a_i) in [0, 1].

    Returns:
        scalar tensor.
    """
    _check_same_shape(log_q=log_q, critic_scores=critic_scores)
    _check_scores('critic_scores', critic_scores)
    reward = torch.log(critic_scores.clamp_min(SCORE_FLOOR)) if log_scores else critic_scores
    return (log_q - reward).mean()


def critic_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Class-balanced binary cross-entropy with logits.

    The mean BCE over positives and the mean over negatives are averaged with equal weight
    (a class absent from the batch is left out), so the loss equals the plain mean on the
    half-positive, half-negative batches of the balanced replay memory (section 4.1).

    Args:
        logits: (L,) or (...) critic logits.
        labels: same shape, 1 for success and 0 for failure (bool or float).

    Returns:
        scalar tensor.
    """
    if logits.shape != labels.shape or logits.numel() == 0:
        raise ValueError(
            f'logits and labels must have the same non-empty shape, got '
            f'{tuple(logits.shape)} and {tuple(labels.shape)}'
        )
    target = labels.to(logits.dtype)
    if not bool(torch.all((target == 0) | (target == 1))):
        raise ValueError('labels must be 0 or 1')
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction='none')
    n_pos = target.sum()
    n_neg = target.numel() - n_pos
    pos_mean = (bce * target).sum() / n_pos.clamp_min(1.0)
    neg_mean = (bce * (1.0 - target)).sum() / n_neg.clamp_min(1.0)
    n_classes = (n_pos > 0).to(logits.dtype) + (n_neg > 0).to(logits.dtype)
    return (pos_mean + neg_mean) / n_classes
