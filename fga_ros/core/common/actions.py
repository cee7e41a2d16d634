"""Conversions between simulator grasps and the networks' action space.

Simulator (pixel) space, shape (..., 3): ``(x, y, alpha)``, x and y in image pixels inside
the workspace ``[WORKSPACE_LO, WORKSPACE_HI)``, alpha in radians in ``[0, pi)``.

Network space:

- x_n = (x - c) / h, y_n = (y - c) / h with c the workspace centre and h its half-width,
  so the workspace maps to [-1, 1];
- the gripper is symmetric (alpha ~ alpha + pi), so the angle is represented by the
  DOUBLED angle phi = 2 alpha, which makes the representation continuous across
  alpha = 0 / pi;
- the actor outputs ``[x_n, y_n, r sin(phi), r cos(phi)]`` (r > 0 is free, appendix B);
- the critic takes the unit-norm ``[x_n, y_n, sin(phi), cos(phi)]``.

Every function accepts numpy arrays or torch tensors and returns the same kind
(torch results keep gradients where the operation is differentiable).
"""


from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import torch

from fga_ros.sim.workspace import IMAGE_SIZE, MAX_COORD, WORKSPACE_HI, WORKSPACE_LO, wrap_alpha

ACTION_DIM = 4
"""Actor output / critic input size: [x_n, y_n, (r) sin 2alpha, (r) cos 2alpha]."""
CENTRE = 0.5 * (WORKSPACE_LO + WORKSPACE_HI)
"""Workspace centre in pixels (64 for the 128-pixel image)."""
HALF_WIDTH = 0.5 * (WORKSPACE_HI - WORKSPACE_LO)
"""Workspace half-width in pixels (39): one network unit."""
MIN_RADIUS = 1e-6
"""Radius below which an actor output's angle is undefined; normalisation clamps to it."""
Array = TypeVar('Array', np.ndarray, torch.Tensor)
"""The functions below take numpy arrays or torch tensors and return the same kind."""


def _lib(a: Array) -> ModuleType:
    return torch if isinstance(a, torch.Tensor) else np


def _check_last(name: str, a: Array, size: int) -> None:
    if a.ndim < 1 or a.shape[-1] != size:
        raise ValueError(f'{name} must have shape (..., {size}), got {tuple(a.shape)}')


def _as_array(a: Array) -> Array:
    return a if isinstance(a, torch.Tensor) else np.asarray(a, dtype=np.float64)


def _stack(lib: ModuleType, parts: list[Any]) -> Any:
    return lib.stack(parts, -1) if lib is torch else np.stack(parts, axis=-1)


def encode_actions(px: Array) -> Array:
    """Pixel actions (..., 3) -> unit-norm critic input ``[x_n, y_n, sin 2a, cos 2a]`` (..., 4)."""
    px = _as_array(px)
    _check_last('actions', px, 3)
    lib = _lib(px)
    phi = 2.0 * px[..., 2]
    return _stack(lib, [(px[..., 0] - CENTRE) / HALF_WIDTH, (px[..., 1] - CENTRE) / HALF_WIDTH,
                        lib.sin(phi), lib.cos(phi)])


def radius(out: Array) -> Array:
    """Radius r of actor outputs (..., 4): the norm of the last two components, (...)."""
    out = _as_array(out)
    _check_last('actor outputs', out, 4)
    return _lib(out).sqrt(out[..., 2] ** 2 + out[..., 3] ** 2)


def normalise_actor_output(out: Array) -> Array:
    """Actor outputs (..., 4) -> critic input (..., 4): the angle part scaled to unit norm.

    The radius is clamped to ``MIN_RADIUS`` so that r = 0 gives a finite (arbitrary) angle.
    """
    out = _as_array(out)
    r = radius(out)
    r = r.clamp_min(MIN_RADIUS) if isinstance(r, torch.Tensor) else np.maximum(r, MIN_RADIUS)
    return _stack(_lib(out), [out[..., 0], out[..., 1], out[..., 2] / r, out[..., 3] / r])


def decode_actor(out: Array) -> Array:
    """Actor outputs or critic inputs (..., 4) -> pixel actions (..., 3).

    alpha = atan2(a_3, a_4) / 2 wrapped into [0, pi); x and y are clipped into the
    workspace ``[WORKSPACE_LO, MAX_COORD]``.
    """
    out = _as_array(out)
    _check_last('actor outputs', out, 4)
    lib = _lib(out)
    x: Any
    y: Any
    if isinstance(out, torch.Tensor):
        x = (CENTRE + HALF_WIDTH * out[..., 0]).clamp(WORKSPACE_LO, MAX_COORD)
        y = (CENTRE + HALF_WIDTH * out[..., 1]).clamp(WORKSPACE_LO, MAX_COORD)
    else:
        x = np.clip(CENTRE + HALF_WIDTH * out[..., 0], WORKSPACE_LO, MAX_COORD)
        y = np.clip(CENTRE + HALF_WIDTH * out[..., 1], WORKSPACE_LO, MAX_COORD)
    return _stack(lib, [x, y, wrap_alpha(0.5 * lib.atan2(out[..., 2], out[..., 3]))])


def turn_critic_inputs(inputs: torch.Tensor, turns: int) -> torch.Tensor:
    """Critic inputs (..., 4) of the same grasps on the image turned by ``turns`` quarter
    turns (``torch.rot90(image, turns, dims=(-2, -1))`` on (..., rows, columns) images).

    One turn moves pixel (x, y) to (y, IMAGE_SIZE - 1 - x) and the closing direction at
    angle alpha to alpha - pi/2, which negates the (sin 2alpha, cos 2alpha) components.
    """
    _check_last('critic inputs', inputs, ACTION_DIM)
    x = CENTRE + HALF_WIDTH * inputs[..., 0]
    y = CENTRE + HALF_WIDTH * inputs[..., 1]
    sin2, cos2 = inputs[..., 2], inputs[..., 3]
    for _ in range(turns % 4):
        x, y = y, (IMAGE_SIZE - 1) - x
        sin2, cos2 = -sin2, -cos2
    return torch.stack([(x - CENTRE) / HALF_WIDTH, (y - CENTRE) / HALF_WIDTH, sin2, cos2], dim=-1)
