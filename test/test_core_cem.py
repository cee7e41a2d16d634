"""Critic + CEM baseline: valid proposals, improvement over iterations, periodic angle."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from fga_ros.core.common.config import load_config
from fga_ros.core.inference.cem import CEMSampler, cem_propose, cem_search, num_elites
from fga_ros.core.models.nets import ActorCritic
from fga_ros.sim import WORKSPACE_HI, WORKSPACE_LO, make_scene, render


class PeakCritic(nn.Module):
    """Critic whose logit peaks at one grasp: -(distance^2) / 0.05 in critic-input space."""

    def __init__(self, x_px, y_px, alpha, image_size=32):
        super().__init__()
        self.image_size = image_size
        self.input_size = image_size
        self.dummy = nn.Parameter(torch.zeros(1))
        self.target = torch.tensor([(x_px - 64) / 39, (y_px - 64) / 39,
                                    math.sin(2 * alpha), math.cos(2 * alpha)])

    def features(self, images):
        return torch.zeros(images.shape[0], 1)

    def score(self, features, actions):
        return 4.0 - (actions - self.target).square().sum(-1) / 0.05


@pytest.fixture(scope='module')
def image():
    return render(make_scene('T', 2))


def _angle_error(a, b):
    d = abs(a - b) % math.pi
    return min(d, math.pi - d)


def test_num_elites():
    assert num_elites(64, 0.1) == 6
    assert num_elites(10, 0.01) == 2
    assert num_elites(3, 1.0) == 3


def test_cem_finds_the_peak_and_improves(image):
    critic = PeakCritic(80.0, 50.0, 1.0)
    p = cem_propose(critic, image, 8, seed=0)
    assert len(p) == 8 and p.num_sampled == 3 * 64 and p.num_rejected == 0
    assert np.all(np.isnan(p.log_density))
    assert np.all(np.diff(p.scores) <= 0)
    best = p.actions[0]  # tolerances hold for every seed in 0..99
    assert abs(best[0] - 80.0) < 12 and abs(best[1] - 50.0) < 12
    assert _angle_error(best[2], 1.0) < math.radians(12)
    with torch.inference_mode():
        trace = cem_search(critic, torch.zeros(1, 1), generator=torch.Generator().manual_seed(0))
    assert len(trace.mean_scores) == 3
    assert trace.mean_scores[2] > trace.mean_scores[1] > trace.mean_scores[0]
    assert trace.elite_scores[2] >= trace.elite_scores[0]


def test_cem_wraps_the_doubled_angle(image):
    # alpha near pi/2 puts phi = 2 alpha near +-pi, where a naive mean would fail.
    critic = PeakCritic(60.0, 70.0, 0.5 * math.pi - 0.02)
    p = cem_propose(critic, image, 4, seed=1)
    assert _angle_error(p.actions[0, 2], 0.5 * math.pi - 0.02) < math.radians(12)


def test_cem_on_a_real_network(image):
    config = load_config('tiny')
    torch.manual_seed(0)
    model = ActorCritic(config)
    p = cem_propose(model, image, 100, seed=3)
    assert p.actions.shape == (100, 3) and p.num_sampled == 64 + 64 + 100
    assert np.all((p.actions[:, :2] >= WORKSPACE_LO) & (p.actions[:, :2] < WORKSPACE_HI))
    assert np.all((p.actions[:, 2] >= 0) & (p.actions[:, 2] < math.pi))
    assert np.all((p.scores >= 0) & (p.scores <= 1))
    np.testing.assert_array_equal(p.ranks, np.arange(100))
    assert np.all(p.cluster_ids >= 1)
    again = cem_propose(model, image, 100, seed=3)
    np.testing.assert_array_equal(p.actions, again.actions)
    actions, log_density = CEMSampler(model, seed=0).sample_actions(image, 16)
    assert actions.shape == (16, 3) and np.all(np.isnan(log_density))


@pytest.mark.parametrize('kwargs, message', [
    ({'iterations': 0}, 'iterations'),
    ({'population': 1}, 'population'),
    ({'elite_fraction': 0.0}, 'elite_fraction'),
    ({'elite_fraction': 1.5}, 'elite_fraction'),
    ({'num_grasps': 0}, 'num_grasps'),
    ({'ranking': 'random'}, 'ranking'),
])
def test_cem_bad_arguments(image, kwargs, message):
    args = {'num_grasps': 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        cem_propose(PeakCritic(64, 64, 0), image, **args)
    with pytest.raises(ValueError, match='uint8'):
        cem_propose(PeakCritic(64, 64, 0), image.astype(np.float32), 4)
