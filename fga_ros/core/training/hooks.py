"""Hooks into ``Trainer.run``: how a front end watches training and asks it to stop.

``Trainer.run`` is the only training loop; the ``fga train`` command (progress bar,
TensorBoard, Ctrl-C and SIGTERM) and ``trainer_node`` (ROS logging, diagnostics, the model
path it publishes, shutdown) plug into it with ``TrainingHooks`` subclasses, in the spirit
of stable-baselines3 callbacks. Every method is a no-op by default; override the ones you
need. The hooks are called from the thread that runs the loop.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

if TYPE_CHECKING:  # annotations only: the trainer imports this module
    from fga_ros.core.training.trainer import StepStats, Trainer

FINISHED = 'finished'
"""``RunResult.reason``: the target step count was reached."""
STOPPED = 'stopped'
"""``RunResult.reason``: a hook's ``should_stop`` asked to stop (signal, node shutdown)."""
WALL_LIMIT = 'wall_limit'
"""``RunResult.reason``: the wall-clock limit of this ``run`` call was reached."""


@dataclasses.dataclass(frozen=True)
class SavedPaths:
    """Files written at a checkpoint: the resumable checkpoint and the exported model."""

    checkpoint: Path
    model: Path


@dataclasses.dataclass(frozen=True)
class RunResult:
    """How a ``Trainer.run`` call ended.

    Attributes:
        reason: ``FINISHED``, ``STOPPED`` or ``WALL_LIMIT``.
        step: the trainer's step count at the end.
        target: the step count the call was asked to reach.
        stats: numbers of the last training step (all NaN when no step ran).
        saved: the files of the last checkpoint written by this call, or None (nothing was
            trained, or the prefill was stopped before it completed).
    """

    reason: str
    step: int
    target: int
    stats: StepStats
    saved: SavedPaths | None


class TrainingHooks:
    """Callbacks of ``Trainer.run``; all are no-ops unless overridden."""

    def on_start(self, trainer: Trainer, target: int) -> None:
        """Before the prefill (if any) and the first step; ``trainer.step`` may be > 0."""

    def on_prefill(self, scenes_done: int, scenes_total: int) -> None:
        """After each prefill scene (demonstrations of one scene stored)."""

    def on_step(self, step: int, stats: StepStats) -> None:
        """After every training step; ``step`` counts completed steps."""

    def on_log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Every ``config.log_every`` steps.

        ``scalars`` are TensorBoard-style names -> values: ``train/<StepStats field>`` (NaN
        when not computed in the step, e.g. no actor step, or when training diverged),
        ``train/collection_success_rate`` (share of tried grasps that succeeded, whole
        run), ``train/steps_per_second`` (this call) and ``replay/<size>``.
        """

    def on_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        """After each periodic evaluation (already appended to ``eval.jsonl``)."""

    def on_checkpoint(self, step: int, paths: SavedPaths) -> None:
        """After a checkpoint and the exported model were written."""

    def should_stop(self) -> bool:
        """Polled after every step and every prefill scene; True ends the run (checkpointed)."""
        return False

    def on_end(self, result: RunResult) -> None:
        """When ``run`` returns normally (not when it raises)."""


def _broadcast(event: str) -> Callable[..., None]:
    """A ``HookGroup`` method that calls ``event`` of every hook, in order."""
    def call(self: HookGroup, *args: Any) -> None:
        for hook in self.hooks:
            getattr(hook, event)(*args)
    call.__name__ = event
    call.__doc__ = f'Call ``{event}`` of every hook, in order.'
    return call


class HookGroup(TrainingHooks):
    """Several hooks called in order; stops when any of them asks to."""

    def __init__(self, hooks: Iterable[TrainingHooks] = ()) -> None:
        self.hooks = tuple(hooks)

    on_start = _broadcast('on_start')
    on_prefill = _broadcast('on_prefill')
    on_step = _broadcast('on_step')
    on_log = _broadcast('on_log')
    on_eval = _broadcast('on_eval')
    on_checkpoint = _broadcast('on_checkpoint')
    on_end = _broadcast('on_end')

    def should_stop(self) -> bool:
        return any(hook.should_stop() for hook in self.hooks)
