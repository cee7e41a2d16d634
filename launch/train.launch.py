"""Train over ROS: num_sims simulators (namespaces sim0, sim1, ...) and one trainer_node.

ros2 launch fga_ros train.launch.py [num_sims:=4] [preset:=cpu] [divergence:=fkl]
    [out_dir:=fga_runs/ros] [resume:=true] [warm_start:=model.pt] [namespace:=robot1]
    [rviz:=false]

Each training step asks every simulator for a new scene at once and tries the grasps on all
of them in parallel (config.interaction_steps = num_sims).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction, Shutdown
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

MAX_SIMS = 64
"""Largest num_sims accepted."""


def _flag(context, name):
    text = LaunchConfiguration(name).perform(context).strip().lower()
    if text not in ('true', 'false'):
        raise ValueError(f'{name} must be true or false, got {text!r}')
    return text == 'true'


def nodes(context):
    """The simulators and the trainer, once the arguments are known."""
    text = LaunchConfiguration('num_sims').perform(context)
    try:
        num_sims = int(text)
    except ValueError:
        raise ValueError(f'num_sims must be an integer, got {text!r}') from None
    if not 1 <= num_sims <= MAX_SIMS:
        raise ValueError(f'num_sims must be in [1, {MAX_SIMS}], got {num_sims}')
    sim_params = LaunchConfiguration('sim_params_file')
    namespaces = [f'sim{i}' for i in range(num_sims)]
    trainer_params = {
        'sim_namespaces': namespaces,
        'preset': LaunchConfiguration('preset').perform(context),
        'out_dir': LaunchConfiguration('out_dir').perform(context),
        'resume': _flag(context, 'resume'),
        'warm_start': LaunchConfiguration('warm_start').perform(context),
        'config.interaction_steps': num_sims,
    }
    divergence = LaunchConfiguration('divergence').perform(context)
    if divergence:
        trainer_params['config.divergence'] = divergence
    namespace = LaunchConfiguration('namespace').perform(context).strip('/')
    actions = [PushRosNamespace(namespace)]
    actions += [
        Node(package='fga_ros', executable='grasp_sim_node', name='grasp_sim',
             namespace=ns, output='screen', parameters=[sim_params, {'seed': 1000 + i}])
        for i, ns in enumerate(namespaces)]
    actions.append(Node(
        package='fga_ros', executable='trainer_node', name='trainer', output='screen',
        parameters=[LaunchConfiguration('params_file'), trainer_params],
        # A trainer that cannot start (or exits) ends the launch: no orphaned simulators.
        on_exit=[Shutdown(reason='trainer_node exited')]))
    actions.append(Node(
        package='rviz2', executable='rviz2', name='rviz2', output='screen',
        arguments=['-d', PathJoinSubstitution([FindPackageShare('fga_ros'), 'config',
                                               'fga.rviz'])],
        # fga.rviz shows /camera/image_raw: here, the first simulator's camera
        remappings=[('/camera/image_raw',
                     '/' + '/'.join(filter(None, [namespace, 'sim0/camera/image_raw'])))],
        condition=IfCondition(LaunchConfiguration('rviz'))))
    return [GroupAction(actions)]


def generate_launch_description():
    share = FindPackageShare('fga_ros')
    return LaunchDescription([
        DeclareLaunchArgument('num_sims', default_value='1',
                              description='simulators (namespaces sim0 ...), used in parallel'),
        DeclareLaunchArgument('preset', default_value='',
                              description="training preset or YAML path; empty = the "
                                          "resumed run's own, else cpu"),
        DeclareLaunchArgument('divergence', default_value='',
                              description="js, fkl, rkl, gan or me; empty = the preset's"),
        DeclareLaunchArgument('out_dir', default_value='fga_runs/ros',
                              description='run directory (run.yaml, checkpoints, exported '
                                          'model)'),
        DeclareLaunchArgument('resume', default_value='true',
                              description='continue the run in out_dir with its own '
                                          'configuration; false refuses an out_dir that '
                                          'holds one'),
        DeclareLaunchArgument('warm_start', default_value='',
                              description='model whose extractor and critic start a new '
                                          'run (the actor starts fresh); empty = none'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of all nodes'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description="start RViz on the first simulator's camera"),
        DeclareLaunchArgument(
            'params_file', default_value=PathJoinSubstitution([share, 'config', 'trainer.yaml']),
            description='parameters of trainer_node'),
        DeclareLaunchArgument(
            'sim_params_file',
            default_value=PathJoinSubstitution([share, 'config', 'grasp_sim.yaml']),
            description='parameters of the grasp_sim_node instances'),
        OpaqueFunction(function=nodes),
    ])
