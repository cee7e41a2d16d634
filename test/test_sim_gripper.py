"""Grasp physics: known answers on a canonical H, symmetry, input checks, exact fast paths."""

import numpy as np
import pytest

from fga_ros import sim
from fga_ros.sim.gripper import Gripper

# Canonical H at the image centre, theta = 0: bars vertical, 9 px wide, 44 px long,
# x in [46, 55] and [73, 82], y in [42, 86]; crossbar y in [60, 68] between them.
CANONICAL_H = {'x': 64.0, 'y': 64.0, 'theta': 0.0, 'bar_length': 44.0, 'bar_width': 9.0,
               'gap': 18.0, 'crossbar_width': 8.0}
HALF_PI = np.pi / 2


@pytest.fixture(scope='module')
def h_scene():
    return sim.make_scene('H', 0, params=CANONICAL_H)


@pytest.mark.parametrize('action, why', [
    ((50.5, 50.5, 0.0), 'across the upper left half-bar, centred'),
    ((51.5, 50.5, 0.0), 'across a bar, 1 px off-centre (within the centring margin)'),
    ((77.5, 77.5, 0.0), 'across the lower right half-bar'),
    ((64.5, 64.5, HALF_PI), 'across the crossbar, claws between the bars'),
    ((50.5, 50.5, np.pi - 0.2), 'across a bar, 11 degrees tilted (within the alignment margin)'),
])
def test_canonical_h_feasible(h_scene, action, why):
    info = sim.explain_grasp(h_scene, action)
    assert info['success'], (why, info)
    assert sim.grasp_success(h_scene, np.array([action]))[0]


@pytest.mark.parametrize('action, failed, why', [
    ((50.5, 50.5, HALF_PI), 'clearance', 'along a bar: 44 px > 24 px aperture, under the claws'),
    ((50.5, 63.5, 0.0), 'clearance', 'across a bar at the crossbar: the crossbar hits a claw'),
    ((53.5, 50.5, 0.0), 'centring', 'across a bar, 3 px off-centre'),
    ((64.5, 64.5, 0.0), 'clearance', 'along the crossbar: it spans both bars'),
    ((50.5, 50.5, 0.6), 'alignment', 'across a bar, 34 degrees tilted: edges not parallel'),
    ((50.5, 30.5, 0.0), 'presence', 'beyond the end of the bar: no object'),
    ((50.5, 40.5, 0.0), 'presence', 'half over the end of the bar: not all claw rows hold it'),
])
def test_canonical_h_infeasible_and_why(h_scene, action, failed, why):
    info = sim.explain_grasp(h_scene, action)
    assert not info['success'], why
    assert not info[failed], (why, info)
    assert not sim.grasp_success(h_scene, np.array([action]))[0]


def test_alpha_is_periodic_with_pi(h_scene):
    gt = sim.ground_truth(h_scene)
    rng = np.random.default_rng(3)
    actions = np.concatenate([gt.sample_feasible(300, rng),
                              np.column_stack([rng.uniform(25, 103, (700, 2)),
                                               rng.uniform(0, np.pi, 700)])])
    shifted = actions + [0.0, 0.0, np.pi]
    negative = actions - [0.0, 0.0, 3 * np.pi]
    base = sim.grasp_success(h_scene, actions)
    assert base[:300].all() and base.any() and not base.all()
    assert np.array_equal(base, sim.grasp_success(h_scene, shifted))
    assert np.array_equal(base, sim.grasp_success(h_scene, negative))
    assert np.array_equal(base, sim.grasp_success_many([h_scene] * len(shifted), shifted))


def test_grasp_success_is_deterministic_bool(h_scene):
    actions = np.array([[50.5, 50.5, 0.0], [50.5, 50.5, HALF_PI]], dtype=np.float32)
    out = sim.grasp_success(h_scene, actions)
    assert out.dtype == bool and out.shape == (2,)
    assert out.tolist() == [True, False]
    assert np.array_equal(out, sim.grasp_success(sim.make_scene('H', 0, params=CANONICAL_H),
                                                 actions))


def test_table_path_equals_gather_path_on_thousands_of_actions():
    rng = np.random.default_rng(0)
    gripper = Gripper()  # private cache: this test builds tables from scratch
    scenes = [sim.make_scene(s, 100 + i, 'rotation' if i % 2 else 'none')
              for i in range(2) for s in sim.shapes()]
    for scene in scenes:
        gt = sim.ground_truth(scene)
        actions = np.concatenate([
            gt.sample_feasible(300, rng),
            np.column_stack([rng.uniform(25, 103, (1500, 2)), rng.uniform(-4, 4, 1500)]),
            # Near the feasible set the answers are mixed: jittered feasible grasps.
            gt.sample_feasible(300, rng) + rng.normal(0, [1.5, 1.5, 0.15], (300, 3))])
        actions[:, :2] = np.clip(actions[:, :2], 25, 102.999)
        gathered = gripper.success_many([scene] * len(actions), actions)
        assert gathered[:300].all()
        assert 0 < gathered[1800:].sum() < 300
        table = gripper.feasible_table(scene)
        assert np.array_equal(gathered, table[gripper.quantise(sim.validate_actions(actions))])
        assert np.array_equal(gathered, gripper.success(scene, actions))
        assert np.array_equal(table, gt.feasible)


def test_many_scenes_one_action_each():
    rng = np.random.default_rng(1)
    scenes, actions = [], []
    for shape in sim.shapes():
        for seed in (40, 41):
            scene = sim.make_scene(shape, seed)
            scenes += [scene] * 20
            actions.append(sim.ground_truth(scene).sample_feasible(10, rng))
            actions.append(np.column_stack([rng.uniform(25, 103, (10, 2)),
                                            rng.uniform(0, np.pi, 10)]))
    actions = np.concatenate(actions)
    order = rng.permutation(len(scenes))
    scenes, actions = [scenes[i] for i in order], actions[order]
    many = sim.grasp_success_many(scenes, actions)
    one_by_one = np.array([sim.grasp_success(s, a[None])[0] for s, a in zip(scenes, actions)])
    assert np.array_equal(many, one_by_one)
    assert many.sum() >= len(scenes) // 2


@pytest.mark.parametrize('actions, match', [
    (np.zeros(3), r'shape \(B, 3\), got \(3,\)'),
    (np.zeros((4, 2)), r'shape \(B, 3\), got \(4, 2\)'),
    ([[50.0, np.nan, 0.0]], 'finite'),
    ([[50.0, 50.0, np.inf]], 'finite'),
    ([[24.9, 50.0, 0.0]], r'\[25.0, 103.0\)'),
    ([[50.0, 103.0, 0.0]], r'\[25.0, 103.0\)'),
    ([['a', 1, 2]], 'numeric'),
])
def test_bad_actions_raise_clear_errors(h_scene, actions, match):
    with pytest.raises(ValueError, match=match):
        sim.grasp_success(h_scene, actions)
    with pytest.raises(ValueError, match=match):
        sim.validate_actions(actions)


def test_validate_actions_wraps_alpha_and_copies():
    raw = np.array([[30.0, 40.0, -0.5], [30.0, 40.0, 4.0]])
    out = sim.validate_actions(raw)
    assert np.allclose(out[:, 2], [np.pi - 0.5, 4.0 - np.pi])
    assert raw[0, 2] == -0.5


def test_many_needs_one_action_per_scene(h_scene):
    with pytest.raises(ValueError, match='one action per scene'):
        sim.grasp_success_many([h_scene] * 2, np.array([[50.0, 50.0, 0.0]]))


def test_gripper_config_is_validated():
    cfg = sim.load_gripper_config()
    assert cfg.aperture == 24 and cfg.angle_bins == 180
    with pytest.raises(ValueError, match='min_presence'):
        type(cfg)(**{**cfg.__dict__, 'min_presence': 0.0})
    with pytest.raises(ValueError, match='inside the image'):
        Gripper(type(cfg)(**{**cfg.__dict__, 'aperture': 48}))
