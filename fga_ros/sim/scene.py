"""Scenes: small frozen values (shape, seed, distortion) whose parameters follow from the seed.

The sampled parameters are a pure function of ``(shape, seed)``: a numpy Generator seeded
with ``(seed, crc32(shape))``, so the same scene is produced on every machine and run.
Explicit parameter values (``params`` of :func:`make_scene`) replace sampled ones; they are
part of the scene's identity (hash, equality, ``to_dict``).
"""

from dataclasses import dataclass
import functools
import math
from typing import Any, Mapping, Optional
import zlib

import numpy as np

from fga_ros.safe_yaml import quote
from fga_ros.sim.workspace import IMAGE_SIZE
from fga_ros.sim.world import ShapeFamily, load_world

DISTORTIONS = ('none', 'rotation', 'projection', 'both')
"""Camera distortions (appendix D); they change the image only, never the physics."""

POSE_PARAMS = ('x', 'y', 'theta')
"""Pose parameters: object centre x, y (pixels) and orientation theta (radians)."""

PARAM_LIMITS = {'theta': (-4 * math.pi, 4 * math.pi)}
"""Accepted [low, high] of an explicit parameter; every other one (centre x, y and the
families' sizes, pixels) must lie in [0, IMAGE_SIZE]: a negative size or an object placed
far off the image is refused, not drawn as an empty scene."""

COLOR_PARAMS = ('object_color', 'background_color')
"""Colour parameters: RGB triples of integers in 0..255."""


def _check_color(name, value):
    try:
        rgb = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f'{name} must be three integers in 0..255, got {quote(value)}') from None
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb) or any(
            float(v) != r for v, r in zip(value, rgb)):
        raise ValueError(f'{name} must be three integers in 0..255, got {quote(value)}')
    return rgb


def _check_override(family, name, value):
    if name in COLOR_PARAMS:
        return _check_color(name, value)
    if name not in POSE_PARAMS and name not in family.param_names:
        valid = POSE_PARAMS + COLOR_PARAMS + family.param_names
        raise ValueError(f'unknown parameter {quote(name)} for shape {family.name!r}; '
                         f'valid: {", ".join(valid)}')
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f'parameter {quote(name)} must be a number, got {quote(value)}')
    if not math.isfinite(float(value)):
        raise ValueError(f'parameter {quote(name)} must be finite, got {quote(value)}')
    low, high = PARAM_LIMITS.get(name, (0.0, float(IMAGE_SIZE)))
    if not low <= float(value) <= high:
        raise ValueError(f'parameter {name} must lie in [{low:g}, {high:g}] (pixels for '
                         f'positions and sizes, radians for theta), got {quote(value)}')
    return float(value)


@dataclass(frozen=True)
class Scene:
    """One grasping scene. Build with :func:`make_scene`; hashable, usable as a cache key.

    ``overrides`` is a sorted tuple of ``(name, value)`` pairs of explicit parameters.
    """

    shape: str
    seed: int
    distortion: str = 'none'
    overrides: tuple = ()

    def __post_init__(self) -> None:
        family = load_world().family(self.shape)
        if self.distortion not in DISTORTIONS:
            raise ValueError(f'unknown distortion {quote(self.distortion)}; '
                             f'valid distortions: {", ".join(DISTORTIONS)}')
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) \
                or self.seed < 0:
            raise ValueError(f'seed must be a non-negative integer, got {quote(self.seed)}')
        for name, value in self.overrides:
            _check_override(family, name, value)

    @property
    def family(self) -> ShapeFamily:
        return load_world().family(self.shape)

    @property
    def params(self) -> dict:
        """Sampled parameters (a fresh JSON-friendly dict): x, y (pixels), theta (radians),
        object_color, background_color (RGB lists) and the family's geometry (pixels)."""
        params = dict(_sample_params(self.shape, int(self.seed)))
        params.update(self.overrides)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}

    def to_dict(self) -> dict:
        """JSON-friendly description; :meth:`from_dict` rebuilds the same scene. ``params``
        (the resulting parameters) is informative and ignored by :meth:`from_dict`."""
        return {'shape': self.shape, 'seed': int(self.seed), 'distortion': self.distortion,
                'params_override': {k: (list(v) if isinstance(v, tuple) else v)
                                    for k, v in self.overrides},
                'params': self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> 'Scene':
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, dict) or 'shape' not in data or 'seed' not in data:
            raise ValueError(f'a scene dict needs at least "shape" and "seed", got {quote(data)}')
        return make_scene(data['shape'], data['seed'], data.get('distortion', 'none'),
                          data.get('params_override') or None)

    def with_distortion(self, distortion: str) -> 'Scene':
        """The same physical scene seen through another camera distortion."""
        return Scene(self.shape, self.seed, distortion, self.overrides)


def make_scene(shape: str, seed: int, distortion: str = 'none',
               params: Optional[Mapping[str, Any]] = None) -> Scene:
    """Build the scene ``(shape, seed, distortion)``.

    ``params`` optionally fixes parameters explicitly (e.g. a canonical pose and geometry for
    tests); keys are x, y, theta, object_color, background_color or the family's geometry
    parameter names. Raises ValueError naming the valid choices for unknown values.
    """
    family = load_world().family(shape)
    if isinstance(seed, np.integer):
        seed = int(seed)
    overrides = tuple(sorted((name, _check_override(family, name, value))
                             for name, value in (params or {}).items()))
    return Scene(shape, seed, distortion, overrides)


@functools.lru_cache(maxsize=4096)
def _sample_params(shape, seed):
    world = load_world()
    family = world.family(shape)
    rng = np.random.default_rng([seed, zlib.crc32(shape.encode('utf-8'))])
    ranges = [r for _, r in family.param_ranges] + [world.theta_range, world.center_range,
                                                     world.center_range]
    lo, hi = np.array(ranges, dtype=np.float64).T
    values = lo + (hi - lo) * rng.random(len(ranges))
    names = family.param_names + ('theta', 'x', 'y')
    params: dict[str, Any] = {name: float(v) for name, v in zip(names, values)}
    while True:  # rejection sampling of colour pairs, 8 candidates per draw
        pairs = rng.integers(0, 256, size=(8, 2, 3))
        dist = np.linalg.norm((pairs[:, 0] - pairs[:, 1]).astype(np.float64), axis=1)
        ok = np.flatnonzero(dist >= world.min_color_distance)
        if ok.size:
            obj, bg = pairs[ok[0]]
            break
    params['object_color'] = tuple(int(v) for v in obj)
    params['background_color'] = tuple(int(v) for v in bg)
    return tuple(params.items())
