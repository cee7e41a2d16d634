"""/propose_grasps for a tilted 640 x 480 camera given by camera_info and TF (real ROS 2).

Skipped where rclpy or the built fga_ros interfaces are missing.
"""

import threading

import numpy as np
import pytest

from fga_ros.bridge.camera_bench import camera_poses_to_sim_actions
from fga_ros.bridge.camera_geometry import matrix_to_quaternions, quaternion_to_matrix
from fga_ros.bridge.image import rgb_image_fields
from fga_ros.core.analysis.evaluation import evaluation_scenes
from fga_ros.sim import WORKSPACE_HI, WORKSPACE_LO, grasp_success, train_shapes
from fga_ros.sim.pinhole import TABLE_FRAME, render_view, tilted_view

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')
from geometry_msgs.msg import TransformStamped  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from test_ros_nodes import Ros, proposal_node_class  # noqa: E402 - skips without fga_ros.srv
from tf2_ros import StaticTransformBroadcaster  # noqa: E402

from fga_ros.nodes.common import to_msg  # noqa: E402
from fga_ros.srv import ProposeGrasps  # noqa: E402

TILTS = (20.0, 35.0, 45.0)


@pytest.fixture
def ros():
    env = Ros()
    yield env
    env.close()


def camera_transform(stamp, view, child):
    """Static TF world -> child: the camera's pose in the table frame (inverse of the view's
    camera-from-table transform)."""
    rotation = view.rotation.T
    centre = -rotation @ view.translation
    q = matrix_to_quaternions(rotation)[0]
    return to_msg(TransformStamped, {
        'header': {'stamp': stamp, 'frame_id': TABLE_FRAME}, 'child_frame_id': child,
        'transform': {'translation': dict(zip('xyz', (float(v) for v in centre))),
                      'rotation': dict(zip('xyzw', (float(v) for v in q)))}})


class CameraPublisher:
    """camera_info at 20 Hz on camera/camera_info, replaceable."""

    def __init__(self, node, fields):
        self.node, self.fields = node, fields
        self.pub = node.create_publisher(CameraInfo, 'camera/camera_info',
                                         qos_profile_sensor_data)
        self.timer = node.create_timer(0.05, self.publish)

    def publish(self):
        header = {'stamp': self.node.get_clock().now().to_msg(), 'frame_id': 'tilted_35'}
        self.pub.publish(to_msg(CameraInfo, {**self.fields, 'header': header}))


def settle(seconds=1.0):
    threading.Event().wait(seconds)


def test_propose_grasps_for_a_tilted_camera(ros):
    node = ros.add(proposal_node_class(), parameter_overrides=[
        Parameter('table_frame', value=TABLE_FRAME), Parameter('warmup', value=False)])
    client = ros.client_node()
    stamp = client.get_clock().now().to_msg()
    views = {f'tilted_{t:g}': tilted_view(t) for t in TILTS}
    under = tilted_view(35.0)
    under_rotation = np.diag([1.0, -1.0, -1.0]) @ under.rotation  # looks up from below
    away = tilted_view(35.0, yaw_deg=0.0, focal_px=3000.0)  # zoomed in: workspace cut off
    broadcaster = StaticTransformBroadcaster(client)
    transforms = [camera_transform(stamp, v, name) for name, v in views.items()]
    transforms.append(camera_transform(stamp, type(under)(
        640, 480, under.fx, under.fy, under.cx, under.cy, under_rotation,
        -under_rotation @ np.array([0.0, 0.0, -0.6])), 'under_table'))
    broadcaster.sendTransform(transforms)

    def request(view, frame, rgb=None, scene=None):
        header = {'stamp': client.get_clock().now().to_msg(), 'frame_id': frame}
        rgb = render_view(scene, view) if rgb is None else rgb
        image = to_msg(Image, rgb_image_fields(rgb, header))
        return ros.call(client, ProposeGrasps, 'propose_grasps',
                        ProposeGrasps.Request(image=image, num_grasps=16))

    scene = evaluation_scenes('H', 1)[0]
    first = request(views['tilted_35'], 'tilted_35', scene=scene)
    assert not first.success and 'no camera_info arrived' in first.message

    camera = CameraPublisher(client, views['tilted_35'].camera_info_fields({}))
    settle()
    feasible = []
    for tilt in TILTS:
        name = f'tilted_{tilt:g}'
        view = views[name]
        camera.fields = view.camera_info_fields({})
        settle(0.3)
        for scene in [s for shape in train_shapes() for s in evaluation_scenes(shape, 2)]:
            answer = request(view, name, scene=scene)
            assert answer.success, answer.message
            assert answer.header.frame_id == name
            positions = np.array([[g.pose.pose.position.x, g.pose.pose.position.y,
                                   g.pose.pose.position.z] for g in answer.grasps])
            rotations = np.array([quaternion_to_matrix(
                [g.pose.pose.orientation.x, g.pose.pose.orientation.y,
                 g.pose.pose.orientation.z, g.pose.pose.orientation.w])
                for g in answer.grasps])
            assert all(g.table_pose.header.frame_id == TABLE_FRAME for g in answer.grasps)
            table = np.array([[g.table_pose.pose.position.x, g.table_pose.pose.position.y]
                              for g in answer.grasps])
            np.testing.assert_allclose((positions - view.translation) @ view.rotation,
                                       np.column_stack([table, np.zeros(len(table))]),
                                       atol=1e-6)
            actions = camera_poses_to_sim_actions(view, positions, rotations)
            inside = ((actions[:, :2] >= WORKSPACE_LO) & (actions[:, :2] < WORKSPACE_HI))
            ok = np.zeros(len(actions), dtype=bool)
            ok[inside.all(axis=1)] = grasp_success(scene, actions[inside.all(axis=1)])
            feasible.append(ok)
    rate = float(np.concatenate(feasible).mean())
    print(f'ROS /propose_grasps, 640 x 480 tilted camera (tilts {TILTS}): '
          f'{100 * rate:.1f}% of {np.concatenate(feasible).size} grasps feasible')
    assert rate >= 0.9

    view = views['tilted_35']
    camera.fields = view.camera_info_fields({})
    settle(0.3)
    for frame, rgb, reason in [
            ('nowhere', None, "no transform from table frame 'world' to the image frame "
                              "'nowhere'"),
            ('tilted_35', np.zeros((128, 128, 3), np.uint8), 'camera_info says 640 x 480'),
            ('under_table', None, 'behind the camera')]:
        answer = request(view, frame, rgb=rgb, scene=scene)
        assert not answer.success and reason in answer.message, answer.message
    camera.fields = away.camera_info_fields({})
    settle(0.3)
    answer = request(away, 'tilted_35', scene=scene)
    assert not answer.success and 'not inside the 640 x 480 camera image' in answer.message
    camera.fields = {**view.camera_info_fields({}), 'k': [0.0] * 9}
    settle(0.3)
    answer = request(view, 'tilted_35', scene=scene)
    assert not answer.success and 'k is all zero' in answer.message
    assert node.context.ok()  # still serving
