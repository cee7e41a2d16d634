"""The camera's view of the table, learned from grasp outcomes (``camera_view: fitted``).

A fixed camera sees the planar table through a homography H: table point -> image point.
The ``cpu`` recipe reads the image where the gripper is (``LocalCritic``, ``SpatialActor``),
so it needs images in which pixel = table point. With ``camera_view: table`` (the default)
the image is taken to be that; with ``fitted`` the trainer estimates H from the prefill's
successful grasps (:func:`fit_table_view`) and the network rectifies every image with it
(:class:`TableRectifier`) before its extractor: the recipe learns where to look instead of
assuming it.

The fit: a successful grasp's centre lies on the object, so H is the homography that puts
the prefill's successful grasp centres (table coordinates) on the object pixels of their
images. Object pixels are those away from the background colour (the median colour of the
image border). The score is the mean of ``log(FLOOR + blurred foreground)`` at the mapped
centres; the search tries ``SEARCH_TURNS`` camera rolls, then refines all 8 degrees of
freedom by Adam on ever less blurred foregrounds (``BLUR_PIXELS``), and keeps the best of
the fit and the identity.

Coordinates: grid_sample's normalised image coordinates (``align_corners=False``), in
[-1, 1] over the image; table and image share them (the workspace is the undistorted image).
"""

import math
from typing import NamedTuple, Optional, Sequence

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional

from fga_ros.sim.workspace import IMAGE_SIZE

SEARCH_TURNS = 24
"""Camera rolls tried before the refinement, evenly spaced over a full turn."""
BLUR_PIXELS = (6.0, 3.0, 1.5, 0.75)
"""Gaussian blur of the foreground at each refinement stage, network pixels (coarse first)."""
STAGE_ITERATIONS = 150
"""Adam iterations per refinement stage."""
MIN_IMAGES = 50
"""Fewest images with a successful grasp a fit is tried on: with few scenes a homography
that squeezes the table onto where their objects happen to lie scores as well as the true
one."""
MIN_GAIN = 0.02
"""Share of the centres a fit must put on the object beyond the identity to replace it: a
top-down camera keeps the exact identity (no resampling) rather than a fit a fraction of a
pixel off it."""
FLOOR = 0.05
"""Added to the blurred foreground before the log: a centre off the object costs log(FLOOR)."""
MAX_CONDITION = 1e3
"""Largest accepted condition number of a homography (a model file's included)."""


def warp_grid(homography: torch.Tensor, side: int) -> torch.Tensor:
    """grid_sample grid (1, side, side, 2): image coordinates of every table pixel centre."""
    centres = (torch.arange(side, dtype=homography.dtype, device=homography.device) + 0.5)
    centres = centres * (2.0 / side) - 1.0
    ys, xs = torch.meshgrid(centres, centres, indexing='ij')
    return apply_homography(homography, torch.stack([xs, ys], dim=-1))[None]


def apply_homography(homography: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Points (..., 2) mapped by a 3x3 homography -> (..., 2)."""
    ones = torch.ones_like(points[..., :1])
    mapped = torch.cat([points, ones], dim=-1) @ homography.T
    return mapped[..., :2] / mapped[..., 2:].clamp_min(1e-6)


def pixels_to_table(points: np.ndarray) -> np.ndarray:
    """Observation pixels (..., 2) (pixel i spans [i, i + 1) of the 128-pixel image) ->
    normalised table coordinates (..., 2) in [-1, 1]."""
    return np.asarray(points, dtype=np.float64) * (2.0 / IMAGE_SIZE) - 1.0


def check_homography(homography: torch.Tensor) -> None:
    """Refuse a table view that is not a finite, well-conditioned homography that keeps the
    table in front of the camera (positive w over the image square)."""
    if homography.shape != (3, 3) or not bool(torch.isfinite(homography).all()):
        raise ValueError(f'camera view must be a finite 3x3 homography, got shape '
                         f'{tuple(homography.shape)}')
    h = homography.double()
    condition = float(torch.linalg.cond(h))
    if not condition <= MAX_CONDITION:
        raise ValueError(f'camera view homography is degenerate (condition number '
                         f'{condition:.3g} > {MAX_CONDITION:g})')
    corners = torch.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0],
                            [-1.0, 1.0, 1.0]], dtype=torch.float64)
    w = (corners @ h.T)[:, 2] * h[2, 2].sign()
    if not bool((w > 0).all()):
        raise ValueError('camera view homography puts part of the table behind the camera')


class TableRectifier(nn.Module):
    """Images seen through ``homography`` (table -> image) -> images of the table.

    ``homography`` is a persistent buffer (3, 3), the identity until the trainer fits it;
    it travels in checkpoints and model files with the weights.
    """

    homography: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer('homography', torch.eye(3))
        self._grid: Optional[tuple[torch.Tensor, torch.Tensor]] = None

    def grid(self, side: int, dtype: torch.dtype) -> torch.Tensor:
        """``warp_grid`` of the current homography, kept until the homography, the side or
        the dtype changes."""
        if self._grid is not None:
            homography, grid = self._grid
            if grid.shape[1] == side and grid.dtype == dtype \
                    and grid.device == self.homography.device \
                    and torch.equal(homography, self.homography):
                return grid
        grid = warp_grid(self.homography.to(dtype), side)
        self._grid = (self.homography.clone(), grid)
        return grid

    def is_identity(self) -> bool:
        """Whether the view is exactly the identity (the image is the table)."""
        return torch.equal(self.homography, torch.eye(3, device=self.homography.device))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images (S, C, H, H) -> rectified (S, C, H, H); the background colour
        (border pixels) fills what the camera does not see."""
        if self.is_identity():
            return images  # the table itself: nothing to resample
        grid = self.grid(images.shape[-1], images.dtype)
        return functional.grid_sample(images, grid.expand(images.shape[0], -1, -1, -1),
                                      align_corners=False, padding_mode='border')


def foreground(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W, 3) -> object weights (N, H, W) in [0, 1]: each pixel's L1
    distance from the median border colour, over the image's largest such distance."""
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]],
                            axis=1).astype(np.float32)
    background = np.median(border, axis=1)  # (N, 3)
    distance = np.abs(images.astype(np.float32) - background[:, None, None]).sum(-1)
    return distance / np.maximum(distance.reshape(len(images), -1).max(1), 1.0)[:, None, None]


def _blurred(weights: np.ndarray, sigma: float) -> torch.Tensor:
    """(N, H, W) weights blurred by a Gaussian of sigma pixels -> (N, 1, H, W) tensor."""
    size = 2 * int(math.ceil(3 * sigma)) + 1
    out = np.stack([cv2.GaussianBlur(w, (size, size), sigma) for w in weights])
    return torch.from_numpy(out.astype(np.float32))[:, None]


def _read_at(maps: torch.Tensor, homography: torch.Tensor,
             centres: torch.Tensor) -> torch.Tensor:
    """Maps (N, 1, H, W) read bilinearly at centres (N, k, 2) mapped by homography ->
    (N, 1, k, 1); 0 outside the image."""
    grid = apply_homography(homography, centres)[:, :, None]
    return functional.grid_sample(maps, grid, align_corners=False, padding_mode='zeros')


def _score(homography: torch.Tensor, blurred: torch.Tensor,
           centres: torch.Tensor) -> torch.Tensor:
    """Mean log(FLOOR + blurred foreground) at the centres (N, k, 2) mapped by homography."""
    return torch.log(FLOOR + _read_at(blurred, homography, centres)).mean()


def _usable(homography: torch.Tensor) -> bool:
    """Whether a model file holding this homography would load (``check_homography``)."""
    try:
        check_homography(homography)
    except ValueError:
        return False
    return True


def _roll(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class TableViewFit(NamedTuple):
    """What :func:`fit_table_view` found."""

    homography: np.ndarray
    """(3, 3) table -> image, normalised coordinates; the identity when the fit did not win"""
    on_object: float
    """share of the successful grasp centres that it puts on object pixels (weight > 0.5)"""
    on_object_identity: float
    """the same share with the image taken as the table (the identity)"""
    centres: int
    """successful grasp centres the fit used"""


def describe_fit(fit: TableViewFit) -> str:
    """One line for a user: what the fit found and why the identity was kept, if it was."""
    if math.isnan(fit.on_object):
        return (f'camera view: the image is taken as the table (too few scenes with a '
                f'successful grasp for a fit, fewer than {MIN_IMAGES})')
    shares = (f'{100 * fit.on_object:.1f} % of {fit.centres} successful grasp centres on the '
              f'object')
    if np.array_equal(fit.homography, np.eye(3)):
        return f'camera view: the image is taken as the table ({shares})'
    return (f'camera view: fitted homography puts {shares} (the image taken as the table: '
            f'{100 * fit.on_object_identity:.1f} %)')


def _on_object(homography: torch.Tensor, weights: torch.Tensor, centres: torch.Tensor) -> float:
    """Share of the centres (N, k, 2) mapped by homography onto object weights > 0.5."""
    return float((_read_at(weights, homography, centres) > 0.5).float().mean())


def fit_table_view(images: np.ndarray, centres: Sequence[np.ndarray]) -> TableViewFit:
    """The homography table -> image that puts successful grasp centres on the object.

    Args:
        images: uint8 (N, H, W, 3), the camera images (any square size).
        centres: N arrays (k_i, 2), the successful grasp centres of each image in
            normalised table coordinates (x, y in [-1, 1]); images without one are skipped.

    The identity is kept when fewer than ``MIN_IMAGES`` images have a centre, when the fit
    puts fewer than ``MIN_GAIN`` more of the centres on the object, or when it is not a
    homography a model file may hold (``check_homography``).
    """
    keep = [i for i, c in enumerate(centres) if len(c)]
    count = sum(len(centres[i]) for i in keep)
    if len(keep) < MIN_IMAGES:
        return TableViewFit(np.eye(3), math.nan, math.nan, count)
    per_image = max(len(centres[i]) for i in keep)
    rng = np.random.default_rng(0)
    points = torch.from_numpy(np.stack([
        np.asarray(centres[i], dtype=np.float32)[rng.integers(0, len(centres[i]), per_image)]
        for i in keep]))
    weights = foreground(np.asarray(images)[keep])
    stages = [_blurred(weights, sigma) for sigma in BLUR_PIXELS]
    with torch.no_grad():
        start = max((_roll(2 * math.pi * t / SEARCH_TURNS) for t in range(SEARCH_TURNS)),
                    key=lambda h: float(_score(h, stages[0], points)))
    delta = torch.zeros(8, requires_grad=True)
    optimiser = torch.optim.Adam([delta], lr=0.01)
    for blurred in stages:
        for _ in range(STAGE_ITERATIONS):
            homography = start @ (torch.eye(3) + torch.cat([delta, delta.new_zeros(1)]).view(3, 3))
            loss = -_score(homography, blurred, points)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        fitted = start @ (torch.eye(3) + torch.cat([delta, delta.new_zeros(1)]).view(3, 3))
        fitted = fitted / fitted[2, 2]
        sharp = torch.from_numpy(weights.astype(np.float32))[:, None]
        on_object = _on_object(fitted, sharp, points)
        on_object_identity = _on_object(torch.eye(3), sharp, points)
        if on_object < on_object_identity + MIN_GAIN or not _usable(fitted):
            fitted, on_object = torch.eye(3), on_object_identity
        return TableViewFit(fitted.numpy().astype(np.float64), on_object, on_object_identity,
                            count)
