"""Controlled experiment of section 3: generators trained on the simulator's own g."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from fga_ros import cli, sim
from fga_ros.core.analysis.oracle_experiment import (
    format_modes_table,
    modes_figure,
    oracle_weight,
    run_oracle_experiment,
)
from fga_ros.core.common.actions import encode_actions
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.estimators.divergences import radius_weight

CANONICAL_H = {'x': 64.0, 'y': 64.0, 'theta': 0.0, 'bar_length': 44.0, 'bar_width': 9.0,
               'gap': 18.0, 'crossbar_width': 8.0}
SMALL = dataclasses.replace(TrainConfig(), actor_hidden=(64, 64))  # fast, same estimator

pytestmark = pytest.mark.usefixtures('one_thread')


def test_oracle_weight_is_success_times_radius_weight():
    scene = sim.make_scene('H', 0, params=CANONICAL_H)
    px = np.array([[50.5, 50.5, 0.0], [50.5, 50.5, math.pi / 2], [64.5, 64.5, math.pi / 2]])
    points = torch.as_tensor(encode_actions(px), dtype=torch.float32)[None]  # r = 1
    weights = oracle_weight(scene, points)
    assert weights.shape == (1, 3)
    expected = radius_weight(points)[0] * torch.tensor([1.0, 0.0, 1.0])
    torch.testing.assert_close(weights[0], expected)


def test_fkl_covers_more_modes_than_rkl_on_the_canonical_h():
    # Checked with rng seeds 0-4: FKL visits 2-3 of the 5 modes, RKL exactly one (~100%).
    results = run_oracle_experiment('H', 0, ('fkl', 'rkl'), steps=1000, samples=512,
                                    config=SMALL, params=CANONICAL_H, progress=False)
    gt = sim.ground_truth(sim.make_scene('H', 0, params=CANONICAL_H))
    fkl, rkl = results['fkl'], results['rkl']
    assert fkl['num_modes'] == rkl['num_modes'] == 5
    assert fkl['modes_visited'] >= 2
    assert fkl['modes_visited'] > rkl['modes_visited'] >= 1
    for r in (fkl, rkl):
        assert r['accuracy'] > 5 * gt.feasible_fraction  # far above random grasps
        assert len(r['rank_shares']) == 5
        assert np.isclose(sum(r['rank_shares']), r['accuracy'])
        assert (np.diff(r['rank_shares']) <= 0).all()


def test_figure_and_table_without_training(tmp_path):
    results = run_oracle_experiment('H', 3, ('js', 'rkl'), steps=0, samples=64, config=SMALL,
                                    progress=False)
    assert set(results) == {'js', 'rkl'}
    assert results['js']['actions'].shape == (64, 3)
    table = format_modes_table(results)
    assert table.splitlines()[1].startswith('JS') and table.splitlines()[2].startswith('RKL')
    path = tmp_path / 'modes.png'
    modes_figure(results, sim.make_scene('H', 3), path)
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


@pytest.mark.parametrize('kwargs, message', [
    ({'divergences': ('js', 'gan')}, 'divergences'),
    ({'divergences': ()}, 'divergences'),
    ({'steps': -1}, 'steps'),
    ({'lr': 0.0}, 'lr'),
    ({'samples': 0}, 'samples'),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_oracle_experiment('H', 3, **{'steps': 0, **kwargs}, config=SMALL, progress=False)


def test_cli_modes_writes_json_and_figure(tmp_path, capsys):
    out, metrics = tmp_path / 'm.png', tmp_path / 'm.json'
    code = cli.main(['modes', '--shape', 'T', '--seed', '5', '--divergences', 'fkl',
                     '--steps', '0', '--samples', '32', '--out', str(out), '--json',
                     str(metrics), '--no-progress'])
    assert code == 0
    assert out.is_file()
    data = json.loads(metrics.read_text())
    assert data['scene']['shape'] == 'T' and data['steps'] == 0
    assert set(data['results']['fkl']) == {'accuracy', 'rank_shares', 'modes_visited',
                                           'num_modes', 'seconds'}
    assert 'FKL' in capsys.readouterr().out
    assert cli.main(['modes', '--divergences', 'kl', '--steps', '0', '--out', '']) == 2
