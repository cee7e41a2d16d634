"""Camera geometry: the simulator's tilted pinhole camera and the service's camera mapping."""

import math

import numpy as np
import pytest

from fga_ros import sim
from fga_ros.bridge import camera_geometry as cg
from fga_ros.bridge.camera_bench import camera_poses_to_sim_actions, sim_mapping
from fga_ros.bridge.camera_files import read_mapping, write_camera_files
from fga_ros.bridge.geometry import CameraModel
from fga_ros.sim import pinhole
from fga_ros.sim.workspace import uniform_actions

TILTS = (0.0, 20.0, 35.0, 45.0)


def intrinsics(width=640, height=480, f=800.0, d=()):
    k = [f, 0.0, (width - 1) / 2, 0.0, f, (height - 1) / 2, 0.0, 0.0, 1.0]
    return cg.CameraIntrinsics.from_fields(width, height, k, 'plumb_bob', d)


def top_down_mapping():
    """The simulator's own top-down camera as CameraInfo + TF (geometry.CameraModel)."""
    camera = CameraModel(pixel_size=0.002, camera_height=0.5)
    info = camera.camera_info_fields({})
    tf = camera.world_transform_fields({})['transform']
    # world_transform_fields is the camera's pose in the world; the mapping wants the
    # inverse (table -> camera). For a rotation by pi about x both have the same rotation.
    rot = cg.quaternion_to_matrix([tf['rotation'][k] for k in 'xyzw'])
    t = np.array([tf['translation'][k] for k in 'xyz'])
    pose = cg.TableToCamera(rot.T, -rot.T @ t)
    return cg.camera_mapping(
        cg.CameraIntrinsics.from_fields(info['width'], info['height'], info['k'],
                                        info['distortion_model'], info['d']),
        pose, cg.default_workspace())


def test_top_down_camera_is_the_identity():
    mapping = top_down_mapping()
    np.testing.assert_allclose(mapping.homography, np.eye(3), atol=1e-9)
    image = sim.render(sim.make_scene('Spoon', 3))
    assert np.array_equal(mapping.warp(image), image)


def test_top_down_camera_of_another_size_is_scale_and_offset():
    # straight down, 0.8 m above (1, 2), 1000 px focal length, 640 x 480, workspace at (1, 2)
    pose = cg.TableToCamera(np.diag([1.0, -1.0, -1.0]), np.array([-1.0, 2.0, 0.8]))
    workspace = cg.Workspace(1.0, 2.0, 0.256)
    mapping = cg.camera_mapping(intrinsics(f=1000.0), pose, workspace)
    scale = 1000.0 * 0.002 / 0.8  # camera px per top-down px
    expected = np.array([[scale, 0, 319.5 - 63.5 * scale], [0, scale, 239.5 - 63.5 * scale],
                         [0, 0, 1]])
    np.testing.assert_allclose(mapping.homography, expected, atol=1e-9)


@pytest.mark.parametrize('tilt', TILTS)
def test_round_trips_pixel_table_pixel(tilt):
    view = pinhole.tilted_view(tilt)
    mapping = sim_mapping(view)
    rng = np.random.default_rng(0)
    uv = rng.uniform(0, 127, size=(50, 2))
    table = mapping.workspace.top_down_to_table(uv)
    np.testing.assert_allclose(mapping.workspace.table_to_top_down(table), uv, atol=1e-9)
    cam_px = mapping.top_down_to_camera_pixels(uv)
    # the simulator's independent projection agrees with the service's mapping
    np.testing.assert_allclose(view.project_table(pinhole.pixels_to_table(uv)), cam_px,
                               atol=1e-6)
    np.testing.assert_allclose(mapping.camera_pixels_to_table(cam_px), table, atol=1e-9)


def test_tilted_camera_rectifies_to_the_top_down_image():
    for tilt in (20.0, 45.0):
        view = pinhole.tilted_view(tilt)
        mapping = sim_mapping(view)
        scene = sim.make_scene('H', 7)
        warped = mapping.warp(pinhole.render_view(scene, view))
        differs = np.abs(warped.astype(int) - sim.render(scene)).max(axis=2) > 30
        assert differs.mean() < 0.01  # only anti-aliased edge pixels differ


def test_tilted_homography_is_projective():
    mapping = sim_mapping(pinhole.tilted_view(45.0))
    h = mapping.homography
    assert abs(h[2, 0]) + abs(h[2, 1]) > 1e-4  # the far edge shrinks: not affine
    # the far (top) edge of the workspace is shorter in the image than the near one
    corners = mapping.top_down_to_camera_pixels([[0, 0], [127, 0], [127, 127], [0, 127]])
    assert corners[1, 0] - corners[0, 0] < corners[2, 0] - corners[3, 0]


@pytest.mark.parametrize('tilt', TILTS)
def test_grasp_poses_map_back_to_the_same_simulator_action(tilt):
    view = pinhole.tilted_view(tilt, yaw_deg=30.0)
    mapping = sim_mapping(view)
    rng = np.random.default_rng(1)
    actions = uniform_actions(20, rng)
    positions, rotations = mapping.camera_poses(actions)
    back = camera_poses_to_sim_actions(view, positions, rotations)
    np.testing.assert_allclose(back[:, :2], actions[:, :2], atol=1e-9)
    diff = (back[:, 2] - actions[:, 2] + math.pi / 2) % math.pi - math.pi / 2
    np.testing.assert_allclose(diff, 0.0, atol=1e-9)
    # table poses: on the plane, approach into the table, proper rotations
    table_positions, table_rot = mapping.table_poses(actions)
    assert np.allclose(table_positions[:, 2], 0.0)
    assert np.allclose(table_rot[:, :, 2], [0.0, 0.0, -1.0])
    assert np.allclose(np.linalg.det(table_rot), 1.0)
    q = mapping.table_action_poses(actions)[1]
    np.testing.assert_allclose([cg.quaternion_to_matrix(v) for v in q], table_rot, atol=1e-9)


def test_quaternion_round_trip():
    rng = np.random.default_rng(2)
    q = rng.normal(size=(30, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, 3:])
    mats = np.array([cg.quaternion_to_matrix(v) for v in q])
    np.testing.assert_allclose(cg.matrix_to_quaternions(mats), q, atol=1e-9)


def test_lens_distortion_is_applied_when_resampling():
    view = pinhole.tilted_view(30.0)
    plain = sim_mapping(view)
    info = view.camera_info_fields({})
    distorted = cg.camera_mapping(
        cg.CameraIntrinsics.from_fields(640, 480, info['k'], 'plumb_bob',
                                        [-0.2, 0.05, 0.0, 0.0, 0.0]),
        plain.pose, plain.workspace)
    uv = np.array([[0.0, 0.0], [63.5, 63.5], [127.0, 127.0]])
    a, b = plain.top_down_to_camera_pixels(uv), distorted.top_down_to_camera_pixels(uv)
    assert np.linalg.norm(a[0] - b[0]) > 1.0  # barrel distortion moves the corners
    # the pixel under the optical axis does not move
    centre = cg.CameraIntrinsics.from_fields(640, 480, info['k'], 'plumb_bob', [-0.2])
    np.testing.assert_allclose(centre.project([[0.0, 0.0, 1.0]]), [[319.5, 239.5]])
    with pytest.raises(cg.CameraGeometryError, match='needs an undistorted camera'):
        distorted.camera_pixels_to_table(b)


@pytest.mark.parametrize('k, message', [
    ([0.0] * 9, 'all zero'),
    ([800, 0, 320, 0, 0, 240, 0, 0, 1], 'focal lengths must be positive'),
    ([800, 0, 320, 0, 800, 240, 0, 0, float('nan')], 'finite'),
    ([800, 0, 320], '9 numbers'),
    ([800, 0, 320, 0, 800, 240, 1, 0, 1], r'\[fx s cx'),
])
def test_bad_intrinsics_are_refused(k, message):
    with pytest.raises(cg.CameraGeometryError, match=message):
        cg.CameraIntrinsics.from_fields(640, 480, k)


def test_bad_camera_info_fields_are_refused():
    k = [800, 0, 320, 0, 800, 240, 0, 0, 1]
    with pytest.raises(cg.CameraGeometryError, match='no image size'):
        cg.CameraIntrinsics.from_fields(0, 0, k)
    with pytest.raises(cg.CameraGeometryError, match='equidistant.*not supported'):
        cg.CameraIntrinsics.from_fields(640, 480, k, 'equidistant', [0.1, 0, 0, 0])
    with pytest.raises(cg.CameraGeometryError, match='at most 5'):
        cg.CameraIntrinsics.from_fields(640, 480, k, 'plumb_bob', [0.1] * 8)
    assert cg.CameraIntrinsics.from_fields(640, 480, k, '', [0.0] * 5).distortion_model
    with pytest.raises(cg.CameraGeometryError, match='not all zero'):
        cg.TableToCamera.from_fields([0, 0, 1], [0, 0, 0, 0])


def straight_down(height, x=0.0, y=0.0):
    return cg.TableToCamera(np.diag([1.0, -1.0, -1.0]), np.array([-x, y, height]))


def test_bad_poses_and_workspaces_are_refused():
    ws = cg.default_workspace()
    # camera under the table, looking up
    with pytest.raises(cg.CameraGeometryError, match='behind the camera'):
        cg.camera_mapping(intrinsics(), cg.TableToCamera(np.eye(3), np.array([0, 0, 0.5])),
                          ws)
    # camera above the table looking up (away from it)
    up = cg.TableToCamera(np.eye(3), np.array([0.0, 0.0, -0.5]))
    with pytest.raises(cg.CameraGeometryError, match='workspace lies behind'):
        cg.camera_mapping(intrinsics(), up, ws)
    # seen edge-on: a camera 1 cm above the table looking horizontally at the workspace
    rot = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # optical z = table +y
    edge = cg.TableToCamera(rot, -rot @ np.array([0.0, -1.0, 0.01]))
    with pytest.raises(cg.CameraGeometryError, match='edge-on'):
        cg.camera_mapping(intrinsics(), edge, ws)
    # workspace outside the view
    with pytest.raises(cg.CameraGeometryError, match='not inside the 640 x 480 camera image'):
        cg.camera_mapping(intrinsics(), straight_down(0.5, x=0.5), ws)
    # image too small / too coarse for the workspace: 64 x 48 px camera far away
    with pytest.raises(cg.CameraGeometryError, match='too coarse'):
        cg.camera_mapping(intrinsics(64, 48, f=80.0), straight_down(0.5), ws)
    with pytest.raises(cg.CameraGeometryError, match='size must be positive'):
        cg.Workspace(0.0, 0.0, 0.0)


def test_warp_refuses_an_image_of_another_size():
    mapping = sim_mapping(pinhole.tilted_view(20.0))
    with pytest.raises(cg.CameraGeometryError, match='camera_info says 640 x 480'):
        mapping.warp(np.zeros((128, 128, 3), dtype=np.uint8))


def test_camera_files_round_trip(tmp_path):
    view = pinhole.tilted_view(35.0, 800, 600)
    write_camera_files(view, tmp_path, 'world', 'cam')
    mapping = read_mapping(tmp_path / 'camera_info.yaml', tmp_path / 'camera_pose.yaml',
                           cg.default_workspace())
    np.testing.assert_allclose(mapping.homography, sim_mapping(view).homography, atol=1e-9)
    assert (mapping.table_frame, mapping.camera_frame) == ('world', 'cam')
    (tmp_path / 'camera_pose.yaml').write_text('translation: [0, 0, 1]\n')
    with pytest.raises(cg.CameraGeometryError, match='needs translation'):
        read_mapping(tmp_path / 'camera_info.yaml', tmp_path / 'camera_pose.yaml',
                     cg.default_workspace())


def test_tilted_view_renders_the_object_where_the_projection_puts_it():
    scene = sim.make_scene('Box', 2)
    view = pinhole.tilted_view(45.0, 320, 240)
    image = pinhole.render_view(scene, view)
    assert image.shape == (240, 320, 3)
    centre = view.project_table(pinhole.pixels_to_table(
        [[scene.params['x'], scene.params['y']]]))[0]
    colour = image[int(round(centre[1])), int(round(centre[0]))]
    assert tuple(colour) == tuple(scene.params['object_color'])
    with pytest.raises(ValueError, match='undistorted scene'):
        pinhole.render_view(sim.make_scene('Box', 2, 'rotation'), view)
    with pytest.raises(ValueError, match='tilt_deg'):
        pinhole.tilted_view(85.0)


def test_table_pixels_projects_camera_points_along_the_table_normal():
    mapping = sim_mapping(pinhole.tilted_view(35.0))
    uv = np.array([[30.0, 40.0], [90.0, 100.0]])
    table = mapping.workspace.top_down_to_table(uv)
    raised = np.column_stack([table, [0.05, 0.2]])  # above the table: same pixel
    cam = raised @ mapping.pose.rotation.T + mapping.pose.translation
    np.testing.assert_allclose(mapping.table_pixels(cam), uv, atol=1e-9)
    top_down = top_down_mapping()
    positions, _ = top_down.action_poses([[30.0, 40.0, 0.3]])
    np.testing.assert_allclose(top_down.table_pixels(positions), [[30.0, 40.0]], atol=1e-9)
