"""Exploration grasps: centred on the object of a top-down scene, uniform without one."""

import math

import numpy as np
import torch

from fga_ros.core.common.actions import decode_actor
from fga_ros.core.inference.exploration import (
    OBJECT_MARGIN_PX,
    object_critic_inputs,
    object_pixels,
    uniform_critic_inputs,
)
from fga_ros.sim import WORKSPACE_HI, WORKSPACE_LO, ground_truth, make_scene, render

CPU = torch.device('cpu')


def _near_the_object(pixels, actions):
    """Whether each action's centre lies within OBJECT_MARGIN_PX of an object pixel's
    square (Chebyshev distance, px)."""
    centres = actions[:, None, :2] - (pixels[None] + 0.5)
    return np.abs(centres).max(-1).min(-1) <= OBJECT_MARGIN_PX + 0.5 + 1e-4


def test_the_object_holds_every_feasible_grasp_centre():
    for shape in ('H', '8', 'Spoon', 'T', 'Box'):
        scene = make_scene(shape, 11)
        pixels = object_pixels(render(scene))
        assert 0 < len(pixels) < 0.5 * (WORKSPACE_HI - WORKSPACE_LO) ** 2
        feasible = ground_truth(scene).sample_feasible(500, rng=0)
        assert _near_the_object(pixels, feasible).all(), shape


def test_explored_grasps_lie_on_the_object():
    image = render(make_scene('Box', 4))
    generator = torch.Generator().manual_seed(0)
    inputs = object_critic_inputs(image, 400, generator, CPU)
    assert inputs.shape == (400, 4) and inputs.dtype == torch.float32
    actions = decode_actor(inputs).numpy().astype(np.float64)
    assert _near_the_object(object_pixels(image), actions).all()
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
