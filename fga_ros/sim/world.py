"""The simulated world as data: shape families, placement and colour ranges (sim/shapes.yaml).

A shape family is a union of primitives (``rect``, ``ellipse``, ``annulus``) whose geometry is
written as arithmetic expressions over the family's named parameters, each sampled uniformly
in a ``[min, max]`` range (pixels). Outlines are given in the object frame: x right, y down,
origin at the object's reference point, which a scene places at its sampled centre.
"""

import ast
from dataclasses import dataclass
import functools
import math
import os
from typing import Any, Optional

import numpy as np

from fga_ros.resources import share_path
from fga_ros.safe_yaml import YamlError, quote, read_yaml_file

PRIMITIVE_FIELDS = {
    'rect': ('center', 'size'),
    'ellipse': ('center', 'radii'),
    'annulus': ('center', 'radii'),
}
"""Required fields per primitive type (each a pair of expressions); ``angle`` (degrees, an
expression) is optional for ``rect`` and ``ellipse``. ``annulus`` radii are (outer, inner)."""

POLYGON_VERTICES = 64
"""Vertices used to approximate an ellipse or circle outline."""

_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_UNARY = (ast.USub, ast.UAdd)
_FUNCTIONS = {'min': min, 'max': max, 'sqrt': math.sqrt, 'abs': abs}


class WorldConfigError(ValueError):
    """sim/shapes.yaml (or a world passed in) is malformed."""


def _compile_expression(text, names, where):
    """Parse an arithmetic expression over ``names``; return a function of a params dict."""
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise WorldConfigError(f'{where}: expected a number or an expression, got {quote(text)}')
    if not isinstance(text, str):
        value = float(text)
        return lambda params: value
    try:
        tree = ast.parse(text, mode='eval').body
    except SyntaxError as exc:
        raise WorldConfigError(f'{where}: cannot parse expression {quote(text)}: '
                               f'{exc.msg}') from None

    def check(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise WorldConfigError(
                    f'{where}: unknown parameter {node.id!r} in {quote(text)}; '
                    f'known: {sorted(names)}')
            return
        if isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY):
            check(node.left)
            check(node.right)
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, _UNARY):
            check(node.operand)
            return
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in _FUNCTIONS and not node.keywords):
            for arg in node.args:
                check(arg)
            return
        raise WorldConfigError(
            f'{where}: unsupported syntax in {quote(text)} (use numbers, parameter names, '
            f'+ - * / **, parentheses and {sorted(_FUNCTIONS)})')

    check(tree)

    # The tree holds only the whitelisted nodes checked above: numbers, parameter names,
    # arithmetic and the functions of _FUNCTIONS, so evaluating it is safe.
    code = compile(ast.Expression(tree), f'<{where}>', 'eval')
    namespace = {'__builtins__': {}, **_FUNCTIONS}
    return lambda params: float(eval(code, namespace, params))  # noqa: S307


def _range(value, where):
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise WorldConfigError(f'{where}: expected a range [min, max] of numbers, got '
                               f'{quote(value)}')
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise WorldConfigError(f'{where}: range must be finite with min <= max, got '
                               f'{quote(value)}')
    return lo, hi


_UNIT_CIRCLE = np.exp(2j * np.pi * np.arange(POLYGON_VERTICES) / POLYGON_VERTICES)


def _ellipse(cx, cy, rx, ry, angle):
    c, s = math.cos(angle), math.sin(angle)
    px, py = rx * _UNIT_CIRCLE.real, ry * _UNIT_CIRCLE.imag
    out = np.empty((POLYGON_VERTICES, 2))
    out[:, 0] = cx + c * px - s * py
    out[:, 1] = cy + s * px + c * py
    return out


@dataclass(frozen=True)
class Primitive:
    """One primitive of an outline; geometry fields are compiled expressions."""

    kind: str
    fields: tuple  # ((name, (expr, expr) or expr), ...)

    def contours(self, params: dict[str, Any]) -> list[np.ndarray]:
        """Return the primitive's closed contours, a list of (P, 2) float arrays (x, y).

        One contour for ``rect``/``ellipse``; outer and inner circle for ``annulus`` (filled
        with the even-odd rule, so the inner circle is a hole).
        """
        f: dict[str, Any] = {
            name: (tuple(e(params) for e in expr) if isinstance(expr, tuple) else expr(params))
            for name, expr in self.fields}
        (cx, cy) = f['center']
        angle = math.radians(f.get('angle', 0.0))
        if self.kind == 'rect':
            hx, hy = f['size'][0] / 2.0, f['size'][1] / 2.0
            c, s = math.cos(angle), math.sin(angle)
            corners = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
            return [np.stack([cx + c * corners[:, 0] - s * corners[:, 1],
                              cy + s * corners[:, 0] + c * corners[:, 1]], axis=1)]
        if self.kind == 'ellipse':
            return [_ellipse(cx, cy, f['radii'][0], f['radii'][1], angle)]
        outer, inner = f['radii']
        return [_ellipse(cx, cy, outer, outer, 0.0), _ellipse(cx, cy, inner, inner, 0.0)]


@dataclass(frozen=True)
class ShapeFamily:
    """A shape family: parameter ranges (pixels) and the primitives of its outline."""

    name: str
    split: str  # 'train' or 'test'
    param_ranges: tuple  # ((name, (lo, hi)), ...) in file order
    primitives: tuple  # (Primitive, ...)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.param_ranges)

    def contours(self, params: dict[str, Any]) -> list[list[np.ndarray]]:
        """Outline in the object frame: a list of contour groups (one group per primitive),
        each a list of (P, 2) float arrays (x, y in pixels)."""
        return [p.contours(params) for p in self.primitives]


@dataclass(frozen=True)
class World:
    """Everything sim/shapes.yaml describes."""

    families: tuple  # (ShapeFamily, ...) in file order
    center_range: tuple  # (lo, hi) of the object centre's x and y, pixels
    theta_range: tuple  # (lo, hi) of the object orientation, radians
    min_color_distance: float  # Euclidean RGB distance (0..441) object vs background

    @property
    def shapes(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.families)

    def family(self, name: str) -> ShapeFamily:
        for fam in self.families:
            if fam.name == name:
                return fam
        raise ValueError(f'unknown shape {quote(name)}; valid shapes: {", ".join(self.shapes)}')


def _parse_primitive(spec, names, where):
    if not isinstance(spec, dict) or spec.get('type') not in PRIMITIVE_FIELDS:
        raise WorldConfigError(
            f'{where}: each primitive needs a type in {sorted(PRIMITIVE_FIELDS)}, got '
            f'{quote(spec)}')
    kind = spec['type']
    allowed = set(PRIMITIVE_FIELDS[kind]) | {'type'} | ({'angle'} if kind != 'annulus' else set())
    extra = set(spec) - allowed
    if extra:
        raise WorldConfigError(f'{where}: unknown fields {sorted(extra)} for a {kind}')
    fields = []
    for name in PRIMITIVE_FIELDS[kind]:
        value = spec.get(name)
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise WorldConfigError(f'{where}.{name}: expected a pair [a, b], got {quote(value)}')
        fields.append((name, tuple(_compile_expression(v, names, f'{where}.{name}')
                                   for v in value)))
    if 'angle' in spec:
        fields.append(('angle', _compile_expression(spec['angle'], names, f'{where}.angle')))
    return Primitive(kind, tuple(fields))


def parse_world(data: Any, source: str = 'shapes.yaml') -> World:
    """Validate a loaded shapes.yaml mapping and build a :class:`World`."""
    if not isinstance(data, dict):
        raise WorldConfigError(f'{source}: expected a mapping at the top level')
    for key in ('placement', 'colors', 'families'):
        if not isinstance(data.get(key), dict):
            raise WorldConfigError(f'{source}: missing mapping {key!r}')
    placement = data['placement']
    center = _range(placement.get('center'), f'{source}: placement.center')
    theta = _range(placement.get('theta'), f'{source}: placement.theta')
    min_dist = data['colors'].get('min_distance')
    if not isinstance(min_dist, (int, float)) or not 0 <= min_dist < 441:
        raise WorldConfigError(f'{source}: colors.min_distance must be a number in [0, 441)')
    families = []
    for name, spec in data['families'].items():
        where = f'{source}: families.{name}'
        if not isinstance(spec, dict):
            raise WorldConfigError(f'{where}: expected a mapping')
        if spec.get('split') not in ('train', 'test'):
            raise WorldConfigError(f'{where}.split must be train or test')
        params = spec.get('params') or {}
        if not isinstance(params, dict):
            raise WorldConfigError(f'{where}.params: expected a mapping name: [min, max]')
        ranges = tuple((str(p), _range(r, f'{where}.params.{p}')) for p, r in params.items())
        names = {p for p, _ in ranges}
        prims = spec.get('primitives')
        if not isinstance(prims, list) or not prims:
            raise WorldConfigError(f'{where}.primitives: expected a non-empty list')
        primitives = tuple(_parse_primitive(p, names, f'{where}.primitives[{i}]')
                           for i, p in enumerate(prims))
        families.append(ShapeFamily(str(name), spec['split'], ranges, primitives))
    if not families:
        raise WorldConfigError(f'{source}: no shape families')
    return World(tuple(families), center, theta, float(min_dist))


@functools.lru_cache(maxsize=None)
def load_world(path: Optional[str | os.PathLike] = None) -> World:
    """Load and validate sim/shapes.yaml (default: the installed copy); cached per path."""
    path = share_path('sim', 'shapes.yaml') if path is None else path
    try:
        data = read_yaml_file(path)
    except YamlError as exc:
        raise WorldConfigError(str(exc)) from None
    return parse_world(data, str(path))
