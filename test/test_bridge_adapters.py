"""ROS-free adapters checked against real ROS 2 message definitions (rosbags, Humble + Jazzy).

Every dict the adapters build is turned into a rosbags message (unknown field names fail)
and serialised to CDR (wrong value types fail), as rclpy's set_message_fields would.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from fga_ros.bridge import annotate, cloud, demos, geometry, grasps, image, markers, requests
from fga_ros.bridge.camera_geometry import top_down_mapping
from fga_ros.sim import drawing

typesys = pytest.importorskip('rosbags.typesys', reason='rosbags checks the ROS contract')
from test_bridge_interfaces import load_interfaces  # noqa: E402

BASE_DEFAULTS = {'bool': False, 'string': ''}
NUMPY_TYPES = {'uint8': np.uint8, 'byte': np.uint8, 'char': np.uint8, 'int8': np.int8,
               'int16': np.int16, 'uint16': np.uint16, 'int32': np.int32, 'uint32': np.uint32,
               'int64': np.int64, 'uint64': np.uint64, 'float32': np.float32,
               'float64': np.float64, 'bool': np.bool_}


def build(store, typename, data):
    """A rosbags message of ``typename`` from a field dict; missing fields get ROS defaults."""
    consts, fields = store.fielddefs[typename]
    known = [name for name, _ in fields]
    unknown = set(data) - set(known)
    assert not unknown, f'{typename} has no field(s) {sorted(unknown)}'
    values = {}
    for name, (kind, detail) in fields:
        values[name] = convert(store, kind, detail, data.get(name))
    return store.types[typename](**values)


def convert(store, kind, detail, value):
    nodetype = typesys.base.Nodetype
    if kind == nodetype.BASE:
        base = detail[0]
        if value is None:
            return BASE_DEFAULTS.get(base, 0)
        assert not isinstance(value, (dict, list)), f'{base} field got {value!r}'
        return value
    if kind == nodetype.NAME:
        return build(store, detail, value or {})
    (elem_kind, elem_detail), length = detail
    items = [] if value is None else value
    if elem_kind == nodetype.BASE and elem_detail[0] != 'string':
        dtype = NUMPY_TYPES[elem_detail[0]]
        if isinstance(items, (bytes, bytearray)):
            array = np.frombuffer(items, dtype=dtype).copy()
        else:
            array = np.asarray(items, dtype=dtype)
        if kind == nodetype.ARRAY and value is None:
            array = np.zeros(length, dtype=dtype)
        if kind == nodetype.ARRAY:
            assert len(array) == length, f'fixed array needs {length} values, got {len(array)}'
        return array
    return [convert(store, elem_kind, elem_detail, item) for item in items]


def roundtrip(store, typename, data):
    """Build, serialise and deserialise: proves names and value types are valid."""
    msg = build(store, typename, data)
    return store.deserialize_cdr(store.serialize_cdr(msg, typename), typename)


@pytest.fixture(params=['ROS2_HUMBLE', 'ROS2_JAZZY'])
def store(request):
    return load_interfaces(request.param)


@pytest.fixture
def camera():
    return geometry.CameraModel(pixel_size=0.002, camera_height=0.5)


HEADER = {'stamp': {'sec': 12, 'nanosec': 34}, 'frame_id': 'camera_optical_frame'}


def image_msg(store, rgb, encoding='rgb8', step=None, data=None):
    height, width = rgb.shape[:2]
    pixels = rgb[..., ::-1] if encoding == 'bgr8' else rgb
    step = width * 3 if step is None else step
    payload = data
    if payload is None:
        rows = np.zeros((height, step), dtype=np.uint8)
        rows[:, :width * 3] = pixels.reshape(height, -1)
        payload = rows.tobytes()
    return build(store, 'sensor_msgs/msg/Image', {
        'header': HEADER, 'height': height, 'width': width, 'encoding': encoding,
        'step': step, 'data': payload})


# --- images ---------------------------------------------------------------------------

@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8'])
def test_image_roundtrip_with_padding(store, encoding):
    rgb = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for step in (128 * 3, 128 * 3 + 4):
        out = image.image_to_rgb(image_msg(store, rgb, encoding, step))
        assert out.dtype == np.uint8 and out.shape == (128, 128, 3)
        np.testing.assert_array_equal(out, rgb)


def test_rgb_image_fields_are_a_valid_image(store):
    rgb = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    msg = roundtrip(store, 'sensor_msgs/msg/Image', image.rgb_image_fields(rgb, HEADER))
    assert msg.encoding == 'rgb8' and msg.step == 384
    np.testing.assert_array_equal(image.image_to_rgb(msg), rgb)


@pytest.mark.parametrize('kwargs, reason', [
    ({'encoding': 'mono8'}, "encoding 'mono8' is not supported"),
    ({'encoding': 'rgba8'}, "encoding 'rgba8'"),
    ({'step': 300, 'data': bytes(300 * 128)}, 'step 300 is smaller than width * 3 = 384'),
    ({'data': b'\x00' * 100}, 'data has 100 bytes, expected step * height = 49152'),
])
def test_bad_images_name_the_problem(store, kwargs, reason):
    rgb = np.zeros((128, 128, 3), dtype=np.uint8)
    with pytest.raises(image.ImageError, match=reason.replace('*', r'\*')):
        image.check_image(image_msg(store, rgb, **kwargs))


def test_wrong_size_and_empty_images(store):
    small = image_msg(store, np.zeros((64, 96, 3), dtype=np.uint8))
    with pytest.raises(image.ImageError, match='must be 128 x 128 .* got 96 x 64'):
        image.check_image(small)
    assert image.is_empty(build(store, 'sensor_msgs/msg/Image', {}))
    assert not image.is_empty(small)
    with pytest.raises(image.ImageError, match='uint8 of shape'):
        image.rgb_image_fields(np.zeros((8, 8), dtype=np.uint8), HEADER)


# --- geometry ---------------------------------------------------------------------------

def test_pixels_and_points_invert(camera):
    xy = np.array([[63.5, 63.5], [25.0, 102.9], [100.0, 30.0]])
    points = camera.pixels_to_points(xy)
    np.testing.assert_allclose(points[0], [0.0, 0.0, 0.5])
    np.testing.assert_allclose(points[1], [-38.5 * 0.002, 39.4 * 0.002, 0.5])
    np.testing.assert_allclose(camera.points_to_pixels(points), xy)
    with pytest.raises(ValueError, match='in front of the camera'):
        camera.points_to_pixels([[0.0, 0.0, -1.0]])


def test_camera_info_projects_like_the_model(store, camera):
    info = roundtrip(store, 'sensor_msgs/msg/CameraInfo', camera.camera_info_fields(HEADER))
    k = np.asarray(info.k).reshape(3, 3)
    points = camera.pixels_to_points([[30.0, 90.0]])
    uvw = k @ points[0]
    np.testing.assert_allclose(uvw[:2] / uvw[2], [30.0, 90.0])
    assert info.width == 128 and info.height == 128


def quaternion_matrix(q):
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def test_world_transform_puts_the_table_at_z0(store, camera):
    tf = roundtrip(store, 'geometry_msgs/msg/TransformStamped',
                   camera.world_transform_fields({'stamp': {'sec': 0, 'nanosec': 0},
                                                  'frame_id': 'world'}))
    rot = quaternion_matrix([tf.transform.rotation.x, tf.transform.rotation.y,
                             tf.transform.rotation.z, tf.transform.rotation.w])
    shift = np.array([tf.transform.translation.x, tf.transform.translation.y,
                      tf.transform.translation.z])
    world = rot @ camera.pixels_to_points([[73.5, 53.5]])[0] + shift
    # 10 px right and 10 px up of the image centre, on the table plane
    np.testing.assert_allclose(world, [0.02, 0.02, 0.0], atol=1e-12)
    assert tf.child_frame_id == 'camera_optical_frame'


@pytest.mark.parametrize('angle', [0.0, 0.3, math.pi / 2, 3.0])
def test_grasp_pose_x_axis_is_the_closing_direction(camera, angle):
    positions, quaternions = camera.action_poses([[40.0, 50.0, angle]])
    rot = quaternion_matrix(quaternions[0])
    np.testing.assert_allclose(rot[:, 0], [math.cos(angle), math.sin(angle), 0.0], atol=1e-12)
    np.testing.assert_allclose(rot[:, 2], [0.0, 0.0, 1.0], atol=1e-12)  # approach: down
    np.testing.assert_allclose(positions[0], camera.pixels_to_points([[40.0, 50.0]])[0])


def test_camera_model_rejects_bad_numbers():
    with pytest.raises(ValueError, match='pixel_size must be a positive number'):
        geometry.CameraModel(pixel_size=0.0, camera_height=0.5)
    with pytest.raises(ValueError, match='camera_height'):
        geometry.CameraModel(pixel_size=0.002, camera_height=float('nan'))


def test_defaults_come_from_the_sim_data():
    assert geometry.default_pixel_size() > 0
    assert geometry.default_camera_height() > 0
    assert geometry.default_opening_px() > 0
    assert geometry.default_claw_width_px() > 0


# --- requests ---------------------------------------------------------------------------

def propose_request(store, **fields):
    return build(store, 'fga_ros/msg/ProposeGrasps_Request', {
        'num_grasps': 0, 'reject_fraction': -1.0, **fields})


def test_empty_request_takes_the_node_defaults(store):
    defaults = requests.ProposalSettings(num_grasps=8, reject_fraction=0.2, ranking='diverse')
    assert requests.resolve_proposal_request(propose_request(store), defaults) == defaults


def test_explicit_request_values_win(store):
    request = propose_request(store, num_grasps=3, reject_fraction=0.0, ranking='score')
    settings = requests.resolve_proposal_request(request, requests.ProposalSettings())
    assert settings == requests.ProposalSettings(3, 0.0, 'score')


@pytest.mark.parametrize('fields, reason', [
    ({'num_grasps': -1}, r'num_grasps must be in \[1, 100\], got -1'),
    ({'num_grasps': 101}, r'num_grasps must be in \[1, 100\], got 101'),
    ({'reject_fraction': 1.0}, r'reject_fraction must be in \[0, 1\), got 1.0'),
    ({'reject_fraction': float('nan')}, 'reject_fraction must be a number'),
    ({'reject_fraction': float('inf')}, 'reject_fraction must be in'),
    ({'ranking': 'best'}, "ranking must be one of score, diverse .* got 'best'"),
])
def test_bad_proposal_requests(store, fields, reason):
    with pytest.raises(requests.RequestError, match=reason):
        requests.resolve_proposal_request(
            propose_request(store, **fields), requests.ProposalSettings(), max_grasps=100)


def test_settings_validate_themselves():
    with pytest.raises(requests.RequestError, match='num_grasps must be an integer'):
        requests.ProposalSettings(num_grasps=2.5)
    with pytest.raises(requests.RequestError, match='ranking'):
        requests.ProposalSettings(ranking='')


def test_execute_request(store):
    request = build(store, 'fga_ros/msg/ExecuteGrasp_Request', {'x': 40.0, 'y': 50.0,
                                                                 'angle': 4.0})
    action, scene_id = requests.resolve_execute_request(request)
    np.testing.assert_array_equal(action, [40.0, 50.0, 4.0])
    assert scene_id is None
    bad = build(store, 'fga_ros/msg/ExecuteGrasp_Request', {'x': float('nan'), 'scene_id': 3})
    with pytest.raises(requests.RequestError, match='x must be finite'):
        requests.resolve_execute_request(bad)


def test_new_scene_and_demonstration_requests(store):
    shapes, distortions = ('H', 'T'), ('none', 'both')
    request = build(store, 'fga_ros/msg/NewScene_Request', {'seed': -1})
    assert requests.resolve_new_scene_request(request, shapes, distortions) == (None, None, None)
    request = build(store, 'fga_ros/msg/NewScene_Request',
                    {'shape': 'T', 'seed': 7, 'distortion': 'both'})
    assert requests.resolve_new_scene_request(request, shapes, distortions) == ('T', 7, 'both')
    request = build(store, 'fga_ros/msg/NewScene_Request', {'shape': 'Box', 'seed': -1})
    with pytest.raises(requests.RequestError, match="shape must be one of H, T, got 'Box'"):
        requests.resolve_new_scene_request(request, shapes, distortions)
    request = build(store, 'fga_ros/msg/GetDemonstrations_Request',
                    {'num_states': 2, 'per_state': 5, 'seed': -1, 'imitation_fraction': -1.0})
    assert requests.resolve_demonstrations_request(request) == (2, 5, None, None)
    request = build(store, 'fga_ros/msg/GetDemonstrations_Request',
                    {'num_states': 2, 'per_state': 5, 'seed': 3, 'imitation_fraction': 1.5})
    with pytest.raises(requests.RequestError, match=r'imitation_fraction must be in \[0, 1\]'):
        requests.resolve_demonstrations_request(request)
    request = build(store, 'fga_ros/msg/GetDemonstrations_Request',
                    {'num_states': 0, 'per_state': 5, 'seed': 1})
    with pytest.raises(requests.RequestError, match='num_states must be in'):
        requests.resolve_demonstrations_request(request)


# --- responses, markers, annotation --------------------------------------------------------

def fake_proposal():
    return SimpleNamespace(
        actions=np.array([[40.0, 50.0, 0.5], [60.0, 70.0, 2.0], [80.0, 30.0, 1.0]]),
        scores=np.array([0.2, 0.9, 0.6]), log_density=np.array([-9.0, -7.5, -8.0]),
        cluster_ids=np.array([2, 1, 0]), ranks=np.array([2, 0, 1]),
        num_sampled=40, num_rejected=4, inference_ms=12.5)


def test_proposal_response_is_a_valid_response(store, camera):
    fields = grasps.proposal_response_fields(fake_proposal(), top_down_mapping(camera), HEADER,
                                             opening_px=24.0)
    response = roundtrip(store, 'fga_ros/msg/ProposeGrasps_Response', fields)
    assert response.success and response.message == ''
    assert [g.rank for g in response.grasps] == [0, 1, 2]
    best = response.grasps[0]
    assert (best.x, best.y, best.angle, best.score, best.cluster_id) == (60.0, 70.0, 2.0, 0.9, 1)
    assert best.opening_width == pytest.approx(0.048)
    assert best.pose.header.frame_id == 'camera_optical_frame'
    np.testing.assert_allclose(
        [best.pose.pose.position.x, best.pose.pose.position.y, best.pose.pose.position.z],
        camera.pixels_to_points([[60.0, 70.0]])[0])
    # the same grasp in the table frame: on the plane, image y up, approach along -z
    assert best.table_pose.header.frame_id == 'world'
    position = best.table_pose.pose.position
    np.testing.assert_allclose([position.x, position.y, position.z],
                               [(60.0 - 63.5) * 0.002, -(70.0 - 63.5) * 0.002, 0.0])
    # the camera-frame orientation is the rotation by the grasp angle about optical z
    q = best.pose.pose.orientation
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], [0.0, 0.0, np.sin(1.0), np.cos(1.0)],
                               atol=1e-12)
    assert (response.num_sampled, response.num_rejected) == (40, 4)
    assert response.inference_time == pytest.approx(0.0125)


def test_empty_and_failed_responses(store, camera):
    empty = SimpleNamespace(actions=np.zeros((0, 3)), scores=np.zeros(0),
                            log_density=np.zeros(0), cluster_ids=np.zeros(0, int),
                            ranks=np.zeros(0, int), num_sampled=0, num_rejected=0,
                            inference_ms=0.0)
    fields = grasps.proposal_response_fields(empty, top_down_mapping(camera), HEADER, 24.0)
    assert roundtrip(store, 'fga_ros/msg/ProposeGrasps_Response', fields).grasps == []
    failed = roundtrip(store, 'fga_ros/msg/ProposeGrasps_Response',
                       grasps.failure_response_fields('no camera frame yet'))
    assert not failed.success and failed.message == 'no camera frame yet'


def test_mismatched_proposal_is_refused(camera):
    proposal = fake_proposal()
    proposal.scores = proposal.scores[:2]
    with pytest.raises(ValueError, match='proposal.scores has 2 entries, expected 3'):
        grasps.proposal_response_fields(proposal, top_down_mapping(camera), HEADER, 24.0)


GRIPPER = markers.GripperSize(aperture=0.048, claw_width=0.012, claw_thickness=0.004)


def many_grasps(n, seed=0):
    """actions (n, 3), cluster ids (n,) from 0 (unknown) to 12, scores (n,)."""
    rng = np.random.default_rng(seed)
    actions = np.column_stack([rng.uniform(25, 103, (n, 2)), rng.uniform(0, np.pi, n)])
    return actions, rng.integers(0, 13, n), rng.uniform(0, 1, n)


@pytest.mark.parametrize('count', [0, 1, 3, markers.LABELLED_GRASPS + 5])
@pytest.mark.parametrize('colour_by', markers.COLOUR_MODES)
def test_markers_are_valid_with_unique_identities(store, camera, count, colour_by):
    actions, clusters, scores = many_grasps(count)
    colours = markers.grasp_colours(colour_by, scores, clusters)
    built = markers.proposal_markers(camera.pose_fields(actions), colours, scores, HEADER,
                                     GRIPPER, camera.pixel_size)
    array = roundtrip(store, 'visualization_msgs/msg/MarkerArray', {'markers': built})
    identities = [(m.ns, m.id) for m in array.markers]
    assert len(set(identities)) == len(identities), 'RViz: "Duplicate Marker Check" error'
    marker_type = store.types['visualization_msgs/msg/Marker']
    first = array.markers[0]
    # DELETEALL first, in the empty namespace: RViz then clears every namespace
    assert first.action == marker_type.DELETEALL == markers.DELETEALL and first.ns == ''
    grippers = [m for m in array.markers if m.ns == markers.GRIPPER_NS]
    labels = [m for m in array.markers if m.ns == markers.LABEL_NS]
    assert len(grippers) == count and len(labels) == min(count, markers.LABELLED_GRASPS)
    assert len(array.markers) == 1 + len(grippers) + len(labels)
    for rank, marker in enumerate(grippers):
        assert marker.id == rank and marker.action == marker_type.ADD == markers.ADD
        assert marker.type == marker_type.LINE_LIST == markers.LINE_LIST
        assert len(marker.points) % 2 == 0 and marker.color.a == 1.0
        assert marker.scale.x == pytest.approx(GRIPPER.claw_thickness)  # true claw thickness
        np.testing.assert_allclose([marker.color.r, marker.color.g, marker.color.b],
                                   colours[rank])
    for rank, label in enumerate(labels):
        assert label.type == marker_type.TEXT_VIEW_FACING == markers.TEXT_VIEW_FACING
        assert label.text == f'#{rank} {scores[rank]:.2f}' and label.scale.z > 0
        assert label.pose.position.z < grippers[rank].pose.position.z  # above the table
        assert label.pose.orientation.w == 1.0


def test_marker_arrays_of_a_node_session_never_repeat_an_identity(camera):
    # every array the node publishes, whatever the proposal size and clusters
    for seed, count in enumerate([0, 1, 16, 64, 200]):
        actions, clusters, scores = many_grasps(count, seed)
        built = markers.proposal_markers(
            camera.pose_fields(actions), markers.cluster_colours(clusters), scores, HEADER,
            GRIPPER, camera.pixel_size)
        identities = [(m['ns'], m['id']) for m in built]
        assert len(set(identities)) == len(identities)


def test_proposal_markers_refuse_mismatched_arrays(camera):
    with pytest.raises(ValueError, match='got 2 poses, 1 colours and 2 scores'):
        markers.proposal_markers(camera.pose_fields([[40, 40, 0], [50, 50, 1]]),
                                 [[1.0, 0.0, 0.0]], [0.5, 0.5], HEADER, GRIPPER,
                                 camera.pixel_size)
    with pytest.raises(ValueError, match='claw_width must be positive'):
        markers.GripperSize(0.048, 0.0, 0.004)


def test_colour_maps():
    np.testing.assert_allclose(markers.score_colours([0.0, 0.5, 1.0, 7.0]),
                               [[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 0]])
    clusters = markers.cluster_colours([1, 11, 0, 2])
    np.testing.assert_allclose(clusters[0], clusters[1])
    np.testing.assert_allclose(clusters[2], np.array(drawing.UNKNOWN_COLOR) / 255)
    # cluster c has the PNG figures' colour of number c
    np.testing.assert_allclose(clusters[3] * 255, drawing.mode_color(2))
    with pytest.raises(ValueError, match='colour_by must be one of cluster, score'):
        markers.grasp_colours('rank', [0.1], [0])


def test_gripper_outline_is_the_glyph_at_true_size(camera):
    points = markers.gripper_segments(GRIPPER)
    assert points.shape == (12, 3)
    assert points[:, 2].max() == 0.0  # nothing below the table
    # the jaws on the table are the glyph of the figures and the annotated image, in metres
    glyph = drawing.grasp_glyphs([[64.0, 64.0, 0.0]], aperture=GRIPPER.aperture / 0.002,
                                 claw_width=GRIPPER.claw_width / 0.002)[0]
    jaws_px = points[:4, :2].reshape(2, 2, 2) / 0.002 + 64.0
    np.testing.assert_allclose(np.sort(jaws_px.reshape(-1, 2), axis=0),
                               np.sort(glyph[:2].reshape(-1, 2), axis=0), atol=1e-9)


def test_pose_array(store, camera):
    poses = camera.pose_fields(fake_proposal().actions)
    array = roundtrip(store, 'geometry_msgs/msg/PoseArray', {'header': HEADER, 'poses': poses})
    assert len(array.poses) == 3


def test_annotation_draws_in_colour_upscaled():
    rgb = np.zeros((128, 128, 3), dtype=np.uint8)
    out = annotate.draw_grasps(rgb, [[64.0, 64.0, 0.0]], [[0.0, 1.0, 0.0]], 24.0, 6.0)
    scale = annotate.ANNOTATION_SCALE
    assert rgb.max() == 0 and out.shape == (128 * scale, 128 * scale, 3)
    centre = 64 * scale + scale // 2
    assert out[centre, centre, 1] == 255 and out[centre, centre, 0] == 0  # closing line
    jaw = (64 + 12) * scale + scale // 2
    assert out[centre, jaw, 1] == 255 and out[centre - 2 * scale, jaw, 1] == 255  # a jaw
    same = annotate.draw_grasps(rgb, [[64.0, 64.0, 0.0]], [[0.0, 1.0, 0.0]], 24.0, 6.0,
                                scale=1)
    assert same.shape == rgb.shape and same[64, 64, 1] == 255


def test_table_cloud_puts_the_pixels_on_the_table(store, camera):
    rgb = np.zeros((128, 128, 3), dtype=np.uint8)
    rgb[10, 20] = [200, 100, 50]
    fields = cloud.table_cloud_fields(rgb, camera, HEADER)
    msg = roundtrip(store, 'sensor_msgs/msg/PointCloud2', fields)
    field_type = store.types['sensor_msgs/msg/PointField']
    assert [f.name for f in msg.fields] == ['x', 'y', 'z', 'rgb']
    assert all(f.datatype == field_type.FLOAT32 == cloud.FLOAT32 for f in msg.fields)
    assert (msg.height, msg.width, msg.point_step) == (128, 128, 16)
    assert len(msg.data) == msg.row_step * msg.height
    points = np.frombuffer(bytes(msg.data), dtype=cloud.POINT_DTYPE).reshape(128, 128)
    pixel = points[10, 20]
    np.testing.assert_allclose([pixel['x'], pixel['y'], pixel['z']],
                               camera.pixels_to_points([[20.0, 10.0]])[0], atol=1e-6)
    assert pixel['rgb'] == (200 << 16) | (100 << 8) | 50 and points[0, 0]['rgb'] == 0
    with pytest.raises(image.ImageError, match='64 x 64 pixels, the camera model 128 x 128'):
        cloud.table_cloud_fields(np.zeros((64, 64, 3), np.uint8), camera, HEADER)


# --- demonstrations and scene descriptions --------------------------------------------------

def test_demonstrations_roundtrip(store):
    rng = np.random.default_rng(0)
    items = [(f'image{i}', rng.uniform(25, 100, (4, 3)), rng.random(4) > 0.5) for i in range(3)]
    images, actions, labels, per_state = demos.pack_demonstrations(items)
    response = roundtrip(store, 'fga_ros/msg/GetDemonstrations_Response',
                         {'success': True, 'actions': actions, 'labels': labels})
    assert per_state == 4
    back = list(demos.unpack_demonstrations(images, response.actions, response.labels))
    for (image_a, acts_a, labs_a), (image_b, acts_b, labs_b) in zip(items, back):
        assert image_a == image_b
        np.testing.assert_array_equal(acts_a, acts_b)
        np.testing.assert_array_equal(labs_a, labs_b)


def test_demonstrations_that_do_not_fit():
    with pytest.raises(ValueError, match='same number of actions per state'):
        demos.pack_demonstrations([(0, np.zeros((2, 3)), [1, 0]), (1, np.zeros((3, 3)), [1] * 3)])
    with pytest.raises(ValueError, match='do not fit together'):
        list(demos.unpack_demonstrations(['a', 'b'], [0.0] * 9, [True] * 3))

