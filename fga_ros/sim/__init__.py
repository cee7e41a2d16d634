"""Planar grasp simulator of appendix A (numpy + opencv; no torch, no ROS).

Scenes are frozen values built by :func:`make_scene`; :func:`render` draws the camera image,
:func:`object_mask` the physics mask, :func:`grasp_success` / :func:`grasp_success_many`
check grasps ``(x, y, alpha)`` and :func:`ground_truth` gives the exact feasible set and its
modes. The world (shape families, gripper, camera) is data under ``sim/``.
"""

from fga_ros.sim.drawing import draw_grasps, sim_figure
from fga_ros.sim.gripper import (
    Gripper,
    GripperConfig,
    default_gripper,
    explain_grasp,
    feasible_table,
    grasp_success,
    grasp_success_many,
    load_gripper_config,
)
from fga_ros.sim.ground_truth import GroundTruth, ground_truth
from fga_ros.sim.render import load_camera, object_mask, render, render_batch
from fga_ros.sim.scene import DISTORTIONS, Scene, make_scene
from fga_ros.sim.workspace import (
    IMAGE_SIZE,
    WORKSPACE_HI,
    WORKSPACE_LO,
    WORKSPACE_SIZE,
    validate_actions,
    wrap_alpha,
)
from fga_ros.sim.world import load_world


def shapes() -> tuple:
    """All shape family names, in sim/shapes.yaml order."""
    return load_world().shapes


def train_shapes() -> tuple:
    """Shape families used for training (split: train)."""
    return tuple(f.name for f in load_world().families if f.split == 'train')


def heldout_shapes() -> tuple:
    """Held-out shape families (split: test), never used for training."""
    return tuple(f.name for f in load_world().families if f.split == 'test')


def summary(scene: Scene, gt: GroundTruth) -> dict:
    """JSON-friendly summary of a scene and its ground truth."""
    return {'scene': scene.to_dict(),
            'feasible_fraction': gt.feasible_fraction,
            'num_modes': gt.num_modes,
            'mode_shares': list(gt.mode_shares),
            'mode_sizes_cells': list(gt.mode_sizes),
            'merged_fragment_cells': gt.merged_cells}


__all__ = [
    'DISTORTIONS', 'IMAGE_SIZE', 'WORKSPACE_HI', 'WORKSPACE_LO', 'WORKSPACE_SIZE',
    'GroundTruth', 'Gripper', 'GripperConfig', 'Scene',
    'default_gripper', 'draw_grasps', 'explain_grasp', 'feasible_table', 'grasp_success',
    'grasp_success_many',
    'ground_truth', 'heldout_shapes', 'load_camera', 'load_gripper_config', 'load_world',
    'make_scene', 'object_mask', 'render', 'render_batch', 'shapes', 'sim_figure', 'summary',
    'train_shapes', 'validate_actions', 'wrap_alpha',
]
