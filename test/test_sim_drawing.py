"""Figures: the sim figure is written, grasp glyphs are drawn."""

import numpy as np

from fga_ros import sim


def test_sim_figure_writes_png(tmp_path):
    scene = sim.make_scene('H', 0, 'projection')
    path = tmp_path / 'fig.png'
    sim.sim_figure(scene, sim.ground_truth(scene), path, num_grasps=8)
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_draw_grasps_upscales_and_marks_the_image():
    scene = sim.make_scene('T', 1)
    gt = sim.ground_truth(scene)
    actions = gt.sample_feasible(5, np.random.default_rng(0))
    image = sim.render(scene)
    out = sim.draw_grasps(image, actions, gt.mode_of(actions), scale=4)
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8
    plain = np.repeat(np.repeat(image, 4, axis=0), 4, axis=1)
    assert (out != plain).any(axis=2).sum() > 500
