"""Samples resampled towards the critic's target: systematic draws, the 1/q correction of an
actor's imbalance, the pool's KDE, the proposer's settings and their errors."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from fga_ros.core.inference.defaults import MAX_RESAMPLE_POOL
from fga_ros.core.inference.proposer import Proposer
from fga_ros.core.inference.resampling import (
    can_resample,
    pool_sizes,
    resample_pool,
    systematic_indices,
)
from fga_ros.core.models.nets import ActorCritic
from fga_ros.sim import make_scene, render

BANDWIDTH = (0.05, 0.05, 0.4, 0.4)


@pytest.fixture(scope='module')
def config(tiny_config):
    return tiny_config


@pytest.fixture(scope='module')
def image():
    return render(make_scene('T', 2))


@pytest.mark.parametrize('seed', range(5))
def test_systematic_draws_each_item_the_floor_or_ceiling_of_its_share(seed):
    weights = torch.tensor([0.35, 0.3, 0.2, 0.15, 0.0])
    n = 7
    gen = torch.Generator().manual_seed(seed)
    counts = np.bincount(systematic_indices(torch.log(weights), n, gen).numpy(),
                         minlength=5)
    expected = n * weights.numpy()
    assert counts.sum() == n and counts[4] == 0
    assert np.all(counts >= np.floor(expected)) and np.all(counts <= np.ceil(expected))


def test_systematic_with_every_weight_zero_draws_every_item_alike():
    index = systematic_indices(torch.full((6,), -math.inf), 12)
    assert np.bincount(index.numpy(), minlength=6).tolist() == [2] * 6


def _cluster(count, x, y, gen):
    """count actor outputs (count, 4) around (x, y) at alpha = 0, r = 0.5."""
    xy = torch.tensor([x, y]) + 0.03 * torch.randn(count, 2, generator=gen)
    angle = torch.tensor([0.0, 0.5]).expand(count, 2)
    return torch.cat([xy, angle], dim=1)


def test_resampling_balances_two_equal_modes_and_drops_the_infeasible():
    # The actor puts 90 % of its feasible samples in mode A and 10 % in B, two modes of the
    # same shape and size, and 200 samples where the critic says infeasible: the target
    # gives A and B half each, so resampling by g / q must too.
    gen = torch.Generator().manual_seed(0)
    pool = torch.cat([_cluster(900, -0.5, 0.0, gen), _cluster(100, 0.5, 0.0, gen),
                      _cluster(200, 0.0, 0.8, gen)])
    weights = torch.cat([torch.ones(1000), torch.zeros(200)])
    index, log_q = resample_pool(pool, weights, BANDWIDTH, 2000, gen)
    index = index.numpy()
    assert index.shape == (2000,) and np.all(index < 1000)
    share_b = np.mean(index >= 900)
    assert 0.4 < share_b < 0.6, share_b
    # without the 1 / q correction B would keep its 10 %
    plain = systematic_indices(torch.log(weights), 2000, gen).numpy()
    assert np.mean(plain >= 900) < 0.15


def test_the_pool_density_is_the_kde_of_the_whole_pool():
    gen = torch.Generator().manual_seed(1)
    pool = torch.randn(40, 4, generator=gen, dtype=torch.float64) * 0.2
    _, log_q = resample_pool(pool, torch.ones(40, dtype=torch.float64), BANDWIDTH, 10, gen)
    sigma = np.array(BANDWIDTH)
    points = pool.numpy()
    for i in range(40):
        z = (points[i] - points) / sigma
        kernel = np.exp(-0.5 * (z ** 2).sum(1)) / np.prod(sigma * math.sqrt(2 * math.pi))
        assert log_q[i].item() == pytest.approx(math.log(kernel.mean()), abs=1e-6)


def test_pool_sizes():
    assert pool_sizes(1024, 4, 0.25) == (4096, 1024)
    assert pool_sizes(10, 1, 0.0) == (10, 0)


class HalfCritic(ActorCritic):
    """The tiny actor-critic with a critic that finds only grasps with x_n > ``cut``
    feasible."""

    cut = 0.0

    def score(self, features, actions):
        return torch.where(actions[..., 0] > self.cut, 30.0, -30.0)


def test_the_proposer_returns_only_what_the_critic_finds_feasible(config, image):
    torch.manual_seed(0)
    model = HalfCritic(config)
    proposer = Proposer(model, config, seed=0)
    own, _ = proposer.sample_actions(image, 200, seed=3, resample=1)
    x_n = (own[:, 0] - 64.0) / 39.0
    HalfCritic.cut = float(np.median(x_n))
    actions, log_density = proposer.sample_actions(image, 200, seed=3)
    assert actions.shape == (200, 3) and np.all(np.isfinite(log_density))
    assert np.all((actions[:, 0] - 64.0) / 39.0 > HalfCritic.cut)
    # the actor's own samples lie on both sides of the cut
    assert np.mean(x_n > HalfCritic.cut) < 0.6


def test_resample_one_gives_the_actors_own_samples(config, image):
    torch.manual_seed(0)
    proposer = Proposer(ActorCritic(config), config)
    first = proposer.sample_actions(image, 30, seed=4, resample=1)
    again = proposer.sample_actions(image, 30, seed=4, resample=1)
    resampled = proposer.sample_actions(image, 30, seed=4)
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], resampled[0])


def test_a_gan_is_never_resampled(config, image):
    gan = dataclasses.replace(config, divergence='gan')
    torch.manual_seed(0)
    model = ActorCritic(gan)
    assert not can_resample(model, gan) and can_resample(model, config)
    proposer = Proposer(model, gan)
    np.testing.assert_array_equal(proposer.sample_actions(image, 20, seed=2)[0],
                                  proposer.sample_actions(image, 20, seed=2, resample=1)[0])


@pytest.mark.parametrize('kwargs, message', [
    ({'resample': 0}, r'resample must be in \[1, 16\]'),
    ({'resample': 17}, r'resample must be in \[1, 16\]'),
    ({'resample': 2.0}, 'resample must be an integer'),
    ({'resample': True}, 'resample must be an integer'),
    ({'explore_share': -0.1}, r'explore_share must be in \[0, 1\]'),
    ({'explore_share': math.nan}, r'explore_share must be in \[0, 1\]'),
    ({'explore_share': '0.2'}, 'explore_share must be a number'),
    ({'resample': 16, 'n': 4096}, f'must hold at most {MAX_RESAMPLE_POOL}'),
])
def test_bad_resampling_settings_are_named(config, image, kwargs, message):
    proposer = Proposer(ActorCritic(config), config)
    n = kwargs.pop('n', 10)
    with pytest.raises(ValueError, match=message):
        proposer.sample_actions(image, n, **kwargs)
