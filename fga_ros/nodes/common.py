"""Helpers shared by the nodes: messages from field dicts, parameters, ``main()``."""

import signal
import threading

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
import rclpy
from rclpy.callback_groups import CallbackGroup
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.logging import get_logger
from rosidl_parser.definition import NamespacedType
from rosidl_runtime_py.import_message import import_message_from_namespaced_type

from fga_ros.bridge import geometry

_ELEMENT_CLASSES = {}


def _element_class(msg_class, field: str):
    """Message class of the elements of sequence field ``field`` (None: not messages)."""
    key = (msg_class, field)
    if key not in _ELEMENT_CLASSES:
        slot = dict(zip(msg_class.get_fields_and_field_types(), msg_class.SLOT_TYPES))[field]
        element = getattr(slot, 'value_type', None)
        _ELEMENT_CLASSES[key] = (import_message_from_namespaced_type(element)
                                 if isinstance(element, NamespacedType) else None)
    return _ELEMENT_CLASSES[key]


def _fill(msg, fields: dict, shared: dict) -> None:
    for name, value in fields.items():
        kind = type(value)
        if kind is dict:
            _fill(getattr(msg, name), value, shared)  # a fresh sub-message of the fresh parent
        elif kind is list and value and type(value[0]) is dict:
            if id(value) not in shared:
                element = _element_class(type(msg), name)
                shared[id(value)] = (value, [_build(element, item, shared) for item in value])
            setattr(msg, name, shared[id(value)][1])
        else:
            if kind is int and type(getattr(msg, name)) is float:
                value = float(value)
            setattr(msg, name, value)


def _build(msg_class, fields: dict, shared: dict):
    msg = msg_class()
    _fill(msg, fields, shared)
    return msg


def to_msg(msg_class, fields: dict):
    """A new ``msg_class`` message filled from a nested dict of field values.

    Dicts fill sub-messages, lists of dicts become sequences of messages, anything else
    (numbers, strings, bytes, lists of numbers, messages) is assigned as it is; the dicts
    and lists given are never modified. A list of dicts given for several fields (e.g. the
    outline every gripper marker shares) is converted once and its messages are shared by
    those fields: treat the result as read-only. An unknown field name raises
    AttributeError. Much faster than ``rosidl_runtime_py.set_message_fields``, which the
    response path cannot afford (a 64-grasp response: see ``bench_propose_load --profile``).
    """
    return _build(msg_class, fields, {})


def descriptor(description: str, read_only: bool = False, float_range=None,
               int_range=None, dynamic_typing: bool = False) -> ParameterDescriptor:
    """A ParameterDescriptor; ranges are (from, to) pairs, inclusive."""
    desc = ParameterDescriptor(description=description, read_only=read_only,
                               dynamic_typing=dynamic_typing)
    if float_range is not None:
        desc.floating_point_range = [
            FloatingPointRange(from_value=float(float_range[0]), to_value=float(float_range[1]),
                               step=0.0)]
    if int_range is not None:
        desc.integer_range = [
            IntegerRange(from_value=int(int_range[0]), to_value=int(int_range[1]), step=1)]
    return desc


class LimitedCallbackGroup(CallbackGroup):
    """Callbacks of the group run in parallel, at most ``limit`` at a time.

    Unlike a ReentrantCallbackGroup, the group leaves executor threads free for the other
    groups (camera frames, parameters) however many requests are waiting; a service's
    waiting requests stay in its DDS queue (see its QoS depth) until a slot is free.
    """

    def __init__(self, limit: int):
        super().__init__()
        if limit < 1:
            raise ValueError(f'limit must be >= 1, got {limit}')
        self.limit = limit
        self._active = 0
        self._lock = threading.Lock()

    def can_execute(self, entity) -> bool:
        with self._lock:
            return self._active < self.limit

    def beginning_execution(self, entity) -> bool:
        with self._lock:
            if self._active < self.limit:
                self._active += 1
                return True
        return False

    def ending_execution(self, entity) -> None:
        with self._lock:
            self._active -= 1



def declare_camera_geometry(node) -> None:
    """Declare ``pixel_size`` and ``camera_height`` (read-only; defaults from
    ``sim/camera.yaml``): the camera geometry the simulator and the proposal node share."""
    node.declare_parameter('pixel_size', geometry.default_pixel_size(), descriptor(
        'table-plane size of one pixel, m/px', read_only=True, float_range=(1e-5, 1.0)))
    node.declare_parameter('camera_height', geometry.default_camera_height(), descriptor(
        'optical centre above the table, m', read_only=True, float_range=(0.01, 10.0)))

def stamp_header(node, frame_id: str) -> dict:
    """``std_msgs/Header`` fields stamped with the node's clock now."""
    return {'stamp': node.get_clock().now().to_msg(), 'frame_id': frame_id}


def ignore_further_interrupts() -> None:
    """Ignore SIGINT from now on (main thread only), so that the clean-up can finish.

    A Ctrl-C in a terminal reaches every process of the group, and ``ros2 launch`` without a
    terminal (``--noninteractive``, the default when stdin is not a tty) forwards one more
    SIGINT to its children: that second SIGINT would raise KeyboardInterrupt inside
    ``close()`` / ``destroy_node()`` (e.g. while the trainer writes its last checkpoint).
    rclpy's own handler has already shut the context down; launch still escalates to
    SIGTERM and SIGKILL when a node takes too long.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def closing_logger(node):
    """The logger for a node's last words: its own while ROS runs, else a console logger.

    After a SIGINT rclpy has shut the context down, and a node logger would also try to
    publish on /rosout ('publisher's context is invalid'); a logger of another name only
    prints.
    """
    if node.context.ok():
        return node.get_logger()
    return get_logger(f'fga_ros.{node.get_name()}')


def run(node_class, args=None, multithreaded: bool = False) -> int:
    """Create ``node_class()``, spin it until shutdown, then clean up (Humble and Jazzy).

    ``node_class`` may define ``close()``, called before ``destroy_node()``, and
    ``executor_threads`` (threads of the multi-threaded executor; None: one per CPU). A node that
    cannot start (bad parameter, missing model, incompatible checkpoint) is reported in one
    log line, without a traceback.

    Returns:
        The process exit status: 0 after a normal shutdown, 1 when the node could not start
        or stopped on an error it recorded in its ``error`` attribute.
    """
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = node_class()
        except (KeyboardInterrupt, ExternalShutdownException):
            return 0
        except Exception as error:  # noqa: BLE001 - reported as a clear start-up failure
            get_logger(node_class.__name__).fatal(
                f'cannot start: {type(error).__name__}: {error}')
            return 1
        executor = (MultiThreadedExecutor(num_threads=getattr(node, 'executor_threads', None))
                    if multithreaded else SingleThreadedExecutor())
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            ignore_further_interrupts()
            executor.shutdown()
        return 1 if getattr(node, 'error', None) is not None else 0
    finally:
        ignore_further_interrupts()
        if node is not None:
            if hasattr(node, 'close'):
                node.close()
            node.destroy_node()
        rclpy.try_shutdown()
