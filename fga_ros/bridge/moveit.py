"""Task constraints of a MoveIt ``GraspPlanning`` request (numpy only, no ROS imports).

``moveit_msgs/srv/GraspPlanning`` carries the object to grasp (``target``, a
``moveit_msgs/CollisionObject``) and the obstacles the robot may push (``movable_obstacles``).
On the top-down table they become:

- region: the target's footprint (the convex hull of its primitives projected onto the table
  plane): every grasp centre lies on the target;
- keep_out: each movable obstacle's footprint: no open jaw touches it.

A collision object without primitives constrains nothing. Supported primitives
(``shape_msgs/SolidPrimitive``): BOX (x, y, z), SPHERE (radius), CYLINDER and CONE (height,
radius); anything else is a RequestError naming the field.
"""

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike

from fga_ros.bridge.geometry import transform_points
from fga_ros.bridge.requests import RequestError
from fga_ros.core.inference.constraints import ConstraintError, TaskConstraints

BOX, SPHERE, CYLINDER, CONE = 1, 2, 3, 4
"""``shape_msgs/SolidPrimitive`` type constants (identical in Humble and Jazzy)."""

_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * math.pi, 16, endpoint=False)),
                    np.sin(np.linspace(0, 2 * math.pi, 16, endpoint=False))], axis=1)


ToPixels = Callable[[str, str, np.ndarray], np.ndarray]
"""``(field name, frame_id, points (n, 3) m) -> (n, 2) px`` on the table plane."""

def _pose(pose: Any) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    p, q = pose.position, pose.orientation
    rotation = (q.x, q.y, q.z, q.w)
    if not any(rotation):  # an unset orientation (all zero) means identity
        rotation = (0.0, 0.0, 0.0, 1.0)
    return (p.x, p.y, p.z), rotation


def primitive_points(name: str, primitive: Any) -> np.ndarray:
    """Corner points (n, 3) m of a primitive in its own frame (circles as 16-gons)."""
    dims = [float(d) for d in primitive.dimensions]
    if not all(math.isfinite(d) and d > 0 for d in dims):
        raise RequestError(f'{name} has a dimension that is not a positive number: {dims}')
    if primitive.type == BOX and len(dims) >= 3:
        half = np.array(dims[:3]) / 2
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        return signs * half
    if primitive.type == SPHERE and len(dims) >= 1:
        r = dims[0]
        return np.concatenate([np.column_stack([r * _CIRCLE, np.full(16, z)])
                               for z in (-r, 0.0, r)])
    if primitive.type in (CYLINDER, CONE) and len(dims) >= 2:
        height, r = dims[0], dims[1]
        return np.concatenate([np.column_stack([r * _CIRCLE, np.full(16, z)])
                               for z in (-height / 2, height / 2)])
    raise RequestError(f'{name}: primitive type {primitive.type} with {len(dims)} dimensions '
                       f'is not supported (BOX, SPHERE, CYLINDER, CONE)')


def _turn(a: Sequence[float], b: Sequence[float], c: Sequence[float]) -> float:
    """Cross product (b - a) x (c - a): > 0 for a left turn."""
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def convex_hull(points: ArrayLike) -> np.ndarray:
    """Convex hull (k, 2) of 2-D points (n, 2), counter-clockwise (monotone chain)."""
    pts = np.unique(np.asarray(points, dtype=np.float64).reshape(-1, 2), axis=0)
    if len(pts) < 3:
        return pts

    def half(sequence: Any) -> list[Any]:
        chain: list[Any] = []
        for p in sequence:
            while len(chain) >= 2 and _turn(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]

    return np.array(half(pts) + half(pts[::-1]))


def footprint(name: str, obj: Any, to_pixels: ToPixels) -> Optional[np.ndarray]:
    """Table-plane footprint (k, 2) px of a CollisionObject, or None without primitives.

    Args:
        to_pixels: ``(field name, frame_id, points (n, 3) m) -> (n, 2) px``.
    """
    if not len(obj.primitives):
        return None
    if len(obj.primitive_poses) != len(obj.primitives):
        raise RequestError(f'{name} has {len(obj.primitives)} primitives but '
                           f'{len(obj.primitive_poses)} primitive_poses')
    object_pose = _pose(obj.pose) if hasattr(obj, 'pose') else ((0, 0, 0), (0, 0, 0, 1))
    parts = []
    for i, (primitive, pose) in enumerate(zip(obj.primitives, obj.primitive_poses)):
        local = primitive_points(f'{name}.primitives[{i}]', primitive)
        parts.append(transform_points(transform_points(local, *_pose(pose)), *object_pose))
    points = np.concatenate(parts)
    if not np.isfinite(points).all():
        raise RequestError(f'{name} has a non-finite pose')
    return convex_hull(to_pixels(name, obj.header.frame_id, points))


def grasp_planning_constraints(request: Any, to_pixels: ToPixels) -> Optional[TaskConstraints]:
    """``TaskConstraints`` of a GraspPlanning request (None when it constrains nothing).

    Raises:
        RequestError: naming the field (unknown frame, unsupported primitive, degenerate
            footprint, ...).
    """
    fields: dict[str, Any] = {}
    try:
        region = footprint('target', request.target, to_pixels)
        if region is not None:
            fields['region'] = region
        footprints = [footprint(f'movable_obstacles[{i}]', obj, to_pixels)
                      for i, obj in enumerate(request.movable_obstacles)]
        keep_out = tuple(k for k in footprints if k is not None)
        if keep_out:
            fields['keep_out'] = keep_out
        return TaskConstraints(**fields) if fields else None
    except ConstraintError as error:
        raise RequestError(str(error)) from None
