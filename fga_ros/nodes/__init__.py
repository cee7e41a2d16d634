"""rclpy nodes: the only modules of ``fga_ros`` that import ROS (see ``fga_ros.bridge``)."""
