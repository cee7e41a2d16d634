"""``fga bench defaults``: what a planner gets from a default request, measured.

On evaluation scenes of every shape (never trained on), one default proposal
(``Proposer.propose`` with every default, ``NUM_GRASPS`` grasps) per scene:

- feasible: the share of returned grasps the simulator accepts (over all returned grasps);
- abstained: the share of scenes answered with no grasp (false abstentions: every scene
  holds an object with feasible grasps);
- all modes: the share of scenes whose returned grasps hit every ground-truth mode
  (``GroundTruth.mode_of``, modes numbered from 1); an abstained scene counts as a miss;
- clusters / modes: mean number of proposal clusters and of true modes hit.

Then ``ood_images`` (blank, noise, photographs): the share of them answered with no grasp.
Then a constrained request, the region = the left half of the workspace: whether every
returned grasp lies in it, their feasible share, the share of scenes answered with no grasp
(and of those where the simulator has feasible grasps centred in the region: false
abstentions), and the p50 latency against the same scenes unconstrained.
"""

import time
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from fga_ros.core.analysis.calibration_fit import calibration_scenes
from fga_ros.core.analysis.evaluation import evaluation_scenes
from fga_ros.core.analysis.ood_images import ood_images
from fga_ros.core.inference.constraints import TaskConstraints, rectangle
from fga_ros.sim import WORKSPACE_HI, WORKSPACE_LO, grasp_success, ground_truth, render

if TYPE_CHECKING:
    from fga_ros.core.inference.proposer import Proposer

LEFT_HALF = rectangle(WORKSPACE_LO, WORKSPACE_LO, 0.5 * (WORKSPACE_LO + WORKSPACE_HI),
                      WORKSPACE_HI)
"""Region of the constrained case: the left half of the workspace, px."""


def _shape_figures(proposer: 'Proposer', shape: str, states: int, seed: int,
                   bar: Optional[Callable[[], Any]]) -> dict[str, Any]:
    feasible, abstained, all_modes, clusters, hit = [], 0, [], [], []
    for scene in evaluation_scenes(shape, states, seed):
        proposal = proposer.propose(render(scene), seed=seed)
        truth = ground_truth(scene)
        if proposal.abstained:
            abstained += 1
            all_modes.append(False)
        else:
            feasible.append(grasp_success(scene, proposal.actions))
            modes = set(int(m) for m in truth.mode_of(proposal.actions)) - {0}
            all_modes.append(len(modes) == truth.num_modes)
            clusters.append(proposal.num_clusters)
            hit.append(len(modes))
        if bar:
            bar()
    returned = np.concatenate(feasible) if feasible else np.zeros(0, dtype=bool)
    return {'feasible': float(returned.mean()) if len(returned) else float('nan'),
            'grasps': int(len(returned)), 'abstained': abstained / states,
            'all_modes': float(np.mean(all_modes)), 'clusters': float(np.mean(clusters or [0])),
            'modes_hit': float(np.mean(hit or [0])), 'states': states}


def _constrained(proposer: 'Proposer', shapes: Sequence[str], states: int,
                 seed: int) -> dict[str, Any]:
    constraints = TaskConstraints(region=LEFT_HALF)
    inside, feasible, plain_ms, constrained_ms, abstained, wrongly = [], [], [], [], 0, 0
    left_cells = int(LEFT_HALF[1, 0] - WORKSPACE_LO)  # grid columns with x < the region edge
    for shape in shapes:
        for scene in evaluation_scenes(shape, states, seed + 1):
            image = render(scene)
            start = time.perf_counter()
            proposer.propose(image, seed=seed)
            plain_ms.append(1e3 * (time.perf_counter() - start))
            start = time.perf_counter()
            proposal = proposer.propose(image, seed=seed, constraints=constraints)
            constrained_ms.append(1e3 * (time.perf_counter() - start))
            if proposal.abstained:
                abstained += 1
                wrongly += bool(ground_truth(scene).feasible[:, :, :left_cells].any())
                continue
            x = proposal.actions[:, 0]
            inside.append(bool(np.all(x <= LEFT_HALF[1, 0])))
            feasible.append(grasp_success(scene, proposal.actions))
    returned = np.concatenate(feasible) if feasible else np.zeros(0, dtype=bool)
    p50, c50 = float(np.median(plain_ms)), float(np.median(constrained_ms))
    return {'all_inside': bool(all(inside)), 'feasible': float(returned.mean()),
            'grasps': int(len(returned)), 'abstained': abstained / (len(shapes) * states),
            'false_abstained': wrongly / (len(shapes) * states),
            'p50_ms': p50, 'p50_constrained_ms': c50, 'latency_ratio': c50 / p50}


def run_defaults_bench(proposer: 'Proposer', shapes: Sequence[str], states: int,
                       ood_count: int = 200, seed: int = 0,
                       progress: Optional[Callable[[], Any]] = None) -> dict[str, Any]:
    """The figures of the module docstring.

    Args:
        proposer: a ``Proposer`` (its model's calibration and gate are used).
        shapes: shapes to measure; states: evaluation scenes per shape.
        ood_count: images of ``ood_images``.
        progress: optional callable() after each scene.

    Returns:
        {'shapes': {shape: figures}, 'ood': {'abstained', 'by_kind', 'count'},
        'constrained': {...}}.
    """
    figures = {shape: _shape_figures(proposer, shape, states, seed, progress)
               for shape in shapes}
    by_kind: dict[str, list[bool]] = {}
    for kind, image in ood_images(ood_count, seed):
        by_kind.setdefault(kind, []).append(proposer.propose(image, seed=seed).abstained)
    ood = {'abstained': float(np.mean([v for vs in by_kind.values() for v in vs])),
           'by_kind': {k: float(np.mean(v)) for k, v in by_kind.items()}, 'count': ood_count}
    constrained = _constrained(proposer, shapes, max(1, states // 2), seed)
    return {'shapes': figures, 'ood': ood, 'constrained': constrained}


FLOORS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Score floors compared by :func:`floor_sweep`."""


def floor_sweep(proposer: 'Proposer', shapes: Sequence[str], states: int,
                ood_count: int = 200, seed: int = 1) -> dict[str, Any]:
    """How the score floor trades false abstentions against abstention on no-object images.

    Measured on calibration-range scenes (``calibration_scenes``, not the evaluation scenes
    of the other figures) and on ``ood_images`` drawn with ``seed``: one default proposal
    each with floor 0, whose best score decides every floor at once.

    Returns:
        {'floors': FLOORS, 'false_abstained': {shape: [share per floor]}, 'ood_abstained':
        [share per floor]}.
    """
    def abstains(image: np.ndarray) -> np.ndarray:
        proposal = proposer.propose(image, seed=seed, floor=0.0)
        if proposal.abstained:  # novelty gate: abstains at every floor
            return np.ones(len(FLOORS), dtype=bool)
        return proposal.best_score < np.array(FLOORS)

    false = {shape: np.mean([abstains(render(scene))
                             for scene in calibration_scenes(shape, states, seed)], axis=0)
             for shape in shapes}
    ood = np.mean([abstains(image) for _, image in ood_images(ood_count, seed)], axis=0)
    return {'floors': FLOORS, 'false_abstained': {k: v.tolist() for k, v in false.items()},
            'ood_abstained': ood.tolist()}


def print_floor_sweep(sweep: dict[str, Any]) -> None:
    """Print ``floor_sweep`` results as a table, floors as columns."""
    print('score floor:          ' + ''.join(f'{f:>7.2f}' for f in sweep['floors']))
    for shape, row in sweep['false_abstained'].items():
        print(f'{"false abstention " + shape:<22}' + ''.join(f'{100 * v:>6.1f}%' for v in row))
    print(f'{"no-object abstention":<22}' + ''.join(f'{100 * v:>6.1f}%'
                                                   for v in sweep['ood_abstained']))


def print_defaults_bench(results: dict[str, Any]) -> None:
    """Print ``run_defaults_bench`` results."""
    print(f'{"shape":<7}{"feasible %":>11}{"abstained %":>12}{"all modes %":>12}'
          f'{"modes hit":>10}{"clusters":>9}{"scenes":>7}')
    for shape, r in results['shapes'].items():
        print(f'{shape:<7}{100 * r["feasible"]:>11.1f}{100 * r["abstained"]:>12.1f}'
              f'{100 * r["all_modes"]:>12.1f}{r["modes_hit"]:>10.2f}{r["clusters"]:>9.2f}'
              f'{r["states"]:>7}')
    ood = results['ood']
    kinds = ', '.join(f'{k} {100 * v:.1f}%' for k, v in ood['by_kind'].items())
    print(f'no-object images abstained: {100 * ood["abstained"]:.1f}% of {ood["count"]} '
          f'({kinds})')
    c = results['constrained']
    print(f'region = left half of the workspace: every grasp inside: '
          f'{"yes" if c["all_inside"] else "NO"}; feasible {100 * c["feasible"]:.1f}% of '
          f'{c["grasps"]}; abstained {100 * c["abstained"]:.1f}% (of which with feasible '
          f'grasps in the region: {100 * c["false_abstained"]:.1f}% of scenes); p50 '
          f'{c["p50_constrained_ms"]:.1f} ms vs {c["p50_ms"]:.1f} ms unconstrained '
          f'({c["latency_ratio"]:.2f}x)')
