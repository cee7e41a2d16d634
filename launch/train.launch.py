"""Train over ROS: num_sims simulators (namespaces sim0, sim1, ...) and one trainer_node.

ros2 launch fga_ros train.launch.py [num_sims:=4] [preset:=cpu] [out_dir:=fga_runs/ros]
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def nodes(context):
    """The simulators and the trainer, once num_sims is known."""
    text = LaunchConfiguration('num_sims').perform(context)
    try:
        num_sims = int(text)
    except ValueError:
        raise ValueError(f'num_sims must be an integer, got {text!r}') from None
    if not 1 <= num_sims <= 64:
        raise ValueError(f'num_sims must be in [1, 64], got {num_sims}')
    sim_params = LaunchConfiguration('sim_params_file')
    namespaces = [f'sim{i}' for i in range(num_sims)]
    actions = [
        Node(package='fga_ros', executable='grasp_sim_node', name='grasp_sim',
             namespace=ns, output='screen', parameters=[sim_params, {'seed': 1000 + i}])
        for i, ns in enumerate(namespaces)]
    actions.append(Node(
        package='fga_ros', executable='trainer_node', name='trainer', output='screen',
        parameters=[LaunchConfiguration('params_file'), {
            'sim_namespaces': namespaces,
            'preset': ParameterValue(LaunchConfiguration('preset'), value_type=str),
            'out_dir': ParameterValue(LaunchConfiguration('out_dir'), value_type=str),
        }],
        # A trainer that cannot start (or exits) ends the launch: no orphaned simulators.
        on_exit=[Shutdown(reason='trainer_node exited')]))
    return actions


def generate_launch_description():
    share = FindPackageShare('fga_ros')
    return LaunchDescription([
        DeclareLaunchArgument('num_sims', default_value='1',
                              description='number of simulators (namespaces sim0 ...)'),
        DeclareLaunchArgument('preset', default_value='cpu',
                              description='training preset or YAML path'),
        DeclareLaunchArgument('out_dir', default_value='fga_runs/ros',
                              description='run directory (checkpoints, exported model)'),
        DeclareLaunchArgument(
            'params_file', default_value=PathJoinSubstitution([share, 'config', 'trainer.yaml']),
            description='parameters of trainer_node'),
        DeclareLaunchArgument(
            'sim_params_file',
            default_value=PathJoinSubstitution([share, 'config', 'grasp_sim.yaml']),
            description='parameters of the grasp_sim_node instances'),
        OpaqueFunction(function=nodes),
    ])
