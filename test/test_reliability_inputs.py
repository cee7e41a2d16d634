"""API inputs that used to be accepted silently are refused with a message naming them."""

import numpy as np
import pytest

from fga_ros import sim
from fga_ros.bridge.annotate import draw_grasps
from fga_ros.bridge.geometry import CameraModel, yaw_quaternions
from fga_ros.core.inference.proposer import Proposer
from fga_ros.image_files import decode_image, image_size_of
from fga_ros.safe_yaml import QUOTE_CHARS, parse_yaml, quote

GOOD_ACTION = [[64.0, 64.0, 0.5]]


def _scene():
    return sim.make_scene('H', 0)


@pytest.mark.parametrize('actions, message', [
    (np.array([[64 + 1j, 64, 0.5]]), 'real numbers'),
    ([[64.0, float('nan'), 0.5]], 'finite'),
    ([[1e9, 64.0, 0.5]], 'must lie in'),
    ([[64.0, 64.0]], 'shape'),
])
def test_grasp_success_refuses_bad_actions(actions, message):
    with pytest.raises(ValueError, match=message):
        sim.grasp_success(_scene(), actions)
    assert sim.grasp_success(_scene(), GOOD_ACTION).shape == (1,)


@pytest.mark.parametrize('params, message', [
    ({'x': 1e9}, r'x must lie in \[0, 128\]'),
    ({'y': -3.0}, r'y must lie in \[0, 128\]'),
    ({'bar_width': -4.0}, r'bar_width must lie in \[0, 128\]'),
    ({'bar_length': 1e6}, 'bar_length must lie in'),
    ({'theta': 1e12}, 'theta must lie in'),
    ({'x': float('nan')}, 'must be finite'),
    ({'x': 3 + 4j}, 'must be a number'),
    ({'object_color': [300, 0, 0]}, 'three integers in 0..255'),
])
def test_scene_parameters_are_bounded(params, message):
    with pytest.raises(ValueError, match=message):
        sim.make_scene('H', 0, params=params)


def test_drawing_refuses_float_images_and_bad_colours():
    image = np.zeros((128, 128, 3), np.uint8)
    assert draw_grasps(image, GOOD_ACTION, [[1, 0, 0]], 24, 6).dtype == np.uint8
    with pytest.raises(ValueError, match='uint8'):
        draw_grasps(image.astype(np.float32) / 255, GOOD_ACTION, [[1, 0, 0]], 24, 6)
    with pytest.raises(ValueError, match='real numbers'):
        draw_grasps(image, np.array(GOOD_ACTION) * 1j, [[1, 0, 0]], 24, 6)
    with pytest.raises(ValueError, match='1 grasps but 2 colours'):
        draw_grasps(image, GOOD_ACTION, [[1, 0, 0], [0, 1, 0]], 24, 6)


def test_camera_model_refuses_nan_and_complex():
    camera = CameraModel(0.002, 0.6)
    with pytest.raises(ValueError, match='actions must be finite'):
        camera.action_poses([[64.0, float('nan'), 0.1]])
    with pytest.raises(ValueError, match='real numbers'):
        camera.pose_fields(np.array([[64.0, 64.0, 0.1j]]))
    with pytest.raises(ValueError, match='points must be finite'):
        camera.points_to_pixels([[0.0, 0.0, float('nan')]])
    with pytest.raises(ValueError, match='angles must be finite'):
        yaw_quaternions([float('inf')])
    for bad in (float('nan'), -1.0, True, 1 + 0j):
        with pytest.raises(ValueError, match='pixel_size must be a positive number'):
            CameraModel(bad, 0.6)


def test_proposer_refuses_float_images():
    proposer = Proposer.from_checkpoint(None)
    with pytest.raises(ValueError, match='dtype uint8'):
        proposer.propose(np.zeros((128, 128, 3), np.float32))


def test_image_header_is_read_before_decoding():
    import cv2
    png = cv2.imencode('.png', np.zeros((7, 9, 3), np.uint8))[1].tobytes()
    jpeg = cv2.imencode('.jpg', np.zeros((5, 11, 3), np.uint8))[1].tobytes()
    assert image_size_of(png) == (9, 7) and image_size_of(jpeg) == (11, 5)
    assert decode_image(png).shape == (7, 9, 3) and decode_image(jpeg).shape == (5, 11, 3)


def test_quotes_are_short():
    assert len(quote('x' * 10 ** 6)) <= QUOTE_CHARS + 3
    nested = [[list(range(1000))] * 1000] * 1000
    assert len(quote(nested)) <= QUOTE_CHARS + 3
    assert parse_yaml('a: [1, 2]') == {'a': [1, 2]}
