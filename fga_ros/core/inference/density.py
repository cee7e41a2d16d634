"""KDE self-density of actor samples and the rejection of the least dense ones."""

import math

import numpy as np
from numpy.typing import ArrayLike
import torch

from fga_ros.core.estimators.kde import Bandwidth

_KDE_CHUNK = 1024  # rows of the pairwise kernel matrix computed at a time
_MAX_SQ_DISTANCE = 160.0  # scaled squared distance cap: exp(-80) is still a normal float


def num_to_sample(num_grasps: int, reject_fraction: float) -> int:
    """Samples to draw so that ``num_grasps`` survive rejection: ceil(n / (1 - f)) >= n."""
    # The small tolerance keeps e.g. 30 / (1 - 0.7) = 100.00000000000001 at 100.
    return max(num_grasps, math.ceil(num_grasps / (1.0 - reject_fraction) - 1e-9))


def num_to_reject(num_sampled: int, reject_fraction: float) -> int:
    """Lowest-density samples to reject: reject_fraction * num_sampled rounded half up."""
    return int(math.floor(reject_fraction * num_sampled + 0.5))


def keep_densest(log_density: ArrayLike, reject_fraction: float) -> np.ndarray:
    """Indices (ascending) of the samples kept after rejecting the lowest-density ones.

    Args:
        log_density: (n,) array; ties are broken by index (stable), NaN counts as lowest.
    """
    log_density = np.asarray(log_density, dtype=np.float64)
    n = len(log_density)
    keys = np.where(np.isnan(log_density), -np.inf, log_density)
    order = np.argsort(-keys, kind='stable')
    return np.sort(order[:n - num_to_reject(n, reject_fraction)])


def self_log_density(points: torch.Tensor, bandwidth: Bandwidth) -> torch.Tensor:
    """KDE log-density of every point with all points (itself included) as supports, (..., n).

    The value of ``kde.kde_log_density(points, points, bandwidth)``, computed for speed
    (inference only): squared distances come from one matrix product of augmented rows,
    ``[a, |a|^2, 1] . [-2 b, 1, |b|^2] = |a - b|^2``, in chunks of rows (memory stays
    bounded for thousands of points). Because every point is its own support, the kernel sum
    is >= 1 (in units of the kernel peak) and needs no max-shift; scaled squared distances
    are capped at 160 (kernel >= e^-80) so that exp never produces slow denormals, which
    changes a log-density by less than n e^-80 (negligible).

    Args:
        points: (..., n, D) tensor; bandwidth: (D,) standard deviations.
    """
    sigma = torch.as_tensor(bandwidth, dtype=points.dtype, device=points.device)
    n, dim = points.shape[-2], points.shape[-1]
    # Centring keeps |a|^2 small, so the expansion loses no precision in float32.
    scaled = (points - points.mean(-2, keepdim=True)) / sigma
    sq = scaled.square().sum(-1, keepdim=True)
    ones = torch.ones_like(sq)
    left = torch.cat([scaled, sq, ones], dim=-1)
    right = torch.cat([-2.0 * scaled, ones, sq], dim=-1).transpose(-1, -2)
    parts = [(rows @ right).clamp_(0.0, _MAX_SQ_DISTANCE).mul_(-0.5).exp_().sum(-1).log_()
             for rows in left.split(_KDE_CHUNK, dim=-2)]
    log_norm = torch.log(sigma).sum() + 0.5 * dim * math.log(2.0 * math.pi) + math.log(n)
    return torch.cat(parts, dim=-1) - log_norm
