"""Start the simulated camera + gripper (grasp_sim_node), optionally with RViz."""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    share = FindPackageShare('fga_ros')
    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the simulator node'),
        DeclareLaunchArgument(
            'params_file', default_value=PathJoinSubstitution([share, 'config', 'grasp_sim.yaml']),
            description='parameters of grasp_sim_node'),
        DeclareLaunchArgument('rviz', default_value='false', description='start RViz'),
        Node(package='fga_ros', executable='grasp_sim_node', name='grasp_sim',
             namespace=LaunchConfiguration('namespace'),
             parameters=[LaunchConfiguration('params_file')], output='screen'),
        Node(package='rviz2', executable='rviz2', name='rviz2',
             arguments=['-d', PathJoinSubstitution([share, 'config', 'fga.rviz'])],
             condition=IfCondition(LaunchConfiguration('rviz'))),
    ])
