"""Ground-truth feasible sets and their modes.

Grid: the gripper's own discretisation (sim/gripper.yaml), so the ground truth is exact, not
sampled: cell ``[k, iy, ix]`` holds every grasp with alpha in ``[k, k + 1) * pi / n``
(n = angle_bins, default 180 -> 1 degree), y in ``[25 + iy, 26 + iy)`` and x in
``[25 + ix, 26 + ix)`` pixels (78 x 78 cells), and the physics is constant on each cell.

Modes are the connected components of the feasible cells in (alpha, y, x), alpha periodic
(bin n - 1 neighbours bin 0) and the 26-neighbourhood; in addition, alpha gaps of up to
``ALPHA_GAP`` = 2 bins between feasible cells whose x, y differ by at most one cell are
bridged: at the edge of the alignment tolerance, nearest-neighbour rasterisation makes
single 1-degree bins flicker between feasible and infeasible, and such gaps must not split
a mode into slivers. Remaining tiny fragments: components below
``max(MIN_MODE_CELLS, MIN_MODE_FRACTION * feasible cells)`` are not modes of their own; each
of their cells joins the nearest proper mode (Euclidean distance in cell units, alpha
periodic). ``merged_cells`` reports how many cells were reassigned that way.
"""

from dataclasses import dataclass
import functools

import numpy as np
from numpy.typing import ArrayLike

from fga_ros.sim.gripper import default_gripper
from fga_ros.sim.scene import Scene
from fga_ros.sim.workspace import WORKSPACE_LO, validate_actions

ALPHA_GAP = 2
"""Alpha gaps of up to this many bins inside a mode are bridged (see the module notes)."""

MIN_MODE_CELLS = 20
"""Components with fewer cells are fragments, merged into the nearest mode."""

MIN_MODE_FRACTION = 0.01
"""Components below this fraction of the feasible set are fragments, merged likewise."""

_EDGE_SAFETY = 1e-6  # samples stay this far (in cell units) inside their cell


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Exact feasible set of one scene on the gripper's grid, with modes."""

    feasible: np.ndarray  # (n, 78, 78) bool, [k, iy, ix]
    labels: np.ndarray  # (n, 78, 78) int16: 0 infeasible, 1..K mode id, largest first
    mode_sizes: tuple  # cells per mode, largest first
    merged_cells: int  # cells of fragments reassigned to their nearest mode
    bin_width: float  # radians per alpha bin

    @property
    def num_modes(self) -> int:
        return len(self.mode_sizes)

    @property
    def mode_shares(self) -> tuple:
        """Fraction of the feasible set in each mode, largest first (sums to 1)."""
        total = sum(self.mode_sizes)
        return tuple(s / total for s in self.mode_sizes) if total else ()

    @property
    def feasible_fraction(self) -> float:
        """Fraction (0..1) of the whole action space that is feasible: the success rate of
        uniformly random grasps."""
        return float(self.feasible.mean())

    def _cells(self, actions: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        acts = validate_actions(actions)
        return default_gripper().quantise(acts)

    def mode_of(self, actions: ArrayLike) -> np.ndarray:
        """Mode id of each action (B, 3): (B,) int, 0 for infeasible."""
        k, iy, ix = self._cells(actions)
        return self.labels[k, iy, ix].astype(np.int64)

    def sample_feasible(self, n: int,
                        rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` actions (n, 3) drawn uniformly from the feasible set (uniform within cells).

        Raises ValueError if the scene has no feasible grasp.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f'n must be a non-negative integer, got {n!r}')
        rng = np.random.default_rng(rng)
        flat = np.flatnonzero(self.feasible)
        if flat.size == 0:
            raise ValueError('the scene has no feasible grasp to sample')
        k, iy, ix = np.unravel_index(rng.choice(flat, size=n), self.feasible.shape)
        frac = _EDGE_SAFETY + (1.0 - 2.0 * _EDGE_SAFETY) * rng.random((n, 3))
        return np.stack([WORKSPACE_LO + ix + frac[:, 0], WORKSPACE_LO + iy + frac[:, 1],
                         (k + frac[:, 2]) * self.bin_width], axis=1)


def label_modes(feasible: np.ndarray) -> tuple[np.ndarray, tuple[int, ...], int]:
    """Modes of a feasible grid (n, H, W) bool, alpha periodic along axis 0.

    Returns (labels int32 same shape, mode sizes largest first, merged fragment cells).
    """
    components = _periodic_components(_bridge_alpha_gaps(feasible), feasible)
    if components is None:
        return np.zeros(feasible.shape, dtype=np.int32), (), 0
    ids, sizes = np.unique(components[feasible], return_counts=True)
    order = np.argsort(-sizes, kind='stable')
    ids, sizes = ids[order], sizes[order]
    keep = sizes >= max(MIN_MODE_CELLS, MIN_MODE_FRACTION * sizes.sum())
    keep[0] = True
    lookup = np.zeros(components.max() + 2, dtype=np.int32)  # index -1 -> 0 (infeasible)
    lookup[ids[keep]] = np.arange(1, keep.sum() + 1)
    labels = lookup[components]
    merged = int(sizes[~keep].sum())
    if not merged:
        return labels, tuple(int(s) for s in sizes[keep]), 0
    labels, mode_sizes = _merge_fragments(labels, feasible, int(keep.sum()))
    return labels, tuple(int(s) for s in mode_sizes), merged


def _bridge_alpha_gaps(feasible: np.ndarray) -> np.ndarray:
    """The feasible grid with short alpha gaps filled, for connectivity only: a cell joins
    when its x, y cell is feasible within ALPHA_GAP bins on one side and that or an
    adjacent x, y cell within ALPHA_GAP bins on the other side."""
    from scipy import ndimage  # first use only: the simulator node never loads scipy

    near = ndimage.binary_dilation(feasible, structure=np.ones((1, 3, 3), dtype=bool))
    before = np.zeros_like(feasible)
    after = np.zeros_like(feasible)
    near_before = np.zeros_like(feasible)
    near_after = np.zeros_like(feasible)
    for a in range(1, ALPHA_GAP + 1):
        before |= np.roll(feasible, a, axis=0)
        after |= np.roll(feasible, -a, axis=0)
        near_before |= np.roll(near, a, axis=0)
        near_after |= np.roll(near, -a, axis=0)
    return feasible | (before & near_after) | (after & near_before)


def _periodic_components(bridged: np.ndarray, feasible: np.ndarray) -> np.ndarray | None:
    """Component ids (n, H, W) of the bridged grid in the 26-neighbourhood, alpha periodic;
    -1 on infeasible cells. None when there is no feasible cell."""
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = feasible.shape[0]
    wrapped = np.concatenate([bridged, bridged[:1]])
    raw, count = ndimage.label(wrapped, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return None
    # Bin 0 appears twice (also as bin n); join the labels of both copies.
    on = bridged[0]
    a, b = raw[0][on], raw[n][on]
    graph = coo_matrix((np.ones(a.size), (a, b)), shape=(count + 1, count + 1))
    _, comp = connected_components(graph, directed=False)
    components = comp[raw[:n]]
    components[~feasible] = -1
    return components


def _merge_fragments(labels: np.ndarray, feasible: np.ndarray,
                     num_modes: int) -> tuple[np.ndarray, np.ndarray]:
    """Give every feasible cell of label 0 (a fragment's) the label of the nearest labelled
    cell (alpha periodic), then renumber the modes largest first.

    Returns (labels, mode sizes largest first).
    """
    from scipy.spatial import cKDTree

    box = np.array([float(feasible.shape[0]), 1e9, 1e9])
    kept_cells = np.argwhere(labels > 0).astype(float)
    frag_cells = np.argwhere(feasible & (labels == 0))
    _, nearest = cKDTree(kept_cells, boxsize=box).query(frag_cells.astype(float))
    near = kept_cells[nearest].astype(np.int64)
    labels[tuple(frag_cells.T)] = labels[tuple(near.T)]
    mode_sizes = np.bincount(labels[feasible], minlength=num_modes + 1)[1:]
    order = np.argsort(-mode_sizes, kind='stable')
    relabel = np.zeros(num_modes + 1, dtype=np.int32)
    relabel[order + 1] = np.arange(1, num_modes + 1)
    return relabel[labels], mode_sizes[order]


@functools.lru_cache(maxsize=32)
def ground_truth(scene: Scene) -> GroundTruth:
    """Exact feasible set and modes of a scene (cached per scene; arrays read-only)."""
    gripper = default_gripper()
    feasible = gripper.feasible_table(scene)  # read-only, shared with the gripper's cache
    labels, sizes, merged = label_modes(feasible)
    labels = labels.astype(np.int16)
    labels.setflags(write=False)
    return GroundTruth(feasible, labels, sizes, merged, gripper.bin_width)
