"""``fga bench camera``: grasps from a tilted camera, checked against the simulator.

For each tilt, evaluation scenes are rendered by the simulator's tilted pinhole camera
(:mod:`fga_ros.sim.pinhole`, its own projection code), the image goes through the service's
mapping (:mod:`fga_ros.bridge.camera_geometry`: CameraInfo-style intrinsics and a
table -> camera transform given as a quaternion, as the node receives them), the model
proposes grasps on the rectified view, and each grasp's **camera-frame** metric pose is taken
back to the table with the simulator's own camera pose and checked by the simulator's
physics. The same scenes rendered top-down give the reference figure of the same model.
"""

from typing import Optional, Sequence

import numpy as np

from fga_ros.bridge.camera_geometry import (
    CameraIntrinsics,
    CameraMapping,
    TableToCamera,
    camera_mapping,
    default_workspace,
    matrix_to_quaternions,
)
from fga_ros.core.analysis.evaluation import evaluation_scenes
from fga_ros.core.inference.proposer import Proposer
from fga_ros.sim import (
    WORKSPACE_HI,
    WORKSPACE_LO,
    grasp_success,
    render,
    train_shapes,
)
from fga_ros.sim.pinhole import (
    TABLE_FRAME,
    PinholeView,
    render_view,
    table_direction_to_angle,
    table_to_pixels,
    tilted_view,
)

TILTS_DEG = (0.0, 20.0, 35.0, 45.0)
"""Camera tilts from straight down measured by default, degrees."""


def sim_mapping(view: PinholeView, camera_frame: str = 'camera_optical_frame'
                ) -> CameraMapping:
    """The service mapping for a simulated :class:`~fga_ros.sim.pinhole.PinholeView`, built
    from the fields a ROS camera would send (CameraInfo, TF translation + quaternion)."""
    info = view.camera_info_fields({})
    intrinsics = CameraIntrinsics.from_fields(info['width'], info['height'], info['k'],
                                              info['distortion_model'], info['d'])
    pose = TableToCamera.from_fields(view.translation, matrix_to_quaternions(view.rotation)[0])
    return camera_mapping(intrinsics, pose, default_workspace(), camera_frame, TABLE_FRAME)


def camera_poses_to_sim_actions(view: PinholeView, positions: np.ndarray,
                                rotations: np.ndarray) -> np.ndarray:
    """Simulator actions (n, 3) of camera-frame grasp poses, using the simulator's own pose.

    Raises nothing for grasps off the workspace: their x, y are returned as they are.
    """
    r, t = view.rotation, view.translation
    table_points = (positions - t) @ r  # R^T (p - t), row-wise
    closing = np.einsum('ji,nj->ni', r, rotations[:, :, 0])  # R^T x-axis
    xy = table_to_pixels(table_points[:, :2])
    return np.column_stack([xy, table_direction_to_angle(closing[:, :2])])


def _feasible(scene, actions):
    inside = ((actions[:, :2] >= WORKSPACE_LO) & (actions[:, :2] < WORKSPACE_HI)).all(axis=1)
    out = np.zeros(len(actions), dtype=bool)
    if inside.any():
        out[inside] = grasp_success(scene, actions[inside])
    return out


def run_camera_bench(checkpoint: Optional[str] = None, tilts: Sequence[float] = TILTS_DEG,
                     states: int = 8, num_grasps: int = 16, width: int = 640,
                     height: int = 480, seed: int = 0, shapes: Optional[Sequence[str]] = None,
                     device: str = 'cpu') -> list:
    """Rows per tilt: feasible share of camera-frame grasps, top-down reference, pose error.

    ``pose_error_mm``: largest distance between a grasp's table position mapped by the
    service (table frame) and the same grasp's camera-frame position taken to the table by
    the simulator's pose (consistency of the two outputs).
    """
    proposer = Proposer.from_checkpoint(checkpoint, device=device)
    shapes = tuple(shapes or train_shapes())
    rows = []
    for tilt in tilts:
        view = tilted_view(tilt, width, height)
        mapping = sim_mapping(view)
        feasible, reference, error = [], [], 0.0
        for shape in shapes:
            for i, scene in enumerate(evaluation_scenes(shape, states, seed)):
                top_down = mapping.warp(render_view(scene, view))
                proposal = proposer.propose(top_down, num_grasps, seed=seed + i)
                positions, rotations = mapping.camera_poses(proposal.actions)
                actions = camera_poses_to_sim_actions(view, positions, rotations)
                feasible.append(_feasible(scene, actions))
                table_positions, _ = mapping.table_poses(proposal.actions)
                from_camera = (positions - view.translation) @ view.rotation
                error = max(error, float(np.abs(from_camera - table_positions).max()))
                ref = proposer.propose(render(scene), num_grasps, seed=seed + i)
                reference.append(grasp_success(scene, ref.actions))
        rows.append({'tilt_deg': float(tilt), 'width': width, 'height': height,
                     'focal_px': view.fx, 'grasps': int(np.concatenate(feasible).size),
                     'feasible': float(np.concatenate(feasible).mean()),
                     'top_down_feasible': float(np.concatenate(reference).mean()),
                     'pose_error_mm': 1000.0 * error})
    return rows


def print_camera_bench(rows: list, states: int, shapes: Sequence[str]) -> None:
    print(f'camera mapping: {states} evaluation scenes x {len(shapes)} shapes '
          f'({", ".join(shapes)}) per tilt; camera-frame grasp poses checked by the '
          'simulator physics')
    print(f'{"tilt deg":>8} {"image":>9} {"f px":>7} {"grasps":>6} {"feasible":>9} '
          f'{"top-down ref":>12} {"pose err mm":>11}')
    for r in rows:
        print(f'{r["tilt_deg"]:>8.0f} {r["width"]:>4}x{r["height"]:<4} {r["focal_px"]:>7.0f} '
              f'{r["grasps"]:>6} {100 * r["feasible"]:>8.1f}% '
              f'{100 * r["top_down_feasible"]:>11.1f}% {r["pose_error_mm"]:>11.2e}')
