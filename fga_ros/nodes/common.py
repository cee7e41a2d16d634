"""Helpers shared by the nodes: messages from field dicts, parameters, ``main()``."""

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rosidl_runtime_py.set_message import set_message_fields


def to_msg(msg_class, fields: dict):
    """A new ``msg_class`` message filled from a nested dict of field values."""
    msg = msg_class()
    set_message_fields(msg, fields)
    return msg


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


def stamp_header(node, frame_id: str) -> dict:
    """``std_msgs/Header`` fields stamped with the node's clock now."""
    return {'stamp': node.get_clock().now().to_msg(), 'frame_id': frame_id}


def run(node_class, args=None, multithreaded: bool = False) -> None:
    """Create ``node_class()``, spin it until shutdown, then clean up (Humble and Jazzy).

    ``node_class`` may define ``close()``, called before ``destroy_node()``.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = node_class()
        if multithreaded:
            executor = MultiThreadedExecutor()
            executor.add_node(node)
            executor.spin()
        else:
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if hasattr(node, 'close'):
                node.close()
            node.destroy_node()
        rclpy.try_shutdown()
