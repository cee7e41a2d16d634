"""launch/sim.launch.py: grasp_sim_node starts, serves new_scene and the camera, and shuts
down cleanly; a bad distortion ends the launch with the node's one-line message.

Run with pytest or ``launch_test test/test_launch_sim.py`` on a built and sourced
workspace (see launch_support); skipped without ROS.
"""

import os
import sys
import unittest

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # launch_test runs this file by path
import launch_support as support  # noqa: E402

SKIP = support.skip_reason()

if SKIP:
    def test_sim_launch_needs_ros():
        pytest.skip(SKIP)
else:
    import launch_testing

    @pytest.mark.launch_test
    def generate_test_description():
        return support.ready_description(support.include('sim.launch.py', {}))

    class TestSimLaunch(unittest.TestCase):

        def test_serves_scenes_and_camera(self):
            probe = support.Probe()
            try:
                self.assertTrue(probe.wait_for_service('/new_scene'))
                self.assertTrue(probe.wait_for_service('/execute_grasp'))
                self.assertTrue(probe.wait_for_publisher('/camera/image_raw'))
            finally:
                probe.close()

        def test_bad_distortion_ends_the_launch(self):
            bad = support.params_file('grasp_sim', {'distortion': 'fisheye'})
            support.check_bad_launch(self, 'sim.launch.py', {'params_file': bad},
                                     'distortion')

    @launch_testing.post_shutdown_test()
    class TestSimLaunchShutdown(unittest.TestCase):

        def test_every_process_exits_cleanly(self, proc_info, proc_output):
            support.check_clean_exit(self, proc_info, proc_output)
