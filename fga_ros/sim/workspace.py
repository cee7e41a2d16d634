"""Image and action-space conventions: the one source of truth for the whole project.

- Images are 128 x 128 RGB uint8 arrays of shape (H, W, 3); row = y, column = x, origin at
  the top-left, pixel centres at integer coordinates.
- A planar grasp action is ``(x, y, alpha)``: x, y in pixels (float, image coordinates)
  restricted to the central 78 x 78 region ``[WORKSPACE_LO, WORKSPACE_HI)``; alpha in radians
  in ``[0, pi)``. The gripper is symmetric, so alpha and alpha + pi are the same grasp and
  :func:`validate_actions` wraps alpha modulo pi.
- Arrays of actions have shape (B, 3), float64 or float32.
"""

import math
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    import torch

IMAGE_SIZE = 128
"""Side of the square camera image, pixels."""

WORKSPACE_LO = 25.0
"""Smallest allowed grasp x and y, pixels (inclusive)."""

WORKSPACE_HI = 103.0
"""Bound on grasp x and y, pixels (exclusive)."""

WORKSPACE_SIZE = 78
"""Side of the action workspace, pixels (= WORKSPACE_HI - WORKSPACE_LO)."""

MAX_COORD = float(np.nextafter(np.float32(WORKSPACE_HI), np.float32(WORKSPACE_LO)))
"""Largest pixel coordinate decoded actions take, inside the half-open workspace even in
float32."""

ALPHA_PERIOD = math.pi
"""Grasp angles are taken modulo this period (the gripper is symmetric)."""


@overload
def wrap_alpha(alpha: 'torch.Tensor') -> 'torch.Tensor': ...


@overload
def wrap_alpha(alpha: ArrayLike) -> np.ndarray: ...


def wrap_alpha(alpha: Any) -> Any:
    """Wrap gripper angles (radians, any shape) into ``[0, pi)``, exactly excluding pi.

    Takes anything numpy converts (returned as float64) or a torch tensor (returned as a
    tensor of its dtype, gradients kept; this module itself never imports torch).
    """
    if not hasattr(alpha, '__torch_function__'):
        alpha = np.asarray(alpha, dtype=np.float64)
    wrapped = alpha % ALPHA_PERIOD
    # % can round a tiny negative angle up to exactly pi; pi is the same grasp as 0.
    return wrapped - wrapped * (wrapped >= ALPHA_PERIOD)


def validate_actions(actions: ArrayLike) -> np.ndarray:
    """Check grasp actions and return them as float64 (B, 3) with alpha wrapped into [0, pi).

    Raises ValueError naming the problem: wrong shape, non-numeric, NaN/inf, or x/y outside
    ``[WORKSPACE_LO, WORKSPACE_HI)``. The input is never modified.
    """
    if np.iscomplexobj(actions):
        raise ValueError('actions must be real numbers, got complex values')
    try:
        arr = np.array(actions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f'actions must be a numeric array of shape (B, 3): {exc}') from None
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f'actions must have shape (B, 3), got {arr.shape}')
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(f'actions must be finite: row {bad} is {arr[bad].tolist()}')
    xy = arr[:, :2]
    inside = ((xy >= WORKSPACE_LO) & (xy < WORKSPACE_HI)).all(axis=1)
    if not inside.all():
        bad = int(np.flatnonzero(~inside)[0])
        raise ValueError(
            f'action x and y must lie in [{WORKSPACE_LO}, {WORKSPACE_HI}) pixels: row {bad} is '
            f'{arr[bad].tolist()}')
    arr[:, 2] = wrap_alpha(arr[:, 2])
    return arr


def uniform_actions(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` pixel actions (n, 3) uniform over the workspace and [0, pi), float64.

    Args:
        n: number of actions.
        rng: ``numpy.random.Generator``.
    """
    low = np.array([WORKSPACE_LO, WORKSPACE_LO, 0.0])
    high = np.array([WORKSPACE_HI, WORKSPACE_HI, math.pi])
    # Generator.uniform may round up to ``high``: keep the half-open intervals.
    top = np.array([MAX_COORD, MAX_COORD, np.nextafter(math.pi, 0.0)])
    return np.minimum(rng.uniform(low, high, size=(n, 3)), top)
