"""Samples resampled towards the critic's target: systematic draws, the 1/q correction of an
actor's imbalance, the pool's KDE, the proposer's settings and their errors."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from fga_ros.core.common.actions import normalise_actor_output
from fga_ros.core.common.tensors import images_to_tensor
from fga_ros.core.inference.defaults import MAX_RESAMPLE_POOL
from fga_ros.core.inference.proposer import Proposer, sample_with_density
from fga_ros.core.inference.resampling import (
    can_resample,
    pool_sizes,
    resample_pool,
    resampled_samples,
    systematic_indices,
)
from fga_ros.core.models.feasibility import action_weight
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


def test_nan_weights_weigh_nothing():
    index = systematic_indices(torch.log(torch.tensor([0.0, 1.0, math.nan, 3.0])), 8)
    assert np.bincount(index.numpy(), minlength=4).tolist() == [0, 2, 0, 6]


class HalfCritic(ActorCritic):
    """The tiny actor-critic with a critic that finds only grasps with x_n > ``cut``
    feasible (x_n < ``cut`` with ``left``)."""

    def __init__(self, config, cut=0.0, left=False):
        super().__init__(config)
        self.cut, self.left = cut, left

    def score(self, features, actions):
        beyond = actions[..., 0] < self.cut if self.left else actions[..., 0] > self.cut
        return torch.where(beyond, 30.0, -30.0)


def test_the_proposer_returns_only_what_the_critic_finds_feasible(config, image):
    torch.manual_seed(0)
    model = HalfCritic(config)
    proposer = Proposer(model, config, seed=0)
    own, _ = proposer.sample_actions(image, 200, seed=3, resample=1)
    x_n = (own[:, 0] - 64.0) / 39.0
    model.cut = float(np.median(x_n))
    actions, log_density = proposer.sample_actions(image, 200, seed=3)
    assert actions.shape == (200, 3) and np.all(np.isfinite(log_density))
    assert np.all((actions[:, 0] - 64.0) / 39.0 > model.cut)
    # the actor's own samples lie on both sides of the cut
    assert np.mean(x_n > model.cut) < 0.6
    # the same from the actor's samples alone
    actions, _ = proposer.sample_actions(image, 200, seed=3, explore_share=0.0)
    assert np.all((actions[:, 0] - 64.0) / 39.0 > model.cut)


class LeftActor(HalfCritic):
    """An actor that only ever samples at the workspace's left edge (x_n = -1), where its
    critic finds nothing feasible (feasible: x_n > -0.5)."""

    def sample(self, features, n, generator=None):
        out = torch.zeros(features.num_states, n, 4)
        out[..., 0] = -1.0
        out[..., 3] = 0.5
        return out


def test_explored_grasps_supply_what_the_actor_never_samples(config, image):
    proposer = Proposer(LeftActor(config, cut=-0.5), config, seed=0)
    actions, _ = proposer.sample_actions(image, 100, seed=1)
    assert np.all((actions[:, 0] - 64.0) / 39.0 > -0.5)
    # without them every weight is zero and the actor's samples come back unchanged
    alone, _ = proposer.sample_actions(image, 100, seed=1, explore_share=0.0)
    np.testing.assert_allclose((alone[:, 0] - 64.0) / 39.0, -1.0, atol=1e-6)


def test_the_actors_samples_stay_in_the_pool_beside_the_explored(config, image):
    # feasible only at the left edge, where the actor samples and the object is not
    proposer = Proposer(LeftActor(config, cut=-0.9, left=True), config, seed=0)
    actions, _ = proposer.sample_actions(image, 100, seed=1)
    np.testing.assert_allclose((actions[:, 0] - 64.0) / 39.0, -1.0, atol=1e-6)


class RightOfCentre:
    """A calibration stand-in whose view-averaged logits find only x_n > 0 feasible."""

    def logits(self, model, features, critic_inputs, first=None, views=None):
        return torch.where(critic_inputs[:, 0] > 0.0, 30.0, -30.0)


def test_the_weights_are_the_calibrations_view_averaged_logits(config, image):
    torch.manual_seed(0)
    model = HalfCritic(config, cut=2.0)  # its own score finds nothing feasible
    features = model.features(images_to_tensor(image, model.input_size, torch.device('cpu')))
    out, log_q = resampled_samples(model, BANDWIDTH, RightOfCentre(), image, (features, None),
                                   50, (200, 50), 1.0, torch.Generator().manual_seed(0))
    assert out.shape == (50, 4) and torch.isfinite(log_q).all()
    assert (out[:, 0] > 0.0).all()


class MildCritic:
    """A calibration stand-in whose view-averaged logit is x_n: unsure near the centre."""

    def logits(self, model, features, critic_inputs, first=None, views=None):
        return critic_inputs[:, 0].clone()


@pytest.mark.parametrize('sharpness', [0.0, 1.0, 4.0])
def test_the_weights_are_the_sharpened_target(config, image, monkeypatch, sharpness):
    captured = {}

    def capture(pool, weights, bandwidth, n, generator=None):
        captured['pool'], captured['weights'] = pool, weights
        return torch.arange(n), torch.zeros(len(pool))

    monkeypatch.setattr('fga_ros.core.inference.resampling.resample_pool', capture)
    torch.manual_seed(0)
    model = ActorCritic(config)
    features = model.features(images_to_tensor(image, model.input_size, torch.device('cpu')))
    resampled_samples(model, BANDWIDTH, MildCritic(), image, (features, None), 20, (80, 40),
                      sharpness, torch.Generator().manual_seed(0))
    pool = captured['pool']
    assert pool.shape == (120, 4)
    expected = (torch.sigmoid(sharpness * normalise_actor_output(pool)[:, 0])
                * action_weight(pool))
    torch.testing.assert_close(captured['weights'], expected)


class MildScore(ActorCritic):
    """The tiny actor-critic with a critic whose logit 4 (x_n - 0.3) is unsure near
    x_n = 0.3 (one view, uncalibrated)."""

    def score(self, features, actions):
        return 4.0 * (actions[..., 0] - 0.3)


def test_a_sharper_target_drops_what_the_critic_is_unsure_of(config, image):
    torch.manual_seed(0)
    proposer = Proposer(MildScore(config), config, seed=0)
    shares = []
    for sharpness in (1.0, 8.0):
        actions, _ = proposer.sample_actions(image, 400, seed=5, sharpness=sharpness)
        shares.append(np.mean((actions[:, 0] - 64.0) / 39.0 < 0.2))
    # there the logit is below -0.4: weight sigmoid(k logit) < 0.41 (k = 1), < 0.04 (k = 8)
    assert shares[0] > 0.05 and shares[1] < 0.2 * shares[0]


def test_resample_one_gives_the_actors_own_samples(config, image):
    torch.manual_seed(0)
    model = ActorCritic(config)
    proposer = Proposer(model, config)
    own = proposer.sample_actions(image, 30, seed=4, resample=1)
    plain = sample_with_density(model, config, image, 30, torch.Generator().manual_seed(4))
    np.testing.assert_array_equal(own[0], plain[0])
    np.testing.assert_array_equal(own[1], plain[1])


def test_a_gan_is_never_resampled(config, image):
    gan = dataclasses.replace(config, divergence='gan')
    torch.manual_seed(0)
    model = ActorCritic(gan)
    assert not can_resample(model, gan) and can_resample(model, config)
    proposer = Proposer(model, gan)
    np.testing.assert_array_equal(proposer.sample_actions(image, 20, seed=2)[0],
                                  proposer.sample_actions(image, 20, seed=2, resample=1)[0])
    # no pool is drawn, so its bound does not apply
    assert len(proposer.sample_actions(image, 16384, resample=16)[0]) == 16384


@pytest.mark.parametrize('kwargs, message', [
    ({'resample': 0}, r'resample must be in \[1, 16\]'),
    ({'resample': 17}, r'resample must be in \[1, 16\]'),
    ({'resample': 2.0}, 'resample must be an integer'),
    ({'resample': True}, 'resample must be an integer'),
    ({'explore_share': -0.1}, r'explore_share must be in \[0, 1\]'),
    ({'explore_share': math.nan}, r'explore_share must be in \[0, 1\]'),
    ({'explore_share': '0.2'}, 'explore_share must be a number'),
    ({'sharpness': -1.0}, r'sharpness must be in \[0, 16\]'),
    ({'sharpness': math.inf}, r'sharpness must be in \[0, 16\]'),
    ({'sharpness': '4'}, 'sharpness must be a number'),
    ({'resample': 16, 'n': 8192}, f'must hold at most {MAX_RESAMPLE_POOL}: ask for fewer'),
])
def test_bad_resampling_settings_are_named(config, image, kwargs, message):
    proposer = Proposer(ActorCritic(config), config)
    n = kwargs.pop('n', 10)
    with pytest.raises(ValueError, match=message):
        proposer.sample_actions(image, n, **kwargs)
