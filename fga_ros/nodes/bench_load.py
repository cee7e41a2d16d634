"""Load benchmark of ``propose_grasps``: concurrent clients for a fixed time (needs ROS).

Start ``ros2 launch fga_ros propose.launch.py``, then ``ros2 run fga_ros bench_propose_load``
(the executable ``scripts/bench_propose_load`` calls :func:`main`). Each client sends a
request with a rendered simulator image (so no camera is needed), waits for the answer and
sends the next one. Prints throughput and latency percentiles.
"""

import argparse
import threading
import time

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import Image

from fga_ros import sim
from fga_ros.bridge.geometry import DEFAULT_CAMERA_FRAME
from fga_ros.bridge.image import rgb_image_fields
from fga_ros.nodes.common import to_msg
from fga_ros.srv import ProposeGrasps

DRAIN_TIMEOUT = 10.0
"""Seconds to wait, after the load, for the answer a client still has in flight."""


def client_loop(client, request, stop, latencies, failures, lock):
    """Send requests back to back until ``stop``; record latencies in s.

    At ``stop`` the answer in flight is awaited (not counted) or dropped: a response that
    reached a client after the node was destroyed would fail in the executor.
    """
    while not stop.is_set():
        done = threading.Event()
        start = time.perf_counter()
        future = client.call_async(request)
        future.add_done_callback(lambda _, event=done: event.set())
        while not done.wait(0.1):
            if stop.is_set():
                if not done.wait(DRAIN_TIMEOUT):
                    client.remove_pending_request(future)
                return
        response = future.result()
        with lock:
            if response is not None and response.success:
                latencies.append(time.perf_counter() - start)
            else:
                failures.append(response.message if response is not None else 'no response')


def spin(executor):
    """Spin ``executor`` until it or ROS is shut down (thread target)."""
    try:
        executor.spin()
    except ExternalShutdownException:
        pass


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clients', type=int, default=20, help='concurrent clients (>= 1)')
    parser.add_argument('--seconds', type=float, default=60.0, help='duration of the load')
    parser.add_argument('--num-grasps', type=int, default=0,
                        help="grasps per request (0: the node's num_grasps parameter)")
    parser.add_argument('--service', default='propose_grasps', help='service name')
    args = parser.parse_args(argv)
    if args.clients < 1 or not args.seconds > 0:
        parser.error('--clients must be >= 1 and --seconds > 0')
    return args


def main(argv=None):
    args = parse_args(remove_ros_args()[1:] if argv is None else argv)
    rclpy.init()
    stop = threading.Event()
    node = Node('bench_propose_load')
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=spin, args=(executor,), daemon=True)
    spinner.start()
    try:
        clients = [node.create_client(ProposeGrasps, args.service) for _ in range(args.clients)]
        if not clients[0].wait_for_service(timeout_sec=30.0):
            print(f'service {args.service} is not available')
            return 1
        header = {'stamp': node.get_clock().now().to_msg(),
                  'frame_id': DEFAULT_CAMERA_FRAME}
        rgb = sim.render(sim.make_scene(sim.train_shapes()[0], 1))
        image = to_msg(Image, rgb_image_fields(rgb, header))
        request = ProposeGrasps.Request(image=image, num_grasps=args.num_grasps)
        lock = threading.Lock()
        latencies, failures = [], []
        threads = [threading.Thread(target=client_loop, daemon=True,
                                    args=(c, request, stop, latencies, failures, lock))
                   for c in clients]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        elapsed = time.perf_counter() - start
        for thread in threads:
            thread.join()
        lat = np.array(latencies) * 1000.0
        print(f'{args.clients} clients, {elapsed:.1f} s: {len(lat)} answers '
              f'({len(lat) / elapsed:.1f} req/s), {len(failures)} failures')
        if len(lat):
            print(f'latency ms: p50 {np.percentile(lat, 50):.1f}  p90 '
                  f'{np.percentile(lat, 90):.1f}  p99 {np.percentile(lat, 99):.1f}  '
                  f'max {lat.max():.1f}')
        if failures:
            print(f'first failure: {failures[0]}')
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        stop.set()
        executor.shutdown()
        spinner.join(timeout=DRAIN_TIMEOUT)  # no spin_once may touch the destroyed node
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    raise SystemExit(main())
