"""Section 6 metrics on fake samplers with known answers, quick accuracy, the table."""

import math

import numpy as np
import pytest
import torch

from fga_ros.core.analysis.evaluation import (
    EVAL_SEED_BASE,
    UniformSampler,
    evaluate,
    evaluation_scenes,
    format_table,
    quick_metrics,
    rank_shares,
)
from fga_ros.core.analysis.figures import critic_actor_figure, proposal_figure, rank_share_figure
from fga_ros.core.common.config import load_config
from fga_ros.core.inference.proposer import Proposer
from fga_ros.core.models.nets import ActorCritic
from fga_ros.sim import ground_truth, render

SHAPE = 'T'  # T scenes have 3 modes
STATES = 2


class OracleSampler:
    """Samples the ground truth of the scene behind each evaluation image.

    Args:
        modes: 'first' (only mode 1), 'even' (the same count from every mode), or
            'half' (half mode-1 grasps with density 0, half infeasible with density -1).
    """

    def __init__(self, kind, shape=SHAPE, states=STATES, density=0.0):
        self.kind = kind
        self.density = density
        self.scenes = {render(s).tobytes(): s for s in evaluation_scenes(shape, states)}
        self.rng = np.random.default_rng(0)

    def _of_mode(self, truth, mode, n):
        pool = truth.sample_feasible(20 * n + 200, self.rng)
        pool = pool[truth.mode_of(pool) == mode]
        assert len(pool) >= n
        return pool[:n]

    def sample_actions(self, image, n):
        truth = ground_truth(self.scenes[image.tobytes()])
        if self.kind == 'first':
            actions = self._of_mode(truth, 1, n)
            return actions, np.full(n, self.density)
        if self.kind == 'even':
            per = n // truth.num_modes
            assert per * truth.num_modes == n
            actions = np.concatenate([self._of_mode(truth, m + 1, per)
                                      for m in range(truth.num_modes)])
            return actions, np.full(n, self.density)
        good = self._of_mode(truth, 1, n // 2)
        bad = self.rng.uniform([25, 25, 0], [103, 103, math.pi], size=(20 * n, 3))
        bad = bad[truth.mode_of(bad) == 0][:n - n // 2]
        return (np.concatenate([good, bad]),
                np.concatenate([np.zeros(n // 2), -np.ones(n - n // 2)]))


def test_rank_shares_known_answer():
    np.testing.assert_allclose(rank_shares([2, 1, 1, 1, 0, 0], 3), [0.5, 1 / 6, 0.0])
    np.testing.assert_allclose(rank_shares([0, 0], 2), [0.0, 0.0])
    assert rank_shares([1], 0).shape == (0,)


def test_evaluation_scenes_are_deterministic_and_held_out():
    a = evaluation_scenes('H', 5, seed=0)
    assert a == evaluation_scenes('H', 5, seed=0)
    assert a != evaluation_scenes('H', 5, seed=1)
    assert all(EVAL_SEED_BASE <= s.seed < 2 * EVAL_SEED_BASE for s in a)
    assert {s.seed for s in a}.isdisjoint(s.seed for s in evaluation_scenes('T', 5, seed=0))


def test_single_mode_sampler():
    res = evaluate(OracleSampler('first'), [SHAPE], STATES, 60, progress=False)[SHAPE]
    assert res['num_modes_mean'] == 3.0
    assert res['accuracy'] == 1.0 and res['accuracy_rejected'] == 1.0
    np.testing.assert_allclose(res['rank_shares'], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(res['rank_shares_rejected'], [1.0, 0.0, 0.0])
    assert res['last_share'] == 0.0
    assert (res['states'], res['actions']) == (STATES, 60)


def test_even_sampler_gives_equal_shares():
    res = evaluate(OracleSampler('even'), [SHAPE], STATES, 60, progress=False)[SHAPE]
    assert res['accuracy'] == 1.0
    np.testing.assert_allclose(res['rank_shares'], [1 / 3] * 3)
    assert res['last_share'] == pytest.approx(1 / 3)
    # Constant densities: rejection drops some grasps, shares stay about equal.
    assert sum(res['rank_shares_rejected']) == pytest.approx(1.0)


def test_rejection_drops_the_low_density_failures():
    res = evaluate(OracleSampler('half'), [SHAPE], STATES, 60, reject_fraction=0.5,
                   progress=False)[SHAPE]
    assert res['accuracy'] == 0.5 and res['accuracy_rejected'] == 1.0
    np.testing.assert_allclose(res['rank_shares'], [0.5, 0.0, 0.0])
    np.testing.assert_allclose(res['rank_shares_rejected'], [1.0, 0.0, 0.0])
    assert sum(res['rank_shares']) + (1 - res['accuracy']) == pytest.approx(1.0)


def test_nan_densities_make_rejected_metrics_nan_and_table_says_na():
    results = evaluate(OracleSampler('first', density=np.nan), [SHAPE], STATES, 30,
                       progress=False)
    res = results[SHAPE]
    assert res['accuracy'] == 1.0
    assert math.isnan(res['accuracy_rejected']) and math.isnan(res['last_share_rejected'])
    table = format_table(results)
    assert 'n/a' in table and '100.0' in table and SHAPE in table


def test_uniform_sampler_and_table_layout():
    results = evaluate(UniformSampler(seed=0), ['H', SHAPE], 1, 64, progress=False)
    assert set(results) == {'H', SHAPE}
    for res in results.values():
        assert 0.0 <= res['accuracy'] <= 0.2  # the feasible set is a few % of the space
        assert sum(res['rank_shares']) == pytest.approx(res['accuracy'])
    lines = format_table(results).splitlines()
    assert lines[0].split() == ['shape', 'acc', '%', 'acc*', '%', 'last', '%', 'last*', '%',
                                'modes', 'hit', '%', 'recall', '%', 'recall*', '%', 'TV',
                                'TV*', 'TV', 'floor']
    assert [line.split()[0] for line in lines[2:]] == ['H', SHAPE, 'Avg']


class WrongSampler:
    def sample_actions(self, image, n):
        return np.full((n - 1, 3), 50.0), np.zeros(n - 1)


@pytest.mark.parametrize('args, message', [
    ((UniformSampler(), [], 1, 4), 'shapes'),
    ((UniformSampler(), ['H'], 0, 4), 'states'),
    ((UniformSampler(), ['H'], 1, 0), 'actions'),
    ((WrongSampler(), ['H'], 1, 4), 'sampler must return'),
])
def test_evaluate_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        evaluate(*args, progress=False)


def test_quick_metrics_keys_and_ranges():
    config = load_config('tiny')
    torch.manual_seed(0)
    model = ActorCritic(config).eval()
    out = quick_metrics(model, config, ['H', SHAPE], 1, seed=0, actions=20)
    prefixes = ('acc', 'acc*', 'hit', 'recall', 'tv')
    assert set(out) == {f'{p}/{s}' for p in prefixes for s in ('H', SHAPE, 'mean')}
    assert all(0.0 <= v <= 1.0 for v in out.values())
    for prefix in prefixes:
        assert out[f'{prefix}/mean'] == pytest.approx(
            (out[f'{prefix}/H'] + out[f'{prefix}/{SHAPE}']) / 2)
    assert out == quick_metrics(model, config, ['H', SHAPE], 1, seed=0, actions=20)


def test_figures_are_written(tmp_path):
    config = load_config('tiny')
    torch.manual_seed(0)
    model = ActorCritic(config).eval()
    scene = evaluation_scenes(SHAPE, 1)[0]
    image = render(scene)
    critic_actor_figure(model, config, scene, ground_truth(scene), tmp_path / 'fig1.png',
                        num_samples=512, grid=13, angle_bins=6)
    proposal = Proposer(model, config).propose(image, 16, seed=0)
    proposal_figure(image, proposal, tmp_path / 'proposal.png')
    results = evaluate(OracleSampler('half'), [SHAPE], STATES, 20, progress=False)
    rank_share_figure(results, tmp_path / 'ranks.png')
    for name in ('fig1.png', 'proposal.png', 'ranks.png'):
        assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
