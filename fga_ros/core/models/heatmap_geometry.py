"""Geometry of the heat-map baselines: angle bins, image rotations, cells and actions.

A heat map of a network input of side N has N x N cells per angle; cell (i, j) (row, column)
is centred on observation pixel ``p = (j + 0.5) * 128 / N - 0.5`` in x (same in y with i),
the centre of the observation pixels that the area resize merged into network pixel j.
Grid-sample coordinates (``align_corners=False``) of observation pixel p are
``(p + 0.5) * 2 / 128 - 1``, so a cell centre reads exactly its own value. Only cells whose
centre lies in the workspace ``[WORKSPACE_LO, WORKSPACE_HI)`` are actions (at N = 128: the
paper's 78 x 78). Angle bin k is the gripper angle ``alpha_k = k pi / A``.

Rotation convention (method H): ``rotate(image, alpha)`` is the image J with
``J(p) = I(R(alpha) p)``, R the rotation taking the image x axis to the closing direction
``(cos alpha, sin alpha)`` (x right, y down; about the image centre). A grasp closing along
alpha at point q of I is the grasp closing along the x axis at ``R(alpha)^-1 q`` of J, so a
network that scores x-axis grasps on J scores alpha-grasps of I there, and the map is
rotated back with ``R(alpha)^-1``.

Camera frame (``camera_view: fitted``): the heat maps stay in the camera's pixels and grasps
cross between table and camera with :func:`map_grasps`: the centre through the homography,
the closing direction through its Jacobian at the centre.
"""

import math

import torch
from torch.nn import functional

from fga_ros.core.common.actions import CENTRE, HALF_WIDTH
from fga_ros.core.estimators.divergences import RADIUS_MEAN
from fga_ros.core.models.camera_view import apply_homography
from fga_ros.sim.workspace import IMAGE_SIZE, WORKSPACE_HI, WORKSPACE_LO, wrap_alpha


def angle_bins(count: int, device: torch.device | None = None) -> torch.Tensor:
    """The A gripper angles of the heat map's channels, ``k pi / A``, radians, (A,)."""
    return torch.arange(count, device=device, dtype=torch.float32) * (math.pi / count)


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """``affine_grid`` matrices (B, 2, 3) of rotations by ``angles`` (B,) radians: output
    pixel p samples the input at ``R(angle) p`` (normalised coordinates, about the centre)."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(angles)
    return torch.stack([torch.stack([cos, -sin, zero], -1),
                        torch.stack([sin, cos, zero], -1)], dim=1)


def rotate(maps: torch.Tensor, angles: torch.Tensor, mode: str = 'bilinear') -> torch.Tensor:
    """Rotated copies ``J(p) = I(R(angle) p)`` of maps (B, C, N, N), one angle (B,) each.

    Pixels from outside the input repeat its border (the table beyond the image).
    """
    grid = functional.affine_grid(rotation_matrices(angles).to(maps.dtype),
                                  list(maps.shape), align_corners=False)
    return functional.grid_sample(maps, grid, mode=mode, padding_mode='border',
                                  align_corners=False)


def cell_pixels(side: int, device: torch.device | None = None) -> torch.Tensor:
    """Observation pixel (x or y) of the centres of a heat map's N cells along one side, (N,)."""
    return (torch.arange(side, device=device, dtype=torch.float32) + 0.5) * (IMAGE_SIZE / side) \
        - 0.5


def workspace_cells(side: int, device: torch.device | None = None) -> torch.Tensor:
    """(N, N) bool: the cells whose centre lies in the workspace, i.e. the action cells."""
    pixels = cell_pixels(side, device)
    inside = (pixels >= WORKSPACE_LO) & (pixels < WORKSPACE_HI)
    return inside[:, None] & inside[None, :]


def cell_actions(cells: torch.Tensor, side: int, angles: int) -> torch.Tensor:
    """Actor outputs (..., 4) ``[x_n, y_n, r sin 2a, r cos 2a]`` of flat cell indices (...)
    into an (A, N, N) heat map, with r = ``RADIUS_MEAN`` (the actor's preferred radius)."""
    pixels = cell_pixels(side, cells.device)
    angle_index = torch.div(cells, side * side, rounding_mode='floor')
    row = torch.div(cells % (side * side), side, rounding_mode='floor')
    column = cells % side
    x_n = (pixels[column] - CENTRE) / HALF_WIDTH
    y_n = (pixels[row] - CENTRE) / HALF_WIDTH
    phi = 2.0 * angle_index.float() * (math.pi / angles)
    return torch.stack([x_n, y_n, RADIUS_MEAN * torch.sin(phi), RADIUS_MEAN * torch.cos(phi)],
                       dim=-1)


def nearest_angle_bin(critic_inputs: torch.Tensor, angles: int) -> torch.Tensor:
    """Index (...) of the angle bin nearest to critic inputs' angle (..., 4), modulo pi."""
    alpha = wrap_alpha(0.5 * torch.atan2(critic_inputs[..., 2], critic_inputs[..., 3]))
    return torch.round(alpha * (angles / math.pi)).long() % angles


def sample_grid(critic_inputs: torch.Tensor) -> torch.Tensor:
    """Grid-sample coordinates (..., 2) of critic inputs' (x_n, y_n) on a map of any size."""
    pixels = CENTRE + HALF_WIDTH * critic_inputs[..., :2]
    return (pixels + 0.5) * (2.0 / IMAGE_SIZE) - 1.0


def read_maps(maps: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear values of maps (B, C, N, N) at grid points (B, n, 2) -> (B, C, n)."""
    values = functional.grid_sample(maps, grid[:, :, None, :], mode='bilinear',
                                    padding_mode='border', align_corners=False)
    return values[..., 0]


def map_grasps(critic_inputs: torch.Tensor, homography: torch.Tensor) -> torch.Tensor:
    """Critic inputs (..., 4) of grasps in one frame -> the same grasps (..., 4) in the frame
    that ``homography`` (3, 3, on grid-sample coordinates) maps it to: the centre mapped, the
    closing direction turned by the homography's Jacobian at the centre, r kept."""
    h = homography.to(critic_inputs.dtype)
    grid = sample_grid(critic_inputs)
    mapped = apply_homography(h, grid)
    w = grid[..., 0] * h[2, 0] + grid[..., 1] * h[2, 1] + h[2, 2]
    alpha = 0.5 * torch.atan2(critic_inputs[..., 2], critic_inputs[..., 3])
    cx, cy = torch.cos(alpha), torch.sin(alpha)
    dw = h[2, 0] * cx + h[2, 1] * cy  # d/d(direction) of w
    dx = (h[0, 0] * cx + h[0, 1] * cy - mapped[..., 0] * dw) / w
    dy = (h[1, 0] * cx + h[1, 1] * cy - mapped[..., 1] * dw) / w
    phi = 2.0 * torch.atan2(dy, dx)
    radius = torch.hypot(critic_inputs[..., 2], critic_inputs[..., 3])
    centre = ((mapped + 1.0) * (0.5 * IMAGE_SIZE) - 0.5 - CENTRE) / HALF_WIDTH
    return torch.cat([centre, torch.stack([radius * torch.sin(phi), radius * torch.cos(phi)],
                                          dim=-1)], dim=-1)
