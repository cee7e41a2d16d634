"""``fga bench propose``: what the calibration's views cost, and abstentions counted, not
crashed on (a proposal may hold no grasp: the novelty gate)."""

import math
import time

import numpy as np
import pytest

from fga_ros.core.analysis import bench_propose
from fga_ros.core.analysis.bench_propose import image_alone, print_propose_bench
from fga_ros.core.inference.proposer import Proposer, empty_proposal
from fga_ros.sim import make_scene, render

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def bundled():
    return Proposer.from_checkpoint(None, seed=0)


def test_image_alone_scores_on_one_view_of_the_same_model(bundled):
    state = bundled.snapshot()
    assert state.calibration.num_views == 4  # the bundled model's quarter turns
    alone = image_alone(bundled)
    assert alone is not None
    assert alone.snapshot().model is state.model
    assert alone.snapshot().calibration.num_views == 1
    # the novelty gates stay
    assert [g.to_meta() for g in alone.snapshot().gates] == [g.to_meta() for g in state.gates]
    image = render(make_scene('H', 3))
    own = alone.propose(image, 8, seed=1, **bench_propose.ACTOR_ONLY)
    with_views = bundled.propose(image, 8, seed=1, **bench_propose.ACTOR_ONLY)
    assert len(own) == len(with_views) == 8
    assert not np.allclose(own.scores, with_views.scores)  # scored without the views
    assert image_alone(alone) is None  # nothing to drop


def test_accuracy_counts_abstentions_instead_of_failing(bundled, monkeypatch):
    alone = image_alone(bundled)
    assert alone is not None

    def abstain(*args, **kwargs):
        return empty_proposal('abstained: test', 0, 0, time.perf_counter())

    monkeypatch.setattr(alone, 'propose', abstain)
    ticks = []
    result = bench_propose._accuracy(bundled, alone, ('H',), 2, 0, ticks.append)
    assert ticks == [4, 4]  # four compared proposals per scene
    assert result['propose_image']['abstained'] == 1.0
    assert math.isnan(result['propose_image']['mean'])
    assert result['propose']['abstained'] == 0.0
    assert 0.0 <= result['propose']['mean'] <= 1.0


def test_report_prints_the_image_alone_line_and_abstentions(capsys):
    stats = {'p50': 2.0, 'p90': 3.0, 'p99': 4.0, 'calls': 1}
    keys = ('propose_64', 'propose_1024', 'propose_64_once', 'propose_64_image', 'cem_64',
            'default', 'region', 'samples_1024_own', 'samples_1024')
    answered = {'mean': 0.9, 'top1': 1.0, 'abstained': 0.0}
    results = {
        'model': 'm', 'note': '', 'device': 'cpu', 'threads': 1,
        'latency_ms': {key: stats for key in keys}, 'speedup': 1.0,
        'accuracy': {'propose': answered, 'propose_once': answered, 'cem': answered,
                     'propose_image': {'mean': 0.8, 'top1': 1.0, 'abstained': 0.25}},
        'shapes': ('H',), 'accuracy_scenes': 4,
        'cem_matching': {'iterations': 3, 'accuracy': 0.5, 'matched': False,
                         'latency_ms': stats, 'speedup': 1.0}}
    print_propose_bench(results)
    out = capsys.readouterr().out
    assert 'the same, image alone' in out
    assert 'image alone       all grasps  80.0%' in out
    assert 'abstained 25% of scenes' in out
    assert out.count('abstained') == 1  # only where a proposal abstained
