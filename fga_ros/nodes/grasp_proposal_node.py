"""grasp_proposal_node: serves ``propose_grasps`` from a trained actor and shows the result.

Loads a model (default: the bundled one), warms it up, then answers ``propose_grasps``
(``fga_ros/srv/ProposeGrasps``) for a request image or the latest ``camera/image_raw``
frame; a request without an image waits up to ``image_wait`` s for the first frame, then is
answered with success = false. With the default (empty) ``table_frame`` the image is the
128 x 128 top-down view of the camera described by the parameters pixel_size and
camera_height; with a ``table_frame``, images of any size come with ``camera/camera_info``
and TF (table_frame -> the image's frame), and the node rectifies the workspace square of
the table into the model input (:mod:`fga_ros.bridge.camera_geometry`). The model can be
swapped at run time (parameter ``checkpoint`` or a path on the ``checkpoint`` topic) with
``Proposer.reload``: each request uses the model it started with, so answers always come
from one consistent set of weights.
Bad requests are answered with success = false and a message; they never stop the node.

Serving: requests are taken from a service queue of ``service_queue_depth`` (keep last,
reliable) and up to ``serving_threads`` of them are handled at once (a callback group that
runs that many callbacks in parallel, on a multi-threaded executor with one thread more);
their proposals run in ``proposal_workers`` processes (:mod:`fga_ros.core.inference.
proposer_pool`; 0: in the node's own process, where Python's interpreter lock makes the
threads take turns). Camera frames, model swaps and parameter changes are handled by their
own callback group on the spare thread, so they never wait behind requests. The response
is sent as soon as the proposal is ready: the display (markers, poses, annotated image,
table cloud; see :mod:`fga_ros.nodes.proposal_display`) is published afterwards by a thread
of its own.
"""

import threading
import time

from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from tf2_ros import Buffer, TransformException, TransformListener

from fga_ros import sim
from fga_ros.bridge import camera_geometry, geometry, grasps, image, markers, moveit, requests
from fga_ros.bridge.display_topics import CAMERA_TOPIC
from fga_ros.core.common.choices import RANKINGS
from fga_ros.core.common.tensors import configure_threads
from fga_ros.core.inference.defaults import (
    EXPLORE,
    MAX_GRASPS,
    MAX_OVERSAMPLE,
    MAX_SAMPLES,
    MIN_CANDIDATES,
    OVERSAMPLE,
    SCORE_FLOOR,
    TIME_BUDGET_S,
)
from fga_ros.core.inference.proposer import BUNDLED_MODEL, Proposer
from fga_ros.core.inference.proposer_pool import ProposerPool
from fga_ros.nodes.common import (
    LimitedCallbackGroup,
    declare_camera_geometry,
    descriptor,
    run,
    to_msg,
)
from fga_ros.nodes.proposal_display import ProposalDisplay
from fga_ros.srv import ProposeGrasps

TORCH_THREADS = 1
"""Default torch intra-op threads of one proposal: requests run in parallel instead (with
more threads per call, torch's threads spin against each other on a busy CPU: 64 grasps
took 13 ms with one thread and 120-190 ms with two on this project's loaded 2-core machine)."""

PROPOSAL_WORKERS = 2
"""Default worker processes that run the proposals (README "Serving under load": with 20
clients, 2 workers and 6 serving threads answered 87 calls/s on this project's 2-core
machine, the node's threads alone 57.6)."""

SERVING_THREADS = 6
"""Default requests the node handles at once: three per default worker, so that a worker
never waits while the node converts a request or builds a response (20 clients: 83.3 calls/s
with 4, 87.3 with 6, one 45 s run each)."""

try:  # optional: MoveIt's grasp-planning interface
    from moveit_msgs.msg import Grasp as MoveItGrasp
    from moveit_msgs.srv import GraspPlanning
except ImportError:
    MoveItGrasp = GraspPlanning = None


class GraspProposalNode(Node):
    """Grasp proposals from a trained actor over ROS."""

    def __init__(self, **kwargs):
        super().__init__('grasp_proposal', **kwargs)
        self._declare_parameters()
        self.camera = geometry.CameraModel(
            pixel_size=self._param('pixel_size'), camera_height=self._param('camera_height'),
            frame_id=self._param('camera_frame'))
        self.top_down = camera_geometry.top_down_mapping(self.camera)
        self.table_frame = self._param('table_frame')
        self.workspace = camera_geometry.Workspace(
            self._param('workspace_center_x'), self._param('workspace_center_y'),
            self._param('workspace_size'))
        self.latest_camera_info = None
        self.opening_px = float(self._param('gripper_opening_px'))
        self.max_grasps = int(self._param('max_grasps'))
        # one thread more than the serving group may use: camera frames, model swaps and
        # parameter changes never wait behind requests
        self.executor_threads = self._param('serving_threads') + 1
        self.latest_image = None
        self.first_frame = threading.Event()
        self.tf_buffer = Buffer()
        self.tf_listener = TransformListener(self.tf_buffer, self)
        self._settings()  # refuse bad default num_grasps / reject_fraction / ranking now
        markers.grasp_colours(self._param('colour_by'), [], [])
        configure_threads(self._param('torch_threads'))
        checkpoint = self._param('checkpoint')
        self.proposer = Proposer.from_checkpoint(checkpoint or None)
        self.get_logger().info(f'loaded model {self._model_name(checkpoint)}')
        workers = self._param('proposal_workers')
        self.pool = (ProposerPool(self.proposer, workers, self._param('torch_threads'))
                     if workers else None)
        if self._param('warmup'):
            self._warm_up()
        self.add_on_set_parameters_callback(self.parameters_callback)

        size = self.camera.pixel_size
        gripper = markers.GripperSize(
            aperture=self.opening_px * size,
            claw_width=geometry.default_claw_width_px() * size,
            claw_thickness=geometry.default_claw_thickness_px() * size)
        self.display = ProposalDisplay(self, self.camera, gripper, self._param('display_rate'))
        inputs = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Image, CAMERA_TOPIC, self.image_callback,
                                 qos_profile_sensor_data, callback_group=inputs)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        if self.table_frame:
            self.create_subscription(CameraInfo, 'camera/camera_info', self.camera_info_callback,
                                     qos_profile_sensor_data, callback_group=inputs)
        self.create_subscription(String, 'checkpoint', self.checkpoint_callback, latched,
                                 callback_group=inputs)
        serving = LimitedCallbackGroup(self._param('serving_threads'))
        self.create_service(ProposeGrasps, 'propose_grasps', self.propose_grasps_callback,
                            qos_profile=self.service_qos(), callback_group=serving)
        if self._param('moveit_grasp_planning'):
            if GraspPlanning is None:
                self.get_logger().warning('moveit_grasp_planning is set but moveit_msgs is not '
                                       'installed: plan_grasps is not served')
            else:
                self.create_service(GraspPlanning, 'plan_grasps', self.plan_grasps_callback,
                                    qos_profile=self.service_qos(), callback_group=serving)
        self.get_logger().info('ready: propose_grasps')

    def _declare_parameters(self):
        defaults = requests.ProposalSettings()
        self.declare_parameter('checkpoint', '', descriptor(
            'model or training checkpoint to load; empty = the bundled model '
            f'(share/fga_ros/{"/".join(BUNDLED_MODEL)}); setting it reloads'))
        self.declare_parameter('num_grasps', defaults.num_grasps, descriptor(
            'grasps returned when a request says num_grasps: 0',
            int_range=(1, MAX_GRASPS)))
        self.declare_parameter('reject_fraction', defaults.reject_fraction, descriptor(
            'share of samples rejected as lowest KDE density when a request says -1',
            float_range=(0.0, 0.99)))
        self.declare_parameter('ranking', defaults.ranking, descriptor(
            'ranking when a request leaves it empty: ' + ', '.join(RANKINGS)))
        self._declare_proposal_parameters()
        self.declare_parameter('max_grasps', 1024, descriptor(
            'largest num_grasps a request may ask for', read_only=True,
            int_range=(1, MAX_GRASPS)))
        self.declare_parameter('colour_by', markers.COLOUR_MODES[0], descriptor(
            'colours of the markers and the annotated image: ' + ', '.join(markers.COLOUR_MODES)))
        declare_camera_geometry(self)
        self.declare_parameter('camera_frame', geometry.DEFAULT_CAMERA_FRAME, descriptor(
            'frame of the grasp poses when the image header names none', read_only=True))
        self._declare_camera_parameters()
        self.declare_parameter('gripper_opening_px', geometry.default_opening_px(), descriptor(
            'distance between the open claws, px (sets opening_width and the markers)',
            read_only=True, float_range=(1.0, 128.0)))
        self.declare_parameter('warmup', True, descriptor(
            'run one proposal at start so that the first request is not slow', read_only=True))
        self.declare_parameter('image_wait', 5.0, descriptor(
            'a request without an image waits up to this long for the first camera frame, s',
            float_range=(0.0, 60.0)))
        self.declare_parameter('serving_threads', SERVING_THREADS, descriptor(
            'requests handled at once (executor threads of the service)', read_only=True,
            int_range=(1, 64)))
        self.declare_parameter('proposal_workers', PROPOSAL_WORKERS, descriptor(
            "processes that run the proposals, each with a copy of the model (0: the node's "
            'own process)', read_only=True, int_range=(0, 64)))
        self.declare_parameter('torch_threads', TORCH_THREADS, descriptor(
            "torch intra-op threads of one proposal (0: torch's default, one per core)",
            read_only=True, int_range=(0, 64)))
        self.declare_parameter('service_queue_depth', 1024, descriptor(
            'requests the service queue holds while all serving threads are busy (QoS depth '
            'of propose_grasps; each waiting request keeps its image)', read_only=True,
            int_range=(1, 65536)))
        self.declare_parameter('display_rate', 10.0, descriptor(
            'most updates per second of the RViz topics (markers, poses, image), Hz',
            read_only=True, float_range=(0.1, 100.0)))
        self.declare_parameter('moveit_grasp_planning', False, descriptor(
            'also serve moveit_msgs/srv/GraspPlanning on plan_grasps (needs moveit_msgs)',
            read_only=True))

    def _declare_proposal_parameters(self):
        """How much a proposal samples and scores, its floor and its time budget."""
        self.declare_parameter('oversample', OVERSAMPLE, descriptor(
            'actor samples drawn per returned grasp; the critic keeps the best',
            int_range=(1, MAX_OVERSAMPLE)))
        self.declare_parameter('min_candidates', MIN_CANDIDATES, descriptor(
            'actor samples drawn at least per request (fewer: faster, rare ways of holding '
            'missed more often)', int_range=(1, MAX_SAMPLES)))
        self.declare_parameter('explore', EXPLORE, descriptor(
            'grasps centred on the object the critic scores per request besides the actor '
            'samples (0: none; fewer: faster, unseen objects covered less)',
            int_range=(0, MAX_SAMPLES)))
        self.declare_parameter('score_floor', SCORE_FLOOR, descriptor(
            'calibrated score below which a grasp ranks last, and below which the best '
            'candidate makes a request answer success = false', float_range=(0.0, 1.0)))
        self.declare_parameter('constraint_time_budget', TIME_BUDGET_S, descriptor(
            'a constrained request draws no further round of samples after this long, s',
            float_range=(0.01, 60.0)))

    def _declare_camera_parameters(self):
        """table_frame and the workspace: which cameras the node maps (any, or top-down)."""
        workspace = camera_geometry.default_workspace()
        self.declare_parameter('table_frame', '', descriptor(
            'frame of the table plane (z up); empty = images are 128 x 128 top-down views '
            '(pixel_size, camera_height); set = any camera, from camera/camera_info and TF '
            'table_frame -> image frame', read_only=True))
        self.declare_parameter('workspace_center_x', workspace.center_x, descriptor(
            'x of the workspace centre in table_frame, m', read_only=True,
            float_range=(-100.0, 100.0)))
        self.declare_parameter('workspace_center_y', workspace.center_y, descriptor(
            'y of the workspace centre in table_frame, m', read_only=True,
            float_range=(-100.0, 100.0)))
        self.declare_parameter('workspace_size', workspace.size, descriptor(
            'side of the table square rectified into the 128 x 128 model input, m (default: '
            "the training images' 128 px x pixel size)", read_only=True,
            float_range=(0.01, 10.0)))

    def _param(self, name):
        return self.get_parameter(name).value

    def service_qos(self):
        """Reliable, keep last ``service_queue_depth``: a burst of that many requests waits."""
        return QoSProfile(depth=self._param('service_queue_depth'),
                          history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)

    def destroy_node(self):
        """Stop the display thread and the proposal workers, then destroy the node."""
        if hasattr(self, 'display'):
            self.display.close()
        pool = getattr(self, 'pool', None)
        if pool is not None:
            pool.close()
        return super().destroy_node()

    @staticmethod
    def _model_name(checkpoint):
        return checkpoint or f'share/fga_ros/{"/".join(BUNDLED_MODEL)} (bundled)'

    def _warm_up(self):
        """One proposal on a simulator image (in every worker), so that the first request
        is not slow."""
        rgb = sim.render(sim.make_scene(sim.train_shapes()[0], 0))
        kwargs = self._proposal_kwargs(self._settings())
        if self.pool is None:
            times = [self.proposer.propose(rgb, **kwargs).inference_ms]
        else:
            times = self.pool.warm_up(rgb, **kwargs)
        where = '' if self.pool is None else f' ({len(times)} worker processes)'
        self.get_logger().info('warm-up proposal took '
                               + ', '.join(f'{t:.0f}' for t in times) + f' ms{where}')

    def _proposal_kwargs(self, settings, constraints=None):
        """``Proposer.propose`` arguments: the request's settings and constraints and the
        node's oversample, candidate counts, floor and time budget."""
        return {'num_grasps': settings.num_grasps, 'reject_fraction': settings.reject_fraction,
                'ranking': settings.ranking, 'oversample': self._param('oversample'),
                'min_candidates': self._param('min_candidates'),
                'explore': self._param('explore'), 'constraints': constraints,
                'floor': self._param('score_floor'),
                'time_budget': self._param('constraint_time_budget')}

    def _run_proposal(self, rgb, settings, constraints=None):
        """Proposal for an RGB image (in a worker process when the node has them)."""
        kwargs = self._proposal_kwargs(settings, constraints)
        if self.pool is None:
            return self.proposer.propose(rgb, **kwargs)
        return self.pool.propose(rgb, **kwargs)

    def _table_pixels(self, image_frame, camera):
        """``to_pixels`` of ``requests.resolve_constraints``: TF into the image's frame, then
        onto the table plane; an unknown frame is a RequestError naming the field."""
        def to_pixels(name, frame, points):
            if frame and frame != image_frame:
                try:
                    tf = self.tf_buffer.lookup_transform(image_frame, frame, Time())
                except TransformException as error:
                    raise requests.RequestError(
                        f'{name}.header.frame_id: no transform from {frame!r} to the image '
                        f'frame {image_frame!r} ({type(error).__name__})') from None
                t, q = tf.transform.translation, tf.transform.rotation
                points = geometry.transform_points(points, (t.x, t.y, t.z),
                                                   (q.x, q.y, q.z, q.w))
            return camera.table_pixels(points)
        return to_pixels

    def _settings(self):
        """The node's default ProposalSettings (parameters num_grasps, reject_fraction,
        ranking); raises RequestError naming a bad one."""
        settings = requests.ProposalSettings(
            self._param('num_grasps'), self._param('reject_fraction'), self._param('ranking'))
        requests.check_num_grasps(settings.num_grasps, self.max_grasps)
        return settings

    # -- parameters and inputs ------------------------------------------------------------------

    def parameters_callback(self, params):
        """Validate num_grasps, reject_fraction, ranking, colour_by; reload on checkpoint."""
        values = {p.name: p.value for p in params}
        try:
            settings = requests.ProposalSettings(
                values.get('num_grasps', self._param('num_grasps')),
                values.get('reject_fraction', self._param('reject_fraction')),
                values.get('ranking', self._param('ranking')))
            requests.check_num_grasps(settings.num_grasps, self.max_grasps)
            markers.grasp_colours(values.get('colour_by', self._param('colour_by')), [], [])
            if 'checkpoint' in values:
                self._reload(values['checkpoint'])
        except Exception as error:  # noqa: BLE001 - any load failure is a refused change
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _reload(self, checkpoint):
        """Swap the model atomically (running requests finish on the old one)."""
        (self.proposer if self.pool is None else self.pool).reload(checkpoint or None)
        self.get_logger().info(f'loaded model {self._model_name(checkpoint)}')

    def checkpoint_callback(self, msg):
        try:
            self._reload(msg.data)
        except Exception as error:  # noqa: BLE001 - keep serving the current model
            self.get_logger().error(f'cannot load {msg.data!r}: {type(error).__name__}: '
                                    f'{error}; still serving the previous model')

    def camera_info_callback(self, msg):
        self.latest_camera_info = msg

    def image_callback(self, msg):
        self.latest_image = msg
        self.first_frame.set()

    # -- proposals ------------------------------------------------------------------------------

    def _camera_for(self, msg):
        """The CameraMapping of an image: the top-down camera, or (table_frame set) the
        latest camera_info and TF table_frame -> the image's frame; raises ValueError naming
        what is missing or wrong."""
        if not self.table_frame:
            return self.top_down
        info = self.latest_camera_info
        if info is None:
            raise requests.RequestError(
                f'table_frame is {self.table_frame!r}, but no camera_info arrived on '
                'camera/camera_info yet: the camera model is unknown')
        frame = msg.header.frame_id or info.header.frame_id or self.camera.frame_id
        intrinsics = camera_geometry.CameraIntrinsics.from_fields(
            info.width, info.height, info.k, info.distortion_model, info.d)
        try:
            tf = self.tf_buffer.lookup_transform(frame, self.table_frame, Time())
        except TransformException as error:
            raise requests.RequestError(
                f'no transform from table frame {self.table_frame!r} to the image frame '
                f'{frame!r} ({type(error).__name__}: {error})') from None
        t, q = tf.transform.translation, tf.transform.rotation
        pose = camera_geometry.TableToCamera.from_fields((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))
        return camera_geometry.camera_mapping(intrinsics, pose, self.workspace, frame,
                                              self.table_frame)

    def _propose(self, msg, settings, request=None, constraints=None):
        """(rgb, header dict, proposal, camera) for an Image message and the constraints of a
        ProposeGrasps ``request``, or of ``constraints(image frame, camera)`` (both None:
        none): ``rgb`` is the model input, ``camera`` the CameraMapping of the grasp poses;
        raises ValueError on bad input."""
        if msg is None or image.is_empty(msg):
            wait = self._param('image_wait')
            self.first_frame.wait(wait)
            msg = self.latest_image
            if msg is None:
                raise requests.RequestError(
                    f'the request has no image and no frame arrived on camera/image_raw '
                    f'within {wait:g} s (parameter image_wait)')
        camera = self._camera_for(msg)
        if camera is self.top_down:
            rgb = image.image_to_rgb(msg)
        else:
            rgb = camera.warp(image.image_to_rgb(msg, msg.height, msg.width))
        header = {'stamp': msg.header.stamp, 'frame_id': msg.header.frame_id or camera.frame_id}
        if request is not None:
            task = requests.resolve_constraints(
                request, self._table_pixels(header['frame_id'], camera))
        else:
            task = None if constraints is None else constraints(header['frame_id'], camera)
        proposal = self._run_proposal(rgb, settings, task)
        return rgb, header, proposal, camera

    def propose_grasps_callback(self, request, response):
        start = time.monotonic()
        try:
            settings = requests.resolve_proposal_request(
                request, self._settings(), self.max_grasps)
            rgb, header, proposal, camera = self._propose(request.image, settings, request)
            if proposal.abstained:
                return to_msg(type(response), grasps.failure_response_fields(
                    proposal.message, proposal))
            fields = grasps.proposal_response_fields(proposal, camera, header, self.opening_px)
            response = to_msg(type(response), fields)
        except ValueError as error:
            return to_msg(type(response), grasps.failure_response_fields(str(error)))
        except Exception as error:  # noqa: BLE001 - answer, never crash the node
            self.get_logger().error(f'propose_grasps failed: {type(error).__name__}: {error}')
            return to_msg(type(response), grasps.failure_response_fields(
                f'internal error while proposing: {type(error).__name__}: {error}'))
        self.display.show(rgb, header, proposal, self._param('colour_by'),
                          None if camera is self.top_down else camera)
        self.get_logger().debug(
            f'propose_grasps: {len(response.grasps)} grasps in '
            f'{1000 * (time.monotonic() - start):.1f} ms')
        return response

    def plan_grasps_callback(self, request, response):
        """moveit_msgs/srv/GraspPlanning on the latest camera frame, default settings.

        The request's ``target`` footprint is the region the grasp centres lie in and its
        ``movable_obstacles`` footprints are keep-out regions (:mod:`fga_ros.bridge.moveit`).
        A bad request or an abstaining proposal answers FAILURE with no grasps.
        """
        try:
            def constraints(frame, camera):
                return moveit.grasp_planning_constraints(request,
                                                         self._table_pixels(frame, camera))
            rgb, header, proposal, camera = self._propose(None, self._settings(),
                                                          constraints=constraints)
            if proposal.abstained:
                raise requests.RequestError(proposal.message)
            arrays = grasps.proposal_arrays(proposal)
            poses = camera.pose_fields(arrays['actions'])
            response.grasps = [to_msg(MoveItGrasp, {
                'id': f'fga_{rank}',
                'grasp_pose': {'header': header, 'pose': pose},
                'grasp_quality': float(score),
            }) for rank, (pose, score) in enumerate(zip(poses, arrays['scores']))]
            response.error_code.val = response.error_code.SUCCESS
        except Exception as error:  # noqa: BLE001 - answer, never crash the node
            self.get_logger().error(f'plan_grasps failed: {error}')
            response.error_code.val = response.error_code.FAILURE
        return response


def main(args=None):
    return run(GraspProposalNode, args, multithreaded=True)


if __name__ == '__main__':
    raise SystemExit(main())
