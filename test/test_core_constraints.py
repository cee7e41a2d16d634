"""Task constraints: polygon checks, filters, cost, and constrained proposals in rounds."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from fga_ros.bridge import requests
from fga_ros.bridge.geometry import CameraModel, transform_points
from fga_ros.core.inference.constraints import (
    ConstraintError,
    TaskConstraints,
    jaw_footprints,
    points_in_polygon,
    rectangle,
)

SQUARE = rectangle(30, 30, 60, 60)


@pytest.mark.parametrize('fields, name', [
    ({'region': []}, 'region'),
    ({'region': [[0, 0], [1, 1]]}, 'region'),
    ({'region': [[0, 0], [10, 10], [10, 0], [0, 10]]}, 'self-intersecting'),
    ({'region': [[0, 0], [1, 1], [2, 2]]}, 'zero area'),
    ({'region': [[0, 0], [np.nan, 1], [2, 0]]}, 'non-finite'),
    ({'keep_out': ([[0, 0], [10, 10], [10, 0], [0, 10]],)}, r'keep_out\[0\]'),
    ({'angle_range': (1.0, 0.5)}, 'inverted'),
    ({'angle_range': (0.0, math.nan)}, 'angle_range'),
    ({'min_score': 1.5}, 'min_score'),
    ({'min_score': -0.1}, 'min_score'),
    ({'min_score': math.nan}, 'min_score'),
    ({'preferred_point': (1.0, math.inf)}, 'preferred_point'),
    ({'preference_weight': -1.0}, 'preference_weight'),
])
def test_bad_constraints_name_the_field(fields, name):
    with pytest.raises(ConstraintError, match=name):
        TaskConstraints(**fields)


def test_empty_constraints_constrain_nothing():
    c = TaskConstraints()
    assert not c.filters
    actions = np.array([[30.0, 40.0, 0.1], [90.0, 90.0, 3.0]])
    assert c.allowed(actions, np.array([0.0, 1.0])).all()
    np.testing.assert_allclose(c.cost(actions, np.array([0.2, 0.9])), [0.8, 0.1])


def test_region_angle_and_min_score():
    c = TaskConstraints(region=SQUARE, angle_range=(math.radians(-10), math.radians(10)),
                        min_score=0.5)
    actions = np.array([
        [40, 40, math.radians(5)],     # inside, angle in window
        [40, 40, math.radians(175)],   # inside, wraps into the window across 0
        [40, 40, math.radians(30)],    # angle outside
        [70, 40, 0.0],                 # centre outside
        [60, 60, 0.0],                 # on the boundary: inside
        [40, 40, 0.0],                 # score too low
    ], dtype=float)
    scores = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.4])
    np.testing.assert_array_equal(c.allowed(actions, scores),
                                  [True, True, False, False, True, False])


def test_points_in_non_convex_polygon():
    ell = np.array([[0, 0], [10, 0], [10, 4], [4, 4], [4, 10], [0, 10]], dtype=float)
    inside = points_in_polygon([[2, 2], [8, 2], [2, 8], [8, 8], [4, 7]], ell)
    np.testing.assert_array_equal(inside, [True, True, True, False, True])


def test_keep_out_tests_the_jaw_footprints():
    jaws = jaw_footprints(np.array([[64.0, 64.0, 0.0]]))[0]
    # closing along x: claws centred at 64 -/+ 13 px (aperture 24, thickness 2), 6 px tall
    np.testing.assert_allclose(jaws[0].mean(0), [51.0, 64.0])
    np.testing.assert_allclose(jaws[1].mean(0), [77.0, 64.0])
    grasp = np.array([[64.0, 64.0, 0.0], [64.0, 64.0, math.pi / 2]])
    # a small box around the right claw's position: blocks the first grasp, not the turned one
    c = TaskConstraints(keep_out=(rectangle(75, 62, 79, 66),))
    np.testing.assert_array_equal(c.allowed(grasp, np.ones(2)), [False, True])
    # a box between the claws (where the object is) touches neither claw
    c = TaskConstraints(keep_out=(rectangle(60, 60, 68, 68),))
    np.testing.assert_array_equal(c.allowed(grasp, np.ones(2)), [True, True])


def test_preferred_point_adds_distance_to_the_cost():
    c = TaskConstraints(preferred_point=(40.0, 40.0), preference_weight=0.01)
    actions = np.array([[40.0, 40.0, 0.0], [80.0, 40.0, 0.0]])
    np.testing.assert_allclose(c.cost(actions, np.array([0.8, 0.9])), [0.2, 0.1 + 0.4])


def _request(**fields):
    base = {'region': SimpleNamespace(header=SimpleNamespace(frame_id=''),
                                      polygon=SimpleNamespace(points=[])),
            'angle_range': [], 'keep_out': [], 'preferred_point': [],
            'preference_weight': -1.0, 'min_score': 0.0}
    base.update(fields)
    return SimpleNamespace(**base)


def _polygon(points, frame=''):
    return SimpleNamespace(header=SimpleNamespace(frame_id=frame), polygon=SimpleNamespace(
        points=[SimpleNamespace(x=x, y=y, z=z) for x, y, z in points]))


def test_request_constraints_resolve_through_the_camera_and_name_bad_fields():
    camera = CameraModel(pixel_size=0.002, camera_height=0.6)

    def to_pixels(name, frame, points):
        if frame not in ('', 'camera_optical_frame'):
            raise requests.RequestError(f'{name}.header.frame_id: unknown frame {frame!r}')
        return camera.table_pixels(points)

    assert requests.resolve_constraints(_request(), to_pixels) is None
    metres = [(-0.05, -0.05, 0.6), (0.0, -0.05, 0.6), (0.0, 0.05, 0.6)]
    c = requests.resolve_constraints(_request(region=_polygon(metres)), to_pixels)
    np.testing.assert_allclose(c.region[0], [63.5 - 25.0, 63.5 - 25.0])
    for fields, name in (({'region': _polygon(metres, 'map')}, 'region.header.frame_id'),
                         ({'region': _polygon(metres[:2])}, 'region'),
                         ({'angle_range': [0.5, 0.1]}, 'inverted'),
                         ({'angle_range': [0.1]}, 'angle_range'),
                         ({'min_score': 2.0}, 'min_score'),
                         ({'keep_out': [_polygon([])]}, r'keep_out\[0\]'),
                         ({'region': _polygon([(0, 0, 0.6), (math.nan, 0, 0.6),
                                                (0, 1, 0.6)])}, 'non-finite')):
        with pytest.raises(requests.RequestError, match=name):
            requests.resolve_constraints(_request(**fields), to_pixels)


def test_transform_points_rotates_then_translates():
    quarter = (0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))  # 90 deg about z
    out = transform_points([[1.0, 0.0, 0.0]], (0.0, 0.0, 1.0), quarter)
    np.testing.assert_allclose(out, [[0.0, 1.0, 1.0]], atol=1e-12)


def _pose(x=0.0, y=0.0, z=0.0, yaw=0.0):
    return SimpleNamespace(position=SimpleNamespace(x=x, y=y, z=z), orientation=SimpleNamespace(
        x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)))


def _object(frame, primitives, pose=None):
    return SimpleNamespace(
        header=SimpleNamespace(frame_id=frame), pose=pose or _pose(),
        primitives=[SimpleNamespace(type=t, dimensions=d) for t, d, _ in primitives],
        primitive_poses=[p for _, _, p in primitives])


def test_grasp_planning_request_becomes_region_and_keep_out():
    from fga_ros.bridge import moveit
    camera = CameraModel(pixel_size=0.002, camera_height=0.6)

    def to_pixels(name, frame, points):
        if frame != 'camera_optical_frame':
            raise requests.RequestError(f'{name}.header.frame_id: unknown frame {frame!r}')
        return camera.table_pixels(points)

    # a 40 x 20 mm box at the image centre turned 90 degrees: 10 x 20 px footprint
    target = _object('camera_optical_frame', [(moveit.BOX, [0.04, 0.02, 0.03],
                                               _pose(yaw=math.pi / 2))], _pose(z=0.6))
    cylinder = _object('camera_optical_frame', [(moveit.CYLINDER, [0.05, 0.01], _pose())],
                       _pose(x=0.04, z=0.6))
    request = SimpleNamespace(target=target, movable_obstacles=[cylinder])
    c = moveit.grasp_planning_constraints(request, to_pixels)
    np.testing.assert_allclose(c.region.min(0), [63.5 - 5, 63.5 - 10], atol=1e-9)
    np.testing.assert_allclose(c.region.max(0), [63.5 + 5, 63.5 + 10], atol=1e-9)
    (keep_out,) = c.keep_out
    np.testing.assert_allclose(keep_out.mean(0), [63.5 + 20, 63.5], atol=1e-9)
    # closing along x at the centre: the right claw (x 75.5..77.5) stays clear of the
    # cylinder (x 78.5..88.5); a grasp 6 px to the right puts that claw on it
    grasps = np.array([[63.5, 63.5, 0.0], [69.5, 63.5, 0.0], [63.5, 76.0, 0.0]])
    np.testing.assert_array_equal(TaskConstraints(keep_out=c.keep_out).allowed(
        grasps, np.ones(3)), [True, False, True])
    np.testing.assert_array_equal(c.allowed(grasps, np.ones(3)), [True, False, False])
    empty = SimpleNamespace(target=_object('x', []), movable_obstacles=[])
    assert moveit.grasp_planning_constraints(empty, to_pixels) is None
    box = [(moveit.BOX, [0.04, 0.02, 0.03], _pose())]
    for request, name in (
            (SimpleNamespace(target=_object('map', box), movable_obstacles=[]),
             'target.header.frame_id'),
            (SimpleNamespace(target=_object('camera_optical_frame', [(9, [1.0], _pose())]),
                             movable_obstacles=[]), r'target.primitives\[0\]'),
            (SimpleNamespace(target=target, movable_obstacles=[_object(
                'camera_optical_frame', [(moveit.SPHERE, [-1.0], _pose())])]),
             r'movable_obstacles\[0\]')):
        with pytest.raises(requests.RequestError, match=name):
            moveit.grasp_planning_constraints(request, to_pixels)
