"""The environment interface the learning core sees, and its in-process simulator version.

The trainer only needs a camera (``new_state``), a gripper (``try_grasp``) and, for the
replay prefill, imitation examples (``demonstrations``). The same protocol is implemented
by the in-process simulator below and by adapters over ROS topics or real hardware.
"""

from typing import Iterator, Protocol

import numpy as np

from fga_ros.core.actions import uniform_actions
from fga_ros.sim import Scene, grasp_success, ground_truth, make_scene, render, validate_actions


class Environment(Protocol):
    """One grasping problem at a time: an observation and a success/failure oracle."""

    def new_state(self) -> np.ndarray:
        """Generate a new problem; return its observation, (128, 128, 3) uint8 RGB."""

    def try_grasp(self, action: np.ndarray) -> bool:
        """Execute grasp ``action`` (3,) = (x, y, alpha) pixels/radians on the current
        problem; True on success."""

    def demonstrations(self, num_states: int, per_state: int, rng: np.random.Generator,
                       imitation_fraction: float = 0.5
                       ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Imitation examples for the replay prefill, one tuple per new problem:
        (image (128, 128, 3) uint8, actions (n, 3), labels (n,) bool). About
        ``imitation_fraction`` of the ``per_state`` actions are expert (feasible) grasps,
        the rest uniform random grasps; labels are the true outcomes."""


class SimEnvironment:
    """``Environment`` over the in-process simulator (``fga_ros.sim``).

    Args:
        shapes: shape families to draw problems from (uniformly).
        distortion: camera distortion of every scene ('none', 'rotation', ...).
        seed: seed of the problem sequence; equal seeds give equal sequences.
    """

    def __init__(self, shapes, distortion='none', seed=0):
        self.shapes = tuple(shapes)
        if not self.shapes:
            raise ValueError('shapes must name at least one shape')
        self.distortion = distortion
        self._rng = np.random.default_rng(seed)
        for shape in self.shapes:  # fail now, with the simulator's message, on bad names
            make_scene(shape, 0, distortion)
        self.scene = None
        """The current ``fga_ros.sim`` scene (None before the first ``new_state``)."""

    def _random_scene(self, rng):
        shape = self.shapes[int(rng.integers(len(self.shapes)))]
        return make_scene(shape, int(rng.integers(2**62)), self.distortion)

    def new_state(self):
        self.scene = self._random_scene(self._rng)
        return render(self.scene)

    def state_dict(self):
        """Problem-sequence state (RNG and current scene), for exact resume."""
        return {'rng': self._rng.bit_generator.state,
                'scene': None if self.scene is None else self.scene.to_dict()}

    def load_state_dict(self, state):
        """Restore what ``state_dict`` returned."""
        self._rng.bit_generator.state = state['rng']
        self.scene = None if state['scene'] is None else Scene.from_dict(state['scene'])

    def try_grasp(self, action):
        if self.scene is None:
            raise RuntimeError('try_grasp called before new_state')
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (3,):
            raise ValueError(f'action must have shape (3,), got {action.shape}')
        return bool(grasp_success(self.scene, validate_actions(action[None]))[0])

    def demonstrations(self, num_states, per_state, rng, imitation_fraction=0.5):
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
