"""Samples of an actor-critic model resampled towards its critic's target.

The actor approximates the target p(x) ∝ g(x), uniform over the feasible set (g: the
critic's feasibility score times the radius weight and workspace indicator, as in the
f-divergence updates), but where it under-samples a way of holding the object or still puts
mass on infeasible grasps, its samples show it. Sampling-importance resampling corrects
both: draw a pool of ``resample * n`` actor samples plus ``explore_share`` as many grasps
centred on the object (``exploration.object_critic_inputs``), weigh each member x_i by
``g(x_i) / q(x_i)`` with q the pool's KDE self-density (bandwidth sigma, the actor's
density estimate of the f-divergence updates, here of the whole pool), and draw n members
in proportion to the weights (systematic resampling, then shuffled). A member of an
under-sampled mode has a low q and so a high weight; an infeasible one has g ≈ 0 and is
dropped. The explored grasps make the pool a defensive mixture: a way of holding the object
the actor misses altogether (an unseen shape's second side) can still be drawn, where the
critic finds it feasible. g is the target weight the actor was trained against (critic
feasibility x radius weight x workspace indicator, ``feasibility.feasibility``), with the
critic's logit averaged over the calibration's views of the image (``Calibration.logits``:
the quarter turns and flips the critic should agree on; one view for an uncalibrated model)
and multiplied by a sharpness k before the sigmoid: k = 1 (with one view) is exactly the
training target; a larger k moves g towards the indicator of the grasps the critic calls
feasible, so grasps it is unsure of (an unseen shape's) weigh less while the feasible set
stays uniformly covered. The calibration's scaling is not applied: its softer temperature
would trade accuracy for coverage. Members may be drawn more than once.

GAN models (whose critic is a discriminator, not a feasibility score) and the heat-map
baselines are not resampled.
"""

from typing import Optional, TypeGuard

import numpy as np
import torch
from torch import Tensor

from fga_ros.core.common.actions import normalise_actor_output
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.estimators.divergences import RADIUS_MEAN
from fga_ros.core.estimators.kde import Bandwidth
from fga_ros.core.inference.calibration import Calibration
from fga_ros.core.inference.defaults import MAX_RESAMPLE_POOL
from fga_ros.core.inference.density import self_log_density
from fga_ros.core.inference.exploration import object_critic_inputs
from fga_ros.core.models.feasibility import action_weight
from fga_ros.core.models.heads import ImageFeatures
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.models.networks import Network


def can_resample(model: Network, config: TrainConfig) -> TypeGuard[ActorCritic]:
    """Whether the model has a feasibility critic to resample with (an actor-critic model
    not trained as a GAN)."""
    return isinstance(model, ActorCritic) and config.divergence != 'gan'


def systematic_indices(log_weights: Tensor, n: int,
                       generator: Optional[torch.Generator] = None) -> Tensor:
    """n indices (n,) into a pool of M items drawn in proportion to ``exp(log_weights)``
    (M,) by systematic resampling: one uniform offset u, index i for each (u + k) / n,
    k = 0..n-1, falling in item i's slice of the normalised cumulative weights; each item is
    drawn floor or ceil of n w_i times. A NaN weighs nothing; all weights zero (-inf, NaN):
    every item weighs the same.
    """
    log_weights = torch.nan_to_num(log_weights, nan=-torch.inf, posinf=torch.inf)
    if not torch.isfinite(log_weights).any():
        log_weights = torch.zeros_like(log_weights)
    cdf = torch.cumsum(torch.softmax(log_weights.double(), dim=0), dim=0)
    u = torch.rand((), generator=generator, device=log_weights.device, dtype=cdf.dtype)
    points = (torch.arange(n, device=cdf.device, dtype=cdf.dtype) + u) / n
    return torch.searchsorted(cdf, points * cdf[-1], right=True).clamp_max(len(cdf) - 1)


def resample_pool(pool: Tensor, weights: Tensor, bandwidth: Bandwidth, n: int,
                  generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
    """Resample n of M pool samples towards the target weights (module docstring).

    Args:
        pool: (M, 4) actor outputs.
        weights: (M,) target weights g >= 0 at them.
        bandwidth: (4,) KDE bandwidth sigma of the pool's self-density q.
        n: samples to draw.

    Returns:
        (indices (n,) into the pool, in random order; log q (M,) of the whole pool).
    """
    log_q = self_log_density(pool, bandwidth)
    index = systematic_indices(torch.log(weights) - log_q, n, generator)
    order = torch.randperm(n, generator=generator, device=index.device)
    return index[order], log_q


def pool_sizes(n: int, resample: int, explore_share: float) -> tuple[int, int]:
    """(actor samples, explored grasps) of the pool n samples are resampled from:
    ``resample * n`` and ``round(explore_share * resample * n)``."""
    actor = resample * n
    return actor, int(round(explore_share * actor))


def check_pool(n: int, resample: int, explore_share: float) -> None:
    """ValueError unless the resampling pool of n samples (``pool_sizes``) holds at most
    MAX_RESAMPLE_POOL grasps."""
    pool = pool_sizes(n, resample, explore_share)
    if sum(pool) > MAX_RESAMPLE_POOL:
        raise ValueError(f'the resampling pool ({pool[0]} actor samples and {pool[1]} '
                         f'explored grasps for {n} samples) must hold at most '
                         f'{MAX_RESAMPLE_POOL}: ask for fewer samples or lower resample or '
                         f'explore_share')


def explored_actor_outputs(image: np.ndarray, count: int,
                           generator: Optional[torch.Generator], device: torch.device
                           ) -> Tensor:
    """``count`` actor outputs (count, 4) of grasps centred on the object
    (``exploration.object_critic_inputs``) at the radius weight's peak RADIUS_MEAN."""
    inputs = object_critic_inputs(image, count, generator, device)
    return torch.cat([inputs[:, :2], RADIUS_MEAN * inputs[:, 2:]], dim=-1)


def resampled_samples(model: ActorCritic, bandwidth: Bandwidth, calibration: Calibration,
                      image: np.ndarray,
                      features: tuple[ImageFeatures, Optional[ImageFeatures]], n: int,
                      pool: tuple[int, int], sharpness: float,
                      generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
    """n samples of one image resampled from a pool of actor samples and explored grasps
    towards the critic's target (module docstring).

    Args:
        bandwidth: (4,) KDE bandwidth sigma (the model's ``kde_bandwidth``).
        calibration: the model's ``Calibration``; its views, not its scaling, are used.
        image: (128, 128, 3) uint8 RGB, the one the features are of (it locates the
            object for the explored grasps).
        features: ``ImageFeatures`` of the image (1 state) and of its other calibration
            views (None without them).
        pool: (actor samples, explored grasps), ``pool_sizes``.
        sharpness: k >= 0, the critic's view-averaged logit's scale in g (module docstring).

    Returns:
        (actor outputs (n, 4), their log-density (n,) under the pool's KDE).
    """
    own, views = features
    members = model.sample(own, pool[0], generator)[0]
    if pool[1]:
        members = torch.cat([members,
                             explored_actor_outputs(image, pool[1], generator, members.device)])
    logits = calibration.logits(model, own, normalise_actor_output(members), views=views)
    weights = torch.sigmoid(sharpness * logits) * action_weight(members)
    index, log_q = resample_pool(members, weights, bandwidth, n, generator)
    return members[index], log_q[index]
