"""fga_ros: learn to propose all feasible planar grasps, served over ROS 2.

Layers (imports go one way): ``fga_ros.sim`` (numpy) <- ``fga_ros.core`` (torch) <-
``fga_ros.cli`` and ``fga_ros.nodes`` (rclpy).
"""

from fga_ros.resources import package_version

__version__ = package_version()
