"""Shared pieces of the launch_testing tests (test/test_launch_*.py), one per launch file.

Each test starts its launch file (the ``good`` run) and checks that it starts, serves (a
service or topic appears) and shuts down cleanly when the test ends it (every process
exits 0, no traceback). While it runs, a second launch of the same file with one bad
parameter (``ros2 launch`` in a subprocess, as a user would type it) must end by itself,
with the node's one-line ``cannot start: ...`` message and no traceback.

They run under pytest (the launch_testing plugin collects them) or ``launch_test FILE``,
on a ROS 2 with this package built and sourced; elsewhere ``skip_reason`` says why not and
each file holds one test that skips.
"""

import os
from pathlib import Path
import shutil
import subprocess
import tempfile
import time
from typing import Any, Optional

import yaml

START_TIMEOUT = 180.0
"""Seconds a node may take to start and serve (a loaded 2-core machine, torch import)."""
FAILURE_MESSAGE = 'cannot start: '
"""What ``fga_ros.nodes.common.run`` logs, once, when a node cannot start."""


def skip_reason() -> Optional[str]:
    """None where the launch tests can run, else why not."""
    try:
        from ament_index_python.packages import get_package_share_directory
        import launch_testing  # noqa: F401
        import rclpy  # noqa: F401
    except ImportError as error:
        return f'ROS 2 with launch_testing is not installed ({error.name})'
    try:
        get_package_share_directory('fga_ros')
    except LookupError:
        return 'fga_ros is not built and sourced (colcon build, source install/setup.bash)'
    if shutil.which('ros2') is None:
        return 'the ros2 command (ros2launch) is not installed'
    return None


def launch_file(name: str) -> str:
    """Path of an installed launch file of fga_ros."""
    from ament_index_python.packages import get_package_share_directory
    return os.path.join(get_package_share_directory('fga_ros'), 'launch', name)


def include(name: str, arguments: dict[str, str]) -> Any:
    """``IncludeLaunchDescription`` of an installed launch file with launch arguments."""
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    return IncludeLaunchDescription(PythonLaunchDescriptionSource(launch_file(name)),
                                    launch_arguments=list(arguments.items()))


def params_file(node_name: str, parameters: dict[str, Any]) -> str:
    """A ROS parameters YAML file (in a fresh temporary folder) for ``/**/node_name``."""
    folder = Path(tempfile.mkdtemp(prefix='fga_launch_test_'))
    path = folder / f'{node_name}.yaml'
    path.write_text(yaml.safe_dump({f'/**/{node_name}': {'ros__parameters': parameters}}))
    return str(path)


def ready_description(launch_action: Any) -> Any:
    """What ``generate_test_description`` returns: the launch, then ReadyToTest."""
    import launch
    import launch_testing.actions
    return launch.LaunchDescription([launch_action, launch_testing.actions.ReadyToTest()])


class Probe:
    """A node of its own context that looks at the ROS graph from the test."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.context import Context
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('fga_launch_test_probe', context=self.context)

    def close(self) -> None:
        self.node.destroy_node()
        self.context.try_shutdown()

    def _wait(self, ready: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return True
            time.sleep(0.5)
        return False

    def wait_for_service(self, name: str, timeout: float = START_TIMEOUT) -> bool:
        """True once a service ``name`` (absolute) is offered."""
        return self._wait(lambda: name in dict(self.node.get_service_names_and_types()),
                          timeout)

    def wait_for_publisher(self, topic: str, timeout: float = START_TIMEOUT) -> bool:
        """True once some node publishes on ``topic`` (absolute)."""
        return self._wait(lambda: self.node.count_publishers(topic) > 0, timeout)


def stderr_lines(proc_output: Any) -> list[str]:
    """Every line the launched processes wrote to stderr (where ROS logs go)."""
    return [line for io in proc_output if io.from_stderr
            for line in io.text.decode(errors='replace').splitlines()]


def check_bad_launch(test: Any, name: str, arguments: dict[str, str], expected: str) -> None:
    """``ros2 launch fga_ros <name>`` with a bad parameter among ``arguments`` ends by itself
    within START_TIMEOUT, after exactly one ``cannot start`` line that names ``expected``,
    and prints no traceback."""
    command = ['ros2', 'launch', 'fga_ros', name] + [f'{k}:={v}' for k, v in arguments.items()]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        test.fail(f'{" ".join(command)} did not end by itself in {START_TIMEOUT:g} s; '
                  f'output:\n{error.stdout}\n{error.stderr}')
    output = (done.stdout + done.stderr).splitlines()
    failures = [line for line in output if FAILURE_MESSAGE in line]
    test.assertEqual(len(failures), 1, '\n'.join(output))
    test.assertIn(expected, failures[0])
    test.assertFalse([line for line in output if 'Traceback' in line], '\n'.join(output))


def check_clean_exit(test: Any, proc_info: Any, proc_output: Any) -> None:
    """After the test ended the launch: every process exited 0 and none printed a
    traceback."""
    codes = {info.action.process_details['name']: info.returncode for info in proc_info}
    test.assertTrue(codes, 'no process was started')
    test.assertEqual(set(codes.values()), {0}, codes)
    test.assertFalse([line for line in stderr_lines(proc_output) if 'Traceback' in line])
