"""Grasp proposal: sampling, density rejection, clustering, ranking, validation, hot swap."""

import math

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
import torch
from torch import nn

from fga_ros.core.common.config import load_config
from fga_ros.core.estimators.kde import kde_log_density
from fga_ros.core.inference.clusters import cluster_by_floor, cluster_grasps, connected_labels
from fga_ros.core.inference.defaults import MAX_GRASPS, PAPER_REJECT_FRACTION, SPREAD_MARGIN
from fga_ros.core.inference.density import (
    keep_densest,
    num_to_reject,
    num_to_sample,
    self_log_density,
)
from fga_ros.core.inference.proposer import Proposal, Proposer
from fga_ros.core.inference.ranking import rank_order, spread_order
from fga_ros.core.models.model_file import export_model
from fga_ros.core.models.nets import ActorCritic
from fga_ros.sim import WORKSPACE_HI, WORKSPACE_LO, make_scene, render

CENTRES = torch.tensor([[-0.5, -0.5, 0.0], [0.5, 0.5, 0.5 * math.pi], [0.5, -0.5, math.pi]])
"""Modes of the stub actor: (x_n, y_n, phi)."""


class StubActorCritic(nn.Module):
    """Known three-mode actor plus 10% uniform outliers; critic logit 3 x_n + y_n.

    Mode 1 (x_n = y_n = 0.5) scores best, then mode 2, then mode 0.
    """

    def __init__(self, image_size):
        super().__init__()
        self.image_size = image_size
        self.input_size = image_size
        self.dummy = nn.Parameter(torch.zeros(1))

    def features(self, images):
        return torch.zeros(images.shape[0], 1)

    def sample(self, features, n, generator=None):
        which = torch.arange(n) % 3
        params = CENTRES[which] + 0.01 * torch.randn(n, 3, generator=generator)
        outliers = math.ceil(n / 10)
        params[:outliers] = (2 * torch.rand(outliers, 3, generator=generator) - 1) \
            * torch.tensor([1.0, 1.0, math.pi])
        out = torch.stack([params[:, 0], params[:, 1], torch.sin(params[:, 2]),
                           torch.cos(params[:, 2])], -1)
        return out.expand(features.shape[0], n, 4)

    def score(self, features, actions):
        return 3.0 * actions[..., 0] + actions[..., 1]


def _near_a_centre(actions, tolerance=0.05):
    """(..., n) bool: critic inputs (..., n, 4) close to one of the ``CENTRES``."""
    centres = torch.stack([CENTRES[:, 0], CENTRES[:, 1], torch.sin(CENTRES[:, 2]),
                           torch.cos(CENTRES[:, 2])], -1)
    gap = (actions[..., None, :] - centres).abs().amax(-1)
    return (gap < tolerance).any(-1)


class RareModeStub(StubActorCritic):
    """Two common modes (49 % of the samples each) and a rare one (2 %), no outliers; the
    critic scores grasps near a mode 0.95 (logit 3), all others 0.05."""

    def sample(self, features, n, generator=None):
        which = torch.where(torch.arange(n) % 50 == 0, 2, torch.arange(n) % 2)
        params = CENTRES[which] + 0.01 * torch.randn(n, 3, generator=generator)
        out = torch.stack([params[:, 0], params[:, 1], torch.sin(params[:, 2]),
                           torch.cos(params[:, 2])], -1)
        return out.expand(features.shape[0], n, 4)

    def score(self, features, actions):
        return torch.where(_near_a_centre(actions), 3.0, -3.0)


class BridgedModesStub(StubActorCritic):
    """Two modes 0.4 apart along x_n at y_n = 0, angle 0 (mode A scores 0.95, mode B 0.92)
    and, between them, half of the samples on a line of grasps scoring 0.05: a gap in the
    feasible set. Grasps elsewhere score 0.05."""

    def sample(self, features, n, generator=None):
        which = torch.arange(n) % 4
        x = torch.where(which == 0, -0.2, 0.2) + 0.005 * torch.randn(n, generator=generator)
        bridge = which >= 2
        x[bridge] = -0.2 + 0.4 * torch.rand(int(bridge.sum()), generator=generator)
        out = torch.stack([x, torch.zeros(n), torch.zeros(n), torch.ones(n)], -1)
        return out.expand(features.shape[0], n, 4)

    def score(self, features, actions):
        x = actions[..., 0]
        on_line = (actions[..., 1].abs() < 0.02) & (actions[..., 3] > 0.99)
        return torch.where(on_line & ((x + 0.2).abs() < 0.02), 3.0,
                           torch.where(on_line & ((x - 0.2).abs() < 0.02), 2.5, -3.0))


def _nearest_centre(actions):
    xy = (actions[:, :2] - 64.0) / 39.0
    return np.abs(xy[:, None, :] - CENTRES[None, :, :2].numpy()).max(-1).argmin(-1)


@pytest.fixture(scope='module')
def config():
    return load_config('tiny')


@pytest.fixture(scope='module')
def image():
    return render(make_scene('H', 1))


@pytest.fixture(scope='module')
def proposer(config):
    torch.manual_seed(0)
    return Proposer(ActorCritic(config), config)


@pytest.fixture(scope='module')
def stub(config):
    return Proposer(StubActorCritic(config.image_size), config)


RAW = {'explore': 0, 'min_candidates': 1, 'floor': 0.0}
"""Propose as before calibration and abstention: only the actor's samples, no floor."""


def _check_actions(actions):
    assert actions.dtype == np.float64
    assert np.all((actions[:, :2] >= WORKSPACE_LO) & (actions[:, :2] < WORKSPACE_HI))
    assert np.all((actions[:, 2] >= 0) & (actions[:, 2] < math.pi))


def test_counts_known_values():
    assert (num_to_sample(16, 0.1), num_to_reject(18, 0.1)) == (18, 2)
    assert (num_to_sample(64, 0.1), num_to_reject(72, 0.1)) == (72, 7)
    assert (num_to_sample(30, 0.7), num_to_reject(100, 0.7)) == (100, 70)
    assert (num_to_sample(5, 0.0), num_to_reject(5, 0.0)) == (5, 0)
    for n in range(1, 200):
        for f in (0.05, 0.1, 0.25, 0.5, 0.9):
            sampled = num_to_sample(n, f)
            assert sampled - num_to_reject(sampled, f) >= n


def test_proposal_shapes_order_and_counts(proposer, image):
    p = proposer.propose(image, 16, 0.1, 'score', seed=0, oversample=1, **RAW)
    assert isinstance(p, Proposal) and len(p) == 16
    assert p.actions.shape == (16, 3)
    _check_actions(p.actions)
    assert p.scores.shape == p.log_density.shape == p.cluster_ids.shape == (16,)
    assert np.all((p.scores >= 0) & (p.scores <= 1))
    assert np.all(np.diff(p.scores) <= 0)
    np.testing.assert_array_equal(p.ranks, np.arange(16))
    assert (p.num_sampled, p.num_rejected) == (18, 2)
    assert p.num_rejected == round(0.1 * p.num_sampled)
    assert p.inference_ms > 0
    assert np.all(np.isfinite(p.log_density))
    # Cluster ids are numbered from 1 in order of first appearance.
    _, first = np.unique(p.cluster_ids, return_index=True)
    np.testing.assert_array_equal(p.cluster_ids[np.sort(first)],
                                  np.arange(1, p.num_clusters + 1))
    with pytest.raises(ValueError):
        p.actions[0, 0] = 0.0  # read-only


def test_rejected_samples_are_the_least_dense(proposer, image):
    # 30 grasps at 25% rejection: 40 sampled, 10 rejected, all 30 kept are returned.
    p = proposer.propose(image, 30, 0.25, seed=7, oversample=1, **RAW)
    assert (p.num_sampled, p.num_rejected) == (40, 10)
    # the same 40 samples, not resampled
    actions, log_density = proposer.sample_actions(image, 40, seed=7, resample=1)
    kept = np.array([np.flatnonzero(np.all(np.isclose(actions, a, atol=1e-4), axis=1))[0]
                     for a in p.actions])
    assert len(set(kept.tolist())) == 30
    rejected = np.setdiff1d(np.arange(40), kept)
    assert log_density[kept].min() >= log_density[rejected].max() - 1e-6
    np.testing.assert_allclose(np.sort(p.log_density), np.sort(log_density[kept]), atol=1e-4)


def test_stub_rejects_outliers_and_ranks_by_score(stub, image):
    # 60 sampled, 15 rejected
    p = stub.propose(image, 45, 0.25, 'score', seed=1, oversample=1, **RAW)
    assert (p.num_sampled, p.num_rejected) == (60, 15)
    xy = (p.actions[:, :2] - 64.0) / 39.0
    dist = np.abs(xy[:, None, :] - CENTRES[None, :, :2].numpy()).max(-1).min(-1)
    assert dist.max() < 0.1  # no uniform outlier survived
    assert p.num_clusters == 3
    # The clusters' score ranges do not overlap: all of the best (x_n = y_n = 0.5) first.
    assert np.all(np.diff(p.cluster_ids) >= 0)
    assert np.all(p.actions[p.cluster_ids == 1, :2] > 64.0)


def test_oversampling_returns_the_best_scored_of_more_samples(stub, image):
    few = stub.propose(image, 10, 0.1, 'score', seed=3, oversample=1, **RAW)
    many = stub.propose(image, 10, 0.1, 'score', seed=3, oversample=4, **RAW)
    assert (few.num_sampled, many.num_sampled, many.num_rejected) == (12, 45, 5)
    assert len(many) == 10 and many.scores.mean() > few.scores.mean()
    # the 10 returned are the best-scored of the 40 kept: the same 45 samples, all returned
    every = stub.propose(image, 40, 0.1, 'score', seed=3, oversample=1, **RAW)
    assert every.num_sampled == 45
    np.testing.assert_allclose(many.scores, np.sort(every.scores)[::-1][:10], atol=1e-6)
    for bad in (0, 65, 2.5):
        with pytest.raises(ValueError, match='oversample'):
            stub.propose(image, 10, 0.1, oversample=bad, **RAW)


def test_diverse_ranking_round_robin(stub, image):
    p = stub.propose(image, 30, 0.25, ranking='diverse', seed=2, **RAW)
    assert p.num_clusters == 3
    np.testing.assert_array_equal(p.cluster_ids[:6], [1, 2, 3, 1, 2, 3])
    # Every mode's first grasp comes before any mode's second grasp.
    seen = {}
    for i, m in enumerate(p.cluster_ids):
        seen.setdefault(int(m), []).append(i)
    firsts = [v[0] for v in seen.values()]
    seconds = [v[1] for v in seen.values() if len(v) > 1]
    assert max(firsts) < min(seconds)
    # Within a mode, scores decrease.
    for rows in seen.values():
        assert np.all(np.diff(p.scores[rows]) <= 0)


def test_default_proposal_keeps_a_rare_way_of_holding(config, image):
    # 2 % of the actor's samples hold the object a third way; they are the least dense, so
    # the paper's 10 % density rejection removes them all, while a default request (no
    # rejection, diverse ranking) returns that third way among its first three grasps.
    rare = Proposer(RareModeStub(config.image_size), config)
    default = rare.propose(image, seed=0)
    assert default.num_rejected == 0 and len(default) == 16
    assert set(_nearest_centre(default.actions[:3]).tolist()) == {0, 1, 2}
    paper = rare.propose(image, seed=0, reject_fraction=PAPER_REJECT_FRACTION, explore=0)
    assert 2 not in _nearest_centre(paper.actions).tolist()


def test_low_scores_between_two_modes_do_not_join_them(config, image):
    # Low-scoring grasps bridging two modes: clustered with them, the two modes would form
    # one cluster and the diverse ranking would return mode A twice first.
    bridged = Proposer(BridgedModesStub(config.image_size), config)
    p = bridged.propose(image, 4, seed=0)
    x = (p.actions[:, 0] - 64.0) / 39.0
    assert np.all(p.scores >= 0.5) and p.num_clusters == 2
    assert abs(x[0] + 0.2) < 0.02 and abs(x[1] - 0.2) < 0.02
    np.testing.assert_array_equal(p.cluster_ids, [1, 2, 1, 2])


def test_cluster_by_floor_separates_the_two_sides():
    def grasp(x_px):
        return [(x_px - 64) / 39, 0.0, 0.0, 1.0]

    # good grasps at 40-41 px and 50-51 px, joined by poor ones every pixel in between
    xs = [40, 41, 50, 51] + list(range(42, 50))
    points = np.array([grasp(x) for x in xs])
    scores = np.array([0.9, 0.8, 0.7, 0.6] + [0.1] * 8)
    assert len(np.unique(cluster_grasps(points, scores))) == 1
    labels = cluster_by_floor(points, scores, 0.5)
    np.testing.assert_array_equal(labels[:4], [0, 0, 1, 1])  # above: by best score
    assert np.all(labels[4:] == 2)  # below the floor: numbered after
    np.testing.assert_array_equal(cluster_by_floor(points, scores, 0.0),
                                  cluster_grasps(points, scores))
    np.testing.assert_array_equal(cluster_by_floor(points, scores, 1.0),
                                  cluster_grasps(points, scores))


def test_rank_order_known_answer():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    modes = np.array([0, 0, 1, 0, 2, 1])
    np.testing.assert_array_equal(rank_order(scores, modes, 'score'), [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(rank_order(scores, modes, 'diverse'), [0, 2, 4, 1, 5, 3])


def test_diverse_ranking_suppresses_near_copies_within_a_cluster():
    # one cluster: grasps 0-2 within one cell of each other, 3, 4 and 5 further along; 5
    # scores more than SPREAD_MARGIN below the best
    cells = np.array([[0.0, 0, 0, 0], [0.5, 0, 0, 0], [0.2, 0.3, 0, 0], [1.5, 0, 0, 0],
                      [3.0, 0, 0, 0], [5.0, 0, 0, 0]])
    scores = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.80])
    assert 0.99 - 0.95 <= SPREAD_MARGIN < 0.99 - 0.80
    one = np.zeros(6, dtype=np.int64)
    np.testing.assert_array_equal(rank_order(scores, one, 'diverse'), [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(rank_order(scores, one, 'diverse', cells=cells, count=6),
                                  [0, 3, 4, 1, 2, 5])  # kept by suppression, then by score
    # at most `count` chosen by suppression; 'score' ignores the cells
    np.testing.assert_array_equal(rank_order(scores, one, 'diverse', cells=cells, count=2),
                                  [0, 3, 1, 2, 4, 5])
    np.testing.assert_array_equal(rank_order(scores, one, 'score', cells=cells, count=6),
                                  [0, 1, 2, 3, 4, 5])
    # round-robin over clusters first: cluster 1's best comes second
    two = np.array([0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(rank_order(scores, two, 'diverse', cells=cells, count=6),
                                  [0, 4, 3, 1, 2, 5])


def test_spread_order_against_a_brute_force_loop():
    rng = np.random.default_rng(8)
    cells = rng.uniform(0, 4, size=(60, 3))
    cost = rng.random(60)
    for margin in (1.0, 0.3):
        order = spread_order(cost, cells, count=10, margin=margin)
        kept = []
        for i in np.argsort(cost, kind='stable'):
            if len(kept) < 10 and cost[i] <= cost.min() + margin \
                    and all(np.abs(cells[i] - cells[k]).max() >= 1.0 for k in kept):
                kept.append(i)
        rest = sorted(set(range(60)) - set(kept), key=lambda i: cost[i])
        np.testing.assert_array_equal(order, kept + rest)
    assert len(spread_order(np.zeros(0), np.zeros((0, 3)), 4)) == 0


def test_cluster_grasps_separates_and_wraps_angle():
    def grasp(x_px, y_px, alpha):
        return [(x_px - 64) / 39, (y_px - 64) / 39, math.sin(2 * alpha), math.cos(2 * alpha)]

    points = np.array([
        grasp(40, 40, 0.01), grasp(41, 40, math.pi - 0.01),  # same mode across alpha = 0/pi
        grasp(42, 41, 0.05),
        grasp(80, 80, 0.3),  # far away in x-y
        grasp(40, 40, 0.5 * math.pi),  # same place, gripper turned 90 degrees
    ])
    modes = cluster_grasps(points, np.array([0.1, 0.2, 0.3, 0.9, 0.5]))
    np.testing.assert_array_equal(modes, [2, 2, 2, 0, 1])  # numbered by best score


def test_connected_labels_matches_scipy():
    rng = np.random.default_rng(0)
    for count in (1, 5, 40, 300):
        pairs = rng.integers(0, count, size=(count // 2, 2))
        labels = connected_labels(count, pairs)
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])),
                           shape=(count, count))
        _, expected = connected_components(graph, directed=False)
        assert len(set(zip(labels, expected))) == len(set(labels)) == len(set(expected))


def test_self_log_density_matches_kde(config):
    torch.manual_seed(0)
    for shape in ((2, 50, 4), (1, 1100, 4)):  # the second crosses a chunk boundary
        points = torch.rand(shape) * 2 - 1
        points[..., 1, :] = points[..., 0, :]  # a duplicate
        expected = kde_log_density(points, points, config.kde_bandwidth)
        got = self_log_density(points, config.kde_bandwidth)
        torch.testing.assert_close(got, expected, atol=2e-3, rtol=0)


def test_keep_densest_breaks_ties_stably_and_drops_nan():
    np.testing.assert_array_equal(keep_densest([1.0, np.nan, 3.0, 2.0], 0.25), [0, 2, 3])
    np.testing.assert_array_equal(keep_densest([0.0] * 4, 0.5), [0, 1])


def test_determinism(proposer, config, image):
    a = proposer.propose(image, 12, seed=3, **RAW)
    b = proposer.propose(image, 12, seed=3, **RAW)
    c = proposer.propose(image, 12, seed=4, **RAW)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.array_equal(a.actions, c.actions)
    gen = torch.Generator().manual_seed(3)
    np.testing.assert_array_equal(proposer.propose(image, 12, generator=gen, **RAW).actions,
                                  a.actions)
    model = proposer.snapshot().model
    first = Proposer(model, config, seed=9).propose(image, 8, **RAW)
    second = Proposer(model, config, seed=9).propose(image, 8, **RAW)
    np.testing.assert_array_equal(first.actions, second.actions)


def test_sample_actions(proposer, image):
    actions, log_density = proposer.sample_actions(image, 50, seed=0)
    assert actions.shape == (50, 3) and log_density.shape == (50,)
    _check_actions(actions)
    assert np.all(np.isfinite(log_density))


@pytest.mark.parametrize('bad, message', [
    (np.zeros((128, 128, 3), dtype=np.float32), 'dtype uint8'),
    (np.zeros((64, 64, 3), dtype=np.uint8), 'shape'),
    (np.zeros((128, 128), dtype=np.uint8), 'shape'),
    ([[0, 0, 0]], 'numpy array'),
])
def test_bad_images(proposer, bad, message):
    with pytest.raises(ValueError, match=message):
        proposer.propose(bad)


@pytest.mark.parametrize('kwargs, message', [
    ({'num_grasps': 0}, 'num_grasps'),
    ({'num_grasps': MAX_GRASPS + 1}, 'num_grasps'),
    ({'num_grasps': 2.5}, 'num_grasps'),
    ({'num_grasps': True}, 'num_grasps'),
    ({'reject_fraction': 1.0}, 'reject_fraction'),
    ({'reject_fraction': -0.1}, 'reject_fraction'),
    ({'reject_fraction': float('nan')}, 'reject_fraction'),
    ({'reject_fraction': '0.1'}, 'reject_fraction'),
    ({'ranking': 'best'}, 'ranking'),
    ({'num_grasps': MAX_GRASPS, 'reject_fraction': 0.9}, 'samples'),
    ({'seed': 1, 'generator': torch.Generator()}, 'either'),
    ({'seed': -1}, 'seed'),
])
def test_bad_arguments(proposer, image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        proposer.propose(image, **kwargs)


def test_hot_swap_and_checkpoint(proposer, config, image, tmp_path):
    before = proposer.snapshot()
    torch.manual_seed(1)
    other = ActorCritic(config)
    path = tmp_path / 'model.pt'
    export_model(path, other, config, meta={'step': 5})
    swapped = Proposer(before.model, config)
    swapped.reload(path)
    assert swapped.snapshot().meta['step'] == 5
    assert swapped.snapshot() is not before
    loaded = Proposer.from_checkpoint(path)
    np.testing.assert_array_equal(swapped.propose(image, 8, seed=0, **RAW).actions,
                                  loaded.propose(image, 8, seed=0, **RAW).actions)
    assert not np.array_equal(proposer.propose(image, 8, seed=0, **RAW).actions,
                              loaded.propose(image, 8, seed=0, **RAW).actions)
    with pytest.raises(FileNotFoundError):
        swapped.reload(tmp_path / 'missing.pt')
    assert swapped.snapshot().meta['step'] == 5  # a failed reload keeps the model
    with pytest.raises(ValueError, match='features'):
        swapped.load_state(nn.Linear(2, 2), config)


def test_rank_order_puts_every_grasp_below_the_floor_last():
    # cluster 7 holds only low scores: 'diverse' must not put it in the first round
    scores = np.array([0.95, 0.9, 0.13, 0.8, 0.0, 0.7])
    clusters = np.array([1, 1, 7, 2, 8, 2])
    order = rank_order(scores, clusters, 'diverse', floor=0.5)
    np.testing.assert_array_equal(order, [0, 3, 1, 5, 2, 4])
    np.testing.assert_array_equal(rank_order(scores, clusters, 'score', floor=0.5),
                                  [0, 1, 3, 5, 2, 4])
    # a cost (e.g. distance to a preferred point) reorders within the groups only
    cost = np.array([0.5, 0.0, 0.0, 0.2, 0.0, 0.9])
    np.testing.assert_array_equal(rank_order(scores, clusters, 'score', 0.5, cost),
                                  [1, 3, 0, 5, 2, 4])
