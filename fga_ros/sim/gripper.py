"""Grasp physics: the claw-region check of appendix A, on the physics mask.

The rules and the discretisation are documented in sim/gripper.yaml. In short, a grasp
``(x, y, alpha)`` is quantised to a cell: pixel cell ``(floor(x), floor(y))`` and angle bin
``k = floor(alpha / (pi / n))``. For bin k the window between the open claws is a fixed
integer stencil of pixel offsets, ``A[k, j] + D[k, i]`` for column j (along the closing
direction) and row i (along the claws): ``A[k]`` is a digital line through the first row,
``D[k, i]`` the rounded shift of row i. The rows are thus translated copies of one digital
line, which makes a whole-scene table cheap: per bin, the first and last object column along
that line from every base pixel are two bit-scans of a bit-packed image, and the per-grasp
statistics are min/max over ``claw_width`` shifted copies of them.

Two exact paths answer the same question:

- table path (:meth:`Gripper.success`): the feasibility of every cell of a bin is computed
  once per (scene, bin), lazily, and cached; a check is then one table lookup;
- gather path (:meth:`Gripper.success_many`): one action on each of many scenes, gathering
  the stencil pixels directly (no tables), vectorised.
"""

from dataclasses import dataclass
import functools
import math
import os
import threading
from typing import Any, Iterable, Optional

import numpy as np
from numpy.typing import ArrayLike

from fga_ros.resources import share_path
from fga_ros.safe_yaml import clip, quote, read_yaml_mapping
from fga_ros.sim.render import object_mask
from fga_ros.sim.scene import Scene
from fga_ros.sim.workspace import IMAGE_SIZE, WORKSPACE_LO, WORKSPACE_SIZE, validate_actions

_MAX_COLUMNS = 53  # window columns are bit-packed and scanned through float64 exponents
_GATHER_CHUNK = 4096  # scenes per chunk of the gather path (bounds memory)
_BINS_PER_CHUNK = 45  # angle bins per vectorised table-building chunk (bounds memory)
_GATHER_PER_MISSING_BIN = 256  # fewer actions than this per unbuilt bin: gather, don't build
_WS_LO = int(WORKSPACE_LO)


@dataclass(frozen=True)
class GripperConfig:
    """Gripper geometry and margins (sim/gripper.yaml documents every field)."""

    aperture: int  # l, pixels
    claw_width: int  # w, pixels
    claw_thickness: int  # pixels
    claw_clearance: int  # pixels
    min_presence: float  # fraction of rows
    centring_margin: float  # pixels
    alignment_margin: int  # pixels
    angle_bins: int  # bins over [0, pi)

    def __post_init__(self) -> None:
        for name in ('aperture', 'claw_width', 'claw_thickness', 'claw_clearance',
                     'alignment_margin', 'angle_bins'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f'gripper {name} must be a non-negative integer, got '
                                 f'{quote(value)}')
        if self.aperture < 2 or not 1 <= self.claw_width <= IMAGE_SIZE \
                or not 2 <= self.angle_bins <= 3600:
            raise ValueError(f'gripper needs aperture >= 2, 1 <= claw_width <= {IMAGE_SIZE}, '
                             '2 <= angle_bins <= 3600')
        for name in ('min_presence', 'centring_margin'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f'gripper {name} must be a number, got {quote(value)}')
        if self.aperture + 2 * self.claw_thickness > _MAX_COLUMNS:
            raise ValueError(f'gripper aperture + 2 * claw_thickness must be <= {_MAX_COLUMNS}')
        if 2 * self.claw_clearance >= self.aperture:
            raise ValueError('gripper claw_clearance leaves no room between the claws')
        if not 0.0 < self.min_presence <= 1.0:
            raise ValueError(f'gripper min_presence must be in (0, 1], got {self.min_presence}')
        if not self.centring_margin >= 0.0:
            raise ValueError(f'gripper centring_margin must be >= 0, got {self.centring_margin}')


@functools.lru_cache(maxsize=None)
def load_gripper_config(path: Optional[str | os.PathLike] = None) -> GripperConfig:
    """Load sim/gripper.yaml (default: the installed copy); cached per path."""
    path = share_path('sim', 'gripper.yaml') if path is None else path
    data = read_yaml_mapping(path)
    fields = GripperConfig.__dataclass_fields__
    unknown = [str(k) for k in data if k not in fields]
    missing = [k for k in fields if k not in data]
    if unknown or missing:
        raise ValueError(f'{path}: unknown gripper parameters {clip(unknown)}, missing '
                         f'{missing}; valid: {sorted(fields)}')
    try:
        return GripperConfig(**data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f'{path}: {exc}') from None


@functools.lru_cache(maxsize=8192)
def packed_mask(scene: Scene) -> np.ndarray:
    """The scene's physics mask bit-packed (little bit order), (128 * 128 / 8,) uint8."""
    packed = np.packbits(object_mask(scene).reshape(-1), bitorder='little')
    packed.setflags(write=False)
    return packed


def _highest_bit(values):
    """Index of the highest set bit of positive integers < 2**53 (via the float64 exponent)."""
    return (values.astype(np.float64).view(np.int64) >> 52) - 1023


class _SceneTable:
    """Per-scene feasibility table, filled bin by bin."""

    def __init__(self, n_bins):
        self.feasible = np.zeros((n_bins, WORKSPACE_SIZE, WORKSPACE_SIZE), dtype=bool)
        self.built = np.zeros(n_bins, dtype=bool)


class Gripper:
    """The grasp check for one :class:`GripperConfig`; caches per-scene tables (LRU)."""

    def __init__(self, config: Optional[GripperConfig] = None, cache_size: int = 64) -> None:
        self.config = config or load_gripper_config()
        c = self.config
        n, w = c.angle_bins, c.claw_width
        self.columns = c.aperture + 2 * c.claw_thickness
        self.bin_width = math.pi / n
        theta = (np.arange(n) + 0.5) * self.bin_width
        u = np.stack([np.cos(theta), np.sin(theta)], axis=1)  # closing direction (x, y)
        v = np.stack([-np.sin(theta), np.cos(theta)], axis=1)  # along the claws (x, y)
        s = np.arange(self.columns) - (self.columns - 1) / 2.0
        r0 = -(w - 1) / 2.0
        # Pixel of the point centre + s u + r0 v, with centre = cell + 0.5: cell + floor(1 + ...).
        self.line = np.floor(1.0 + s[None, :, None] * u[:, None, :]
                             + r0 * v[:, None, :]).astype(np.int64)  # (n, columns, 2)
        self.rows = np.floor(np.arange(w)[None, :, None] * v[:, None, :]
                             + 0.5).astype(np.int64)  # (n, w, 2)
        reach = int(np.abs(self.line).max() + np.abs(self.rows).max())
        if reach > _WS_LO:
            raise ValueError(f'gripper window reaches {reach} px from the grasp cell; it must '
                             f'stay inside the image (<= {_WS_LO} px)')
        self.row_margin = int(np.abs(self.rows).max())
        self.line_flat = self.line[..., 1] * IMAGE_SIZE + self.line[..., 0]  # (n, columns)
        self.rows_flat = self.rows[..., 1] * IMAGE_SIZE + self.rows[..., 0]  # (n, w)
        self.lo_col = c.claw_thickness + c.claw_clearance
        self.hi_col = self.columns - 1 - c.claw_thickness - c.claw_clearance
        self.need_rows = max(1, math.ceil(c.min_presence * w - 1e-9))
        self._packed_dtype = np.dtype(np.uint32 if self.columns <= 32 else np.uint64)
        self._cache: dict[Scene, _SceneTable] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # -- shared pieces ---------------------------------------------------------------------

    def quantise(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cells of validated actions: (bin k, row iy, column ix) int arrays, each (B,);
        iy, ix index the 78 x 78 workspace grid (pixel cell = WORKSPACE_LO + index)."""
        k = np.minimum(np.floor(actions[:, 2] / self.bin_width).astype(np.int64),
                       self.config.angle_bins - 1)
        ix = np.floor(actions[:, 0]).astype(np.int64) - _WS_LO
        iy = np.floor(actions[:, 1]).astype(np.int64) - _WS_LO
        return k, iy, ix

    def _checks(self, first, last, present_rows, first_max, last_min):
        """The four rules on per-grasp row statistics (column indices 0..columns-1)."""
        c = self.config
        return {
            'presence': present_rows >= self.need_rows,
            'clearance': (first >= self.lo_col) & (last <= self.hi_col),
            'centring': np.abs(first + last - (self.columns - 1)) <= 2.0 * c.centring_margin,
            'alignment': ((first_max - first <= c.alignment_margin)
                          & (last - last_min <= c.alignment_margin)),
        }

    def _decide(self, *stats):
        checks = self._checks(*stats)
        return (checks['presence'] & checks['clearance'] & checks['centring']
                & checks['alignment'])

    # -- table path ------------------------------------------------------------------------

    def _build_bins(self, mask, bins):
        """Feasibility of every workspace cell for the given bins: (len(bins), 78, 78) bool."""
        out = np.empty((len(bins), WORKSPACE_SIZE, WORKSPACE_SIZE), dtype=bool)
        for start in range(0, len(bins), _BINS_PER_CHUNK):
            chunk = np.asarray(bins[start:start + _BINS_PER_CHUNK])
            out[start:start + len(chunk)] = self._build_chunk(mask, chunk)
        return out

    def _build_chunk(self, mask, bins):
        n_cols, m, ws = self.columns, self.row_margin, WORKSPACE_SIZE
        size = ws + 2 * m  # base pixels: every cell shifted by every row offset
        lo = _WS_LO - m
        # Bit j of packed[k, qy, qx] = mask[q + line[k, j]] for base pixels q = lo + (qy, qx).
        windows = np.lib.stride_tricks.sliding_window_view(mask.view(np.uint8), (size, size))
        line = self.line[bins]
        packed = np.zeros((len(bins), size, size), dtype=self._packed_dtype)
        shifted = np.empty_like(packed)
        for j in range(n_cols):
            np.left_shift(windows[lo + line[:, j, 1], lo + line[:, j, 0]],
                          self._packed_dtype.type(j), out=shifted, dtype=self._packed_dtype)
            packed |= shifted
        hit = packed != 0
        lowest = packed & (~packed + self._packed_dtype.type(1))
        first = np.where(hit, _highest_bit(lowest), n_cols).astype(np.int8)
        last = np.where(hit, _highest_bit(packed), -1).astype(np.int8)
        # Row i of the grasp at cell c uses base pixel c + rows[k, i].
        rows = self.rows[bins]  # (K, w, 2)
        k_idx = np.arange(len(bins))[:, None]
        sel = (k_idx, m + rows[..., 1], m + rows[..., 0])

        def per_row(values):
            view = np.lib.stride_tricks.sliding_window_view(values, (ws, ws), axis=(1, 2))
            return view[sel]  # (K, w, 78, 78)

        first_r, last_r, hit_r = per_row(first), per_row(last), per_row(hit)
        return self._decide(first_r.min(axis=1), last_r.max(axis=1),
                            hit_r.sum(axis=1, dtype=np.int64),
                            np.where(hit_r, first_r, -1).max(axis=1),
                            np.where(hit_r, last_r, n_cols).min(axis=1))

    def _entry(self, scene):
        entry = self._cache.pop(scene, None)
        if entry is None:
            entry = _SceneTable(self.config.angle_bins)
            while len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
        self._cache[scene] = entry
        return entry

    def feasible_table(self, scene: Scene) -> np.ndarray:
        """All bins of the scene's table: (angle_bins, 78, 78) bool, read-only view.

        Index [k, iy, ix] = grasps with alpha in [k, k+1) * pi / angle_bins,
        y in [25 + iy, 26 + iy), x in [25 + ix, 26 + ix).
        """
        with self._lock:
            entry = self._entry(scene)
            missing = np.flatnonzero(~entry.built)
            if missing.size:
                entry.feasible[missing] = self._build_bins(object_mask(scene), missing)
                entry.built[missing] = True
        view = entry.feasible.view()
        view.setflags(write=False)
        return view

    def success(self, scene: Scene, actions: ArrayLike) -> np.ndarray:
        """Grasp outcomes of many actions (B, 3) on one scene: (B,) bool."""
        acts = validate_actions(actions)
        k, iy, ix = self.quantise(acts)
        with self._lock:
            entry = self._cache.get(scene)
            missing = np.unique(k if entry is None else k[~entry.built[k]])
            # Few actions per unbuilt bin: gathering beats building (same answers either way).
            if not (missing.size and len(acts) < _GATHER_PER_MISSING_BIN * missing.size):
                entry = self._entry(scene)
                if missing.size:
                    entry.feasible[missing] = self._build_bins(object_mask(scene), missing)
                    entry.built[missing] = True
                return entry.feasible[k, iy, ix]
        return self._gather(packed_mask(scene)[None], np.zeros(len(acts), dtype=np.int64),
                            k, iy, ix)

    # -- gather path -----------------------------------------------------------------------

    def _gather_stats(self, masks_bits, which, k, iy, ix):
        """Row statistics of the stencil pixels of scene masks at cells; masks_bits (S, 2048)
        are bit-packed masks (:func:`packed_mask`), which (B,) picks the mask of each grasp."""
        n_cols = self.columns
        base = (iy + _WS_LO) * IMAGE_SIZE + (ix + _WS_LO)
        idx = (base[:, None, None] + self.rows_flat[k][:, :, None]
               + self.line_flat[k][:, None, :])  # (B, w, columns)
        hits = ((masks_bits[which[:, None, None], idx >> 3] >> (idx & 7).astype(np.uint8))
                & 1).astype(bool)
        hit = hits.any(axis=2)
        first = np.where(hit, hits.argmax(axis=2), n_cols)
        last = np.where(hit, n_cols - 1 - hits[:, :, ::-1].argmax(axis=2), -1)
        return (first.min(axis=1), last.max(axis=1), hit.sum(axis=1),
                np.where(hit, first, -1).max(axis=1), np.where(hit, last, n_cols).min(axis=1))

    def _gather(self, masks_bits, which, k, iy, ix):
        return self._decide(*self._gather_stats(masks_bits, which, k, iy, ix))

    def explain(self, scene: Scene, action: ArrayLike) -> dict[str, Any]:
        """Why one action (3,) succeeds or fails: the outcome of each rule, the number of claw
        rows containing object and the object's first/last window column (0 = outer edge of
        the first claw; -1 or ``columns`` when no row holds object)."""
        acts = validate_actions(np.reshape(np.asarray(action, dtype=np.float64), (1, -1)))
        k, iy, ix = self.quantise(acts)
        stats = self._gather_stats(packed_mask(scene)[None], np.zeros(1, np.int64), k, iy, ix)
        checks = {name: bool(v[0]) for name, v in self._checks(*stats).items()}
        return {'success': all(checks.values()), **checks, 'rows_with_object': int(stats[2][0]),
                'first_column': int(stats[0][0]), 'last_column': int(stats[1][0]),
                'columns': self.columns, 'allowed_columns': (self.lo_col, self.hi_col)}

    def success_many(self, scenes: Iterable[Scene], actions: ArrayLike) -> np.ndarray:
        """One action per scene: scenes (S,), actions (S, 3) -> (S,) bool. Builds no tables."""
        scenes = list(scenes)
        acts = validate_actions(actions)
        if len(scenes) != len(acts):
            raise ValueError(f'need one action per scene: got {len(scenes)} scenes and '
                             f'{len(acts)} actions')
        k, iy, ix = self.quantise(acts)
        out = np.empty(len(acts), dtype=bool)
        for start in range(0, len(acts), _GATHER_CHUNK):
            stop = min(start + _GATHER_CHUNK, len(acts))
            index: dict[Scene, int] = {}
            which = np.array([index.setdefault(s, len(index)) for s in scenes[start:stop]],
                             dtype=np.int64)
            masks = np.stack([packed_mask(s) for s in index])
            out[start:stop] = self._gather(masks, which, k[start:stop], iy[start:stop],
                                           ix[start:stop])
        return out


@functools.lru_cache(maxsize=None)
def default_gripper() -> Gripper:
    """The gripper of sim/gripper.yaml (shared, with its table cache)."""
    return Gripper(load_gripper_config())


def grasp_success(scene: Scene, actions: ArrayLike) -> np.ndarray:
    """Outcomes of actions (B, 3) = (x, y, alpha) on one scene: (B,) bool."""
    return default_gripper().success(scene, actions)


def grasp_success_many(scenes: Iterable[Scene], actions: ArrayLike) -> np.ndarray:
    """Outcome of one action per scene: scenes (S,), actions (S, 3) -> (S,) bool."""
    return default_gripper().success_many(scenes, actions)


def explain_grasp(scene: Scene, action: ArrayLike) -> dict[str, Any]:
    """Outcome of each rule for one action (3,) on a scene (see Gripper.explain)."""
    return default_gripper().explain(scene, action)


def feasible_table(scene: Scene) -> np.ndarray:
    """Whole feasibility table of a scene, (angle_bins, 78, 78) bool (see Gripper)."""
    return default_gripper().feasible_table(scene)
