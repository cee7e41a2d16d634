"""Gaussian kernel density estimates, KDE resampling and importance-sampled volumes.

Implements eq. 8 (KDE), the resampling step of section 3.3 / Algorithm 1 lines 25-28 and
the volume estimate of eq. 11 of *Learning to Generate All Feasible Actions*.
All functions are pure, batch-first and work in log space: leading dimensions (``...``,
typically K states) broadcast, the last two are (samples, action dimension D).

The actor's action is 4-D, ``[x, y, r sin(alpha), r cos(alpha)]``, with x, y normalised so
that the 78-pixel workspace maps to [-1, 1] (the paper does not state its units).
"""

import math
import operator
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

Bandwidth = Union[Sequence[float], Tensor]
"""A KDE bandwidth: D standard deviations, one per dimension."""

_LOG_2PI = math.log(2.0 * math.pi)


def _as_bandwidth(bandwidth: Bandwidth, dim: int, like: Tensor) -> Tensor:
    """Return ``bandwidth`` as a (D,) tensor with the dtype and device of ``like``.

    Raises:
        ValueError: if it is not ``dim`` positive finite standard deviations.
    """
    sigma = torch.as_tensor(bandwidth, dtype=like.dtype, device=like.device)
    if sigma.shape != (dim,):
        raise ValueError(f'bandwidth must have shape ({dim},), got {tuple(sigma.shape)}')
    if not bool(torch.all(torch.isfinite(sigma) & (sigma > 0))):
        raise ValueError(f'bandwidth must be positive and finite, got {sigma.tolist()}')
    return sigma


def _check_samples(name: str, x: Tensor) -> None:
    if x.ndim < 2 or x.shape[-2] == 0:
        raise ValueError(
            f'{name} must have shape (..., count, D) with count >= 1, got {tuple(x.shape)}'
        )


def kde_log_density(points: Tensor, supports: Tensor, bandwidth: Bandwidth) -> Tensor:
    """Log-density of the Gaussian KDE of ``supports`` at ``points`` (eq. 8).

    log q(a) = log (1/N) sum_i N(a; a_i, diag(sigma^2)), normalised kernel included.
    Gradients flow to both ``points`` and ``supports``.

    Args:
        points: (..., M, D) where to evaluate.
        supports: (..., N, D) kernel centres; leading dims broadcast with ``points``.
        bandwidth: (D,) kernel standard deviations (sequence or tensor).

    Returns:
        (..., M) log-densities (natural log, per unit D-volume of the action space).
    """
    _check_samples('points', points)
    _check_samples('supports', supports)
    dim = points.shape[-1]
    if supports.shape[-1] != dim:
        raise ValueError(
            f'points and supports must share the action dimension, got '
            f'{tuple(points.shape)} and {tuple(supports.shape)}'
        )
    sigma = _as_bandwidth(bandwidth, dim, points)
    z = (points / sigma).unsqueeze(-2) - (supports / sigma).unsqueeze(-3)  # (..., M, N, D)
    log_kernel = -0.5 * z.square().sum(-1)  # (..., M, N)
    log_norm = torch.log(sigma).sum() + 0.5 * dim * _LOG_2PI + math.log(supports.shape[-2])
    return torch.logsumexp(log_kernel, dim=-1) - log_norm


def resample(supports: Tensor, m: int, bandwidth: Bandwidth,
             generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw m samples around each support: a*_j = stop_gradient(a_[j // m]) + eps.

    Equivalent to sampling the KDE with bandwidth sigma' (Algorithm 1, lines 25-26);
    samples of one support are consecutive.

    Args:
        supports: (..., N, D) KDE supports (the actor's samples).
        m: samples per support (M = N * m).
        bandwidth: (D,) standard deviations sigma' of eps ~ N(0, diag(sigma'^2)).
        generator: optional ``torch.Generator`` for reproducible noise.

    Returns:
        (..., N * m, D) resampled points, detached from the graph.
    """
    _check_samples('supports', supports)
    try:
        count = operator.index(m)
    except TypeError:
        count = 0
    if isinstance(m, bool) or count < 1:
        raise ValueError(f'm must be a positive int, got {m!r}')
    sigma = _as_bandwidth(bandwidth, supports.shape[-1], supports)
    centres = supports.detach().repeat_interleave(count, dim=-2)
    eps = torch.randn(
        centres.shape, generator=generator, dtype=centres.dtype, device=centres.device
    )
    return centres + eps * sigma


def log_volume(log_g: Tensor, log_q_prop: Tensor) -> Tensor:
    """Importance-sampled log-volume of an unnormalised target (eq. 11).

    V = (1/M) sum_j g(a*_j) / q'(a*_j) with a*_j ~ q', computed as a logsumexp.

    Args:
        log_g: (..., M) log of the unnormalised target g at the samples (-inf where g = 0).
        log_q_prop: (..., M) log proposal density q' at the same samples (finite).

    Returns:
        (...) log V (-inf when g = 0 at every sample).
    """
    if log_g.shape != log_q_prop.shape or log_g.ndim < 1 or log_g.shape[-1] == 0:
        raise ValueError(
            f'log_g and log_q_prop must have the same shape (..., M) with M >= 1, got '
            f'{tuple(log_g.shape)} and {tuple(log_q_prop.shape)}'
        )
    return torch.logsumexp(log_g - log_q_prop, dim=-1) - math.log(log_g.shape[-1])
