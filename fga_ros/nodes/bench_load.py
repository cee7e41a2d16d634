"""Load benchmark of ``propose_grasps``: concurrent clients for a fixed time (needs ROS).

Start ``ros2 launch fga_ros propose.launch.py``, then ``ros2 run fga_ros bench_propose_load``
(the executable ``scripts/bench_propose_load`` calls :func:`main`). Each of ``--clients``
clients sends a request with a rendered simulator image (so no camera is needed), waits for
the answer and sends the next one. A call not answered within ``--timeout`` s is counted
lost (and the client moves on); an answer with success = false is counted failed.

Reported: answered, failed and lost calls; throughput (answered calls/s); round-trip
latency p50 / p90 / p99 / max; the node's own ``inference_time`` p50 from the answers; and
the in-process inference time of the same model, image and settings, measured in this
process right before and after the load (while the node is idle), with the ratio
round trip / in-process at p50: the cost of ROS. Exit status 1 when a call was lost or
failed.

``--profile`` instead times each stage of one call in this process (no node needed):
request deserialisation, image conversion, inference, clustering and ranking, response
building and serialisation, the client's deserialisation, and, off the response path, the
display messages.
"""

import argparse
import contextlib
import dataclasses
import sys
import time

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_services_default
from rclpy.serialization import deserialize_message, serialize_message
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import Image

from fga_ros import sim
from fga_ros.bridge import annotate, camera_geometry, cloud, geometry, grasps, image, markers
from fga_ros.bridge.geometry import DEFAULT_CAMERA_FRAME
from fga_ros.bridge.image import rgb_image_fields
from fga_ros.bridge.requests import ProposalSettings
from fga_ros.core.common.tensors import configure_threads
from fga_ros.core.inference.proposer import Proposer
from fga_ros.nodes.common import to_msg
from fga_ros.nodes.grasp_proposal_node import TORCH_THREADS
from fga_ros.srv import ProposeGrasps

CLIENT_QUEUE_DEPTH = 100
"""Response queue of each client. On Cyclone DDS every client of a service receives every
response and keeps its own; with rclpy's default depth (10) a client that takes its
answers later than ten others arrive loses its own (measured: 23 of 4,859 calls lost with
20 clients in one process, none with depth 100)."""

INPROCESS_CALLS = 200
"""In-process proposals timed before and after the load (after 20 untimed ones)."""


@dataclasses.dataclass
class Tally:
    """What happened to the calls of all clients."""

    latencies: list = dataclasses.field(default_factory=list)  # s, answered calls
    inference: list = dataclasses.field(default_factory=list)  # s, the node's inference_time
    failures: list = dataclasses.field(default_factory=list)  # messages of success = false
    lost: int = 0


class LoadClient:
    """One client: a request in flight at a time, the next sent from the answer's callback."""

    def __init__(self, node, service, request, tally, qos, timeout):
        self.client = node.create_client(ProposeGrasps, service, qos_profile=qos)
        self.request, self.tally, self.timeout = request, tally, timeout
        self.future, self.start, self.running = None, 0.0, False

    def send(self):
        if not self.running:
            self.future = None
            return
        self.start = time.perf_counter()
        self.future = self.client.call_async(self.request)
        self.future.add_done_callback(self._done)

    def _done(self, future):
        if future is not self.future:  # answered after it was counted lost
            return
        elapsed = time.perf_counter() - self.start
        response = future.result()
        if response is not None and response.success:
            self.tally.latencies.append(elapsed)
            self.tally.inference.append(response.inference_time)
        else:
            self.tally.failures.append(response.message if response is not None else 'none')
        self.send()

    def check_timeout(self, now):
        """Count the call in flight lost when it is older than the time-out; send the next."""
        if self.future is not None and not self.future.done() and \
                now - self.start > self.timeout:
            self.client.remove_pending_request(self.future)
            self.future = None
            self.tally.lost += 1
            self.send()


def inprocess_times(proposer, rgb, settings, calls=INPROCESS_CALLS):
    """Wall times (s) of ``calls`` in-process proposals after 20 untimed ones."""
    def once():
        proposer.propose(rgb, settings.num_grasps, reject_fraction=settings.reject_fraction,
                         ranking=settings.ranking)
    for _ in range(20):
        once()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return times


def percentiles(values_s):
    """p50, p90, p99, max in ms."""
    ms = np.asarray(values_s) * 1e3
    return (*np.percentile(ms, [50, 90, 99]), ms.max())


def parse_args(argv):
    defaults = ProposalSettings()
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--clients', type=int, default=20, help='concurrent clients (>= 1)')
    parser.add_argument('--seconds', type=float, default=60.0, help='duration of the load')
    parser.add_argument('--num-grasps', type=int, default=defaults.num_grasps,
                        help='grasps per request')
    parser.add_argument('--ranking', default=defaults.ranking, help='ranking of the requests')
    parser.add_argument('--timeout', type=float, default=10.0,
                        help='s; a call not answered within it is counted lost')
    parser.add_argument('--client-queue-depth', type=int, default=CLIENT_QUEUE_DEPTH,
                        help="QoS depth of each client's response queue; rclpy's default, "
                        f'{qos_profile_services_default.depth}, loses answers under load on '
                        'Cyclone DDS (every client receives every answer)')
    parser.add_argument('--checkpoint', default=None,
                        help="the node's model, for the in-process time (none: the bundled "
                        'model)')
    parser.add_argument('--service', default='propose_grasps', help='service name')
    parser.add_argument('--torch-threads', type=int, default=TORCH_THREADS,
                        help="torch threads of the in-process proposals (the node's default)")
    parser.add_argument('--profile', type=int, default=0, metavar='CALLS',
                        help='instead of the load: time each stage of this many calls')
    args = parser.parse_args(argv)
    if args.clients < 1 or not args.seconds > 0 or not args.timeout > 0 or \
            args.client_queue_depth < 1:
        parser.error('--clients and --client-queue-depth must be >= 1, --seconds and '
                     '--timeout > 0')
    return args


def run_load(node, executor, args, request):
    """Drive the clients for ``args.seconds``; returns (Tally, elapsed s)."""
    tally = Tally()
    qos = QoSProfile(depth=args.client_queue_depth, history=qos_profile_services_default.history,
                     reliability=qos_profile_services_default.reliability,
                     durability=qos_profile_services_default.durability)
    clients = [LoadClient(node, args.service, request, tally, qos, args.timeout)
               for _ in range(args.clients)]
    if not all(c.client.wait_for_service(timeout_sec=30.0) for c in clients):
        raise RuntimeError(f'service {args.service} is not available')
    node.create_timer(0.1, lambda: [c.check_timeout(time.perf_counter()) for c in clients])
    start = time.perf_counter()
    for client in clients:
        client.running = True
        client.send()
    while time.perf_counter() - start < args.seconds:
        executor.spin_once(timeout_sec=0.1)
    for client in clients:
        client.running = False  # no new calls; the ones in flight may still finish
    drain_end = time.perf_counter() + args.timeout
    while any(c.future is not None for c in clients) and time.perf_counter() < drain_end:
        executor.spin_once(timeout_sec=0.1)
    elapsed = time.perf_counter() - start
    for client in clients:
        if client.future is not None:
            client.check_timeout(float('inf'))
    return tally, elapsed


def report(args, tally, elapsed, before, after):
    answered = len(tally.latencies)
    print(f'{args.clients} clients x {args.seconds:g} s, {args.num_grasps} grasps, '
          f'time-out {args.timeout:g} s, client queue depth {args.client_queue_depth}: '
          f'{answered} answered, {len(tally.failures)} failed, {tally.lost} lost '
          f'({elapsed:.1f} s incl. the last answers)')
    print(f'throughput: {answered / elapsed:.1f} answered calls/s')
    inprocess = before + after
    p50_in = percentiles(inprocess)[0]
    print('in-process inference ms (this process, node idle): p50 {:.2f}  p90 {:.2f}  '
          'p99 {:.2f}  max {:.2f}'.format(*percentiles(inprocess)),
          f'(before {percentiles(before)[0]:.2f}, after {percentiles(after)[0]:.2f})')
    if answered:
        p50 = percentiles(tally.latencies)[0]
        print('round trip ms: p50 {:.2f}  p90 {:.2f}  p99 {:.2f}  max {:.2f}'.format(
            *percentiles(tally.latencies)))
        print('node inference_time ms: p50 {:.2f}  p90 {:.2f}  p99 {:.2f}  max {:.2f}'.format(
            *percentiles(tally.inference)))
        print(f'round trip / in-process inference at p50: {p50 / p50_in:.2f}')
    if tally.failures:
        print(f'first failure: {tally.failures[0]}')


@contextlib.contextmanager
def timed_finish(times):
    """Time the clustering and ranking step of ``Proposer.propose`` (``finish_proposal``)."""
    module = sys.modules[Proposer.__module__]
    original = module.finish_proposal

    def finish(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - start)
    module.finish_proposal = finish
    try:
        yield
    finally:
        module.finish_proposal = original


class Stages(dict):
    """Wall times (s) per stage name, in the order the stages were first timed."""

    @contextlib.contextmanager
    def time(self, name):
        start = time.perf_counter()
        yield
        self.setdefault(name, []).append(time.perf_counter() - start)


def time_display(stages, pixels, proposal, camera, model, header, gripper):
    """Time building and serialising the display messages of one proposal (``camera``: the
    top-down ``CameraMapping`` of ``model``, the node's ``CameraModel``)."""
    from geometry_msgs.msg import PoseArray
    from sensor_msgs.msg import PointCloud2
    from visualization_msgs.msg import MarkerArray

    size = camera.pixel_size
    arrays = grasps.proposal_arrays(proposal)
    poses = camera.pose_fields(arrays['actions'])
    colours = markers.grasp_colours(markers.COLOUR_MODES[0], arrays['scores'],
                                    arrays['cluster_ids'])
    with stages.time('display: markers'):
        serialize_message(to_msg(MarkerArray, {'markers': markers.proposal_markers(
            poses, colours, arrays['scores'], header, gripper, size)}))
    with stages.time('display: poses'):
        serialize_message(to_msg(PoseArray, {'header': header, 'poses': poses}))
    with stages.time('display: annotated image'):
        drawn = annotate.draw_grasps(pixels, arrays['actions'][::-1], colours[::-1],
                                     gripper.aperture / size, gripper.claw_width / size)
        serialize_message(to_msg(Image, image.rgb_image_fields(drawn, header)))
    with stages.time('display: table cloud (new images only)'):
        serialize_message(to_msg(PointCloud2, cloud.table_cloud_fields(pixels, model, header)))


def profile(proposer, rgb, settings, calls):
    """Per-stage wall times (s) of ``calls`` calls, in the order a call goes through them."""
    model = geometry.CameraModel(geometry.default_pixel_size(),
                                 geometry.default_camera_height())
    camera = camera_geometry.top_down_mapping(model)  # what the node answers with
    size = camera.pixel_size
    gripper = markers.GripperSize(geometry.default_opening_px() * size,
                                  geometry.default_claw_width_px() * size,
                                  geometry.default_claw_thickness_px() * size)
    header = {'stamp': {'sec': 1, 'nanosec': 0}, 'frame_id': DEFAULT_CAMERA_FRAME}
    request = ProposeGrasps.Request(image=to_msg(Image, rgb_image_fields(rgb, header)),
                                    num_grasps=settings.num_grasps, ranking=settings.ranking)
    wire = serialize_message(request)
    stages, finish = Stages(), []
    inprocess_times(proposer, rgb, settings, calls=0)  # warm up
    with timed_finish(finish):
        for _ in range(calls):
            with stages.time('request deserialisation (transport)'):
                msg = deserialize_message(wire, ProposeGrasps.Request)
            with stages.time('image message -> numpy'):
                pixels = image.image_to_rgb(msg.image)
            with stages.time('proposal (inference + clustering)'):
                proposal = proposer.propose(
                    pixels, settings.num_grasps, reject_fraction=settings.reject_fraction,
                    ranking=settings.ranking)
            with stages.time('response message building'):
                response = to_msg(ProposeGrasps.Response, grasps.proposal_response_fields(
                    proposal, camera, header, geometry.default_opening_px()))
            with stages.time('response serialisation (transport)'):
                data = serialize_message(response)
            with stages.time('client deserialisation (transport)'):
                deserialize_message(data, ProposeGrasps.Response)
            time_display(stages, pixels, proposal, camera, model, header, gripper)
    total = stages['proposal (inference + clustering)']
    stages['  of which clustering + ranking'] = finish
    stages['  of which inference (network, density)'] = list(np.subtract(total, finish))
    return stages


def print_profile(stages, calls, settings):
    print(f'{calls} calls, {settings.num_grasps} grasps, ranking {settings.ranking}: '
          'ms per call')
    print(f'{"stage":<42} {"p50":>7} {"p90":>7}')
    for name, times in stages.items():
        p50, p90 = percentiles(times)[:2]
        print(f'{name:<42} {p50:7.3f} {p90:7.3f}')


def main(argv=None):
    args = parse_args(remove_ros_args()[1:] if argv is None else argv)
    settings = ProposalSettings(args.num_grasps, ranking=args.ranking)
    configure_threads(args.torch_threads)
    proposer = Proposer.from_checkpoint(args.checkpoint)
    rgb = sim.render(sim.make_scene(sim.train_shapes()[0], 1))
    if args.profile:
        print_profile(profile(proposer, rgb, settings, args.profile), args.profile, settings)
        return 0
    before = inprocess_times(proposer, rgb, settings)
    rclpy.init()
    node = Node('bench_propose_load')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        header = {'stamp': node.get_clock().now().to_msg(), 'frame_id': DEFAULT_CAMERA_FRAME}
        request = ProposeGrasps.Request(image=to_msg(Image, rgb_image_fields(rgb, header)),
                                        num_grasps=settings.num_grasps,
                                        ranking=settings.ranking)
        tally, elapsed = run_load(node, executor, args, request)
    except RuntimeError as error:
        print(error)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    after = inprocess_times(proposer, rgb, settings)
    report(args, tally, elapsed, before, after)
    return 1 if tally.lost or tally.failures else 0


if __name__ == '__main__':
    raise SystemExit(main())
