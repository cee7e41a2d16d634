"""Rendering: determinism, mask/image agreement, distortions change the image only."""

import numpy as np
import pytest

from fga_ros import sim


def test_render_is_deterministic_rgb_uint8():
    scene = sim.make_scene('8', 4)
    image = sim.render(scene)
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert np.array_equal(image, sim.render(sim.make_scene('8', 4)))
    assert np.array_equal(sim.object_mask(scene), sim.object_mask(sim.make_scene('8', 4)))


@pytest.mark.parametrize('shape', ['H', '8', 'Spoon', 'T', 'Box'])
def test_undistorted_image_shows_exactly_the_mask(shape):
    scene = sim.make_scene(shape, 11)
    mask, image = sim.object_mask(scene), sim.render(scene)
    p = scene.params
    assert mask.dtype == bool and mask.shape == (128, 128)
    assert 150 < mask.sum() < 128 * 128 // 4
    assert (image[mask] == p['object_color']).all()
    assert (image[~mask] == p['background_color']).all()


def test_mask_is_read_only():
    with pytest.raises(ValueError):
        sim.object_mask(sim.make_scene('H', 0))[0, 0] = True


@pytest.mark.parametrize('distortion', ['rotation', 'projection', 'both'])
def test_distortion_changes_image_not_physics(distortion):
    plain = sim.make_scene('T', 5)
    bent = plain.with_distortion(distortion)
    assert not np.array_equal(sim.render(plain), sim.render(bent))
    assert np.array_equal(sim.object_mask(plain), sim.object_mask(bent))
    gt = sim.ground_truth(plain)
    rng = np.random.default_rng(0)
    actions = np.concatenate([gt.sample_feasible(200, rng),
                              np.column_stack([rng.uniform(25, 103, (300, 2)),
                                               rng.uniform(0, np.pi, 300)])])
    assert np.array_equal(sim.grasp_success(plain, actions), sim.grasp_success(bent, actions))


def test_rotation_distortion_rotates_the_object():
    scene = sim.make_scene('Box', 2, params={'x': 64.0, 'y': 40.0, 'theta': 0.0})
    mask = sim.render(scene.with_distortion('rotation')) != scene.params['background_color']
    ys, xs = np.nonzero(mask.any(axis=2))
    # A 30 degree roll about (63.5, 63.5) moves the object off the vertical through x = 64.
    assert abs(xs.mean() - 64.0) > 5.0


def test_render_batch_matches_render():
    scenes = [sim.make_scene(s, 3, d) for s in ('H', 'Box') for d in ('none', 'both')]
    batch = sim.render_batch(scenes)
    assert batch.shape == (4, 128, 128, 3)
    for image, scene in zip(batch, scenes):
        assert np.array_equal(image, sim.render(scene))
