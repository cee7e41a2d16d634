"""ROS-free adapters between ROS messages and the numpy world of ``fga_ros``.

Nothing here imports rclpy or a message package (``test/test_ros_imports_static.py`` checks);
limits and defaults come from the core and the simulator data, never restated. Functions
read message-like objects by field name (duck typing: rclpy messages, rosbags messages or
plain objects) and build messages as plain nested dicts keyed by the real ROS field names,
which the nodes turn into messages with ``rosidl_runtime_py.set_message_fields``. Tests check
those names against the standard message definitions carried by ``rosbags``.
"""
