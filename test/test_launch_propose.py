"""launch/propose.launch.py: grasp_proposal_node (with the simulated camera) starts, serves
propose_grasps and shuts down cleanly; a checkpoint that does not exist ends the launch with
the node's one-line message.

Run with pytest or ``launch_test test/test_launch_propose.py`` on a built and sourced
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
    def test_propose_launch_needs_ros():
        pytest.skip(SKIP)
else:
    import launch_testing

    @pytest.mark.launch_test
    def generate_test_description():
        return support.ready_description(support.include('propose.launch.py', {}))

    class TestProposeLaunch(unittest.TestCase):

        def test_serves_grasp_proposals(self):
            probe = support.Probe()
            try:
                self.assertTrue(probe.wait_for_service('/propose_grasps'))
                self.assertTrue(probe.wait_for_service('/new_scene'))
                self.assertTrue(probe.wait_for_publisher('/grasps/markers'))
            finally:
                probe.close()

        def test_missing_checkpoint_ends_the_launch(self):
            missing = '/nonexistent/fga_model.pt'
            support.check_bad_launch(self, 'propose.launch.py',
                                     {'checkpoint': missing, 'sim': 'false'}, missing)

    @launch_testing.post_shutdown_test()
    class TestProposeLaunchShutdown(unittest.TestCase):

        def test_every_process_exits_cleanly(self, proc_info, proc_output):
            support.check_clean_exit(self, proc_info, proc_output)
