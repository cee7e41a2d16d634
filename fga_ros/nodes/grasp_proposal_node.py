"""grasp_proposal_node: serves ``propose_grasps`` from a trained actor and shows the result.

Loads a model (default: the bundled one), warms it up, then answers ``propose_grasps``
(``fga_ros/srv/ProposeGrasps``) for a request image or the latest ``camera/image_raw``
frame. Each answer also goes to ``grasps/markers`` (MarkerArray, DELETEALL first),
``grasps/poses`` (PoseArray) and ``grasps/image`` (annotated rgb8). The model can be swapped
at run time (parameter ``checkpoint`` or a path on the ``checkpoint`` topic): each request
uses the model it started with, so answers always come from one consistent set of weights.
Bad requests are answered with success = false and a message; they never stop the node.
"""

import threading
import time

from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from fga_ros.bridge import annotate, geometry, grasps, image, markers, requests
from fga_ros.core.proposal import BUNDLED_MODEL, Proposer, bundled_model_path
from fga_ros.nodes.common import descriptor, run, to_msg
from fga_ros.sim import make_scene, render
from fga_ros.srv import ProposeGrasps

try:  # optional: MoveIt's grasp-planning interface
    from moveit_msgs.msg import Grasp as MoveItGrasp
    from moveit_msgs.srv import GraspPlanning
except ImportError:
    MoveItGrasp = GraspPlanning = None

MOVEIT_SUCCESS = 1
MOVEIT_FAILURE = 99999


class GraspProposalNode(Node):
    """Grasp proposals from a trained actor over ROS."""

    def __init__(self, **kwargs):
        super().__init__('grasp_proposal', **kwargs)
        defaults = requests.ProposalSettings()
        self.declare_parameter('checkpoint', '', descriptor(
            'model or training checkpoint to load; empty = the bundled model '
            f'(share/fga_ros/{"/".join(BUNDLED_MODEL)}); setting it reloads'))
        self.declare_parameter('num_grasps', defaults.num_grasps, descriptor(
            'grasps returned when a request says num_grasps: 0',
            int_range=(1, requests.MAX_GRASPS)))
        self.declare_parameter('reject_fraction', defaults.reject_fraction, descriptor(
            'share of samples rejected as lowest KDE density when a request says -1',
            float_range=(0.0, 0.99)))
        self.declare_parameter('ranking', defaults.ranking, descriptor(
            'ranking when a request leaves it empty: ' + ', '.join(requests.RANKING_MODES)))
        self.declare_parameter('max_grasps', 1024, descriptor(
            'largest num_grasps a request may ask for', read_only=True,
            int_range=(1, requests.MAX_GRASPS)))
        self.declare_parameter('colour_by', 'score', descriptor(
            'marker colours: ' + ', '.join(markers.COLOUR_MODES)))
        self.declare_parameter('pixel_size', geometry.default_pixel_size(), descriptor(
            'table-plane size of one pixel, m/px', read_only=True, float_range=(1e-5, 1.0)))
        self.declare_parameter('camera_height', geometry.default_camera_height(), descriptor(
            'optical centre above the table, m', read_only=True, float_range=(0.01, 10.0)))
        self.declare_parameter('camera_frame', geometry.DEFAULT_CAMERA_FRAME, descriptor(
            'frame of the grasp poses when the image header names none', read_only=True))
        self.declare_parameter('gripper_opening_px', geometry.default_opening_px(), descriptor(
            'distance between the open claws, px (sets opening_width and the markers)',
            read_only=True, float_range=(1.0, 128.0)))
        self.declare_parameter('warmup', True, descriptor(
            'run one proposal at start so that the first request is not slow', read_only=True))
        self.declare_parameter('moveit_grasp_planning', False, descriptor(
            'also serve moveit_msgs/srv/GraspPlanning on plan_grasps (needs moveit_msgs)',
            read_only=True))

        self.camera = geometry.CameraModel(
            pixel_size=self._param('pixel_size'), camera_height=self._param('camera_height'),
            frame_id=self._param('camera_frame'))
        self.opening_px = float(self._param('gripper_opening_px'))
        self.claw_width_px = geometry.default_claw_width_px()
        self.max_grasps = int(self._param('max_grasps'))
        self.latest_image = None
        self.proposer_lock = threading.Lock()  # one proposal at a time on one model
        self.proposer = self._load(self._param('checkpoint'))
        if self._param('warmup'):
            self._warm_up()
        self.add_on_set_parameters_callback(self.parameters_callback)

        self.marker_pub = self.create_publisher(MarkerArray, 'grasps/markers', 1)
        self.pose_pub = self.create_publisher(PoseArray, 'grasps/poses', 1)
        self.image_pub = self.create_publisher(Image, 'grasps/image', 1)
        inputs = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Image, 'camera/image_raw', self.image_callback,
                                 qos_profile_sensor_data, callback_group=inputs)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(String, 'checkpoint', self.checkpoint_callback, latched,
                                 callback_group=inputs)
        serving = MutuallyExclusiveCallbackGroup()
        self.create_service(ProposeGrasps, 'propose_grasps', self.propose_grasps_callback,
                            callback_group=serving)
        if self._param('moveit_grasp_planning'):
            if GraspPlanning is None:
                self.get_logger().warn('moveit_grasp_planning is set but moveit_msgs is not '
                                       'installed: plan_grasps is not served')
            else:
                self.create_service(GraspPlanning, 'plan_grasps', self.plan_grasps_callback,
                                    callback_group=serving)
        self.get_logger().info('ready: propose_grasps')

    def _param(self, name):
        return self.get_parameter(name).value

    def _load(self, checkpoint):
        path = checkpoint or str(bundled_model_path())
        proposer = Proposer.from_checkpoint(path)
        self.get_logger().info(f'loaded model {path}')
        return proposer

    def _warm_up(self):
        rgb = render(make_scene('H', 0))
        self.proposer.propose(rgb, requests.ProposalSettings().num_grasps)

    def _settings(self):
        return requests.ProposalSettings(
            self._param('num_grasps'), self._param('reject_fraction'), self._param('ranking'))

    # -- parameters and inputs ------------------------------------------------------------------

    def parameters_callback(self, params):
        values = {p.name: p.value for p in params}
        try:
            requests.ProposalSettings(
                values.get('num_grasps', self._param('num_grasps')),
                values.get('reject_fraction', self._param('reject_fraction')),
                values.get('ranking', self._param('ranking')))
            markers.grasp_colours(values.get('colour_by', self._param('colour_by')), [], [])
            if 'checkpoint' in values:
                self._swap(values['checkpoint'])
        except Exception as error:  # noqa: BLE001 - any load failure is a refused change
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _swap(self, checkpoint):
        proposer = self._load(checkpoint)
        self.proposer = proposer  # atomic: running requests keep the model they started with

    def checkpoint_callback(self, msg):
        try:
            self._swap(msg.data)
        except Exception as error:  # noqa: BLE001 - keep serving the current model
            self.get_logger().error(f'cannot load {msg.data!r}: {error}')

    def image_callback(self, msg):
        self.latest_image = msg

    # -- proposals ------------------------------------------------------------------------------

    def _propose(self, msg, settings):
        """(rgb, header dict, proposal) for an Image message; raises ValueError on bad input."""
        if msg is None or image.is_empty(msg):
            msg = self.latest_image
            if msg is None:
                raise requests.RequestError(
                    'the request has no image and no frame arrived on camera/image_raw yet')
        rgb = image.image_to_rgb(msg)
        header = {'stamp': msg.header.stamp,
                  'frame_id': msg.header.frame_id or self.camera.frame_id}
        proposer = self.proposer
        with self.proposer_lock:
            proposal = proposer.propose(rgb, settings.num_grasps,
                                        reject_fraction=settings.reject_fraction,
                                        ranking=settings.ranking)
        return rgb, header, proposal

    def propose_grasps_callback(self, request, response):
        start = time.monotonic()
        try:
            settings = requests.resolve_proposal_request(
                request, self._settings(), self.max_grasps)
            rgb, header, proposal = self._propose(request.image, settings)
            fields = grasps.proposal_response_fields(
                proposal, self.camera, header, self.opening_px)
            self._publish(rgb, header, proposal)
        except ValueError as error:
            fields = grasps.failure_response_fields(str(error))
        except Exception as error:  # noqa: BLE001 - answer, never crash the node
            self.get_logger().error(f'propose_grasps failed: {error!r}')
            fields = grasps.failure_response_fields(
                f'internal error while proposing: {type(error).__name__}: {error}')
        response = to_msg(type(response), fields)
        self.get_logger().debug(
            f'propose_grasps: {len(response.grasps)} grasps in '
            f'{1000 * (time.monotonic() - start):.1f} ms')
        return response

    def _publish(self, rgb, header, proposal):
        arrays = grasps.proposal_arrays(proposal)
        poses = self.camera.pose_fields(arrays['actions'])
        colours = markers.grasp_colours(self._param('colour_by'), arrays['scores'],
                                        arrays['mode_ids'])
        size = self.camera.pixel_size
        marker_fields = markers.grasp_markers(
            poses, colours, header, opening=self.opening_px * size,
            claw_width=self.claw_width_px * size, line_width=size)
        self.marker_pub.publish(to_msg(MarkerArray, {'markers': marker_fields}))
        self.pose_pub.publish(to_msg(PoseArray, {'header': header, 'poses': poses}))
        drawn = annotate.draw_grasps(rgb, arrays['actions'][::-1], colours[::-1],
                                     self.opening_px, self.claw_width_px)
        self.image_pub.publish(to_msg(Image, image.rgb_image_fields(drawn, header)))

    def plan_grasps_callback(self, request, response):
        """moveit_msgs/srv/GraspPlanning on the latest camera frame, default settings."""
        try:
            rgb, header, proposal = self._propose(None, self._settings())
            arrays = grasps.proposal_arrays(proposal)
            poses = self.camera.pose_fields(arrays['actions'])
            response.grasps = [to_msg(MoveItGrasp, {
                'id': f'fga_{rank}',
                'grasp_pose': {'header': header, 'pose': pose},
                'grasp_quality': float(score),
            }) for rank, (pose, score) in enumerate(zip(poses, arrays['scores']))]
            response.error_code.val = MOVEIT_SUCCESS
        except Exception as error:  # noqa: BLE001 - answer, never crash the node
            self.get_logger().error(f'plan_grasps failed: {error}')
            response.error_code.val = MOVEIT_FAILURE
        return response


def main(args=None):
    run(GraspProposalNode, args, multithreaded=True)


if __name__ == '__main__':
    main()
