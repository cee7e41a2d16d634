"""Camera model files for ``fga propose``/``fga sim``: camera_info and camera pose as YAML.

``camera_info.yaml``: the ROS calibration file format (``camera_calibration`` writes it):
``image_width``, ``image_height``, ``camera_matrix: {data: [9 numbers]}``,
``distortion_model``, ``distortion_coefficients: {data: [...]}``. The CameraInfo message's
field names (``width``, ``height``, ``k``, ``distortion_model``, ``d``) are accepted too.

``camera_pose.yaml``: the table -> camera transform, as ``tf2_echo <camera> <table>`` prints
it: ``translation: [x, y, z]`` (m) and ``rotation: [x, y, z, w]`` (quaternion) with
``p_camera = R p_table + t``; optional ``table_frame`` and ``camera_frame`` names.
"""

import os
from pathlib import Path
from typing import Any

import yaml

from fga_ros.bridge.camera_geometry import (
    CameraGeometryError,
    CameraIntrinsics,
    CameraMapping,
    TableToCamera,
    Workspace,
    camera_mapping,
    matrix_to_quaternions,
)
from fga_ros.safe_yaml import YamlError, read_yaml_file

MAX_FILE_BYTES = 1 << 20
"""Largest camera YAML file read, bytes."""


def _load(path, what):
    """The mapping a camera YAML file holds, read within ``safe_yaml``'s bounds (size,
    depth, number of values, no aliases)."""
    path = Path(path)
    if path.is_dir():
        raise CameraGeometryError(f'{what} file {path} is a directory')
    if not path.is_file():
        raise CameraGeometryError(f'{what} file not found: {path}')
    try:
        data = read_yaml_file(path, MAX_FILE_BYTES)
    except YamlError as exc:
        raise CameraGeometryError(f'not a readable YAML {what} file: {exc}') from None
    if not isinstance(data, dict):
        raise CameraGeometryError(f'{path}: {what} file must hold a mapping')
    return data


def _data(value):
    return value.get('data') if isinstance(value, dict) else value


def read_camera_info(path: str | os.PathLike) -> CameraIntrinsics:
    """Intrinsics from a camera_info YAML file (see the module notes)."""
    data = _load(path, 'camera_info')
    width = data.get('image_width', data.get('width'))
    height = data.get('image_height', data.get('height'))
    k = _data(data.get('camera_matrix', data.get('k')))
    d = _data(data.get('distortion_coefficients', data.get('d'))) or ()
    if width is None or height is None or k is None:
        raise CameraGeometryError(
            f'{path}: camera_info needs image_width, image_height and camera_matrix '
            '(or width, height and k)')
    try:
        return CameraIntrinsics.from_fields(width, height, k,
                                            data.get('distortion_model', 'plumb_bob'), d)
    except CameraGeometryError as exc:
        raise CameraGeometryError(f'{path}: {exc}') from None


def read_camera_pose(path: str | os.PathLike) -> tuple:
    """(TableToCamera, table_frame, camera_frame) from a camera pose YAML file."""
    path = Path(path)
    data = _load(path, 'camera pose')
    if 'translation' not in data or 'rotation' not in data:
        raise CameraGeometryError(
            f'{path}: camera pose needs translation [x, y, z] and rotation [x, y, z, w] '
            '(table -> camera)')
    try:
        pose = TableToCamera.from_fields(data['translation'], data['rotation'])
    except (CameraGeometryError, TypeError, ValueError) as exc:
        raise CameraGeometryError(f'{path}: {exc}') from None
    return pose, _frame(path, data, 'table_frame', 'table'), _frame(path, data, 'camera_frame',
                                                                    'camera')


def _frame(path: Path, data: dict, key: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise CameraGeometryError(f'{path}: {key} must be a frame name (text), got '
                                  f'{type(value).__name__}')
    return value


def read_mapping(info_path: str | os.PathLike, pose_path: str | os.PathLike,
                 workspace: Workspace) -> CameraMapping:
    """The validated :class:`~fga_ros.bridge.camera_geometry.CameraMapping` of two files."""
    intrinsics = read_camera_info(info_path)
    pose, table_frame, camera_frame = read_camera_pose(pose_path)
    return camera_mapping(intrinsics, pose, workspace, camera_frame, table_frame)


def write_camera_files(view: Any, directory: str | os.PathLike, table_frame: str,
                       camera_frame: str) -> tuple:
    """Write ``camera_info.yaml`` and ``camera_pose.yaml`` of a simulated
    :class:`~fga_ros.sim.pinhole.PinholeView`; returns both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    info = view.camera_info_fields({})
    info_path, pose_path = directory / 'camera_info.yaml', directory / 'camera_pose.yaml'
    info_path.write_text(yaml.safe_dump({
        'image_width': info['width'], 'image_height': info['height'],
        'camera_name': 'fga_sim_tilted',
        'camera_matrix': {'rows': 3, 'cols': 3, 'data': [float(v) for v in info['k']]},
        'distortion_model': info['distortion_model'],
        'distortion_coefficients': {'rows': 1, 'cols': 5, 'data': list(info['d'])},
    }, sort_keys=False))
    pose_path.write_text(yaml.safe_dump({
        'table_frame': table_frame, 'camera_frame': camera_frame,
        'translation': [float(v) for v in view.translation],
        'rotation': [float(v) for v in matrix_to_quaternions(view.rotation)[0]],
    }, sort_keys=False))
    return info_path, pose_path
