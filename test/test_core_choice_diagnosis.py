"""The choice diagnosis (``fga choices``): importance-weighted mode shares against known
answers, and the scene figures on a model whose choices follow the target exactly."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from fga_ros.core.analysis import choice_diagnosis
from fga_ros.core.analysis.choice_diagnosis import (
    diagnose_scene,
    format_diagnosis,
    shares_tv,
    summarise,
    weighted_mode_shares,
)
from fga_ros.core.models.nets import ActorCritic
from fga_ros.sim import ground_truth, make_scene


def test_weighting_the_choices_to_the_target_recovers_its_mode_shares():
    # choice 0 (pi 3/4) always lands in mode 1, choice 1 (pi 1/4) in mode 2; the target
    # gives each choice 1/2: weighted by p / pi the samples split 1/2, 1/2 exactly
    modes = np.array([1] * 300 + [2] * 100 + [0] * 50)
    pi = np.array([0.75] * 300 + [0.25] * 100 + [0.75] * 50)
    weights = 0.5 / pi
    np.testing.assert_allclose(weighted_mode_shares(modes, np.ones(450), 2), [0.75, 0.25])
    np.testing.assert_allclose(weighted_mode_shares(modes, weights, 2), [0.5, 0.5])
    assert shares_tv([0.75, 0.25], [0.5, 0.5]) == pytest.approx(0.25)


def test_weighted_mode_shares_match_a_loop():
    rng = np.random.default_rng(0)
    modes, weights = rng.integers(0, 4, 200), rng.random(200)
    expected = np.zeros(3)
    for mode, weight in zip(modes, weights):
        if mode > 0:
            expected[mode - 1] += weight
    np.testing.assert_allclose(weighted_mode_shares(modes, weights, 3),
                               expected / expected.sum())


def test_nothing_feasible_is_the_worst_distance():
    shares = weighted_mode_shares(np.zeros(5, dtype=int), np.ones(5), 2)
    np.testing.assert_array_equal(shares, [0.0, 0.0])
    assert shares_tv(shares, [0.5, 0.5]) == 1.0
    with pytest.raises(ValueError, match='weights'):
        weighted_mode_shares(np.ones(2, dtype=int), np.array([1.0, -1.0]), 1)
    assert math.isnan(summarise([None])['mode_tv'])


def test_choices_that_follow_the_target_change_nothing(tiny_config, monkeypatch):
    """pi = p: every weight is 1, so the 'target choices' figures equal the plain ones and
    the choice TV is 0; the figures are fractions."""
    config = dataclasses.replace(tiny_config, actor_head='spatial', critic_readout='local',
                                 cell_fkl_weight=1.0)
    torch.manual_seed(0)
    model = ActorCritic(config).eval()
    actor = model.actor
    reachable = int((~actor.unreachable).sum())
    fixed = torch.log_softmax(torch.randn(1, reachable), -1)

    def follow_target(trunk):
        log_probs = torch.full((trunk.shape[0], actor.unreachable.numel()), -math.inf)
        log_probs[:, ~actor.unreachable] = fixed
        return log_probs

    monkeypatch.setattr(actor, 'cell_log_probs', follow_target)
    monkeypatch.setattr(choice_diagnosis, 'cell_target', lambda *args: fixed.clone())
    monkeypatch.setattr(choice_diagnosis, 'UNIFORM_GRASPS', 2000)
    scene = make_scene('H', 3)
    assert ground_truth(scene).num_modes > 0
    figures = diagnose_scene(model, scene, 512, torch.Generator().manual_seed(0),
                             np.random.default_rng(0))
    assert figures.choice_tv == pytest.approx(0.0, abs=1e-6)
    assert figures.mode_tv_target_choices == pytest.approx(figures.mode_tv)
    assert figures.accuracy_target_choices == pytest.approx(figures.accuracy)
    values = dataclasses.asdict(figures).values()
    assert all(0.0 <= v <= 1.0 for v in values)
    table = format_diagnosis({'H': summarise([figures, None])})
    assert table.splitlines()[2].startswith('| H | ')


def test_a_model_without_the_spatial_actor_is_refused(tiny_config):
    model = ActorCritic(dataclasses.replace(tiny_config, actor_head='flat'))
    with pytest.raises(ValueError, match='spatial'):
        diagnose_scene(model, make_scene('H', 3), 8, torch.Generator(),
                       np.random.default_rng(0))
