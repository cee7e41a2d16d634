"""The fitted camera view (``camera_view: fitted``): rectification, the fit, file checks."""

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest
import torch

from fga_ros.core.common.tensors import images_to_tensor
from fga_ros.core.models.camera_view import (
    MIN_IMAGES,
    TableRectifier,
    TableViewFit,
    apply_homography,
    check_homography,
    describe_fit,
    fit_table_view,
    pixels_to_table,
)
from fga_ros.core.models.model_file import CheckpointError, export_model, load_model, sign
from fga_ros.core.models.nets import ActorCritic, normalise_images
from fga_ros.sim.render import load_camera, render
from fga_ros.sim.scene import Scene

SIDE = 64


def _pixel_to_normalised(side: int) -> np.ndarray:
    """Pixel-centre coordinates (pixel i at i) -> normalised ones (align_corners=False)."""
    return np.array([[2.0 / side, 0.0, 1.0 / side - 1.0],
                     [0.0, 2.0 / side, 1.0 / side - 1.0], [0.0, 0.0, 1.0]])


def _simulator_view(distortion: str) -> np.ndarray:
    """The simulator's table -> image homography in normalised coordinates."""
    n = _pixel_to_normalised(128)
    h = n @ load_camera().homography(distortion) @ np.linalg.inv(n)
    return h / h[2, 2]


def _mask(image: np.ndarray) -> np.ndarray:
    return (np.abs(image.astype(int) - image[0, 0].astype(int)).sum(-1) > 60)


def _chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean distance (pixels) from the pixels of one mask to the other mask."""
    def to(mask):
        return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    return 0.5 * float(to(b)[a].mean() + to(a)[b].mean())


@pytest.mark.parametrize('distortion', ['rotation', 'projection', 'both'])
def test_rectifying_with_the_true_view_gives_the_top_down_image(distortion):
    rectifier = TableRectifier()
    rectifier.homography.copy_(torch.from_numpy(_simulator_view(distortion)))
    for shape, seed in (('H', 0), ('T', 0), ('Spoon', 1), ('8', 2)):
        top, seen = render(Scene(shape, seed, 'none')), render(Scene(shape, seed, distortion))
        with torch.no_grad():
            back = rectifier(images_to_tensor(seen, 128).float() / 255.0)[0]
        back = (back.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
        a, b, raw = _mask(top), _mask(back), _mask(seen)
        assert _chamfer(a, b) < 0.2  # the object is back where it is, to a fifth of a pixel
        assert _chamfer(a, raw) > 1.0  # and it was elsewhere before


def test_identity_view_leaves_images_as_they_are():
    images = torch.rand(2, 3, SIDE, SIDE)
    with torch.no_grad():
        assert torch.equal(TableRectifier()(images), images)


def _blob_scenes(view: np.ndarray, count: int, rng: np.random.Generator):
    """Disks at random table places seen through ``view``, and centres inside them."""
    images, centres = [], []
    n = _pixel_to_normalised(SIDE)
    pixel_view = np.linalg.inv(n) @ view @ n
    for _ in range(count):
        top = np.full((SIDE, SIDE, 3), 40, np.uint8)
        centre = rng.uniform(-0.7, 0.7, 2)
        radius = rng.uniform(0.08, 0.2)
        pixel = (centre + 1.0) * SIDE / 2.0 - 0.5
        cv2.circle(top, tuple(int(round(v)) for v in pixel), int(radius * SIDE / 2), (200, 90, 30),
                   -1)
        images.append(cv2.warpPerspective(top, pixel_view, (SIDE, SIDE),
                                          flags=cv2.INTER_LINEAR, borderValue=(40, 40, 40)))
        angle, r = rng.uniform(0, 2 * math.pi, 6), radius * np.sqrt(rng.uniform(0, 0.8, 6))
        centres.append(centre + np.stack([r * np.cos(angle), r * np.sin(angle)], -1))
    return np.stack(images), centres


def _error(fitted: np.ndarray, true: np.ndarray) -> float:
    """Mean distance, in normalised units, between the two maps of a table grid."""
    side = np.linspace(-0.8, 0.8, 9)
    grid = torch.tensor(np.stack(np.meshgrid(side, side), -1).reshape(-1, 2))
    a = apply_homography(torch.tensor(fitted), grid)
    b = apply_homography(torch.tensor(true), grid)
    return float((a - b).norm(dim=-1).mean())


@pytest.mark.parametrize('distortion', ['none', 'rotation', 'projection'])
def test_fit_recovers_a_known_view(distortion):
    true = _simulator_view(distortion)
    images, centres = _blob_scenes(true, 150, np.random.default_rng(1))
    fit = fit_table_view(images, centres)
    assert _error(fit.homography, true) < 0.03  # 1 network pixel = 0.031
    assert fit.on_object > 0.8 and fit.centres == 900
    if distortion == 'none':  # the identity is kept exactly
        assert np.array_equal(fit.homography, np.eye(3))
    else:
        assert _error(np.eye(3), true) > 0.1 and fit.on_object_identity < 0.5


def test_too_few_images_keep_the_identity():
    images, centres = _blob_scenes(_simulator_view('rotation'), MIN_IMAGES - 1,
                                   np.random.default_rng(2))
    fit = fit_table_view(images, centres)
    assert np.array_equal(fit.homography, np.eye(3)) and math.isnan(fit.on_object)


def test_pixels_to_table_is_the_critic_convention():
    assert np.allclose(pixels_to_table(np.array([[0.0, 64.0], [128.0, 32.0]])),
                       [[-1.0, 0.0], [1.0, -0.5]])


@pytest.mark.parametrize('homography, message', [
    (torch.full((3, 3), math.nan), 'finite 3x3'),
    (torch.tensor([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1.0]]), 'degenerate'),
    (torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [2.0, 0, 1.0]]), 'behind the camera'),
])
def test_unusable_views_are_named(homography, message):
    with pytest.raises(ValueError, match=message):
        check_homography(homography)


def test_model_file_with_a_crafted_view_is_refused(tmp_path, tiny_config):
    config = dataclasses.replace(tiny_config, camera_view='fitted')
    model = ActorCritic(config)
    model.rectifier.homography.copy_(torch.from_numpy(_simulator_view('projection')))
    path = tmp_path / 'model.pt'
    export_model(path, model, config)
    loaded, loaded_config, _ = load_model(path)
    assert loaded_config.camera_view == 'fitted'
    torch.testing.assert_close(loaded.rectifier.homography, model.rectifier.homography)
    data = torch.load(path, weights_only=True)
    data['model']['rectifier.homography'] = torch.tensor(
        [[1.0, 0, 0], [0, 1.0, 0], [0, 5.0, 1.0]])
    torch.save(sign(data), path)
    with pytest.raises(CheckpointError, match='model.pt: .*behind the camera'):
        load_model(path)


def test_unknown_camera_view_is_named(tiny_config):
    with pytest.raises(ValueError, match='camera_view must be one of'):
        dataclasses.replace(tiny_config, camera_view='fisheye')


def test_trainer_fits_the_view_after_the_prefill(tmp_path, tiny_config):
    from fga_ros.core.common.env import SimEnvironment
    from fga_ros.core.training.trainer import CAMERA_VIEW_NAME, Trainer
    config = dataclasses.replace(tiny_config, camera_view='fitted', distortion='rotation')
    trainer = Trainer(config, SimEnvironment(config.shapes, 'rotation', 0), tmp_path)
    trainer.prefill()
    report = json.loads((tmp_path / CAMERA_VIEW_NAME).read_text())
    assert report['centres'] > 0  # the tiny prefill has too few scenes for a fit
    assert trainer.replay.image_size == 128  # the camera's own pixels, reduced after the view
    assert report['homography'] == np.eye(3).tolist() and report['on_object'] is None
    assert 'too few scenes' in describe_fit(trainer.camera_view_fit)


def test_fit_lines_say_what_was_kept():
    fitted = TableViewFit(_simulator_view('rotation'), 0.99, 0.4, 1000)
    assert describe_fit(fitted) == ('camera view: fitted homography puts 99.0 % of 1000 '
                                    'successful grasp centres on the object (the image taken '
                                    'as the table: 40.0 %)')
    kept = TableViewFit(np.eye(3), 0.98, 0.98, 1000)
    assert describe_fit(kept).startswith('camera view: the image is taken as the table (98.0 %')


def test_calibration_views_turn_the_rectified_image(tiny_config):
    from fga_ros.core.inference.calibration import Calibration
    from fga_ros.core.inference.proposer import ModelState, _all_view_features
    config = dataclasses.replace(tiny_config, camera_view='fitted')
    model = ActorCritic(config).eval()
    model.rectifier.homography.copy_(torch.from_numpy(_simulator_view('projection')))
    calibration = Calibration(turns=(0, 1))
    image = render(Scene('T', 0, 'projection'))
    with torch.no_grad():
        features = model.features(images_to_tensor(image, model.input_size))
        views = calibration.view_features(model, features)
        first, batched = _all_view_features(
            ModelState(model, config, {}, calibration, ()), image, torch.device('cpu'))
    turned = torch.rot90(features.images, 1, dims=(-2, -1))
    torch.testing.assert_close(views.images, turned)  # not rectified a second time
    torch.testing.assert_close(batched.images, turned)
    torch.testing.assert_close(first.trunk, features.trunk, atol=1e-5, rtol=0)
    torch.testing.assert_close(batched.trunk, views.trunk, atol=1e-5, rtol=0)


def test_rectifier_follows_a_changed_view():
    rectifier = TableRectifier()
    images = torch.rand(1, 3, SIDE, SIDE)
    with torch.no_grad():
        rectifier(images)
        rectifier.homography.copy_(torch.from_numpy(_simulator_view('rotation')))
        turned = rectifier(images)
        rectifier.load_state_dict({'homography': torch.eye(3)})
        torch.testing.assert_close(rectifier(images), images, atol=1e-5, rtol=0)
    assert not torch.allclose(turned, images, atol=0.05)


def _edge_band(image: np.ndarray, side: int) -> np.ndarray:
    """(side, side) bool: pixels within about a network pixel of an object edge."""
    mask = cv2.resize(_mask(image).astype(np.uint8), (side, side), interpolation=cv2.INTER_AREA)
    kernel = np.ones((3, 3), np.uint8)
    return cv2.dilate(mask, kernel).astype(bool) & ~cv2.erode(mask, kernel).astype(bool)


@pytest.mark.parametrize('distortion', ['projection', 'both'])
def test_a_fitted_model_rectifies_the_camera_image_before_reducing_it(tiny_config, distortion):
    """The far side of a tilted table keeps the detail that reducing first would lose."""
    config = dataclasses.replace(tiny_config, camera_view='fitted', image_size=SIDE)
    model = ActorCritic(config).eval()
    assert model.input_size == 128
    view = torch.from_numpy(_simulator_view(distortion))
    model.rectifier.homography.copy_(view)
    reduced_first = TableRectifier()
    reduced_first.homography.copy_(view)
    ours, before = [], []
    for shape, seed in (('H', 0), ('T', 1), ('Spoon', 2), ('8', 3), ('Box', 4)):
        top_image = render(Scene(shape, seed, 'none'))
        seen = render(Scene(shape, seed, distortion))
        top = normalise_images(images_to_tensor(top_image, SIDE), SIDE)[0]
        band = torch.from_numpy(_edge_band(top_image, SIDE))
        with torch.no_grad():
            table = model.table_images(images_to_tensor(seen, model.input_size))[0]
            late = reduced_first(normalise_images(images_to_tensor(seen, SIDE), SIDE))[0]
        assert table.shape == top.shape
        ours.append(float((table - top).abs().sum(0)[band].mean()))
        before.append(float((late - top).abs().sum(0)[band].mean()))
    assert np.mean(ours) < 0.8 * np.mean(before)


def test_a_fitted_model_with_the_identity_view_only_reduces_the_image(tiny_config):
    config = dataclasses.replace(tiny_config, camera_view='fitted', image_size=SIDE)
    model = ActorCritic(config).eval()
    image = render(Scene('T', 5, 'none'))
    with torch.no_grad():
        table = model.table_images(images_to_tensor(image, model.input_size))
    reduced = normalise_images(images_to_tensor(image, SIDE), SIDE)
    torch.testing.assert_close(table, reduced, atol=2.0 / 255.0, rtol=0)
    assert ActorCritic(tiny_config).input_size == tiny_config.image_size  # image taken as table
