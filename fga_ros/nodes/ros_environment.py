"""``Environment`` (fga_ros.core.env) over ROS: one or more grasp_sim_node namespaces.

``new_state`` asks the next simulator (round robin over ``namespaces``) for a new scene and
returns the image from its answer (or, for a camera that leaves it empty, the first camera
frame received after the request); ``try_grasp`` calls ``execute_grasp`` on the simulator of
the current scene with its scene id; ``demonstrations`` calls ``get_demonstrations``.
All calls are made from the learning thread while an executor spins the node elsewhere.
"""

import threading
import time

import numpy as np
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from fga_ros.bridge import demos, image
from fga_ros.srv import ExecuteGrasp, GetDemonstrations, NewScene

DEMO_CHUNK_STATES = 16
"""Scenes per get_demonstrations call: short calls (a few seconds of simulator time each)
stay well inside service_timeout and leave the simulator's camera responsive."""


class EnvironmentStoppedError(RuntimeError):
    """The environment was stopped (or ROS shut down) while a call was waiting."""


def join_name(namespace: str, name: str) -> str:
    """Relative name ``name`` under ``namespace`` ('' = the node's own namespace)."""
    namespace = namespace.strip('/')
    return f'{namespace}/{name}' if namespace else name


class Simulator:
    """Clients and the camera subscription of one simulator namespace."""

    def __init__(self, node, namespace):
        self.namespace = namespace or '(node namespace)'
        self.new_scene = node.create_client(NewScene, join_name(namespace, 'new_scene'))
        self.execute = node.create_client(ExecuteGrasp, join_name(namespace, 'execute_grasp'))
        self.demos = node.create_client(
            GetDemonstrations, join_name(namespace, 'get_demonstrations'))
        self.frame = None
        self.frame_time = 0.0
        self.frame_ready = threading.Condition()
        node.create_subscription(Image, join_name(namespace, 'camera/image_raw'),
                                 self.image_callback, qos_profile_sensor_data)

    def image_callback(self, msg):
        with self.frame_ready:
            self.frame, self.frame_time = msg, time.monotonic()
            self.frame_ready.notify_all()


class RosEnvironment:
    """The learning core's Environment over the simulator services of ``namespaces``.

    Args:
        node: the node that owns the clients (spun by an executor in another thread).
        namespaces: simulator namespaces, used round robin ('' = the node's own).
        timeout: seconds to wait for a service and for its answer.
        shapes: shape families ``new_state`` draws from, uniformly (as ``SimEnvironment``);
            empty: each simulator's ``shapes`` parameter decides.
        distortion: camera distortion of ``new_state`` scenes; '': the simulator's parameter.
        seed: seed of the shape choice.

    The demonstrations of ``get_demonstrations`` follow the simulators' own ``shapes`` and
    ``distortion`` parameters (the service has no such fields).
    """

    def __init__(self, node, namespaces, timeout: float, shapes=(), distortion='', seed=0):
        if not namespaces:
            raise ValueError('sim_namespaces must name at least one namespace ("" = own)')
        self.node = node
        self.timeout = float(timeout)
        self.shapes = tuple(shapes)
        self.distortion = distortion
        self.rng = np.random.default_rng(seed)
        self.sims = [Simulator(node, ns) for ns in namespaces]
        self.stopped = threading.Event()
        self.next_sim = 0
        self.current = None
        self.scene_id = 0

    def stop(self):
        """Make waiting and future calls raise EnvironmentStoppedError."""
        self.stopped.set()

    def _call(self, client, request):
        """Call a service from the learning thread; the node's executor completes the future.

        Raises:
            EnvironmentStoppedError: ``stop()`` or a ROS shutdown while waiting.
            TimeoutError: no service or no answer within ``timeout`` seconds.
        """
        deadline = time.monotonic() + self.timeout
        self._check(deadline, '')
        while not client.wait_for_service(timeout_sec=0.2):
            self._check(deadline, f'service {client.srv_name} is not available')
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        try:
            while not (done.wait(0.2) or future.done()):
                self._check(deadline, f'service {client.srv_name} did not answer')
        except (EnvironmentStoppedError, TimeoutError):
            client.remove_pending_request(future)
            raise
        return future.result()

    def _check(self, deadline, problem):
        if self.stopped.is_set() or not self.node.context.ok():
            raise EnvironmentStoppedError('the environment was stopped')
        if time.monotonic() > deadline:
            raise TimeoutError(f'{problem} within {self.timeout:g} s')

    def new_state(self):
        sim = self.sims[self.next_sim]
        self.next_sim = (self.next_sim + 1) % len(self.sims)
        asked = time.monotonic()
        shape = self.shapes[int(self.rng.integers(len(self.shapes)))] if self.shapes else ''
        response = self._call(sim.new_scene, NewScene.Request(
            shape=shape, seed=-1, distortion=self.distortion))
        if not response.success:
            raise RuntimeError(f'{sim.namespace}: new_scene failed: {response.message}')
        self.current, self.scene_id = sim, int(response.scene_id)
        if not image.is_empty(response.image):
            return image.image_to_rgb(response.image)
        return image.image_to_rgb(self._frame_after(sim, asked))

    def _frame_after(self, sim, asked):
        deadline = time.monotonic() + self.timeout
        with sim.frame_ready:
            while sim.frame is None or sim.frame_time <= asked:
                sim.frame_ready.wait(0.2)
                self._check(deadline, f'no camera frame from {sim.namespace}')
            return sim.frame

    def try_grasp(self, action):
        if self.current is None:
            raise RuntimeError('try_grasp called before new_state')
        x, y, angle = (float(v) for v in action)
        response = self._call(self.current.execute, ExecuteGrasp.Request(
            x=x, y=y, angle=angle, scene_id=self.scene_id))
        if not response.executed:
            raise RuntimeError(f'{self.current.namespace}: execute_grasp refused the action '
                               f'({x:.2f}, {y:.2f}, {angle:.3f}): {response.message}')
        return bool(response.success)

    def demonstrations(self, num_states, per_state, rng, imitation_fraction=None):
        """See ``Environment.demonstrations``; spread over the simulators in chunks.

        ``imitation_fraction`` None leaves the share to the simulator's default.
        """
        remaining, turn = int(num_states), 0
        fraction = -1.0 if imitation_fraction is None else float(imitation_fraction)
        while remaining > 0:
            chunk = min(remaining, DEMO_CHUNK_STATES)
            sim = self.sims[turn % len(self.sims)]
            turn += 1
            response = self._call(sim.demos, GetDemonstrations.Request(
                num_states=chunk, per_state=int(per_state),
                seed=int(rng.integers(0, 2**31 - 1)), imitation_fraction=fraction))
            if not response.success:
                raise RuntimeError(f'{sim.namespace}: get_demonstrations failed: '
                                   f'{response.message}')
            rgbs = [image.image_to_rgb(msg) for msg in response.images]
            yield from demos.unpack_demonstrations(rgbs, response.actions, response.labels)
            remaining -= chunk
