"""``Environment`` (fga_ros.core.common.env) over ROS: one or more grasp_sim_node namespaces.

``new_states(count)`` asks ``count`` simulators (the next ones, round robin over
``namespaces``) for a new scene each, all at once, and returns the images of their answers
(or, for a camera that leaves it empty, the first camera frame received after the request);
``try_grasps`` sends every grasp to ``execute_grasp`` of its scene's simulator with the
scene id, all at once, so the simulators work in parallel; ``demonstrations`` calls
``get_demonstrations`` on all simulators at once, in chunks. All calls are made from the
learning thread while an executor spins the node elsewhere.
"""

import threading
import time

import numpy as np
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from fga_ros.bridge import demos, image
from fga_ros.core.common.env import grasp_batch
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
        namespaces: simulator namespaces, used round robin ('' = the node's own); one scene
            at a time each, so ``new_states`` takes at most ``len(namespaces)`` at once.
        timeout: seconds to wait for the services and for their answers (per batch).
        shapes: shape families ``new_states`` draws from, uniformly (as ``SimEnvironment``);
            empty: each simulator's ``shapes`` parameter decides.
        distortion: camera distortion of ``new_states`` scenes; '': the simulator's parameter.
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
        self.current = []
        """(simulator, scene id) of each current scene, in ``new_states`` order."""

    def stop(self):
        """Make waiting and future calls raise EnvironmentStoppedError."""
        self.stopped.set()

    def _call_all(self, calls):
        """Call services from the learning thread, all at once; return the responses in order.

        ``calls`` is a list of (client, request); the node's executor completes the futures.

        Raises:
            EnvironmentStoppedError: ``stop()`` or a ROS shutdown while waiting.
            TimeoutError: a service missing, or an answer missing, after ``timeout`` seconds.
        """
        deadline = time.monotonic() + self.timeout
        self._check(deadline, '')
        for client in {id(c): c for c, _ in calls}.values():
            while not client.wait_for_service(timeout_sec=0.2):
                self._check(deadline, f'service {client.srv_name} is not available')
        pending = threading.Semaphore(0)
        futures = []
        for client, request in calls:
            future = client.call_async(request)
            future.add_done_callback(lambda _: pending.release())
            futures.append((client, future))
        try:
            for client, future in futures:
                while not future.done():
                    pending.acquire(timeout=0.2)  # any completion (or 0.2 s) wakes us
                    if not future.done():
                        self._check(deadline, f'service {client.srv_name} did not answer')
        except (EnvironmentStoppedError, TimeoutError):
            for client, future in futures:
                if not future.done():
                    client.remove_pending_request(future)
            raise
        return [future.result() for _, future in futures]

    def _check(self, deadline, problem):
        if self.stopped.is_set() or not self.node.context.ok():
            raise EnvironmentStoppedError('the environment was stopped')
        if time.monotonic() > deadline:
            raise TimeoutError(f'{problem} within {self.timeout:g} s')

    def new_states(self, count):
        if not 1 <= count <= len(self.sims):
            raise ValueError(
                f'{count} new states at once need as many simulators, there are '
                f'{len(self.sims)} (sim_namespaces); set config.interaction_steps <= '
                f'{len(self.sims)} or add simulators')
        sims = [self.sims[(self.next_sim + i) % len(self.sims)] for i in range(count)]
        self.next_sim = (self.next_sim + count) % len(self.sims)
        asked = time.monotonic()
        requests = []
        for _ in sims:
            shape = self.shapes[int(self.rng.integers(len(self.shapes)))] if self.shapes else ''
            requests.append(NewScene.Request(shape=shape, seed=-1, distortion=self.distortion))
        responses = self._call_all([(sim.new_scene, r) for sim, r in zip(sims, requests)])
        self.current = []
        images = []
        for sim, response in zip(sims, responses):
            if not response.success:
                raise RuntimeError(f'{sim.namespace}: new_scene failed: {response.message}')
            self.current.append((sim, int(response.scene_id)))
            msg = response.image if not image.is_empty(response.image) \
                else self._frame_after(sim, asked)
            images.append(image.image_to_rgb(msg))
        return images

    def _frame_after(self, sim, asked):
        deadline = time.monotonic() + self.timeout
        with sim.frame_ready:
            while sim.frame is None or sim.frame_time <= asked:
                sim.frame_ready.wait(0.2)
                self._check(deadline, f'no camera frame from {sim.namespace}')
            return sim.frame

    def try_grasps(self, actions):
        actions = grasp_batch(actions, len(self.current))
        calls = [(sim.execute, ExecuteGrasp.Request(
                     x=float(x), y=float(y), angle=float(angle), scene_id=scene_id))
                 for (sim, scene_id), row in zip(self.current, actions) for x, y, angle in row]
        responses = self._call_all(calls)
        for (client, request), response in zip(calls, responses):
            if not response.executed:
                raise RuntimeError(
                    f'{client.srv_name} refused the action ({request.x:.2f}, {request.y:.2f}, '
                    f'{request.angle:.3f}): {response.message}')
        return np.array([r.success for r in responses], dtype=bool).reshape(actions.shape[:2])

    def demonstrations(self, num_states, per_state, rng, imitation_fraction=None):
        """See ``Environment.demonstrations``; chunks go to all simulators at once.

        ``imitation_fraction`` None leaves the share to the simulator's default.
        """
        remaining = int(num_states)
        fraction = -1.0 if imitation_fraction is None else float(imitation_fraction)
        while remaining > 0:
            calls = []
            for sim in self.sims:
                chunk = min(remaining, DEMO_CHUNK_STATES)
                if chunk <= 0:
                    break
                remaining -= chunk
                calls.append((sim, GetDemonstrations.Request(
                    num_states=chunk, per_state=int(per_state),
                    seed=int(rng.integers(0, 2**31 - 1)), imitation_fraction=fraction)))
            responses = self._call_all([(sim.demos, request) for sim, request in calls])
            for (sim, _), response in zip(calls, responses):
                if not response.success:
                    raise RuntimeError(f'{sim.namespace}: get_demonstrations failed: '
                                       f'{response.message}')
                rgbs = [image.image_to_rgb(msg) for msg in response.images]
                yield from demos.unpack_demonstrations(rgbs, response.actions, response.labels)
