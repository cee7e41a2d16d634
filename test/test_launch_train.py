"""launch/train.launch.py: two simulators and trainer_node start, the simulators serve
new_scene, the trainer publishes its checkpoints, and all shut down cleanly (the trainer
writes a last checkpoint); an unknown preset ends the launch with the trainer's one-line
message and stops the simulators with it.

Run with pytest or ``launch_test test/test_launch_train.py`` on a built and sourced
workspace (see launch_support); skipped without ROS.
"""

import os
import sys
import tempfile
import unittest

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # launch_test runs this file by path
import launch_support as support  # noqa: E402

SKIP = support.skip_reason()

if SKIP:
    def test_train_launch_needs_ros():
        pytest.skip(SKIP)
else:
    import launch_testing

    @pytest.mark.launch_test
    def generate_test_description():
        # the tiny preset, with more steps than the test lasts: the test ends the training
        params = support.params_file('trainer', {'steps': 100_000})
        out_dir = tempfile.mkdtemp(prefix='fga_launch_train_')
        return support.ready_description(support.include('train.launch.py', {
            'num_sims': '2', 'preset': 'tiny', 'out_dir': out_dir, 'params_file': params}))

    class TestTrainLaunch(unittest.TestCase):

        def test_simulators_serve_and_trainer_publishes(self):
            probe = support.Probe()
            try:
                self.assertTrue(probe.wait_for_service('/sim0/new_scene'))
                self.assertTrue(probe.wait_for_service('/sim1/execute_grasp'))
                self.assertTrue(probe.wait_for_publisher('/checkpoint'))
            finally:
                probe.close()

        def test_unknown_preset_ends_the_launch(self):
            support.check_bad_launch(self, 'train.launch.py', {
                'preset': 'no_such_preset', 'namespace': 'bad_preset',
                'out_dir': tempfile.mkdtemp(prefix='fga_launch_train_bad_')}, 'no_such_preset')

    @launch_testing.post_shutdown_test()
    class TestTrainLaunchShutdown(unittest.TestCase):

        def test_every_process_exits_cleanly(self, proc_info, proc_output):
            support.check_clean_exit(self, proc_info, proc_output)
