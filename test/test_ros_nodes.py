"""Nodes started in-process on a real ROS 2 (skipped where rclpy is missing).

Each test gets its own Context and executor (spun in a thread); DDS stays on loopback.
"""

import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

# DDS on loopback, in a test-only domain; set before any ROS context is created.
os.environ.setdefault('ROS_DOMAIN_ID', '87')
os.environ['ROS_LOCALHOST_ONLY'] = '1'
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('CYCLONEDDS_URI', (
    '<CycloneDDS><Domain><General><Interfaces><NetworkInterface name="lo"/></Interfaces>'
    '<AllowMulticast>false</AllowMulticast></General><Discovery><ParticipantIndex>auto'
    '</ParticipantIndex><Peers><Peer address="127.0.0.1"/></Peers></Discovery></Domain>'
    '</CycloneDDS>'))

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')
pytest.importorskip('fga_ros.srv', reason='the fga_ros interfaces are not built '
                    '(colcon build, then source install/setup.bash)')
from rclpy.context import Context  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from fga_ros.bridge import geometry, markers  # noqa: E402
from fga_ros.bridge.image import image_to_rgb, rgb_image_fields  # noqa: E402
from fga_ros.core.inference.proposer import bundled_model_path  # noqa: E402
from fga_ros.nodes.common import to_msg  # noqa: E402
from fga_ros.nodes.grasp_sim_node import GraspSimNode  # noqa: E402
from fga_ros.nodes.ros_environment import RosEnvironment  # noqa: E402
from fga_ros.sim import make_scene, render  # noqa: E402
from fga_ros.srv import ExecuteGrasp, GetDemonstrations, NewScene, ProposeGrasps  # noqa: E402

TIMEOUT = 30.0


class Ros:
    """A context, an executor spinning in a thread, and the nodes added to it."""

    def __init__(self):
        self.context = Context()
        rclpy.init(context=self.context)
        self.executor = MultiThreadedExecutor(context=self.context)
        self.nodes = []
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def add(self, node_class, **kwargs):
        node = node_class(context=self.context, **kwargs)
        self.executor.add_node(node)
        self.nodes.append(node)
        return node

    def client_node(self):
        return self.add(Node, node_name='test_client')

    def call(self, node, srv_type, name, request):
        client = node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=TIMEOUT), f'{name} not available'
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        assert done.wait(TIMEOUT), f'{name} did not answer'
        return future.result()

    def close(self):
        self.executor.shutdown()
        for node in self.nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=5.0)


@pytest.fixture
def ros():
    env = Ros()
    yield env
    env.close()


def wait_for_message(node, msg_type, topic, qos):
    received, done = [], threading.Event()

    def callback(msg):
        received.append(msg)
        done.set()

    sub = node.create_subscription(msg_type, topic, callback, qos)
    assert done.wait(TIMEOUT), f'nothing on {topic}'
    node.destroy_subscription(sub)
    return received[0]


def test_sim_node_services_and_camera(ros):
    ros.add(GraspSimNode)
    client = ros.client_node()
    frame = wait_for_message(client, Image, 'camera/image_raw', qos_profile_sensor_data)
    assert (frame.encoding, frame.width, frame.height) == ('rgb8', 128, 128)

    scene = ros.call(client, NewScene, 'new_scene', NewScene.Request(shape='T', seed=5))
    assert scene.success, scene.message
    assert json.loads(scene.description)['shape'] == 'T'
    np.testing.assert_array_equal(image_to_rgb(scene.image), render(make_scene('T', 5)))

    bad = ros.call(client, ExecuteGrasp, 'execute_grasp',
                   ExecuteGrasp.Request(x=float('nan'), y=50.0, angle=0.0))
    assert not bad.executed and 'x must be finite' in bad.message
    outside = ros.call(client, ExecuteGrasp, 'execute_grasp',
                       ExecuteGrasp.Request(x=5.0, y=50.0, angle=0.0))
    assert not outside.executed and '[25.0, 103.0)' in outside.message
    stale = ros.call(client, ExecuteGrasp, 'execute_grasp', ExecuteGrasp.Request(
        x=60.0, y=60.0, angle=0.0, scene_id=scene.scene_id + 1))
    assert not stale.executed and 'stale' in stale.message
    good = ros.call(client, ExecuteGrasp, 'execute_grasp', ExecuteGrasp.Request(
        x=60.0, y=60.0, angle=0.0, scene_id=scene.scene_id))
    assert good.executed and good.message == ''

    unknown = ros.call(client, NewScene, 'new_scene', NewScene.Request(shape='Q'))
    assert not unknown.success and 'shape must be one of' in unknown.message

    demos = ros.call(client, GetDemonstrations, 'get_demonstrations',
                     GetDemonstrations.Request(num_states=2, per_state=4, seed=3))
    assert demos.success, demos.message
    assert len(demos.images) == 2 and len(demos.actions) == 24 and len(demos.labels) == 8


def test_ros_environment_over_two_sims(ros):
    for namespace in ('sim0', 'sim1'):
        ros.add(GraspSimNode, namespace=namespace)
    client = ros.client_node()
    env = RosEnvironment(client, ['sim0', 'sim1'], timeout=TIMEOUT, shapes=('H',))
    images = env.new_states(2)  # one scene on each simulator, asked at once
    assert len(images) == 2
    assert all(rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8 for rgb in images)
    assert [sim.namespace for sim, _ in env.current] == ['sim0', 'sim1']
    outcomes = env.try_grasps(np.full((2, 3, 3), [64.0, 64.0, 1.0]))
    assert outcomes.shape == (2, 3) and outcomes.dtype == bool
    with pytest.raises(ValueError, match='3 new states at once need as many simulators'):
        env.new_states(3)
    items = list(env.demonstrations(40, 2, np.random.default_rng(0)))  # chunks on both sims
    assert len(items) == 40 and items[0][1].shape == (2, 3)
    env.stop()


def test_to_msg_builds_markers_sharing_one_outline():
    # proposal_markers gives every gripper the same points list: to_msg must leave the
    # caller's dicts as they are.
    camera = geometry.CameraModel(pixel_size=0.002, camera_height=0.5)
    poses = camera.pose_fields([[40.0, 50.0, 0.5], [60.0, 70.0, 2.0]])
    gripper = markers.GripperSize(aperture=0.048, claw_width=0.012, claw_thickness=0.004)
    fields = markers.proposal_markers(poses, markers.cluster_colours([1, 2]), [0.9, 0.2],
                                      {'stamp': {'sec': 0, 'nanosec': 0},
                                       'frame_id': 'camera_optical_frame'},
                                      gripper, camera.pixel_size)
    array = to_msg(MarkerArray, {'markers': fields})
    assert [m.action for m in array.markers] == [array.markers[0].DELETEALL] + [
        array.markers[0].ADD] * 4
    assert len(array.markers[1].points) == len(array.markers[2].points) == 12
    assert isinstance(fields[1]['points'][0], dict)  # the caller's dicts are untouched


def test_to_msg_fills_nested_messages_sequences_and_numbers():
    from fga_ros.msg import Grasp

    response = to_msg(ProposeGrasps.Response, {
        'success': True,
        'header': {'frame_id': 'camera_optical_frame', 'stamp': {'sec': 3}},
        'grasps': [{'x': 40, 'rank': 0, 'pose': {'pose': {'position': {'z': 0.5}}}},
                   {'x': 41.5, 'rank': 1}],
        'inference_time': 1,  # an int for a float64 field
    })
    assert isinstance(response.grasps[0], Grasp) and response.grasps[0].x == 40.0
    assert type(response.inference_time) is float and response.header.stamp.sec == 3
    assert response.grasps[0].pose.pose.position.z == 0.5 and response.grasps[1].rank == 1
    with pytest.raises(AttributeError):
        to_msg(ProposeGrasps.Response, {'grasps': [{'no_such_field': 1.0}]})


SECOND_SIGINT_SCRIPT = textwrap.dedent("""
    import os, signal, time
    from rclpy.node import Node
    from fga_ros.nodes.common import run

    class Quick(Node):
        def __init__(self):
            super().__init__('second_sigint')
            self.create_timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))

        def close(self):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)
                print('closed', flush=True)
            except KeyboardInterrupt:
                print('interrupted', flush=True)

    raise SystemExit(run(Quick))
""")


def test_run_finishes_its_clean_up_despite_a_second_sigint():
    # Ctrl-C reaches every process of the terminal's group, and ros2 launch without a tty
    # forwards one more SIGINT: the second one must not interrupt close() / destroy_node().
    done = subprocess.run([sys.executable, '-c', SECOND_SIGINT_SCRIPT], capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'closed' in done.stdout and 'Traceback' not in done.stderr, done.stdout + done.stderr


def proposal_node_class():
    module = pytest.importorskip('fga_ros.nodes.grasp_proposal_node')
    if not bundled_model_path().is_file():
        pytest.skip('no bundled model in share/fga_ros/models')
    return module.GraspProposalNode


def proposal_params(**values):
    from rclpy.parameter import Parameter
    return [Parameter(name, value=value) for name, value in values.items()]


def request_image(node, shape='H', seed=2):
    header = {'stamp': node.get_clock().now().to_msg(), 'frame_id': 'camera_optical_frame'}
    return to_msg(Image, rgb_image_fields(render(make_scene(shape, seed)), header))


def test_proposal_node_answers_good_and_bad_requests(ros):
    ros.add(proposal_node_class(), parameter_overrides=proposal_params(image_wait=0.2))
    client = ros.client_node()
    empty = ros.call(client, ProposeGrasps, 'propose_grasps', ProposeGrasps.Request())
    assert not empty.success and 'no image' in empty.message and '0.2 s' in empty.message

    image = request_image(client)
    good = ros.call(client, ProposeGrasps, 'propose_grasps',
                    ProposeGrasps.Request(image=image, num_grasps=8))
    assert good.success, good.message
    assert [g.rank for g in good.grasps] == list(range(8))
    assert all(25 <= g.x < 103 and 25 <= g.y < 103 and 0 <= g.angle < np.pi
               for g in good.grasps)
    assert good.header.frame_id == 'camera_optical_frame'
    assert good.num_sampled >= 8

    wrong = to_msg(Image, {**rgb_image_fields(np.zeros((128, 128, 3), np.uint8),
                                              {'frame_id': 'camera_optical_frame'}),
                           'encoding': 'mono8'})
    for request, reason in [
            (ProposeGrasps.Request(image=wrong), "encoding 'mono8'"),
            (ProposeGrasps.Request(image=image, num_grasps=-3), 'num_grasps'),
            (ProposeGrasps.Request(image=image, reject_fraction=1.5), 'reject_fraction'),
            (ProposeGrasps.Request(image=image, ranking='best'), 'ranking')]:
        answer = ros.call(client, ProposeGrasps, 'propose_grasps', request)
        assert not answer.success and reason in answer.message
    # the node is still serving after the bad requests
    again = ros.call(client, ProposeGrasps, 'propose_grasps',
                     ProposeGrasps.Request(image=image, num_grasps=2, ranking='diverse'))
    assert again.success and len(again.grasps) == 2


def test_a_late_rviz_gets_the_last_proposal(ros):
    from geometry_msgs.msg import PoseArray
    from sensor_msgs.msg import PointCloud2

    from fga_ros.nodes.proposal_display import LATCHED

    ros.add(proposal_node_class())
    client = ros.client_node()
    answer = ros.call(client, ProposeGrasps, 'propose_grasps', ProposeGrasps.Request(
        image=request_image(client), num_grasps=12, ranking='diverse'))
    assert answer.success, answer.message
    # subscribers that join after the call (as an RViz started later) still get it
    poses = wait_for_message(client, PoseArray, 'grasps/poses', LATCHED)
    assert len(poses.poses) == 12
    assert poses.poses[0].position.x == answer.grasps[0].pose.pose.position.x
    shown = wait_for_message(client, MarkerArray, 'grasps/markers', LATCHED)
    first = shown.markers[0]
    assert first.action == first.DELETEALL and first.ns == ''
    identities = [(m.ns, m.id) for m in shown.markers]
    assert len(set(identities)) == len(identities)
    grippers = [m for m in shown.markers if m.ns == markers.GRIPPER_NS]
    assert len(grippers) == 12
    for grasp, marker in zip(answer.grasps, grippers):
        expected = markers.cluster_colours([grasp.cluster_id])[0]
        np.testing.assert_allclose([marker.color.r, marker.color.g, marker.color.b],
                                   expected, atol=1e-6)
    annotated = wait_for_message(client, Image, 'grasps/image', LATCHED)
    assert (annotated.width, annotated.height, annotated.encoding) == (512, 512, 'rgb8')
    scene = wait_for_message(client, PointCloud2, 'grasps/scene', LATCHED)
    assert scene.width * scene.height == 128 * 128
    assert scene.header.frame_id == 'camera_optical_frame'


def test_a_request_without_image_waits_for_the_first_frame(ros):
    ros.add(proposal_node_class(), parameter_overrides=proposal_params(image_wait=30.0))
    client = ros.client_node()
    proposer = client.create_client(ProposeGrasps, 'propose_grasps')
    assert proposer.wait_for_service(timeout_sec=TIMEOUT)
    done = threading.Event()
    future = proposer.call_async(ProposeGrasps.Request(num_grasps=4))
    future.add_done_callback(lambda _: done.set())
    assert not done.wait(1.0), 'answered before any camera existed'
    # requests are served in parallel: one with an image is answered meanwhile
    other = ros.call(client, ProposeGrasps, 'propose_grasps',
                     ProposeGrasps.Request(image=request_image(client), num_grasps=4))
    assert other.success and not done.is_set()
    ros.add(GraspSimNode)  # the camera starts after the request
    assert done.wait(TIMEOUT), 'no answer after the first frame'
    assert future.result().success, future.result().message


def test_many_concurrent_clients_every_call_is_answered(ros):
    # More requests at once than the default service queue (10) holds: each of 40 clients
    # sends 3 requests without waiting, 120 in flight on a node serving 2 at a time.
    ros.add(proposal_node_class())
    clients = [ros.add(Node, node_name=f'load_client_{i}') for i in range(40)]
    image = request_image(clients[0])
    # every client receives every response on Cyclone DDS: a deep response queue keeps a
    # client's own answer from being pushed out by the others' (README, serving under load)
    qos = QoSProfile(depth=200)
    services = [node.create_client(ProposeGrasps, 'propose_grasps', qos_profile=qos)
                for node in clients]
    assert all(service.wait_for_service(timeout_sec=TIMEOUT) for service in services)
    lock, answered, failed = threading.Lock(), [], []
    all_done = threading.Event()
    total = 3 * len(services)

    def count(future):
        with lock:
            result = future.result()
            (answered if result is not None and result.success else failed).append(result)
            if len(answered) + len(failed) == total:
                all_done.set()

    futures = [service.call_async(ProposeGrasps.Request(image=image, num_grasps=4))
               for service in services for _ in range(3)]
    for future in futures:
        future.add_done_callback(count)
    all_done.wait(4 * TIMEOUT)
    assert (len(answered), len(failed)) == (total, 0), (
        f'{len(answered)} answered, {len(failed)} failed, '
        f'{total - len(answered) - len(failed)} never answered')


def _polygon(frame, points):
    from geometry_msgs.msg import Point32, PolygonStamped
    polygon = PolygonStamped()
    polygon.header.frame_id = frame
    polygon.polygon.points = [Point32(x=float(x), y=float(y), z=float(z)) for x, y, z in points]
    return polygon


def test_proposal_node_answers_constrained_requests(ros):
    ros.add(GraspSimNode)  # publishes world -> camera_optical_frame
    ros.add(proposal_node_class())
    client = ros.client_node()
    header = {'stamp': client.get_clock().now().to_msg(), 'frame_id': 'camera_optical_frame'}
    image = to_msg(Image, rgb_image_fields(render(make_scene('H', 2)), header))
    camera = geometry.CameraModel(geometry.default_pixel_size(),
                                  geometry.default_camera_height())
    # left half of the workspace (x < 64 px), given in the world frame: optical x = world x
    left = camera.pixels_to_points([[25, 25], [64, 25], [64, 103], [25, 103]])
    world = [(x, -y, 0.0) for x, y, _ in left]  # table plane: world z = 0, y flipped
    region = None
    for _ in range(50):  # the static transform arrives shortly after the sim node starts
        answer = ros.call(client, ProposeGrasps, 'propose_grasps', ProposeGrasps.Request(
            image=image, num_grasps=8, region=_polygon('world', world),
            angle_range=[-0.6, 0.6]))
        if 'frame_id' not in answer.message:
            region = answer
            break
        threading.Event().wait(0.2)
    assert region is not None and region.success, region and region.message
    assert len(region.grasps) == 8
    for g in region.grasps:
        assert g.x <= 64.0 + 1e-6
        assert min(g.angle, np.pi - g.angle) <= 0.6 + 1e-6
        assert g.cluster_id >= 1
    for request, reason in [
            (ProposeGrasps.Request(image=image, region=_polygon('nowhere', world)),
             'region.header.frame_id'),
            (ProposeGrasps.Request(image=image, region=_polygon('', world[:2])), 'region'),
            (ProposeGrasps.Request(image=image, angle_range=[0.5, 0.1]), 'inverted'),
            (ProposeGrasps.Request(image=image, min_score=1.5), 'min_score'),
            (ProposeGrasps.Request(image=image, angle_range=[float('nan'), 0.1]),
             'angle_range')]:
        answer = ros.call(client, ProposeGrasps, 'propose_grasps', request)
        assert not answer.success and reason in answer.message, answer.message
    blank = to_msg(Image, rgb_image_fields(np.full((128, 128, 3), 90, np.uint8), header))
    abstained = ros.call(client, ProposeGrasps, 'propose_grasps',
                         ProposeGrasps.Request(image=blank))
    assert not abstained.success and 'abstained' in abstained.message
    assert len(abstained.grasps) == 0
    again = ros.call(client, ProposeGrasps, 'propose_grasps',
                     ProposeGrasps.Request(image=image, num_grasps=2))
    assert again.success and len(again.grasps) == 2


def test_plan_grasps_keeps_grasps_on_the_target(ros):
    moveit_srv = pytest.importorskip('moveit_msgs.srv', reason='moveit_msgs is not installed')
    from geometry_msgs.msg import Pose
    from moveit_msgs.msg import CollisionObject
    from rclpy.parameter import Parameter
    from shape_msgs.msg import SolidPrimitive
    ros.add(GraspSimNode)
    ros.add(proposal_node_class(),
            parameter_overrides=[Parameter('moveit_grasp_planning', value=True)])
    client = ros.client_node()
    scene = ros.call(client, NewScene, 'new_scene', NewScene.Request(shape='H', seed=2))
    assert scene.success, scene.message
    threading.Event().wait(1.5)  # the proposal node receives frames of the new scene
    # target: a box over the left half of the workspace (x < 64 px), in the optical frame
    camera = geometry.CameraModel(geometry.default_pixel_size(),
                                  geometry.default_camera_height())
    (x0, y0, z), (x1, y1, _) = camera.pixels_to_points([[25, 25], [64, 103]])
    target = CollisionObject()
    target.header.frame_id = 'camera_optical_frame'
    target.pose.orientation.w = 1.0
    box = SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[x1 - x0, y1 - y0, 0.02])
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (x0 + x1) / 2, (y0 + y1) / 2, z
    pose.orientation.w = 1.0
    target.primitives, target.primitive_poses = [box], [pose]
    answer = ros.call(client, moveit_srv.GraspPlanning, 'plan_grasps',
                      moveit_srv.GraspPlanning.Request(target=target))
    assert answer.error_code.val == answer.error_code.SUCCESS
    assert answer.grasps
    pixels = camera.table_pixels([[g.grasp_pose.pose.position.x, g.grasp_pose.pose.position.y,
                                   g.grasp_pose.pose.position.z] for g in answer.grasps])
    assert np.all(pixels[:, 0] <= 64.0 + 1e-6)
    target.header.frame_id = 'nowhere'
    refused = ros.call(client, moveit_srv.GraspPlanning, 'plan_grasps',
                       moveit_srv.GraspPlanning.Request(target=target))
    assert refused.error_code.val == refused.error_code.FAILURE and not refused.grasps


def _trainer_params(tmp_path, **values):
    from rclpy.parameter import Parameter
    values = {'preset': 'tiny', 'out_dir': str(tmp_path / 'run'), 'service_timeout': TIMEOUT,
              'config.prefill_examples': 64, 'config.prefill_scenes': 4,
              'config.eval_every': 0, **values}
    return [Parameter(name, value=value) for name, value in values.items()]


def test_trainer_node_trains_over_a_simulator_from_a_warm_start(ros, tmp_path):
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    from fga_ros.core.common.config import load_config
    from fga_ros.core.common.env import SimEnvironment
    from fga_ros.core.models import model_file
    from fga_ros.core.training.trainer import Trainer
    from fga_ros.nodes.trainer_node import TrainerNode

    config = load_config('tiny')
    source = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path / 'source')
    source.run(steps=2)
    source_model = source.export()

    ros.add(GraspSimNode)
    client = ros.client_node()
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    announced = []
    done = threading.Event()
    client.create_subscription(String, 'checkpoint',
                               lambda msg: (announced.append(msg.data), done.set()), latched)
    trainer = ros.add(TrainerNode, parameter_overrides=_trainer_params(
        tmp_path, steps=6, warm_start=str(source_model)))
    assert done.wait(3 * TIMEOUT), 'no checkpoint announced'
    trainer.thread.join(TIMEOUT)
    assert trainer.error is None and trainer.trainer.step == 6
    model, loaded, meta = model_file.load_model(announced[-1])
    assert meta['step'] == 6 and loaded.actor_head == config.actor_head

    # a relaunch naming only out_dir and a new target continues the run's own configuration
    from rclpy.parameter import Parameter
    resumed = ros.add(TrainerNode, parameter_overrides=[
        Parameter('out_dir', value=str(tmp_path / 'run')), Parameter('steps', value=8),
        Parameter('service_timeout', value=TIMEOUT)])
    resumed.thread.join(3 * TIMEOUT)
    assert resumed.error is None and resumed.trainer.step == 8
    assert resumed.config.prefill_examples == 64 and resumed.config.eval_every == 0

    # a model whose critic does not fit the configuration is refused at start
    cpu_model = bundled_model_path()
    with pytest.raises(model_file.CheckpointError, match='its extractor and critic do not match'):
        ros.add(TrainerNode, parameter_overrides=_trainer_params(
            tmp_path, out_dir=str(tmp_path / 'other'), warm_start=str(cpu_model)))
    assert not (tmp_path / 'other' / 'checkpoint.pt').exists()
