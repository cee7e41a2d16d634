"""Grasps for the critic to explore besides the actor's samples: uniform over the workspace,
or with centres on the object (where every feasible grasp centre lies).

The object is found without the network: the table of a top-down scene is one colour, so
the pixels unlike the median colour of the image's border hold the object; explored
centres lie within ``OBJECT_MARGIN_PX`` of them. Where that finds nothing, or more than
``MAX_OBJECT_SHARE`` of the workspace (no single object on a plain table: noise, a
photograph, a tilted camera's view), the centres are uniform over the workspace instead.
"""

import math
from typing import Optional

import numpy as np
import torch

from fga_ros.core.common.actions import encode_actions
from fga_ros.sim.workspace import MAX_COORD, WORKSPACE_HI, WORKSPACE_LO

COLOUR_THRESHOLD = 30
"""Summed absolute RGB difference (0..765) from the table colour above which a pixel is
the object's."""

OBJECT_MARGIN_PX = 3
"""Pixels the object's mask is grown by: a grasp centre may lie just off the object."""

MAX_OBJECT_SHARE = 0.5
"""Largest share of the workspace the object's mask may cover to be believed."""


def uniform_critic_inputs(n: int, generator: Optional[torch.Generator],
                          device: torch.device) -> torch.Tensor:
    """``n`` critic inputs (n, 4) of grasps uniform over the workspace and [0, pi)."""
    u = torch.rand((n, 3), generator=generator, device=device, dtype=torch.float64)
    low, span = WORKSPACE_LO, MAX_COORD - WORKSPACE_LO
    px = torch.stack([low + span * u[:, 0], low + span * u[:, 1], math.pi * u[:, 2]], dim=1)
    return encode_actions(px).float()


def object_pixels(image: np.ndarray) -> np.ndarray:
    """(k, 2) int64 (x, y) workspace pixels of the object; empty when the image shows no
    single object on a plain table (module docstring).

    Args:
        image: (128, 128, 3) uint8 RGB top-down image.
    """
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    table = np.median(border, axis=0)
    lo, hi = int(WORKSPACE_LO), int(WORKSPACE_HI)
    region = image[lo:hi, lo:hi].astype(np.int64)
    mask = np.abs(region - table).sum(axis=-1) > COLOUR_THRESHOLD
    if not mask.any() or mask.mean() > MAX_OBJECT_SHARE:
        return np.zeros((0, 2), dtype=np.int64)
    y, x = np.nonzero(mask)
    return np.stack([x + lo, y + lo], axis=1)


def object_critic_inputs(image: np.ndarray, n: int, generator: Optional[torch.Generator],
                         device: torch.device) -> torch.Tensor:
    """``n`` critic inputs (n, 4) of grasps centred uniformly on the object's pixels
    (:func:`object_pixels`) grown by ``OBJECT_MARGIN_PX`` on every side, angles uniform in
    [0, pi); uniform over the workspace when no object is found."""
    pixels = object_pixels(image)
    if len(pixels) == 0:
        return uniform_critic_inputs(n, generator, device)
    which = torch.randint(len(pixels), (n,), generator=generator, device=device)
    u = torch.rand((n, 3), generator=generator, device=device, dtype=torch.float64)
    corner = torch.as_tensor(pixels, device=device, dtype=torch.float64)[which]
    xy = corner - OBJECT_MARGIN_PX + (2 * OBJECT_MARGIN_PX + 1) * u[:, :2]
    px = torch.cat([xy.clamp(WORKSPACE_LO, MAX_COORD), math.pi * u[:, 2:]], dim=1)
    return encode_actions(px).float()
