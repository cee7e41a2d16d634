"""What RViz shows of the proposal node: published from a thread of its own, latched.

The service callback hands each answered proposal to :meth:`ProposalDisplay.show` (it only
stores it: the response leaves at once) and a display thread publishes the newest one, at
most ``rate`` times a second; under load it skips to the newest proposal, and the last one
is always published. Topics (all transient local, depth 1, reliable: an RViz started after
a call still receives the last proposal):

- ``grasps/markers`` (MarkerArray): DELETEALL, grippers coloured by cluster (or score),
  rank/score labels;
- ``grasps/poses`` (PoseArray): the grasp poses in rank order;
- ``grasps/image`` (Image, rgb8): the camera image upscaled 4x with the grasp glyphs;
- ``grasps/scene`` (PointCloud2): the camera image laid on the table plane (published
  again only when the image changes).
"""

import threading

from geometry_msgs.msg import PoseArray
import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from fga_ros.bridge import annotate, cloud, grasps, image, markers
from fga_ros.bridge.display_topics import LATCHED_DEPTH, LATCHED_TOPICS
from fga_ros.bridge.geometry import CameraModel
from fga_ros.nodes.common import to_msg
from fga_ros.nodes.mailbox import Latest

LATCHED = QoSProfile(depth=LATCHED_DEPTH, history=HistoryPolicy.KEEP_LAST,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""QoS of the display topics: the last message is kept for subscribers that join later."""

TYPES = {'visualization_msgs/msg/MarkerArray': MarkerArray,
         'geometry_msgs/msg/PoseArray': PoseArray,
         'sensor_msgs/msg/Image': Image,
         'sensor_msgs/msg/PointCloud2': PointCloud2}
"""Message class of each type name of :data:`LATCHED_TOPICS`."""


class ProposalDisplay:
    """Publishes the newest proposal of ``node`` for RViz from its own thread.

    Args:
        node: the rclpy node that owns the publishers.
        camera: the camera model (poses, cloud).
        gripper: gripper dimensions in m (markers).
        rate: most display updates per second, Hz.
    """

    def __init__(self, node, camera: CameraModel, gripper: markers.GripperSize, rate: float):
        self.node = node
        self.camera = camera
        self.gripper = gripper
        self.period = 1.0 / rate
        publishers = {name: node.create_publisher(TYPES[kind], name, LATCHED)
                      for name, kind in LATCHED_TOPICS.items()}
        self.marker_pub = publishers['grasps/markers']
        self.pose_pub = publishers['grasps/poses']
        self.image_pub = publishers['grasps/image']
        self.scene_pub = publishers['grasps/scene']
        self._scene_rgb = None
        self._latest = Latest()
        self._thread = threading.Thread(target=self._loop, name='proposal_display',
                                        daemon=True)
        self._thread.start()

    def show(self, rgb, header: dict, proposal, colour_by: str, camera=None) -> None:
        """Hand over a proposal for display (returns at once; replaces one not shown yet).

        ``colour_by``: 'cluster' or 'score' (:func:`fga_ros.bridge.markers.grasp_colours`).
        ``camera``: the ``CameraMapping`` of a rectified camera image (``rgb`` is then the
        rectified view; no table cloud is published), None for the node's top-down camera.
        """
        self._latest.put((rgb, header, proposal, colour_by, camera))

    def close(self) -> None:
        """Stop the display thread (a proposal not shown yet is dropped)."""
        self._latest.close()
        self._thread.join(timeout=5.0)

    def _loop(self):
        while True:
            item = self._latest.take()
            if item is None:
                return
            try:
                self.publish(*item)
            except Exception as error:  # noqa: BLE001 - the answers went out; only display failed
                self.node.get_logger().error(
                    f'cannot publish the grasps: {type(error).__name__}: {error}')
            if self._latest.wait_closed(self.period):
                return

    def publish(self, rgb, header: dict, proposal, colour_by: str, camera=None) -> None:
        """Markers, poses, annotated image and (top-down camera, when the image changed) the
        table cloud."""
        arrays = grasps.proposal_arrays(proposal)
        poses = (camera or self.camera).pose_fields(arrays['actions'])
        colours = markers.grasp_colours(colour_by, arrays['scores'], arrays['cluster_ids'])
        marker_fields = markers.proposal_markers(
            poses, colours, arrays['scores'], header, self.gripper,
            (camera or self.camera).pixel_size)
        self.marker_pub.publish(to_msg(MarkerArray, {'markers': marker_fields}))
        self.pose_pub.publish(to_msg(PoseArray, {'header': header, 'poses': poses}))
        size = (camera or self.camera).pixel_size  # best grasp drawn last, on top
        drawn = annotate.draw_grasps(rgb, arrays['actions'][::-1], colours[::-1],
                                     self.gripper.aperture / size,
                                     self.gripper.claw_width / size)
        self.image_pub.publish(to_msg(Image, image.rgb_image_fields(drawn, header)))
        if camera is None and (self._scene_rgb is None
                               or not np.array_equal(rgb, self._scene_rgb)):
            self.scene_pub.publish(
                to_msg(PointCloud2, cloud.table_cloud_fields(rgb, self.camera, header)))
            self._scene_rgb = rgb
