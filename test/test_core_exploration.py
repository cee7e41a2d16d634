"""Exploration grasps: centred on the object of a top-down scene, uniform without one."""

import math

import numpy as np
import torch

from fga_ros.core.common.actions import decode_actor
from fga_ros.core.inference.exploration import (
    object_critic_inputs,
    object_pixels,
    uniform_critic_inputs,
)
from fga_ros.sim import WORKSPACE_HI, WORKSPACE_LO, ground_truth, make_scene, render

CPU = torch.device('cpu')


def _on_mask(pixels, actions):
    cells = set(map(tuple, pixels.tolist()))
    return np.array([(int(x), int(y)) in cells for x, y in actions[:, :2]])


def test_the_object_holds_every_feasible_grasp_centre():
    for shape in ('H', '8', 'Spoon', 'T', 'Box'):
        scene = make_scene(shape, 11)
        pixels = object_pixels(render(scene))
        assert 0 < len(pixels) < 0.5 * (WORKSPACE_HI - WORKSPACE_LO) ** 2
        feasible = ground_truth(scene).sample_feasible(500, rng=0)
        assert _on_mask(pixels, feasible).all(), shape


def test_explored_grasps_lie_on_the_object():
    image = render(make_scene('Box', 4))
    generator = torch.Generator().manual_seed(0)
    inputs = object_critic_inputs(image, 400, generator, CPU)
    assert inputs.shape == (400, 4) and inputs.dtype == torch.float32
    actions = decode_actor(inputs).numpy().astype(np.float64)
    assert _on_mask(object_pixels(image), actions).mean() > 0.99  # float32 rounding at edges
    assert np.all((actions[:, 2] >= 0) & (actions[:, 2] < math.pi))
    assert np.ptp(actions[:, 2]) > 0.9 * math.pi  # every closing direction


def test_without_an_object_exploration_is_uniform():
    rng = np.random.default_rng(0)
    blank = np.full((128, 128, 3), 90, dtype=np.uint8)
    noise = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for image in (blank, noise):
        assert len(object_pixels(image)) == 0
        got = object_critic_inputs(image, 64, torch.Generator().manual_seed(1), CPU)
        expected = uniform_critic_inputs(64, torch.Generator().manual_seed(1), CPU)
        torch.testing.assert_close(got, expected)
