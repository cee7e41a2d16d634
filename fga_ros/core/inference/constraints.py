"""Task constraints a planner puts on grasp proposals (numpy only: the bridge checks with it).

All geometry is in image pixels (x = column, y = row, the simulator's and ``Grasp.msg``'s
planar action space); angles are the closing direction alpha in radians, alpha and
alpha + pi being the same grasp.

- ``region``: polygon (k, 2) the grasp centre must lie in (boundary included).
- ``angle_range``: (low, high) rad, low <= high: the allowed closing directions are those
  alpha with (alpha - low) mod pi <= high - low, so a window may wrap (e.g. (-10 deg, 10 deg)
  allows 170..180 and 0..10 degrees); a window of pi or more allows every direction.
- ``keep_out``: polygons no jaw may touch: the two open claws' footprints (rectangles of
  ``claw_thickness`` along the closing direction by ``claw_width`` across it, centred
  ``(aperture + claw_thickness) / 2`` px either side of the grasp centre; ``sim/gripper.yaml``)
  must not intersect any of them (touching counts).
- ``preferred_point``: (x, y) px; its distance d (px) to the grasp centre adds
  ``preference_weight * d`` to the ranking cost ``1 - score`` (see ``PREFERENCE_WEIGHT``).
- ``min_score``: grasps scoring below it are not returned, in [0, 1].

``None`` / empty means "no constraint" for every field. Every check raises
:class:`ConstraintError` naming the field.
"""

from dataclasses import dataclass
import math
from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike

from fga_ros.core.inference.defaults import PREFERENCE_WEIGHT
from fga_ros.sim import load_gripper_config

MAX_POLYGON_VERTICES = 256
"""Largest number of vertices of one polygon."""

MAX_KEEP_OUT = 32
"""Largest number of keep-out polygons."""


class ConstraintError(ValueError):
    """A constraint that cannot be used; the message names the field."""


def check_polygon(name: str, points: ArrayLike) -> np.ndarray:
    """Return ``points`` as a (k, 2) float64 simple polygon, or raise ConstraintError.

    A usable polygon has 3..MAX_POLYGON_VERTICES finite vertices (a closing repeat of the
    first vertex is dropped), a non-zero area and no two edges crossing or touching other
    than neighbours at their shared vertex.
    """
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConstraintError(f'{name} must be a list of (x, y) points') from None
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ConstraintError(f'{name} must be a list of (x, y) points, got shape '
                              f'{pts.shape}')
    if len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
        pts = pts[:-1]
    if len(pts) < 3:
        raise ConstraintError(f'{name} needs at least 3 vertices, got {len(pts)}')
    if len(pts) > MAX_POLYGON_VERTICES:
        raise ConstraintError(f'{name} has {len(pts)} vertices, more than '
                              f'{MAX_POLYGON_VERTICES}')
    if not np.isfinite(pts).all():
        raise ConstraintError(f'{name} has a non-finite coordinate (NaN or infinite)')
    if _self_intersects(pts):
        raise ConstraintError(f'{name} is self-intersecting (two edges cross)')
    if abs(polygon_area(pts)) < 1e-9:
        raise ConstraintError(f'{name} has zero area (its vertices lie on one line)')
    return pts


def polygon_area(pts: np.ndarray) -> float:
    """Signed area (shoelace) of a polygon (k, 2)."""
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Sign of the cross product (b - a) x (c - a), broadcast over leading axes."""
    return np.sign((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
                   - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))


def _on_segment(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Whether collinear point p lies within the bounding box of segment ab."""
    return ((np.minimum(a[..., 0], b[..., 0]) <= p[..., 0])
            & (p[..., 0] <= np.maximum(a[..., 0], b[..., 0]))
            & (np.minimum(a[..., 1], b[..., 1]) <= p[..., 1])
            & (p[..., 1] <= np.maximum(a[..., 1], b[..., 1])))


def segments_intersect(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray,
                       q2: np.ndarray) -> np.ndarray:
    """Whether segments p1p2 and q1q2 share a point (touching included); broadcasts."""
    o1, o2 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    o3, o4 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    proper = (o1 * o2 < 0) & (o3 * o4 < 0)
    touch = (((o1 == 0) & _on_segment(p1, p2, q1)) | ((o2 == 0) & _on_segment(p1, p2, q2))
             | ((o3 == 0) & _on_segment(q1, q2, p1)) | ((o4 == 0) & _on_segment(q1, q2, p2)))
    return proper | touch


def _self_intersects(pts: np.ndarray) -> bool:
    k = len(pts)
    starts, ends = pts, np.roll(pts, -1, axis=0)
    i, j = np.triu_indices(k, 1)
    adjacent = (j == i + 1) | ((i == 0) & (j == k - 1))
    i, j = i[~adjacent], j[~adjacent]
    return bool(segments_intersect(starts[i], ends[i], starts[j], ends[j]).any())


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(n,) bool: which points (n, 2) lie inside or on the boundary of ``polygon`` (k, 2)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    a, b = polygon, np.roll(polygon, -1, axis=0)
    px, py = points[:, None, 0], points[:, None, 1]
    crosses = (a[None, :, 1] > py) != (b[None, :, 1] > py)
    with np.errstate(divide='ignore', invalid='ignore'):
        x_at = a[None, :, 0] + (py - a[None, :, 1]) * (b[None, :, 0] - a[None, :, 0]) \
            / (b[None, :, 1] - a[None, :, 1])
    inside = (np.sum(crosses & (px < x_at), axis=1) % 2) == 1
    p = points[:, None, :]
    boundary = ((_orient(a[None], b[None], p) == 0) & _on_segment(a[None], b[None], p)).any(1)
    return inside | boundary


def jaw_footprints(actions: np.ndarray) -> np.ndarray:
    """Corners (n, 2, 4, 2) px of the two open claws of grasps ``actions`` (n, 3)."""
    gripper = load_gripper_config()
    actions = np.asarray(actions, dtype=np.float64).reshape(-1, 3)
    along = np.stack([np.cos(actions[:, 2]), np.sin(actions[:, 2])], axis=1)  # closing dir
    across = np.stack([-along[:, 1], along[:, 0]], axis=1)
    offset = 0.5 * (gripper.aperture + gripper.claw_thickness)
    half_t, half_w = 0.5 * gripper.claw_thickness, 0.5 * gripper.claw_width
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    out = np.empty((len(actions), 2, 4, 2))
    for side, sign in enumerate((-1.0, 1.0)):
        centre = actions[:, None, :2] + sign * offset * along[:, None, :]
        out[:, side] = (centre + corners[None, :, 0:1] * half_t * along[:, None, :]
                        + corners[None, :, 1:2] * half_w * across[:, None, :])
    return out


def rectangles_touch_polygon(rects: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(n,) bool: which of the convex quadrilaterals (n, 4, 2) intersect ``polygon`` (k, 2)."""
    n = len(rects)
    if n == 0:
        return np.zeros(0, dtype=bool)
    r1, r2 = rects, np.roll(rects, -1, axis=1)
    q1, q2 = polygon, np.roll(polygon, -1, axis=0)
    edges = segments_intersect(r1[:, :, None, :], r2[:, :, None, :],
                               q1[None, None, :, :], q2[None, None, :, :]).any(axis=(1, 2))
    corner_in = points_in_polygon(rects[:, 0, :], polygon)  # rectangle inside polygon
    # polygon inside rectangle: its first vertex on the inner side of all four edges
    v = polygon[0]
    side = ((r2[..., 0] - r1[..., 0]) * (v[1] - r1[..., 1])
            - (r2[..., 1] - r1[..., 1]) * (v[0] - r1[..., 0]))
    vertex_in = (side >= 0).all(axis=1) | (side <= 0).all(axis=1)
    return edges | corner_in | vertex_in


@dataclass(frozen=True, eq=False)
class TaskConstraints:
    """What a task needs of its grasps (module docstring); default: nothing.

    Attributes:
        region: (k, 2) px polygon or None.
        angle_range: (low, high) rad or None.
        keep_out: tuple of (k, 2) px polygons.
        preferred_point: (2,) px or None.
        preference_weight: ranking cost per pixel of distance to ``preferred_point``, >= 0.
        min_score: in [0, 1].
    """

    region: Optional[np.ndarray] = None
    angle_range: Optional[tuple] = None
    keep_out: tuple = ()
    preferred_point: Optional[np.ndarray] = None
    preference_weight: float = PREFERENCE_WEIGHT
    min_score: float = 0.0

    def __post_init__(self) -> None:
        if self.region is not None:
            object.__setattr__(self, 'region', check_polygon('region', self.region))
        if self.angle_range is not None:
            object.__setattr__(self, 'angle_range', check_angle_range(self.angle_range))
        if len(self.keep_out) > MAX_KEEP_OUT:
            raise ConstraintError(f'keep_out has {len(self.keep_out)} polygons, more than '
                                  f'{MAX_KEEP_OUT}')
        object.__setattr__(self, 'keep_out', tuple(
            check_polygon(f'keep_out[{i}]', p) for i, p in enumerate(self.keep_out)))
        if self.preferred_point is not None:
            point = np.asarray(self.preferred_point, dtype=np.float64).reshape(-1)
            if point.shape != (2,) or not np.isfinite(point).all():
                raise ConstraintError(f'preferred_point must be two finite numbers (x, y px), '
                                      f'got {self.preferred_point!r}')
            object.__setattr__(self, 'preferred_point', point)
        weight = self.preference_weight
        if not (isinstance(weight, (int, float, np.floating)) and math.isfinite(weight)
                and weight >= 0):
            raise ConstraintError(f'preference_weight must be a finite number >= 0, got '
                                  f'{weight!r}')
        object.__setattr__(self, 'min_score', check_min_score(self.min_score))

    @property
    def filters(self) -> bool:
        """Whether some candidates may be rejected (region, angle, keep-out or min_score)."""
        return (self.region is not None or self.angle_range is not None
                or bool(self.keep_out) or self.min_score > 0)

    def allowed(self, actions: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """(n,) bool: which grasps (n, 3) with ``scores`` (n,) satisfy every constraint."""
        actions = np.asarray(actions, dtype=np.float64).reshape(-1, 3)
        ok = np.asarray(scores) >= self.min_score
        if self.region is not None:
            ok &= points_in_polygon(actions[:, :2], self.region)
        if self.angle_range is not None:
            low, high = self.angle_range
            ok &= np.mod(actions[:, 2] - low, math.pi) <= high - low
        if self.keep_out and ok.any():
            index = np.flatnonzero(ok)
            jaws = jaw_footprints(actions[index]).reshape(-1, 4, 2)
            touched = np.zeros(len(jaws), dtype=bool)
            for polygon in self.keep_out:
                touched |= rectangles_touch_polygon(jaws, polygon)
            ok[index[touched.reshape(-1, 2).any(axis=1)]] = False
        return ok

    def cost(self, actions: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """(n,) ranking cost: ``1 - score`` plus the preference term (lower ranks first)."""
        cost = 1.0 - np.asarray(scores, dtype=np.float64)
        if self.preferred_point is not None:
            xy = np.asarray(actions, dtype=np.float64).reshape(-1, 3)[:, :2]
            cost = cost + self.preference_weight * np.linalg.norm(
                xy - self.preferred_point, axis=1)
        return cost

    def describe(self) -> str:
        """Short text of the active constraints, for messages ('' when none)."""
        parts = []
        if self.region is not None:
            parts.append(f'region ({len(self.region)} vertices)')
        if self.angle_range is not None:
            low, high = np.degrees(self.angle_range)
            parts.append(f'angle range [{low:.1f}, {high:.1f}] deg')
        if self.keep_out:
            parts.append(f'{len(self.keep_out)} keep-out polygon(s)')
        if self.min_score > 0:
            parts.append(f'min_score {self.min_score:g}')
        return ', '.join(parts)


def check_angle_range(value: Any) -> tuple[float, float]:
    """Return ``value`` as (low, high) float rad with low <= high, or raise ConstraintError."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConstraintError(f'angle_range must be two numbers (low, high), got '
                              f'{value!r}') from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConstraintError(f'angle_range must be finite, got ({low}, {high})')
    if high < low:
        raise ConstraintError(
            f'angle_range is inverted: high {math.degrees(high):.1f} deg < low '
            f'{math.degrees(low):.1f} deg; a window across 0 is written with a negative low '
            f'(e.g. -10, 10 deg) or a high above 180 deg (e.g. 170, 190 deg)')
    return low, high


def check_min_score(value: Any) -> float:
    """Return ``value`` as a float in [0, 1], or raise ConstraintError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConstraintError(f'min_score must be a number in [0, 1], got {value!r}')
    if not 0.0 <= value <= 1.0:  # also NaN
        raise ConstraintError(f'min_score must be in [0, 1], got {value}')
    return float(value)


def rectangle(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """The axis-aligned rectangle with corners (x0, y0), (x1, y1) as a (4, 2) polygon."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
