"""Quarter-turn views: a turned image with its turned grasps is the same physical scene."""

import math

import numpy as np
import pytest
import torch

from fga_ros import sim
from fga_ros.core.common.actions import (
    decode_actor,
    encode_actions,
    normalise_actor_output,
    turn_critic_inputs,
)


def _turned_scene(scene: sim.Scene, turns: int) -> sim.Scene:
    """The scene turned with the image by ``turns`` quarter turns (np.rot90 over rows and
    columns): centre (x, y) -> (y, 127 - x) and orientation theta -> theta - pi/2 per turn."""
    params = scene.params
    x, y, theta = params['x'], params['y'], params['theta']
    for _ in range(turns):
        x, y, theta = y, sim.IMAGE_SIZE - 1 - x, theta - math.pi / 2
    params.update(x=x, y=y, theta=theta % (2 * math.pi))
    return sim.make_scene(scene.shape, scene.seed, params=params)


@pytest.mark.parametrize('turns', [1, 2, 3])
@pytest.mark.parametrize('shape', ['T', 'Box'])
def test_turned_grasps_on_the_turned_scene_have_the_same_outcomes(shape, turns):
    scene = sim.make_scene(shape, 11, params={'x': 60.0, 'y': 70.0, 'theta': 0.4})
    turned = _turned_scene(scene, turns)
    image = sim.render(scene)
    differ = np.abs(sim.render(turned).astype(int)
                    - np.rot90(image, turns, axes=(0, 1)).astype(int)).sum(axis=-1) > 30
    assert differ.sum() <= 40  # a few anti-aliased edge pixels of 16,384
    rng = np.random.default_rng(turns)
    actions = np.stack([rng.uniform(48, 72, 20_000), rng.uniform(58, 82, 20_000),
                        rng.uniform(0, math.pi, 20_000)], axis=1)
    inputs = torch.as_tensor(normalise_actor_output(encode_actions(actions)))
    moved = decode_actor(turn_critic_inputs(inputs, turns)).numpy().astype(np.float64)
    before = sim.grasp_success(scene, actions)
    assert 300 <= before.sum() <= 19_700  # both outcomes are exercised

    def overlap(shift):
        after = sim.grasp_success(turned, moved + np.array([*shift, 0.0]))
        return (before & after).sum() / (before | after).sum()

    # the simulator works on pixels, so grasps on the edge of success flip between the two
    # rasterisations; the exact transform must still beat every half-pixel shift of it
    exact = overlap((0.0, 0.0))
    assert exact >= 0.6
    assert exact > max(overlap(s) for s in ((0.5, 0), (-0.5, 0), (0, 0.5), (0, -0.5)))


def test_four_turns_are_the_identity_and_shapes_are_checked():
    inputs = torch.rand(5, 4) * 2.0 - 1.0
    torch.testing.assert_close(turn_critic_inputs(turn_critic_inputs(inputs, 1), 3), inputs)
    torch.testing.assert_close(turn_critic_inputs(inputs, 4), inputs)
    with pytest.raises(ValueError, match='critic inputs'):
        turn_critic_inputs(torch.zeros(5, 3), 1)
