"""One way to draw a grasp: palette identity across the renderers, glyph geometry, legends."""

import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
import pytest

from fga_ros import sim
from fga_ros.bridge import annotate, markers
from fga_ros.sim import drawing


def new_axes():
    fig = Figure()
    FigureCanvasAgg(fig)
    return fig.subplots()


def test_sim_figure_writes_png_with_a_legend(tmp_path):
    scene = sim.make_scene('H', 0, 'projection')
    gt = sim.ground_truth(scene)
    path = tmp_path / 'fig.png'
    fig = sim.sim_figure(scene, gt, path, num_grasps=8)
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any(label.startswith('gripper: jaws 24 px (48 mm) apart') for label in labels)
    assert [label.split(':')[0] for label in labels if label.startswith('mode ')] == [
        f'mode {m}' for m in range(1, gt.num_modes + 1)]
    assert 'workspace: allowed grasp centres' in labels


def test_glyph_jaws_are_the_aperture_apart():
    config = sim.load_gripper_config()
    rng = np.random.default_rng(0)
    actions = np.column_stack([rng.uniform(30, 90, (20, 2)), rng.uniform(0, math.pi, 20)])
    glyphs = drawing.grasp_glyphs(actions)
    jaw_centres = glyphs[:, :2].mean(axis=2)  # (20, 2 jaws, 2)
    np.testing.assert_allclose(np.linalg.norm(jaw_centres[:, 0] - jaw_centres[:, 1], axis=1),
                               config.aperture)
    np.testing.assert_allclose(np.linalg.norm(glyphs[:, :2, 0] - glyphs[:, :2, 1], axis=2),
                               config.claw_width)
    np.testing.assert_allclose(glyphs[:, 2], jaw_centres)  # the closing line joins them
    np.testing.assert_allclose(glyphs[:, 2].mean(axis=1), actions[:, :2])
    closing = jaw_centres[:, 1] - jaw_centres[:, 0]
    np.testing.assert_allclose(np.arctan2(closing[:, 1], closing[:, 0]) % math.pi,
                               actions[:, 2])
    other = drawing.grasp_glyphs(actions[:1], aperture=30, claw_width=4)[0]
    assert np.linalg.norm(other[2, 1] - other[2, 0]) == pytest.approx(30)
    assert np.linalg.norm(other[0, 1] - other[0, 0]) == pytest.approx(4)


def test_raster_jaws_are_the_aperture_apart():
    image = np.zeros((128, 128, 3), dtype=np.uint8)
    out = drawing.draw_grasps(image, [[64.0, 64.0, 0.0]], [[0.0, 1.0, 0.0]])
    green = (out[..., 1] > 128) & (out[..., 0] == 0)
    columns = np.flatnonzero(green[61:68].sum(axis=0) >= 5)  # vertical jaw strokes
    assert columns.tolist() == [64 - 12, 64 + 12]
    assert image.max() == 0  # the input is not drawn on


@pytest.mark.parametrize('mode', [1, 2, 5, 10, 11])
def test_one_palette_across_matplotlib_opencv_and_rviz(mode):
    """Cluster id ``mode`` of a proposal and true mode ``mode`` of the simulator (both
    numbered from 1) get the same RGB in the PNG figures, the annotated image and the RViz
    markers."""
    expected = np.array(drawing.mode_color(mode))
    rgb = drawing.mode_rgb([mode])
    cluster_rgb = markers.grasp_colours('cluster', [0.9], [mode])
    np.testing.assert_allclose(cluster_rgb, rgb)
    np.testing.assert_allclose(drawing.mode_rgb(drawing.cluster_numbers([mode])), rgb)
    # RViz: the marker colour
    pose = {'position': {'x': 0.0, 'y': 0.0, 'z': 0.5}, 'orientation': {'w': 1.0}}
    gripper = markers.GripperSize(aperture=0.048, claw_width=0.012, claw_thickness=0.004)
    marker = markers.proposal_markers([pose], cluster_rgb, [0.9], {'frame_id': 'f'}, gripper,
                                      0.002)[1]
    np.testing.assert_allclose([marker['color'][c] for c in 'rgb'], expected / 255)
    # matplotlib: the glyph's coloured lines
    ax = new_axes()
    drawing.plot_grasps(ax, [[64.0, 64.0, 0.3]], rgb)
    colours = {tuple(line.get_color()) for line in ax.lines if line.get_gid() == 'grasp'}
    assert len(colours) == 1
    np.testing.assert_allclose(colours.pop(), expected / 255)
    # OpenCV: the annotated image, with the colour the node passes
    image = np.zeros((128, 128, 3), dtype=np.uint8)
    for out in (annotate.draw_grasps(image, [[64.0, 64.0, 0.0]], cluster_rgb, 24.0, 6.0),
                drawing.draw_grasps(image, [[64.0, 64.0, 0.0]], rgb, scale=4)):
        scale = out.shape[0] // 128
        y, x = (np.array([64, 64 + 12]) + 0.5) * scale - 0.5
        assert out[int(y), int(x)].tolist() == expected.tolist()


def test_palette_numbers_from_one():
    assert drawing.mode_color(0) == drawing.NO_MODE_COLOR
    assert drawing.mode_color(-1) == drawing.UNKNOWN_COLOR
    assert drawing.mode_color(1) == tuple(drawing.MODE_COLORS[0])
    assert drawing.mode_color(11) == drawing.mode_color(1)
    assert drawing.cluster_numbers([0, 3, 1]).tolist() == [-1, 3, 1]
    labels = np.zeros((3, 2, 2), dtype=np.int32)
    labels[0, 0, 0], labels[1, 1, 1] = 2, 1
    projected = drawing.projection_image(labels, 0)
    assert projected[0, 0].tolist() == list(drawing.mode_color(2))
    assert projected[1, 1].tolist() == list(drawing.mode_color(1))
    assert projected[0, 1].tolist() == list(drawing.NO_MODE_COLOR)


def test_infeasible_grasps_are_crossed():
    ax = new_axes()
    actions = np.array([[40.0, 50.0, 0.1], [60.0, 70.0, 1.0], [80.0, 30.0, 2.0]])
    drawing.plot_grasps(ax, actions, drawing.mode_rgb([1, 2, 3]),
                        feasible=[True, False, True])
    crosses = [line for line in ax.lines if line.get_gid() == 'infeasible']
    assert len(crosses) == 1
    np.testing.assert_allclose(crosses[0].get_xydata(), actions[[1], :2])
    with pytest.raises(ValueError, match='one flag per grasp'):
        drawing.plot_grasps(ax, actions, drawing.mode_rgb([1, 2, 3]), feasible=[True])


def test_bad_grasp_arrays_are_refused():
    with pytest.raises(ValueError, match=r'\(n, 3\)'):
        drawing.grasp_glyphs(np.zeros((2, 2)))
    with pytest.raises(ValueError, match='2 grasps but 1 colours'):
        drawing.draw_grasps(np.zeros((8, 8, 3), np.uint8), np.zeros((2, 3)), [[1, 0, 0]])
