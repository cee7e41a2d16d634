"""Validation of service requests; every error message names the offending field.

"Use the node's default" is spelled per field, as documented in the ``.srv`` files:
``num_grasps == 0``, ``reject_fraction < 0``, ``ranking == ''``, ``seed < 0``, ``shape == ''``,
``distortion == ''``, ``imitation_fraction < 0`` (a request field of 0 would be ambiguous
for reject_fraction, where 0 means "reject nothing").

Limits and defaults of proposals come from :mod:`fga_ros.core.inference.defaults`, their single
source (the defaults of ``Proposer.propose`` too).
"""

from dataclasses import dataclass
import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from fga_ros.core.common.checks import check_count, check_fraction
from fga_ros.core.common.choices import RANKINGS
from fga_ros.core.inference.constraints import ConstraintError, TaskConstraints
from fga_ros.core.inference.defaults import (
    MAX_GRASPS,
    NUM_GRASPS,
    PREFERENCE_WEIGHT,
    RANKING,
    REJECT_FRACTION,
)

MAX_DEMO_STATES = 256
"""Largest GetDemonstrations.num_states (bounds one response)."""

MAX_DEMO_PER_STATE = 1024
"""Largest GetDemonstrations.per_state."""


class RequestError(ValueError):
    """A service request the node refuses; the message names the field and the problem."""


@dataclass(frozen=True)
class ProposalSettings:
    """Resolved ProposeGrasps request (or the node's defaults, those of ``Proposer.propose``).

    Attributes:
        num_grasps: grasps to return, 1..MAX_GRASPS.
        reject_fraction: share of the sampled actions dropped as lowest KDE density, [0, 1).
        ranking: one of ``fga_ros.core.common.choices.RANKINGS``.
    """

    num_grasps: int = NUM_GRASPS
    reject_fraction: float = REJECT_FRACTION
    ranking: str = RANKING

    def __post_init__(self) -> None:
        check_num_grasps(self.num_grasps)
        check_reject_fraction(self.reject_fraction)
        check_ranking(self.ranking)


def check_num_grasps(value: Any, limit: int = MAX_GRASPS) -> int:
    """Return ``value`` as an int in [1, limit] or raise RequestError."""
    try:
        return check_count('num_grasps', value, 1, limit)
    except ValueError as error:
        raise RequestError(str(error)) from None


def check_reject_fraction(value: Any) -> float:
    """Return ``value`` as a float in [0, 1) or raise RequestError."""
    try:
        return check_fraction('reject_fraction', value)
    except ValueError as error:
        raise RequestError(str(error)) from None


def check_ranking(value: Any) -> str:
    """Return ``value`` if it is a ranking mode, else raise RequestError."""
    if value not in RANKINGS:
        raise RequestError(
            f'ranking must be one of {", ".join(RANKINGS)} (or empty for the default), '
            f'got {value!r}')
    return value


def resolve_proposal_request(request: Any, defaults: ProposalSettings,
                             max_grasps: int = MAX_GRASPS) -> ProposalSettings:
    """Merge a ProposeGrasps request (fields num_grasps, reject_fraction, ranking) with defaults.

    ``num_grasps == 0`` -> default; negative is an error. ``reject_fraction < 0`` (the srv
    default -1.0) -> default; NaN or >= 1 is an error. ``ranking == ''`` -> default.
    """
    num = request.num_grasps
    num = defaults.num_grasps if num == 0 else check_num_grasps(num, max_grasps)
    fraction = float(request.reject_fraction)
    if math.isnan(fraction):
        raise RequestError('reject_fraction must be a number, got nan')
    fraction = defaults.reject_fraction if fraction < 0 else check_reject_fraction(fraction)
    ranking = request.ranking or defaults.ranking
    return ProposalSettings(min(num, max_grasps), fraction, check_ranking(ranking))


def _points(stamped: Any, attribute: str) -> tuple[str, np.ndarray]:
    """(frame_id, (n, 3) float64) of a PolygonStamped ('polygon') or PointStamped ('point')."""
    if attribute == 'polygon':
        raw = [(p.x, p.y, p.z) for p in stamped.polygon.points]
    else:
        raw = [(stamped.point.x, stamped.point.y, stamped.point.z)]
    return stamped.header.frame_id, np.asarray(raw, dtype=np.float64).reshape(-1, 3)


def resolve_constraints(request: Any, to_pixels: Callable[[str, str, np.ndarray], np.ndarray]
                        ) -> Optional[TaskConstraints]:
    """The task constraints of a ProposeGrasps request (None when it has none).

    Args:
        request: with fields region, angle_range, keep_out, preferred_point,
            preference_weight, min_score (``ProposeGrasps.srv``).
        to_pixels: ``(field name, frame_id, points (n, 3) m) -> (n, 2) px`` on the table
            plane; raises RequestError naming the field for an unknown frame.

    Raises:
        RequestError: naming the field (empty or self-intersecting polygon, NaN, inverted
            angle window, min_score outside [0, 1], unknown frame, ...).
    """
    fields = {}

    def pixels(name, stamped, attribute):
        frame, points = _points(stamped, attribute)
        if not np.isfinite(points).all():
            raise RequestError(f'{name} has a non-finite coordinate (NaN or infinite)')
        return to_pixels(name, frame, points)

    try:
        if len(request.region.polygon.points):
            fields['region'] = pixels('region', request.region, 'polygon')
        angles = list(request.angle_range)
        if angles:
            if len(angles) != 2:
                raise RequestError(f'angle_range must be empty or [low, high] rad, got '
                                   f'{len(angles)} values')
            fields['angle_range'] = tuple(angles)
        if len(request.keep_out):
            keep_out = []
            for i, polygon in enumerate(request.keep_out):
                if not len(polygon.polygon.points):
                    raise RequestError(f'keep_out[{i}] is an empty polygon')
                keep_out.append(pixels(f'keep_out[{i}]', polygon, 'polygon'))
            fields['keep_out'] = tuple(keep_out)
        if len(request.preferred_point) > 1:
            raise RequestError(f'preferred_point must be empty or one point, got '
                               f'{len(request.preferred_point)}')
        if len(request.preferred_point):
            fields['preferred_point'] = pixels('preferred_point', request.preferred_point[0],
                                               'point')[0]
        weight = float(request.preference_weight)
        if math.isnan(weight):
            raise RequestError('preference_weight must be a number, got nan')
        fields['preference_weight'] = PREFERENCE_WEIGHT if weight < 0 else weight
        fields['min_score'] = float(request.min_score)
        constraints = TaskConstraints(**fields)
    except ConstraintError as error:
        raise RequestError(str(error)) from None
    if not constraints.filters and constraints.preferred_point is None:
        return None
    return constraints


def resolve_execute_request(request: Any) -> tuple[np.ndarray, Optional[int]]:
    """ExecuteGrasp request -> (action (3,) float64 as given, scene_id or None for current).

    Only checks that x, y, angle are finite; workspace bounds and angle wrapping are the
    simulator's ``validate_actions``.
    """
    action = np.array([request.x, request.y, request.angle], dtype=np.float64)
    for name, value in zip(('x', 'y', 'angle'), action):
        if not math.isfinite(value):
            raise RequestError(f'{name} must be finite, got {value}')
    scene_id = int(request.scene_id)
    if scene_id < 0:
        raise RequestError(f'scene_id must be >= 0 (0 = current scene), got {scene_id}')
    return action, (scene_id or None)


def resolve_new_scene_request(request: Any, shapes: Sequence[str], distortions: Sequence[str]
                              ) -> tuple[Optional[str], Optional[int], Optional[str]]:
    """NewScene request -> (shape or None, seed or None, distortion or None).

    ``shapes`` are the shapes a request may name; ``distortions`` all distortion names.
    """
    shape = request.shape or None
    if shape is not None and shape not in shapes:
        raise RequestError(f'shape must be one of {", ".join(shapes)}, got {shape!r}')
    distortion = request.distortion or None
    if distortion is not None and distortion not in distortions:
        raise RequestError(
            f'distortion must be one of {", ".join(distortions)}, got {distortion!r}')
    seed = int(request.seed)
    return shape, (seed if seed >= 0 else None), distortion


def resolve_demonstrations_request(
        request: Any) -> tuple[int, int, Optional[int], Optional[float]]:
    """GetDemonstrations request -> (num_states, per_state, seed or None, fraction or None).

    A negative ``imitation_fraction`` gives None: the environment's default.
    """
    num_states, per_state = int(request.num_states), int(request.per_state)
    if not 1 <= num_states <= MAX_DEMO_STATES:
        raise RequestError(f'num_states must be in [1, {MAX_DEMO_STATES}], got {num_states}')
    if not 1 <= per_state <= MAX_DEMO_PER_STATE:
        raise RequestError(f'per_state must be in [1, {MAX_DEMO_PER_STATE}], got {per_state}')
    seed = int(request.seed)
    fraction = float(request.imitation_fraction)
    if not fraction <= 1.0:  # also NaN
        raise RequestError(f'imitation_fraction must be in [0, 1], got {fraction}')
    return num_states, per_state, (seed if seed >= 0 else None), \
        (fraction if fraction >= 0 else None)


def optional_seed(seed: Optional[int], rng: np.random.Generator) -> int:
    """``seed`` if given, else a fresh non-negative seed drawn from ``rng``."""
    return int(seed) if seed is not None else int(rng.integers(0, 2**31 - 1))
