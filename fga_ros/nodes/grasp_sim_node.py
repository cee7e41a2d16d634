"""grasp_sim_node: the planar grasp simulator as a simulated top-down camera plus gripper.

Publishes ``camera/image_raw`` (rgb8) and ``camera/camera_info`` (sensor-data QoS) at
``rate`` Hz and the static transform world -> camera_optical_frame; serves
``execute_grasp``, ``new_scene`` and ``get_demonstrations`` (all names relative).
"""

import json

from geometry_msgs.msg import TransformStamped
import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from tf2_ros import StaticTransformBroadcaster

from fga_ros import sim
from fga_ros.bridge import demos, geometry, image, requests
from fga_ros.bridge.display_topics import CAMERA_TOPIC
from fga_ros.core.common.config import check_scene_choice
from fga_ros.core.common.env import SimEnvironment
from fga_ros.nodes.common import (
    declare_camera_geometry,
    descriptor,
    run,
    stamp_header,
    to_msg,
)
from fga_ros.srv import ExecuteGrasp, GetDemonstrations, NewScene


def _json_scalar(value):
    """numpy scalars (and anything else json cannot write) as plain values."""
    return value.item() if isinstance(value, np.generic) else str(value)


class GraspSimNode(Node):
    """Simulated camera + gripper over ``fga_ros.sim``; one scene at a time."""

    def __init__(self, **kwargs):
        super().__init__('grasp_sim', **kwargs)
        self.declare_parameter('shapes', list(sim.train_shapes()), descriptor(
            'shape families new scenes are drawn from (uniformly); any of '
            + ', '.join(sim.shapes())))
        self.declare_parameter('distortion', 'none', descriptor(
            'camera distortion of new scenes: ' + ', '.join(sim.DISTORTIONS)))
        self.declare_parameter('seed', 0, descriptor(
            'seed of the scene sequence (equal seeds, equal scenes)', read_only=True,
            int_range=(0, 2**31 - 1)))
        self.declare_parameter('rate', 10.0, descriptor(
            'camera frame rate, Hz', read_only=True, float_range=(0.1, 100.0)))
        declare_camera_geometry(self)
        self.declare_parameter('world_frame', geometry.DEFAULT_WORLD_FRAME, descriptor(
            'parent frame of the camera transform', read_only=True))
        self.declare_parameter('camera_frame', geometry.DEFAULT_CAMERA_FRAME, descriptor(
            'optical frame of the camera images', read_only=True))
        check_scene_choice(self._param('shapes'), self._param('distortion'))
        if self._param('world_frame') in ('', self._param('camera_frame')):
            raise ValueError('world_frame must be a non-empty frame other than camera_frame, '
                             f'got {self._param("world_frame")!r}')
        self.add_on_set_parameters_callback(self.parameters_callback)

        self.camera = geometry.CameraModel(
            pixel_size=self._param('pixel_size'), camera_height=self._param('camera_height'),
            frame_id=self._param('camera_frame'))
        self.rng = np.random.default_rng(self._param('seed'))
        self.scene_id = 0
        self.scene = None
        self.image_fields = None

        self.image_pub = self.create_publisher(Image, CAMERA_TOPIC, qos_profile_sensor_data)
        self.info_pub = self.create_publisher(
            CameraInfo, 'camera/camera_info', qos_profile_sensor_data)
        self.tf_broadcaster = StaticTransformBroadcaster(self)
        self.create_service(ExecuteGrasp, 'execute_grasp', self.execute_grasp_callback)
        self.create_service(NewScene, 'new_scene', self.new_scene_callback)
        self.create_service(
            GetDemonstrations, 'get_demonstrations', self.get_demonstrations_callback)
        self.timer = self.create_timer(1.0 / self._param('rate'), self.timer_callback)

        world_header = stamp_header(self, self._param('world_frame'))
        self.tf_broadcaster.sendTransform(
            to_msg(TransformStamped, self.camera.world_transform_fields(world_header)))
        self._set_scene(*self._draw_scene(None, None, None))
        self.get_logger().info(
            f'simulating {", ".join(self._param("shapes"))} ({self._param("distortion")}) at '
            f'{self._param("rate"):g} Hz')

    def _param(self, name):
        return self.get_parameter(name).value

    def parameters_callback(self, params):
        values = {p.name: p.value for p in params}
        try:
            check_scene_choice(values.get('shapes', self._param('shapes')),
                               values.get('distortion', self._param('distortion')))
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    # -- scenes -----------------------------------------------------------------------------

    def _draw_scene(self, shape, seed, distortion):
        shapes = list(self._param('shapes'))
        shape = shape or shapes[int(self.rng.integers(len(shapes)))]
        seed = requests.optional_seed(seed, self.rng)
        distortion = distortion or self._param('distortion')
        return shape, seed, distortion

    def _set_scene(self, shape, seed, distortion):
        scene = sim.make_scene(shape, seed, distortion)
        rgb = sim.render(scene)
        self.scene = scene
        self.scene_id += 1
        self.image_fields = image.rgb_image_fields(rgb, {})
        self.timer_callback()
        return rgb

    def timer_callback(self):
        header = stamp_header(self, self.camera.frame_id)
        self.image_pub.publish(to_msg(Image, {**self.image_fields, 'header': header}))
        self.info_pub.publish(to_msg(CameraInfo, self.camera.camera_info_fields(header)))

    # -- services ---------------------------------------------------------------------------

    def execute_grasp_callback(self, request, response):
        try:
            action, scene_id = requests.resolve_execute_request(request)
            if scene_id is not None and scene_id != self.scene_id:
                raise requests.RequestError(
                    f'scene_id {scene_id} is stale: the current scene is {self.scene_id}')
            actions = sim.validate_actions(action[None])
        except ValueError as error:
            response.executed, response.success, response.message = False, False, str(error)
            return response
        response.executed = True
        response.success = bool(sim.grasp_success(self.scene, actions)[0])
        response.message = ''
        return response

    def new_scene_callback(self, request, response):
        try:
            choice = requests.resolve_new_scene_request(request, sim.shapes(), sim.DISTORTIONS)
            shape, seed, distortion = self._draw_scene(*choice)
            rgb = self._set_scene(shape, seed, distortion)
        except ValueError as error:
            response.success, response.message = False, str(error)
            return response
        header = stamp_header(self, self.camera.frame_id)
        response.success, response.message = True, ''
        response.scene_id = self.scene_id
        response.description = json.dumps(
            {'scene_id': self.scene_id, **self.scene.to_dict()}, default=_json_scalar)
        response.image = to_msg(Image, image.rgb_image_fields(rgb, header))
        return response

    def get_demonstrations_callback(self, request, response):
        try:
            num_states, per_state, seed, fraction = requests.resolve_demonstrations_request(
                request)
            seed = requests.optional_seed(seed, self.rng)
            env = SimEnvironment(list(self._param('shapes')), self._param('distortion'), seed)
            share = {} if fraction is None else {'imitation_fraction': fraction}
            items = env.demonstrations(num_states, per_state, np.random.default_rng(seed),
                                       **share)
            images, actions, labels, _ = demos.pack_demonstrations(items)
        except ValueError as error:
            response.success, response.message = False, str(error)
            return response
        header = stamp_header(self, self.camera.frame_id)
        response.images = [to_msg(Image, image.rgb_image_fields(rgb, header)) for rgb in images]
        response.actions = actions
        response.labels = labels
        response.success, response.message = True, ''
        return response


def main(args=None):
    return run(GraspSimNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
