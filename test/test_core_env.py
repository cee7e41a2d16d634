"""The environment protocol over the real in-process simulator."""

import math

import numpy as np
import pytest

from fga_ros.core.common import env as env_module
from fga_ros.core.common.env import Environment, SimEnvironment
from fga_ros.sim import IMAGE_SIZE, grasp_success, ground_truth, render


def test_satisfies_the_protocol():
    env = SimEnvironment(('H',))
    for name in ('new_states', 'try_grasps', 'demonstrations'):
        assert callable(getattr(env, name)) and hasattr(Environment, name)


def test_new_states_render_fresh_problems():
    env = SimEnvironment(('H', 'T'), seed=3)
    first = env.new_states(1)
    assert len(first) == 1
    assert first[0].shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and first[0].dtype == np.uint8
    scenes = set(env.scenes)
    for _ in range(3):
        images = env.new_states(2)
        assert len(images) == len(env.scenes) == 2
        for image, scene in zip(images, env.scenes):
            np.testing.assert_array_equal(image, render(scene))
        scenes.update(env.scenes)
    assert len(scenes) == 7
    assert {s.shape for s in scenes} <= {'H', 'T'}


def test_same_seed_same_sequence():
    one, two = SimEnvironment(('8', 'Spoon'), seed=5), SimEnvironment(('8', 'Spoon'), seed=5)
    for _ in range(3):
        np.testing.assert_array_equal(one.new_states(2), two.new_states(2))


def test_try_grasps_match_the_simulator_row_by_row():
    env = SimEnvironment(('H', 'T'), seed=1)
    env.new_states(2)
    rng = np.random.default_rng(0)
    good = [ground_truth(scene).sample_feasible(5, rng) for scene in env.scenes]
    assert env.try_grasps(np.stack(good)).all()
    swapped = env.try_grasps(np.stack(good[::-1]))  # grasps of the other scene
    for row, scene, actions in zip(swapped, env.scenes, good[::-1]):
        np.testing.assert_array_equal(row, grasp_success(scene, actions))
    assert not swapped.all()
    flipped = np.stack(good) + [0.0, 0.0, math.pi]  # symmetric gripper
    flipped[..., 2] %= math.pi
    assert env.try_grasps(flipped).all()
    assert env.try_grasps(np.stack(good)).dtype == bool


def test_try_grasps_errors():
    env = SimEnvironment(('H',))
    with pytest.raises(RuntimeError, match='before new_states'):
        env.try_grasps(np.array([[[60.0, 60.0, 0.0]]]))
    env.new_states(2)
    with pytest.raises(ValueError, match=r'actions must have shape \(2, k, 3\)'):
        env.try_grasps(np.zeros((1, 1, 3)))
    with pytest.raises(ValueError, match='must lie in'):
        env.try_grasps(np.array([[[5.0, 60.0, 0.0]], [[60.0, 60.0, 0.0]]]))
    with pytest.raises(ValueError, match='finite'):
        env.try_grasps(np.array([[[np.nan, 60.0, 0.0]], [[60.0, 60.0, 0.0]]]))
    with pytest.raises(ValueError, match='count must be a positive integer'):
        env.new_states(0)


def test_unknown_shape_or_distortion():
    with pytest.raises(ValueError, match='unknown shape'):
        SimEnvironment(('Star',))
    with pytest.raises(ValueError, match='distortion'):
        SimEnvironment(('H',), distortion='fisheye')
    with pytest.raises(ValueError, match='at least one shape'):
        SimEnvironment(())


def test_demonstrations_have_true_labels_and_expert_positives():
    env = SimEnvironment(('H', 'T', '8', 'Spoon'), seed=2)
    env.new_states(1)
    current = list(env.scenes)
    demos = list(env.demonstrations(4, 10, np.random.default_rng(1), imitation_fraction=0.6))
    assert env.scenes == current  # the current problems are untouched
    assert len(demos) == 4
    for image, actions, labels in demos:
        assert image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and image.dtype == np.uint8
        assert actions.shape == (10, 3) and labels.shape == (10,) and labels.dtype == bool
        assert labels[:6].all()  # the expert grasps succeed
    again = SimEnvironment(('H', 'T', '8', 'Spoon'), seed=2)
    for one, two in zip(demos, again.demonstrations(4, 10, np.random.default_rng(1),
                                                      imitation_fraction=0.6)):
        for x, y in zip(one, two):
            np.testing.assert_array_equal(x, y)


def test_demonstration_labels_are_the_simulators_verdicts(monkeypatch):
    scenes = []
    original = env_module.make_scene

    def recording_make_scene(*args):
        scenes.append(original(*args))
        return scenes[-1]

    monkeypatch.setattr(env_module, 'make_scene', recording_make_scene)
    env = SimEnvironment(('H', 'Spoon'), seed=6)
    demos = list(env.demonstrations(3, 20, np.random.default_rng(3), imitation_fraction=0.25))
    scenes = scenes[-3:]  # the constructor checks the shapes with scenes of its own
    for scene, (image, actions, labels) in zip(scenes, demos):
        np.testing.assert_array_equal(image, render(scene))
        np.testing.assert_array_equal(labels, grasp_success(scene, actions))
        assert labels[:5].all()


def test_demonstrations_random_only_and_argument_checks():
    env = SimEnvironment(('T',), seed=4)
    (image, actions, labels), = env.demonstrations(1, 50, np.random.default_rng(2),
                                                   imitation_fraction=0.0)
    assert labels.mean() < 0.5  # random grasps mostly fail
    with pytest.raises(ValueError, match='imitation_fraction'):
        next(env.demonstrations(1, 5, np.random.default_rng(0), imitation_fraction=2.0))
    with pytest.raises(ValueError, match='per_state >= 1'):
        next(env.demonstrations(1, 0, np.random.default_rng(0)))
