"""The environment interface the learning core sees, and its in-process simulator version.

The trainer only needs a camera (``new_states``), a gripper (``try_grasps``) and, for the
replay prefill, imitation examples (``demonstrations``). Problems come in batches so that an
environment made of several simulators (or robots) can work on them in parallel. The same
protocol is implemented by the in-process simulator below and by adapters over ROS topics
or real hardware.
"""

from typing import Any, Iterable, Iterator, Protocol

import numpy as np

from fga_ros.sim import Scene, grasp_success, ground_truth, make_scene, render, validate_actions
from fga_ros.sim.workspace import uniform_actions


class Environment(Protocol):
    """A batch of grasping problems at a time: observations and a success/failure oracle."""

    def new_states(self, count: int) -> list[np.ndarray]:
        """Replace the current problems by ``count`` new ones; return their observations,
        each (128, 128, 3) uint8 RGB. An environment may refuse more than it can hold at
        once (ValueError naming its limit)."""

    def try_grasps(self, actions: np.ndarray) -> np.ndarray:
        """Execute grasps ``actions`` (count, k, 3) = (x, y, alpha) pixels/radians, row i on
        problem i of the last ``new_states``; return the outcomes (count, k) bool."""

    def demonstrations(self, num_states: int, per_state: int, rng: np.random.Generator,
                       imitation_fraction: float = 0.5
                       ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Imitation examples for the replay prefill, one tuple per new problem:
        (image (128, 128, 3) uint8, actions (n, 3), labels (n,) bool). About
        ``imitation_fraction`` of the ``per_state`` actions are expert (feasible) grasps,
        the rest uniform random grasps; labels are the true outcomes."""


PREFILL_STREAM = 1
"""Second seed word of the prefill's random stream (:func:`prefill_rng`)."""


def prefill_rng(seed: int) -> np.random.Generator:
    """The random stream of the imitation prefill of a run seeded ``seed`` (its scenes and
    grasps), apart from the training stream: ``fga record --seed S`` writes the examples a
    run with seed S would ask the oracle for, and a run prefilled from that file then trains
    exactly as the run that asked the oracle."""
    return np.random.default_rng([seed, PREFILL_STREAM])


def grasp_batch(actions: np.ndarray, num_states: int) -> np.ndarray:
    """Check the argument of ``try_grasps``: (num_states, k, 3) float64 grasps.

    Raises:
        RuntimeError: no current problem (``num_states`` 0: ``new_states`` not called).
        ValueError: not one row of grasps per current problem.
    """
    if num_states == 0:
        raise RuntimeError('try_grasps called before new_states')
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim != 3 or actions.shape[0] != num_states or actions.shape[2] != 3:
        raise ValueError(f'actions must have shape ({num_states}, k, 3), one row per current '
                         f'problem, got {actions.shape}')
    return actions


class SimEnvironment:
    """``Environment`` over the in-process simulator (``fga_ros.sim``).

    Args:
        shapes: shape families to draw problems from (uniformly).
        distortion: camera distortion of every scene ('none', 'rotation', ...).
        seed: seed of the problem sequence; equal seeds give equal sequences.
    """

    def __init__(self, shapes: Iterable[str], distortion: str = 'none', seed: int = 0) -> None:
        self.shapes = tuple(shapes)
        if not self.shapes:
            raise ValueError('shapes must name at least one shape')
        self.distortion = distortion
        self._rng = np.random.default_rng(seed)
        for shape in self.shapes:  # fail now, with the simulator's message, on bad names
            make_scene(shape, 0, distortion)
        self.scenes: list[Scene] = []
        """The current ``fga_ros.sim`` scenes (empty before the first ``new_states``)."""

    def _random_scene(self, rng: np.random.Generator) -> Scene:
        shape = self.shapes[int(rng.integers(len(self.shapes)))]
        return make_scene(shape, int(rng.integers(2**62)), self.distortion)

    def new_states(self, count: int) -> list[np.ndarray]:
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f'count must be a positive integer, got {count!r}')
        self.scenes = [self._random_scene(self._rng) for _ in range(count)]
        return [render(scene) for scene in self.scenes]

    def state_dict(self) -> dict[str, Any]:
        """Problem-sequence state (RNG and current scenes), for exact resume."""
        return {'rng': self._rng.bit_generator.state,
                'scenes': [scene.to_dict() for scene in self.scenes]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self._rng.bit_generator.state = state['rng']
        self.scenes = [Scene.from_dict(scene) for scene in state['scenes']]

    def try_grasps(self, actions: np.ndarray) -> np.ndarray:
        actions = grasp_batch(actions, len(self.scenes))
        return np.stack([grasp_success(scene, validate_actions(row))
                         for scene, row in zip(self.scenes, actions)])

    def demonstrations(self, num_states: int, per_state: int, rng: np.random.Generator,
                       imitation_fraction: float = 0.5
                       ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """See ``Environment.demonstrations``; does not change the current problem.

        Scenes without any feasible grasp get random grasps only.
        """
        if not 0.0 <= imitation_fraction <= 1.0:
            raise ValueError(f'imitation_fraction must be in [0, 1], got {imitation_fraction}')
        if num_states < 0 or per_state < 1:
            raise ValueError(f'need num_states >= 0 and per_state >= 1, got {num_states} '
                             f'and {per_state}')
        for _ in range(num_states):
            scene = self._random_scene(rng)
            truth = ground_truth(scene)
            n_expert = int(round(per_state * imitation_fraction)) if truth.feasible.any() else 0
            actions = np.concatenate([truth.sample_feasible(n_expert, rng),
                                      uniform_actions(per_state - n_expert, rng)])
            yield render(scene), actions, grasp_success(scene, actions)
