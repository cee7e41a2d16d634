"""Mode coverage: per-scene metrics against hand computations and a plain loop, and
``evaluate`` on hand-built samplers whose coverage is known."""

import math

import numpy as np
import pytest

from fga_ros.core.analysis.coverage import (
    RECALL_RATIO,
    coverage_order,
    scene_coverage,
    summarise_coverage,
    tv_floor,
)
from fga_ros.core.analysis.coverage_figure import coverage_figure, worst_cases
from fga_ros.core.analysis.evaluation import evaluate, evaluation_scenes
from fga_ros.core.analysis.figures import learning_curve_figure
from fga_ros.sim import ground_truth, render

SHAPE = 'T'  # 3 modes per scene
STATES = 3


def test_scene_coverage_by_hand():
    # shares (0.5, 0.3, 0.2); 6 samples in mode 1, 3 in mode 2, none in 3, 5 infeasible:
    # p = (2/3, 1/3, 0); recalled iff p >= s / 4 -> (yes, yes, no);
    # TV = (|2/3 - 0.5| + |1/3 - 0.3| + |0 - 0.2|) / 2 = 0.2.
    cov = scene_coverage([1] * 6 + [2] * 3 + [0] * 5, (0.5, 0.3, 0.2))
    np.testing.assert_array_equal(cov.counts, [6, 3, 0])
    np.testing.assert_allclose(cov.sample_shares, [2 / 3, 1 / 3, 0.0])
    np.testing.assert_array_equal(cov.recalled, [True, True, False])
    assert not cov.all_hit
    assert cov.recall == pytest.approx(2 / 3)
    assert cov.tv == pytest.approx(0.2)
    assert cov.feasible_samples == 9


def test_recall_threshold_is_inclusive_and_all_hit():
    # p_2 = 1/8 is exactly a quarter of s_2 = 1/2: recalled.
    cov = scene_coverage([1] * 7 + [2], (0.5, 0.5))
    assert RECALL_RATIO == 0.25
    assert cov.recalled.all() and cov.all_hit
    assert cov.tv == pytest.approx(0.375)
    # One fewer mode-2 share step: 1 / 9 < 1 / 8 is not.
    assert not scene_coverage([1] * 8 + [2], (0.5, 0.5)).recalled[1]


def test_no_feasible_sample_counts_as_worst():
    cov = scene_coverage([0, 0, 0], (0.6, 0.4))
    assert cov.recall == 0.0 and not cov.all_hit and cov.tv == 1.0
    assert math.isnan(cov.tv_floor)
    np.testing.assert_array_equal(cov.sample_shares, [0.0, 0.0])


@pytest.mark.parametrize('modes, shares, message', [
    ([0, 1], (), 'at least one mode'),
    ([0, 3], (0.5, 0.5), 'ids in'),
    ([-1], (1.0,), 'ids in'),
])
def test_bad_input(modes, shares, message):
    with pytest.raises(ValueError, match=message):
        scene_coverage(modes, shares)


def _loop_coverage(modes, shares):
    """Plain-Python reference of one scene's coverage: (counts, recalled, all_hit, tv)."""
    counts = [0] * len(shares)
    for m in modes:
        if m > 0:
            counts[m - 1] += 1
    total = sum(counts)
    recalled, tv = [], 0.0
    for c, s in zip(counts, shares):
        p = c / total if total else 0.0
        recalled.append(total > 0 and p >= s / 4)
        tv += abs(p - s) / 2
    return counts, recalled, all(c > 0 for c in counts), (tv if total else 1.0)


def test_vectorised_coverage_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    scenes, pairs, recalled_pairs, hits, tvs = [], 0, 0, 0, []
    for _ in range(200):
        k = int(rng.integers(1, 7))
        shares = rng.dirichlet(np.ones(k))
        # Skewed samplers: some modes rare or missing, some scenes without feasible samples.
        weights = np.concatenate([[rng.random() * 3], rng.dirichlet(np.full(k, 0.3))])
        modes = rng.choice(k + 1, size=int(rng.integers(0, 60)), p=weights / weights.sum())
        cov = scene_coverage(modes, shares)
        counts, recalled, all_hit, tv = _loop_coverage(modes.tolist(), shares.tolist())
        assert cov.counts.tolist() == counts
        assert cov.recalled.tolist() == recalled
        assert cov.all_hit == all_hit
        assert cov.tv == pytest.approx(tv, abs=1e-12)
        scenes.append(cov)
        pairs += k
        recalled_pairs += sum(recalled)
        hits += all_hit
        tvs.append(tv)
    summary = summarise_coverage(scenes + [None])  # a scene without modes is left out
    assert summary['mode_recall'] == pytest.approx(recalled_pairs / pairs)
    assert summary['all_modes_hit'] == pytest.approx(hits / len(tvs))
    assert summary['tv_distance'] == pytest.approx(sum(tvs) / len(tvs))


def test_tv_floor_matches_simulated_uniform_sampling():
    rng = np.random.default_rng(1)
    shares = np.array([0.23, 0.22, 0.2, 0.2, 0.15])
    for feasible in (250, 1000):
        counts = rng.multinomial(feasible, shares, size=4000)
        simulated = 0.5 * np.abs(counts / feasible - shares).sum(axis=1).mean()
        assert tv_floor(shares, feasible) == pytest.approx(simulated, rel=0.05)
    assert tv_floor(shares, 1000) == pytest.approx(0.025, abs=0.001)  # the module's example
    assert math.isnan(tv_floor(shares, 0))


def test_summary_of_nothing_and_order():
    assert all(math.isnan(v) for v in summarise_coverage([None]).values())
    good = scene_coverage([1, 2], (0.5, 0.5))
    skewed = scene_coverage([1] * 7 + [2], (0.5, 0.5))  # recall 1, TV 0.375
    half = scene_coverage([1, 1], (0.5, 0.5))  # recall 1/2
    assert coverage_order([good, None, skewed, half]) == [3, 2, 0, 1]


# -- evaluate() on hand-built samplers -------------------------------------------------------


class ModeSampler:
    """Samples the ground truth of the scene behind each evaluation image.

    Args:
        kind: 'uniform' (uniform over the feasible set), 'skip' (equal numbers from every
            mode but the last), 'first' (mode 1 only) or 'none' (infeasible only).
        infeasible: infeasible samples added (density -1; feasible ones have density 0, so
            that rejection drops the infeasible ones first).
        only_seed: apply ``kind`` to this scene only; the others get 'uniform'.
    """

    def __init__(self, kind, infeasible=0, only_seed=None):
        self.kind, self.infeasible, self.only_seed = kind, infeasible, only_seed
        self.scenes = {render(s).tobytes(): s for s in evaluation_scenes(SHAPE, STATES)}
        self.rng = np.random.default_rng(0)

    def _of_mode(self, truth, mode, n):
        pool = truth.sample_feasible(40 * n + 400, self.rng)
        pool = pool[truth.mode_of(pool) == mode]
        assert len(pool) >= n
        return pool[:n]

    def _infeasible(self, truth, n):
        pool = self.rng.uniform([25, 25, 0], [103, 103, math.pi], size=(40 * n + 400, 3))
        return pool[truth.mode_of(pool) == 0][:n]

    def sample_actions(self, image, n):
        scene = self.scenes[image.tobytes()]
        truth = ground_truth(scene)
        kind = self.kind if self.only_seed in (None, scene.seed) else 'uniform'
        good = n - self.infeasible
        if kind == 'uniform':
            feasible = truth.sample_feasible(good, self.rng)
        elif kind == 'skip':
            per = good // (truth.num_modes - 1)
            assert per * (truth.num_modes - 1) == good
            feasible = np.concatenate([self._of_mode(truth, m, per)
                                       for m in range(1, truth.num_modes)])
        elif kind == 'first':
            feasible = self._of_mode(truth, 1, good)
        else:
            feasible, good = np.zeros((0, 3)), 0
        actions = np.concatenate([feasible, self._infeasible(truth, n - good)])
        return actions, np.concatenate([np.zeros(good), -np.ones(n - good)])


def _truths():
    truths = [ground_truth(s) for s in evaluation_scenes(SHAPE, STATES)]
    assert all(t.num_modes == 3 for t in truths)
    return truths


def _run(sampler, actions):
    return evaluate(sampler, [SHAPE], STATES, actions, reject_fraction=0.1,
                    progress=False)[SHAPE]


def test_sampler_that_skips_a_mode():
    # 40 + 40 samples in modes 1 and 2, none in mode 3, 20 infeasible: p = (1/2, 1/2, 0).
    # By hand: modes 1 and 2 recalled (1/2 >= s / 4 always), mode 3 not -> recall 2/3;
    # no scene has every mode hit; TV = (|1/2 - s1| + |1/2 - s2| + s3) / 2 per scene.
    res = _run(ModeSampler('skip', infeasible=20), 100)
    tv = np.mean([(abs(0.5 - t.mode_shares[0]) + abs(0.5 - t.mode_shares[1])
                   + t.mode_shares[2]) / 2 for t in _truths()])
    assert res['accuracy'] == pytest.approx(0.8)
    assert res['mode_recall'] == pytest.approx(2 / 3)
    assert res['all_modes_hit'] == 0.0
    assert res['tv_distance'] == pytest.approx(tv)
    # Rejection (10 of 100) drops infeasible samples only: the same coverage.
    assert res['accuracy_rejected'] == pytest.approx(80 / 90)
    assert res['mode_recall_rejected'] == pytest.approx(2 / 3)
    assert res['tv_distance_rejected'] == pytest.approx(tv)


def test_sampler_of_one_mode():
    res = _run(ModeSampler('first', infeasible=10), 100)
    assert res['mode_recall'] == pytest.approx(1 / 3)
    assert res['all_modes_hit'] == 0.0
    assert res['tv_distance'] == pytest.approx(
        np.mean([1.0 - t.mode_shares[0] for t in _truths()]))
    assert all(w['sample_shares'] == [1.0, 0.0, 0.0] for w in res['worst_scenes'])


def test_exactly_uniform_sampler():
    # F = 1024 feasible samples, K = 3 modes. TV is the largest |p(A) - s(A)| over the 2^K
    # sets of modes A; Hoeffding for each A and a union bound give
    # P(TV > t) <= 2^K exp(-2 F t^2): with probability 1 - 1e-6 a scene's TV is below
    # t = sqrt((K ln 2 + ln 1e6) / (2 F)) = 0.088.
    feasible, k = 1024, 3
    bound = math.sqrt((k * math.log(2) + math.log(1e6)) / (2 * feasible))
    res = _run(ModeSampler('uniform'), feasible)
    assert res['accuracy'] == 1.0
    assert res['mode_recall'] == 1.0 and res['all_modes_hit'] == 1.0
    assert max(w['tv_distance'] for w in res['worst_scenes']) <= bound
    assert res['tv_distance'] <= bound
    assert res['tv_floor'] == pytest.approx(np.mean([tv_floor(t.mode_shares, feasible)
                                                     for t in _truths()]))


def test_sampler_without_feasible_samples():
    res = _run(ModeSampler('none'), 50)
    assert res['accuracy'] == 0.0
    assert res['mode_recall'] == 0.0 and res['all_modes_hit'] == 0.0
    assert res['tv_distance'] == 1.0 and math.isnan(res['tv_floor'])


def test_worst_scene_is_listed_first():
    seeds = [s.seed for s in evaluation_scenes(SHAPE, STATES)]
    res = _run(ModeSampler('first', only_seed=seeds[1]), 300)
    worst = res['worst_scenes']
    assert len(worst) == STATES
    assert worst[0]['seed'] == seeds[1] and worst[0]['mode_recall'] == pytest.approx(1 / 3)
    assert worst[1]['mode_recall'] == 1.0 and worst[1]['tv_distance'] >= worst[2]['tv_distance']
    assert res['mode_recall'] == pytest.approx((1 + 3 + 3) / 9)
    assert res['all_modes_hit'] == pytest.approx(2 / 3)


def test_worst_coverage_figure_and_learning_curve(tmp_path):
    samples = {}
    res = evaluate(ModeSampler('skip', infeasible=30), [SHAPE], STATES, 90,
                   reject_fraction=0.1, progress=False,
                   on_scene=lambda shape, scene, a, d: samples.update({scene.seed: (scene, a,
                                                                                   d)}))
    cases = worst_cases(res[SHAPE], samples)
    assert [c[0].seed for c in cases] == [w['seed'] for w in res[SHAPE]['worst_scenes']]
    coverage_figure(cases, tmp_path / 'worst.png', 0.1, title='test')
    with pytest.raises(ValueError, match='no scenes'):
        coverage_figure([], tmp_path / 'none.png', 0.1)
    record = {'step': 1, 'seconds': 10.0}
    for prefix in ('acc', 'acc*', 'hit', 'recall', 'tv'):
        record.update({f'{prefix}/{s}': 0.5 for s in (SHAPE, 'mean')})
    old = [{k: v for k, v in record.items() if not k.startswith(('hit', 'recall', 'tv'))}]
    learning_curve_figure([record, {**record, 'step': 2, 'seconds': 20.0}],
                          tmp_path / 'curve.png')
    learning_curve_figure(old, tmp_path / 'old_curve.png')  # records from before coverage
    for name in ('worst.png', 'curve.png', 'old_curve.png'):
        assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
