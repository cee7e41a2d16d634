"""Critic + cross-entropy method (CEM) baseline (Yan et al. 2019, after QT-Opt).

Instead of sampling a generative actor, CEM searches the critic: it draws a population of
grasps, scores them with the critic, fits a Gaussian to the best (elite) fraction and
repeats; Yan et al. use 3 iterations, population 64 and 10% elites, and execute the best
sample of the last iteration.

Search space: network units ``(x_n, y_n, phi)``, phi = 2 alpha the doubled gripper angle,
so the gripper symmetry is a plain 2 pi periodicity. The first population is uniform over
the workspace and all angles (the role of Yan et al.'s initial Gaussian, which is chosen to
cover the workspace); later ones come from a diagonal Gaussian fitted to the elites: x_n,
y_n with mean and standard deviation (samples clipped into the workspace), phi with the
circular mean and the standard deviation of the wrapped deviations (samples wrapped).
The critic sees ``[x_n, y_n, sin phi, cos phi]``. The feature extractor runs once.
"""

from dataclasses import dataclass
import math
import time
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from fga_ros.core.common.actions import decode_actor
from fga_ros.core.common.checks import check_count, check_image
from fga_ros.core.common.choices import RANKINGS
from fga_ros.core.common.tensors import images_to_tensor, make_generator, model_device
from fga_ros.core.inference.defaults import MAX_GRASPS, MAX_SAMPLES, NUM_GRASPS
from fga_ros.core.inference.proposer import Proposal, finish_proposal
from fga_ros.core.models.heads import ImageFeatures
from fga_ros.core.models.networks import Network

ITERATIONS = 3
"""CEM iterations (Yan et al.)."""

POPULATION = 64
"""Samples per iteration (Yan et al.)."""

ELITE_FRACTION = 0.1
"""Share of each population the next Gaussian is fitted to (Yan et al.: 10%)."""

MIN_STD = 1e-3
"""Floor of the fitted standard deviations (network units, radians of phi)."""

MAX_ITERATIONS = 100
"""Largest number of iterations accepted."""


@dataclass(frozen=True)
class CEMTrace:
    """Result of :func:`cem_search`.

    Attributes:
        params: (P, 3) last population ``(x_n, y_n, phi)``, phi in [-pi, pi).
        logits: (P,) critic logits of the last population.
        mean_scores: per iteration, the mean critic probability of the population.
        elite_scores: per iteration, the mean critic probability of its elites.
        num_scored: grasps scored in total.
    """

    params: torch.Tensor
    logits: torch.Tensor
    mean_scores: tuple
    elite_scores: tuple
    num_scored: int


def critic_inputs(params: Tensor) -> Tensor:
    """``(..., 3)`` ``(x_n, y_n, phi)`` -> ``(..., 4)`` critic input ``[x_n, y_n, sin, cos]``."""
    return torch.stack([params[..., 0], params[..., 1], torch.sin(params[..., 2]),
                        torch.cos(params[..., 2])], dim=-1)


def _wrap(phi: Tensor) -> Tensor:
    return torch.remainder(phi + math.pi, 2.0 * math.pi) - math.pi


def _uniform(n: int, generator: Optional[torch.Generator], device: torch.device) -> Tensor:
    u = torch.rand((n, 3), generator=generator, device=device)
    return (2.0 * u - 1.0) * torch.tensor([1.0, 1.0, math.pi], device=device)


def _fit(elites: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation (3,) of elite params (E, 3), phi circular."""
    mean_xy = elites[:, :2].mean(0)
    std_xy = elites[:, :2].std(0, correction=0)
    phi = elites[:, 2]
    mean_phi = torch.atan2(torch.sin(phi).mean(), torch.cos(phi).mean())
    std_phi = _wrap(phi - mean_phi).square().mean().sqrt()
    mean = torch.cat([mean_xy, mean_phi[None]])
    std = torch.cat([std_xy, std_phi[None]]).clamp_min(MIN_STD)
    return mean, std


def _gaussian(mean: Tensor, std: Tensor, n: int, generator: Optional[torch.Generator]) -> Tensor:
    eps = torch.randn((n, 3), generator=generator, device=mean.device)
    params = mean + eps * std
    return torch.stack([params[:, 0].clamp(-1.0, 1.0), params[:, 1].clamp(-1.0, 1.0),
                        _wrap(params[:, 2])], dim=1)


def num_elites(population: int, elite_fraction: float) -> int:
    """Elites per iteration: elite_fraction * population rounded, at least 2."""
    return min(population, max(2, int(math.floor(elite_fraction * population + 0.5))))


def cem_search(model: Network, features: ImageFeatures, iterations: int = ITERATIONS,
               population: int = POPULATION, elite_fraction: float = ELITE_FRACTION,
               final_population: Optional[int] = None,
               generator: Optional[torch.Generator] = None) -> CEMTrace:
    """Run CEM on the critic for one state.

    Args:
        model: has ``score(features, critic_inputs (1, n, 4)) -> logits (1, n)``.
        features: ``ImageFeatures`` of one image.
        final_population: size of the last population (default ``population``).

    Returns:
        :class:`CEMTrace`.
    """
    final_population = population if final_population is None else final_population
    device = features.device
    elites = num_elites(population, elite_fraction)
    mean_scores, elite_scores = [], []
    num_scored = 0

    def size(it: int) -> int:
        return final_population if it == iterations - 1 else population

    params = _uniform(size(0), generator, device)
    for it in range(iterations):
        logits = model.score(features, critic_inputs(params)[None])[0]
        num_scored += len(params)
        top = torch.topk(logits, min(elites, len(params))).indices
        probs = torch.sigmoid(logits)
        mean_scores.append(float(probs.mean()))
        elite_scores.append(float(probs[top].mean()))
        if it + 1 < iterations:
            params = _gaussian(*_fit(params[top]), size(it + 1), generator)
    return CEMTrace(params, logits, tuple(mean_scores), tuple(elite_scores), num_scored)


def cem_propose(model: Network, image: np.ndarray, num_grasps: int = NUM_GRASPS,
                iterations: int = ITERATIONS, population: int = POPULATION,
                elite_fraction: float = ELITE_FRACTION,
                generator: Optional[torch.Generator] = None, seed: Optional[int] = None,
                ranking: str = 'score') -> Proposal:
    """Grasp proposals by CEM on the critic, as a :class:`.proposer.Proposal`.

    The last iteration draws ``max(population, num_grasps)`` grasps; the ``num_grasps``
    best by critic score are returned (Yan et al. execute the best one). ``log_density``
    is NaN (CEM has no generative density), ``num_rejected`` is 0, ``num_sampled`` counts
    every grasp scored, and ``cluster_ids`` cluster the returned grasps as for the actor.
    The baseline ranks by raw critic score (Yan et al.), without calibration or floor.

    Args:
        model: ``ActorCritic`` or ``HeatmapModel`` (uses ``image_size``, ``features``,
            ``score``).
        image: (128, 128, 3) uint8 RGB camera frame.
        generator / seed: optional randomness for reproducible proposals.

    Raises:
        ValueError: naming the bad argument.
    """
    start = time.perf_counter()
    check_image(image)
    num_grasps = check_count('num_grasps', num_grasps, 1, MAX_GRASPS)
    iterations = check_count('iterations', iterations, 1, MAX_ITERATIONS)
    population = check_count('population', population, 2, MAX_SAMPLES)
    if isinstance(elite_fraction, bool) or not isinstance(
            elite_fraction, (int, float, np.integer, np.floating)) or not 0 < elite_fraction <= 1:
        raise ValueError(f'elite_fraction must be in (0, 1], got {elite_fraction!r}')
    if ranking not in RANKINGS:
        raise ValueError(f'ranking must be one of {RANKINGS}, got {ranking!r}')
    device = model_device(model)
    generator = make_generator(device, generator, seed)
    with torch.inference_mode():
        features = model.features(images_to_tensor(image, model.input_size, device))
        trace = cem_search(model, features, iterations, population, elite_fraction,
                           max(population, num_grasps), generator)
        inputs = critic_inputs(trace.params)
        scores = torch.sigmoid(trace.logits)
        actions = decode_actor(inputs)
    return finish_proposal(
        actions.cpu().numpy(), inputs.cpu().numpy(), scores.cpu().numpy(),
        np.full(len(scores), np.nan), num_grasps, ranking, trace.num_scored, 0, start)


class CEMSampler:
    """CEM as an evaluation sampler: ``sample_actions(image, n)`` returns the ``n`` grasps
    of :func:`cem_propose` and NaN densities (so the '*' metrics do not apply)."""

    def __init__(self, model: Network, iterations: int = ITERATIONS,
                 population: int = POPULATION, elite_fraction: float = ELITE_FRACTION,
                 seed: Optional[int] = None) -> None:
        self.model = model
        self.iterations = iterations
        self.population = population
        self.elite_fraction = elite_fraction
        self.generator = make_generator(model_device(model), seed=seed)

    def sample_actions(self, image: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Actions (n, 3) and log-densities (n,), all NaN, of cem_propose."""
        proposal = cem_propose(self.model, image, n, self.iterations, self.population,
                               self.elite_fraction, generator=self.generator)
        return np.array(proposal.actions), np.array(proposal.log_density)
