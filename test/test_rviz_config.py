"""The shipped RViz config (``config/fga.rviz``) asks for what the nodes publish, as they do.

No ROS needed: the config is YAML, the topics and their QoS come from
:mod:`fga_ros.bridge.display_topics`. A mismatch here is what RViz shows as a QoS warning, a
display that stays empty after a call, or an empty display in an RViz started after it.
"""

from pathlib import Path

import yaml

from fga_ros.bridge import markers
from fga_ros.bridge.display_topics import CAMERA_TOPIC, LATCHED_DEPTH, LATCHED_TOPICS
from fga_ros.bridge.geometry import DEFAULT_WORLD_FRAME, default_pixel_size
from fga_ros.sim import IMAGE_SIZE

CONFIG = Path(__file__).resolve().parents[1] / 'config' / 'fga.rviz'

DISPLAY_MESSAGE = {
    'rviz_default_plugins/MarkerArray': 'visualization_msgs/msg/MarkerArray',
    'rviz_default_plugins/PoseArray': 'geometry_msgs/msg/PoseArray',
    'rviz_default_plugins/Image': 'sensor_msgs/msg/Image',
    'rviz_default_plugins/PointCloud2': 'sensor_msgs/msg/PointCloud2',
}
"""Message type each RViz display class subscribes to."""


def manager() -> dict:
    return yaml.safe_load(CONFIG.read_text())['Visualization Manager']


def topic_displays() -> list[dict]:
    return [display for display in manager()['Displays'] if 'Topic' in display]


def relative(topic: str) -> str:
    assert topic.startswith('/'), f'RViz topic {topic!r} is not absolute'
    return topic[1:]


def test_every_display_topic_is_published_with_its_type():
    for display in topic_displays():
        name = relative(display['Topic']['Value'])
        published = dict(LATCHED_TOPICS, **{CAMERA_TOPIC: 'sensor_msgs/msg/Image'})
        assert name in published, f'{display["Name"]}: nobody publishes {name}'
        assert DISPLAY_MESSAGE[display['Class']] == published[name], display['Name']


def test_every_latched_topic_is_shown_transient_local_and_reliable():
    shown = {relative(d['Topic']['Value']): d['Topic'] for d in topic_displays()}
    assert set(LATCHED_TOPICS) <= set(shown)
    for name in LATCHED_TOPICS:
        qos = shown[name]
        assert qos['Durability Policy'] == 'Transient Local', name  # a late RViz gets the last
        assert qos['Reliability Policy'] == 'Reliable', name
        assert qos['History Policy'] == 'Keep Last', name
        assert qos['Depth'] >= LATCHED_DEPTH, name


def test_camera_is_subscribed_best_effort_and_volatile():
    cameras = [d['Topic'] for d in topic_displays()
               if relative(d['Topic']['Value']) == CAMERA_TOPIC]
    assert cameras
    for qos in cameras:  # the sensor-data publisher offers neither reliability nor history
        assert qos['Reliability Policy'] == 'Best Effort'
        assert qos['Durability Policy'] == 'Volatile'


def test_fixed_frame_and_marker_namespaces():
    assert manager()['Global Options']['Fixed Frame'] == DEFAULT_WORLD_FRAME
    arrays = [d for d in manager()['Displays']
              if d['Class'] == 'rviz_default_plugins/MarkerArray']
    assert [set(d['Namespaces']) for d in arrays] == [{markers.GRIPPER_NS, markers.LABEL_NS}]


def test_display_names_are_unique():
    names = [d['Name'] for d in manager()['Displays']]
    assert len(names) == len(set(names))


def test_view_is_centred_on_the_table_and_the_grid_covers_it():
    half = IMAGE_SIZE * default_pixel_size() / 2.0
    view = manager()['Views']['Current']
    assert view['Target Frame'] in ('<Fixed Frame>', DEFAULT_WORLD_FRAME)
    focal = view['Focal Point']
    assert abs(focal['X']) < half / 2 and abs(focal['Y']) < half / 2
    assert 2 * half <= view['Distance'] <= 8 * half
    grid = next(d for d in manager()['Displays'] if d['Class'] == 'rviz_default_plugins/Grid')
    assert grid['Cell Size'] * grid['Plane Cell Count'] >= 2 * half - 1e-9
