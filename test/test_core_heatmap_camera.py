"""Heat maps read in the camera's pixels (``camera_view: fitted`` for H and SH)."""

import dataclasses
import math

import cv2
import numpy as np
import pytest
import torch

from fga_ros.core.common.actions import decode_actor, encode_actions, normalise_actor_output
from fga_ros.core.common.config import load_config
from fga_ros.core.models.heatmap_geometry import cell_actions, map_grasps
from fga_ros.core.models.heatmap_nets import HeatmapModel
from fga_ros.sim.render import load_camera
from fga_ros.sim.workspace import WORKSPACE_HI, WORKSPACE_LO

pytestmark = pytest.mark.usefixtures('one_thread')
METHODS = ('heatmap', 'stacked-heatmap')


def _simulator_view(distortion: str) -> torch.Tensor:
    """The simulator's table -> image homography on grid-sample coordinates (3, 3)."""
    n = np.array([[2.0 / 128, 0.0, 1.0 / 128 - 1.0], [0.0, 2.0 / 128, 1.0 / 128 - 1.0],
                  [0.0, 0.0, 1.0]])
    h = n @ load_camera().homography(distortion) @ np.linalg.inv(n)
    return torch.tensor(h / h[2, 2], dtype=torch.float32)


def _table_grasps(count: int, seed: int = 0) -> np.ndarray:
    """Pixel grasps (count, 3) in the middle of the workspace, any angle."""
    rng = np.random.default_rng(seed)
    margin = 0.2 * (WORKSPACE_HI - WORKSPACE_LO)
    xy = rng.uniform(WORKSPACE_LO + margin, WORKSPACE_HI - margin, (count, 2))
    return np.concatenate([xy, rng.uniform(0.0, math.pi, (count, 1))], axis=1)


def _angle_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between gripper angles modulo pi, radians."""
    return np.abs((a - b + 0.5 * math.pi) % math.pi - 0.5 * math.pi)


@pytest.mark.parametrize('distortion', ['rotation', 'projection', 'both'])
def test_mapped_grasps_land_where_the_simulators_camera_sees_them(distortion):
    """Centre: the simulator's own homography (applied by OpenCV); closing direction: the
    image of a short step along it."""
    grasps = _table_grasps(200)
    camera = decode_actor(map_grasps(torch.tensor(encode_actions(grasps), dtype=torch.float32),
                                     _simulator_view(distortion))).numpy()
    pixels = load_camera().homography(distortion)
    centre = cv2.perspectiveTransform(grasps[None, :, :2], pixels)[0]
    step = grasps[:, :2] + 0.01 * np.stack([np.cos(grasps[:, 2]), np.sin(grasps[:, 2])], -1)
    ahead = cv2.perspectiveTransform(step[None], pixels)[0] - centre
    assert np.abs(camera[:, :2] - centre).max() < 1e-3
    assert _angle_gap(camera[:, 2], np.arctan2(ahead[:, 1], ahead[:, 0])).max() < 1e-3


def test_mapping_there_and_back_is_the_identity():
    view = _simulator_view('both')
    grasps = torch.tensor(encode_actions(_table_grasps(100, seed=1)), dtype=torch.float32)
    back = map_grasps(map_grasps(grasps, view), torch.linalg.inv(view))
    torch.testing.assert_close(back, grasps, atol=1e-5, rtol=0)


def _pair(method: str, distortion: str) -> tuple[HeatmapModel, HeatmapModel]:
    """A camera-frame model with the simulator's view and a table-frame one, same weights."""
    config = dataclasses.replace(load_config('tiny'), method=method)
    torch.manual_seed(0)
    table = HeatmapModel(config).eval()
    camera = HeatmapModel(dataclasses.replace(config, camera_view='fitted')).eval()
    camera.load_state_dict(table.state_dict(), strict=False)
    camera.rectifier.homography.copy_(_simulator_view(distortion))
    return camera, table


@pytest.mark.parametrize('method', METHODS)
def test_a_table_grasp_is_scored_where_the_camera_sees_it(method):
    """Table grasps whose camera image is a cell centre and angle bin read that cell, in
    ``score`` and in the one-pass-per-grasp ``logits_at`` of training."""
    camera, table = _pair(method, 'projection')
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(2))
    cells = torch.randint(0, 16 * 32 * 32, (2, 40), generator=torch.Generator().manual_seed(0))
    view = camera.rectifier.homography
    grasps = map_grasps(normalise_actor_output(cell_actions(cells, 32, 16)),
                        torch.linalg.inv(view))
    with torch.no_grad():
        expected = torch.gather(table.features(images).flat, 1, cells)
        torch.testing.assert_close(camera.score(camera.features(images), grasps), expected,
                                   atol=1e-5, rtol=0)
        torch.testing.assert_close(camera.logits_at(images, grasps), expected,
                                   atol=1e-5, rtol=0)
        # the same grasps read as table points by the table model are elsewhere
        assert not torch.allclose(table.score(table.features(images), grasps), expected,
                                  atol=1e-3)
    assert not camera.reads_the_table and table.reads_the_table


@pytest.mark.parametrize('method', METHODS)
def test_drawn_cells_come_back_to_the_table(method):
    """Draws are camera cells (centre and angle bin) mapped onto the table, inside the
    workspace; their scores read their own cells."""
    camera, _ = _pair(method, 'both')
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        features = camera.features(images)
        drawn = camera.sample(features, 500, torch.Generator().manual_seed(4))
    table = decode_actor(drawn).numpy()
    assert ((table[..., :2] >= WORKSPACE_LO) & (table[..., :2] < WORKSPACE_HI)).all()
    seen = map_grasps(normalise_actor_output(drawn), camera.rectifier.homography)
    cells = cell_actions(torch.arange(32 * 32 * 16), 32, 16)
    gaps = torch.cdist(normalise_actor_output(cells)[None], seen.reshape(1, -1, 4),
                       compute_mode='donot_use_mm_for_euclid_dist')[0]
    assert float(gaps.min(dim=0).values.max()) < 1e-4  # every draw is a cell exactly
    # far-side cells of the tilted table are off it: fewer cells than the top-down workspace
    assert int(camera._camera_allowed(camera.rectifier.homography).sum()) \
        < int(camera.allowed.sum())


@pytest.mark.parametrize('method', METHODS)
def test_the_identity_view_draws_like_the_table_model(method):
    camera, table = _pair(method, 'none')
    images = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a = camera.sample(camera.features(images), 64, torch.Generator().manual_seed(6))
        b = table.sample(table.features(images), 64, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and camera.reads_the_table


def test_a_heatmap_run_fits_the_view_and_its_model_file_keeps_it(tmp_path, tiny_config):
    from fga_ros.core.common.env import SimEnvironment
    from fga_ros.core.models.model_file import export_model, load_model
    from fga_ros.core.training.trainer import CAMERA_VIEW_NAME, Trainer
    config = dataclasses.replace(tiny_config, method='stacked-heatmap', camera_view='fitted',
                                 distortion='rotation')
    trainer = Trainer(config, SimEnvironment(config.shapes, 'rotation', 0), tmp_path)
    trainer.prefill()
    assert (tmp_path / CAMERA_VIEW_NAME).is_file()
    assert trainer.replay.image_size == config.image_size  # heat maps read the camera image
    model = trainer.model
    model.rectifier.homography.copy_(_simulator_view('rotation'))
    export_model(tmp_path / 'model.pt', model, config)
    loaded, loaded_config, _ = load_model(tmp_path / 'model.pt')
    assert isinstance(loaded, HeatmapModel) and loaded_config.camera_view == 'fitted'
    torch.testing.assert_close(loaded.rectifier.homography, model.rectifier.homography)



def test_calibration_does_not_turn_camera_pixels():
    """Quarter turns of the camera image are not turned scenes: a camera-frame model's
    calibration keeps the image alone (a table-frame one keeps all four turns)."""
    from fga_ros.core.analysis.calibration_fit import CALIBRATION_TURNS, calibration_turns
    camera, table = _pair('stacked-heatmap', 'projection')
    assert calibration_turns(camera) == (0,)
    assert calibration_turns(table) == CALIBRATION_TURNS
