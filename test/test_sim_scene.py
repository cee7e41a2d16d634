"""Scenes: determinism, parameter ranges, serialisation and clear errors."""

import json

import numpy as np
import pytest

from fga_ros import sim
from fga_ros.sim.world import WorldConfigError, load_world, parse_world


def test_shape_families_and_splits():
    assert sim.shapes() == ('H', '8', 'Spoon', 'T', 'Box')
    assert sim.train_shapes() == ('H', '8', 'Spoon', 'T')
    assert sim.heldout_shapes() == ('Box',)


def test_same_seed_same_scene_and_params():
    a, b = sim.make_scene('H', 7), sim.make_scene('H', 7)
    assert a == b and hash(a) == hash(b)
    assert a.params == b.params
    assert sim.make_scene('H', 8).params != a.params
    # The shape enters the seed: same seed, other shape -> other pose.
    assert sim.make_scene('T', 7).params['x'] != a.params['x']


@pytest.mark.parametrize('shape', ['H', '8', 'Spoon', 'T', 'Box'])
def test_params_within_documented_ranges(shape):
    world = load_world()
    family = world.family(shape)
    for seed in range(50):
        p = sim.make_scene(shape, seed).params
        for name, (lo, hi) in family.param_ranges:
            assert lo <= p[name] <= hi
        assert world.center_range[0] <= p['x'] <= world.center_range[1]
        assert world.center_range[0] <= p['y'] <= world.center_range[1]
        assert 0.0 <= p['theta'] <= 2 * np.pi
        diff = np.subtract(p['object_color'], p['background_color'])
        assert np.linalg.norm(diff) >= world.min_color_distance


def test_to_dict_round_trip_is_json_friendly():
    scene = sim.make_scene('Spoon', 3, 'both', params={'theta': 0.5, 'object_color': [1, 2, 3]})
    data = json.loads(json.dumps(scene.to_dict()))
    again = sim.Scene.from_dict(data)
    assert again == scene
    assert again.params['theta'] == 0.5 and again.params['object_color'] == [1, 2, 3]
    assert data['params']['theta'] == 0.5


def test_params_override_replaces_sampled_values_only():
    base = sim.make_scene('H', 1)
    over = sim.make_scene('H', 1, params={'bar_width': 9.0})
    assert over != base
    assert over.params['bar_width'] == 9.0
    assert over.params['x'] == base.params['x']


@pytest.mark.parametrize('call, match', [
    (lambda: sim.make_scene('Q', 0), r"unknown shape 'Q'.*H, 8, Spoon, T, Box"),
    (lambda: sim.make_scene('H', 0, 'fisheye'), r"unknown distortion 'fisheye'.*rotation"),
    (lambda: sim.make_scene('H', -1), 'non-negative integer'),
    (lambda: sim.make_scene('H', 1.5), 'non-negative integer'),
    (lambda: sim.make_scene('H', 0, params={'radius': 3}), r"unknown parameter 'radius'.*gap"),
    (lambda: sim.make_scene('H', 0, params={'x': float('nan')}), 'finite'),
    (lambda: sim.make_scene('H', 0, params={'object_color': [300, 0, 0]}), '0..255'),
    (lambda: sim.Scene.from_dict({'seed': 1}), 'shape'),
])
def test_bad_scene_arguments_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_malformed_world_yaml_is_reported():
    good = {'placement': {'center': [50, 70], 'theta': [0, 1]}, 'colors': {'min_distance': 10},
            'families': {'Bar': {'split': 'train', 'params': {'w': [4, 8]},
                                 'primitives': [{'type': 'rect', 'center': [0, 0],
                                                 'size': ['2 * w', 'w + 1']}]}}}
    world = parse_world(good)
    contours = world.family('Bar').contours({'w': 5.0})
    assert np.allclose(np.ptp(contours[0][0], axis=0), [10.0, 6.0])
    bad_name = {**good, 'families': {'Bar': {**good['families']['Bar'], 'primitives': [
        {'type': 'rect', 'center': [0, 0], 'size': ['2 * width', 1]}]}}}
    with pytest.raises(WorldConfigError, match="unknown parameter 'width'"):
        parse_world(bad_name)
    bad_range = {**good, 'placement': {'center': [70, 50], 'theta': [0, 1]}}
    with pytest.raises(WorldConfigError, match='min <= max'):
        parse_world(bad_range)
    bad_code = {**good, 'families': {'Bar': {**good['families']['Bar'], 'primitives': [
        {'type': 'rect', 'center': [0, 0], 'size': ['__import__("os")', 1]}]}}}
    with pytest.raises(WorldConfigError, match='unsupported syntax'):
        parse_world(bad_code)
