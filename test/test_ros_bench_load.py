"""``bench_propose_load --profile``: every stage of a call timed in one process (skipped
where rclpy is missing; no node or DDS traffic needed)."""

import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')
pytest.importorskip('fga_ros.srv', reason='the fga_ros interfaces are not built '
                    '(colcon build, then source install/setup.bash)')
from fga_ros.nodes import bench_load  # noqa: E402


def test_profile_times_every_stage_of_a_call(capsys):
    assert bench_load.main(['--profile', '3', '--num-grasps', '8']) == 0
    out = capsys.readouterr().out
    assert out.startswith('3 calls, 8 grasps, ranking diverse: ms per call')
    for stage in ('request deserialisation', 'proposal (inference + clustering)',
                  'response message building', 'client deserialisation', 'display: markers',
                  'display: table cloud', 'of which clustering + ranking'):
        assert stage in out
