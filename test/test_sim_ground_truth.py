"""Ground truth: exact feasible sets, modes (alpha periodic), sampling, sparsity."""

import numpy as np
import pytest

from fga_ros import sim
from fga_ros.sim.ground_truth import label_modes

CANONICAL_H = {'x': 64.0, 'y': 64.0, 'theta': 0.0, 'bar_length': 44.0, 'bar_width': 9.0,
               'gap': 18.0, 'crossbar_width': 8.0}


def test_canonical_h_has_the_five_modes_of_the_paper():
    gt = sim.ground_truth(sim.make_scene('H', 0, params=CANONICAL_H))
    assert gt.num_modes == 5
    # One grasp in each: four half-bars (across the bar) and the crossbar.
    reps = np.array([[50.5, 50.5, 0.0], [50.5, 77.5, 0.0], [77.5, 50.5, 0.0],
                     [77.5, 77.5, 0.0], [64.5, 64.5, np.pi / 2]])
    modes = gt.mode_of(reps)
    assert sorted(modes.tolist()) == [1, 2, 3, 4, 5]
    # The crossbar mode is the smallest (its length is the 18 px gap, the half-bars ~18 px).
    assert modes[4] == 5
    assert gt.mode_of(np.array([[50.5, 50.5, np.pi / 2]])).tolist() == [0]
    shares = np.array(gt.mode_shares)
    assert np.isclose(shares.sum(), 1.0) and (np.diff(shares) <= 0).all()
    assert 0.0 < gt.feasible_fraction < 0.02


def test_mode_labels_are_ordered_and_consistent():
    gt = sim.ground_truth(sim.make_scene('T', 2))
    sizes = np.bincount(gt.labels.ravel())[1:]
    assert sizes.tolist() == list(gt.mode_sizes)
    assert np.array_equal(gt.labels > 0, gt.feasible)
    assert gt.feasible.shape == gt.labels.shape == (180, 78, 78)


def test_alpha_is_periodic_in_the_labelling():
    feasible = np.zeros((18, 10, 10), dtype=bool)
    feasible[:3, 2:4, 2:4] = True      # bins 0..2
    feasible[-3:, 2:4, 2:4] = True     # bins 15..17: the same mode across the wrap
    feasible[8:11, 6:9, 6:9] = True    # a separate, larger mode
    labels, sizes, merged = label_modes(feasible)
    assert sizes == (27, 24) and merged == 0
    assert labels[0, 2, 2] == labels[17, 3, 3] == 2 and labels[8, 7, 7] == 1


def test_short_alpha_gaps_and_tiny_fragments_do_not_make_modes():
    feasible = np.zeros((36, 20, 20), dtype=bool)
    feasible[0:10, 2:8, 2:8] = True
    feasible[12:15, 2:8, 2:8] = True   # 2-bin gap: the same mode
    feasible[20:30, 12:18, 12:18] = True
    feasible[5, 15, 15] = True         # 1-cell fragment: merged into the nearest mode
    labels, sizes, merged = label_modes(feasible)
    assert len(sizes) == 2 and merged == 1
    assert labels[13, 4, 4] == labels[0, 4, 4]
    assert labels[5, 15, 15] > 0


def test_sample_feasible_is_feasible_inside_cells_and_uniform():
    scene = sim.make_scene('8', 9)
    gt = sim.ground_truth(scene)
    rng = np.random.default_rng(0)
    samples = gt.sample_feasible(4000, rng)
    assert samples.shape == (4000, 3)
    assert sim.grasp_success(scene, samples).all()
    assert (gt.mode_of(samples) > 0).all()
    shares = np.bincount(gt.mode_of(samples), minlength=gt.num_modes + 1)[1:] / 4000
    assert np.allclose(shares, gt.mode_shares, atol=0.03)
    assert np.array_equal(samples, gt.sample_feasible(4000, np.random.default_rng(0)))
    assert gt.sample_feasible(0).shape == (0, 3)


def test_random_grasps_succeed_as_often_as_the_feasible_fraction():
    scene = sim.make_scene('H', 21)
    gt = sim.ground_truth(scene)
    rng = np.random.default_rng(5)
    n = 200_000
    actions = np.column_stack([rng.uniform(25, 103, (n, 2)), rng.uniform(0, np.pi, n)])
    rate = sim.grasp_success(scene, actions).mean()
    assert abs(rate - gt.feasible_fraction) < 4 * np.sqrt(gt.feasible_fraction / n)


@pytest.mark.parametrize('shape', ['H', '8', 'Spoon', 'T', 'Box'])
def test_every_scene_has_a_feasible_grasp(shape):
    """200 random scenes per shape. Checks every 10th angle bin (5, 15, ... degrees): enough
    to find a feasible grasp, and 10x cheaper than the full ground truth."""
    gripper = sim.default_gripper()
    bins = np.arange(0, gripper.config.angle_bins, 10)
    for seed in range(1000, 1200):
        mask = sim.object_mask(sim.make_scene(shape, seed))
        assert gripper._build_bins(mask, bins).any(), (shape, seed)


def test_problem_is_sparse_and_multimodal():
    expected = {'H': 5, '8': 3, 'Spoon': 2, 'T': 3, 'Box': 2}
    for shape, modes in expected.items():
        gts = [sim.ground_truth(sim.make_scene(shape, seed)) for seed in range(3)]
        assert all(gt.num_modes == modes for gt in gts), shape
        assert all(gt.feasible_fraction < 0.03 for gt in gts), shape


def test_summary_is_json_friendly():
    import json
    scene = sim.make_scene('Box', 1)
    summary = sim.summary(scene, sim.ground_truth(scene))
    data = json.loads(json.dumps(summary))
    assert data['scene'] == scene.to_dict()
    assert data['num_modes'] == len(data['mode_shares']) == 2
    assert 0.0 < data['feasible_fraction'] < 1.0


def test_sample_feasible_rejects_bad_n():
    gt = sim.ground_truth(sim.make_scene('Box', 1))
    with pytest.raises(ValueError, match='non-negative integer'):
        gt.sample_feasible(-1)
