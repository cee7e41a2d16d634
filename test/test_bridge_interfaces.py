"""Our msg/srv files parse as ROS 2 interfaces (Humble and Jazzy) and match the adapters."""

from pathlib import Path

import pytest

from fga_ros.core.common.choices import RANKINGS

typesys = pytest.importorskip('rosbags.typesys', reason='rosbags checks the ROS contract')

ROOT = Path(__file__).resolve().parents[1]
STORES = ('ROS2_HUMBLE', 'ROS2_JAZZY')
SERVICES = ('ProposeGrasps', 'ExecuteGrasp', 'NewScene', 'GetDemonstrations')


def load_interfaces(store_name):
    """A typestore with the standard messages of ``store_name`` plus ours registered."""
    store = typesys.get_typestore(getattr(typesys.Stores, store_name))
    types = dict(typesys.get_types_from_msg(
        (ROOT / 'msg' / 'Grasp.msg').read_text(), 'fga_ros/msg/Grasp'))
    for name in SERVICES:
        text = (ROOT / 'srv' / f'{name}.srv').read_text()
        request, separator, response = text.partition('\n---\n')
        assert separator, f'{name}.srv has no request/response separator'
        types.update(typesys.get_types_from_msg(request, f'fga_ros/msg/{name}_Request'))
        types.update(typesys.get_types_from_msg(response, f'fga_ros/msg/{name}_Response'))
    store.register(types)
    return store


@pytest.fixture(params=STORES)
def store(request):
    return load_interfaces(request.param)


def field_names(store, name):
    return [field for field, _ in store.fielddefs[name][1]]


def test_grasp_fields(store):
    assert field_names(store, 'fga_ros/msg/Grasp') == [
        'pose', 'x', 'y', 'angle', 'opening_width', 'score', 'log_density', 'cluster_id',
        'rank']
    pose_type = dict(store.fielddefs['fga_ros/msg/Grasp'][1])['pose'][1]
    assert pose_type == 'geometry_msgs/msg/PoseStamped'


def test_propose_grasps_contract(store):
    assert field_names(store, 'fga_ros/msg/ProposeGrasps_Request') == [
        'image', 'num_grasps', 'reject_fraction', 'ranking', 'region', 'angle_range',
        'keep_out', 'preferred_point', 'preference_weight', 'min_score']
    assert field_names(store, 'fga_ros/msg/ProposeGrasps_Response') == [
        'success', 'message', 'header', 'grasps', 'best_score', 'num_sampled', 'num_rejected',
        'inference_time']
    fields = dict(store.fielddefs['fga_ros/msg/ProposeGrasps_Request'][1])
    assert fields['region'][1] == 'geometry_msgs/msg/PolygonStamped'
    assert fields['keep_out'][1][0][1] == 'geometry_msgs/msg/PolygonStamped'
    assert fields['preferred_point'][1][0][1] == 'geometry_msgs/msg/PointStamped'
    constants = {name: value for name, _, value in
                 store.fielddefs['fga_ros/msg/ProposeGrasps_Request'][0]}
    assert (constants['RANKING_SCORE'], constants['RANKING_DIVERSE']) == RANKINGS


def test_every_referenced_type_is_known(store):
    for name in list(store.fielddefs):
        if not name.startswith('fga_ros/'):
            continue
        for _, (kind, detail) in store.fielddefs[name][1]:
            referenced = detail[0][1] if kind == typesys.base.Nodetype.SEQUENCE else detail
            if isinstance(referenced, str):
                assert referenced in store.fielddefs, f'{name} refers to unknown {referenced}'


def test_srv_defaults_mean_use_node_defaults():
    text = (ROOT / 'srv' / 'ProposeGrasps.srv').read_text().split('\n---\n')[0]
    lines = {line.split()[1]: line.split() for line in text.splitlines()
             if line and not line.startswith('#') and '=' not in line}
    assert lines['num_grasps'][2] == '0'
    assert float(lines['reject_fraction'][2]) < 0
    assert len(lines['ranking']) == 2  # no default: empty string
    # constraints: empty arrays and polygons constrain nothing; negative weight = default
    for name in ('angle_range', 'keep_out', 'preferred_point', 'region'):
        assert len(lines[name]) == 2, name
    assert float(lines['preference_weight'][2]) < 0
    assert float(lines['min_score'][2]) == 0.0


def test_constant_lines_carry_no_trailing_comment():
    # rosidl strips '#' comments from constant lines, rosbags keeps them in the value: avoid.
    for path in list((ROOT / 'srv').glob('*.srv')) + list((ROOT / 'msg').glob('*.msg')):
        for line in path.read_text().splitlines():
            code, comment, _ = line.partition('#')
            if '=' in code:
                assert not comment, f'{path.name}: {line!r}'


def test_cmake_lists_every_interface():
    cmake = (ROOT / 'CMakeLists.txt').read_text()
    interfaces = list((ROOT / 'msg').glob('*.msg')) + list((ROOT / 'srv').glob('*.srv'))
    files = sorted(p.relative_to(ROOT).as_posix() for p in interfaces)
    for rel in files:
        assert f'"{rel}"' in cmake, f'{rel} missing from rosidl_generate_interfaces'
    assert cmake.count('ament_python_install_package') == 1  # only the comment, never a call
    for script in sorted(p for p in (ROOT / 'scripts').iterdir() if p.is_file()):
        assert f'scripts/{script.name}' in cmake, f'{script.name} is not installed'
