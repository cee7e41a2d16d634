"""Serve propose_grasps (grasp_proposal_node); by default with a simulated camera and RViz off.

ros2 launch fga_ros propose.launch.py [checkpoint:=/path/model.pt] [sim:=false] [rviz:=true]
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    share = FindPackageShare('fga_ros')
    namespace = LaunchConfiguration('namespace')
    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of all nodes'),
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([share, 'config', 'grasp_proposal.yaml']),
            description='parameters of grasp_proposal_node'),
        DeclareLaunchArgument(
            'sim_params_file',
            default_value=PathJoinSubstitution([share, 'config', 'grasp_sim.yaml']),
            description='parameters of grasp_sim_node'),
        DeclareLaunchArgument('checkpoint', default_value='',
                              description='model to load; empty = the bundled model'),
        DeclareLaunchArgument('sim', default_value='true',
                              description='also start grasp_sim_node as the camera'),
        DeclareLaunchArgument('rviz', default_value='false', description='start RViz'),
        Node(package='fga_ros', executable='grasp_proposal_node', name='grasp_proposal',
             namespace=namespace, output='screen',
             parameters=[LaunchConfiguration('params_file'),
                         {'checkpoint': ParameterValue(LaunchConfiguration('checkpoint'),
                                                       value_type=str)}]),
        Node(package='fga_ros', executable='grasp_sim_node', name='grasp_sim',
             namespace=namespace, output='screen',
             parameters=[LaunchConfiguration('sim_params_file')],
             condition=IfCondition(LaunchConfiguration('sim'))),
        Node(package='rviz2', executable='rviz2', name='rviz2', namespace=namespace,
             arguments=['-d', PathJoinSubstitution([share, 'config', 'fga.rviz'])],
             condition=IfCondition(LaunchConfiguration('rviz'))),
    ])
