"""trainer_node against a stand-in robot that serves the README's robot contract and nothing
else: new_scene (no image in the answer), execute_grasp and camera/image_raw; no
get_demonstrations, no oracle. The prefill comes from a dataset file (real ROS 2; skipped
where rclpy or the built interfaces are missing)."""

import threading

import numpy as np
import pytest

from fga_ros.core.common.dataset import read_dataset, write_dataset
from fga_ros.core.common.env import SimEnvironment
from fga_ros.sim import grasp_success, make_scene, render, validate_actions

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from test_ros_nodes import TIMEOUT, Ros  # noqa: E402 - skips without fga_ros.srv

from fga_ros.bridge.image import rgb_image_fields  # noqa: E402
from fga_ros.nodes.common import to_msg  # noqa: E402
from fga_ros.srv import ExecuteGrasp, NewScene  # noqa: E402


class StandInRobot(Node):
    """A robot as the trainer sees it: a camera and a gripper, nothing else. (Inside, the
    simulator decides the outcomes, as physics would; nothing of it is served.)"""

    def __init__(self, **kwargs):
        super().__init__('stand_in_robot', **kwargs)
        self.rng = np.random.default_rng(11)
        self.scene, self.scene_id = None, 0
        self.attempts = []  # (scene, action, outcome)
        self.lock = threading.Lock()
        self.camera = self.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
        self.create_service(NewScene, 'new_scene', self.new_scene)
        self.create_service(ExecuteGrasp, 'execute_grasp', self.execute_grasp)
        self.create_timer(0.02, self.publish_frame)

    def new_scene(self, request, response):
        # a robot cannot build a requested shape: it ignores shape, seed and distortion
        with self.lock:
            self.scene = make_scene('H', int(self.rng.integers(2**31)))
            self.scene_id += 1
            response.success, response.scene_id = True, self.scene_id
        return response  # no image: the trainer takes the next camera frame

    def publish_frame(self):
        with self.lock:
            scene = self.scene
        if scene is not None:
            header = {'stamp': self.get_clock().now().to_msg(), 'frame_id': 'robot_camera'}
            self.camera.publish(to_msg(Image, rgb_image_fields(render(scene), header)))

    def execute_grasp(self, request, response):
        with self.lock:
            if request.scene_id not in (0, self.scene_id):
                response.executed, response.message = False, 'stale scene'
                return response
            action = validate_actions([[request.x, request.y, request.angle]])
            success = bool(grasp_success(self.scene, action)[0])
            self.attempts.append((self.scene, action[0], success))
        response.executed, response.success = True, success
        return response


def test_trainer_node_learns_from_a_robot_without_an_oracle(tmp_path):
    from fga_ros.nodes.trainer_node import TrainerNode

    demos = write_dataset(tmp_path / 'demos.zip', SimEnvironment(('H',), seed=5).demonstrations(
        6, 16, np.random.default_rng(5)), 'recorded elsewhere')
    ros = Ros()
    try:
        robot = ros.add(StandInRobot)
        trainer = ros.add(TrainerNode, parameter_overrides=[
            Parameter(name, value=value) for name, value in {
                'preset': 'tiny', 'out_dir': str(tmp_path / 'run'), 'steps': 4,
                'service_timeout': TIMEOUT, 'dataset': str(demos), 'offline_steps': 2,
                'record': str(tmp_path / 'attempts.zip'), 'config.eval_every': 0,
                'config.shapes': ['H']}.items()])
        trainer.thread.join(3 * TIMEOUT)
        assert not trainer.thread.is_alive() and trainer.error is None
        assert trainer.trainer.step == 4
        # nobody serves get_demonstrations: the trainer never needed it
        assert not trainer.env.sims[0].demos.service_is_ready()
        cfg = trainer.config
        tried = 4 * cfg.interaction_steps * cfg.grasps_per_state
        assert len(robot.attempts) == tried
        trainer.close()
        log = read_dataset(tmp_path / 'attempts.zip')
        assert len(log.actions) == tried
        np.testing.assert_array_equal(log.labels, [won for _, _, won in robot.attempts])
        # the logged images are the camera frames of the scenes the grasps were tried on
        np.testing.assert_array_equal(log.images[0], render(robot.attempts[0][0]))
    finally:
        ros.close()
