"""The topics RViz shows and their QoS: one source for the nodes and the shipped RViz config.

Names are relative (``namespace:=robot1`` puts them under ``/robot1``). The proposal node
publishes :data:`LATCHED_TOPICS` transient local, reliable, keep last :data:`LATCHED_DEPTH`
(so an RViz started after a call still receives the last proposal); the simulated camera
publishes :data:`CAMERA_TOPIC` with the sensor-data profile (best effort, volatile), so a
subscriber must ask for best effort. ``test/test_rviz_config.py`` checks ``config/fga.rviz``
against these.
"""

LATCHED_TOPICS = {
    'grasps/markers': 'visualization_msgs/msg/MarkerArray',
    'grasps/poses': 'geometry_msgs/msg/PoseArray',
    'grasps/image': 'sensor_msgs/msg/Image',
    'grasps/scene': 'sensor_msgs/msg/PointCloud2',
}
"""Relative topic name -> message type of the proposal node's display topics."""

LATCHED_DEPTH = 1
"""History depth of the display topics: only the last proposal is kept."""

CAMERA_TOPIC = 'camera/image_raw'
"""The camera image (sensor_msgs/msg/Image, best effort)."""
