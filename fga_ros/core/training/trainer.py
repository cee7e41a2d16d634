"""The training loop of Algorithm 1: interaction, critic steps, actor steps.

The trainer sees the world only through an ``Environment`` (``new_states``, ``try_grasps``,
``demonstrations``), so it runs the same on the in-process simulator and behind ROS.
It owns the model, the optimisers, the balanced replay memory and every random
generator, and checkpoints all of them so that a killed run resumes exactly.
"""

import dataclasses
import json
import math
import os
from pathlib import Path
import time
from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np
import torch

from fga_ros.core.common.config import TrainConfig, config_to_dict
from fga_ros.core.common.dataset import DatasetWriter, GraspDataset
from fga_ros.core.common.env import Environment, prefill_rng
from fga_ros.core.common.tensors import (
    configure_threads,
    images_to_tensor,
    resize_images,
    select_device,
)
from fga_ros.core.models import model_file
from fga_ros.core.models.camera_view import (
    TableRectifier,
    TableViewFit,
    fit_table_view,
    pixels_to_table,
)
from fga_ros.core.models.heatmap_nets import HeatmapModel
from fga_ros.core.models.networks import build_network
from fga_ros.core.models.weights import check_parameter_count
from fga_ros.core.training import checkpoint as ckpt
from fga_ros.core.training.hooks import (
    FINISHED,
    STOPPED,
    WALL_LIMIT,
    HookGroup,
    RunResult,
    SavedPaths,
    TrainingHooks,
)
from fga_ros.core.training.replay import ReplayMemory
from fga_ros.core.training.resume_checks import check_training_state
from fga_ros.core.training.run_record import CHECKPOINT_NAME, refused_changes
from fga_ros.core.training.updates import (
    actor_step_loss,
    critic_step_loss,
    discriminator_step_loss,
    heatmap_step_loss,
    most_uncertain_actions,
)
from fga_ros.file_writes import append_line, check_writable, write_text

MODEL_NAME = 'model.pt'
"""File name of the inference-only model exported at every checkpoint."""
CAMERA_VIEW_NAME = 'camera_view.json'
"""The fitted camera view of a ``camera_view: fitted`` run and its fit figures."""
EVAL_LOG_NAME = 'eval.jsonl'
"""Periodic evaluation results, one JSON object per line: step, seconds, metrics."""


@dataclasses.dataclass
class StepStats:
    """Numbers of one training step, for progress bars and TensorBoard."""

    critic_loss: float = math.nan
    critic_accuracy: float = math.nan
    actor_loss: float = math.nan
    actor_score: float = math.nan
    interaction_success: float = math.nan
    chosen_score: float = math.nan


class Trainer:
    """Run Algorithm 1 on an environment, checkpointing into ``out_dir``.

    Args:
        config: ``TrainConfig``.
        env: an ``Environment`` (``fga_ros.core.common.env``).
        out_dir: run directory (checkpoint, replay memory, TensorBoard events, model).
        resume: continue from ``out_dir/checkpoint.pt`` when it exists.
        warm_start: optional model or checkpoint whose extractor and critic initialise a
            new run (the actor starts fresh), e.g. to train other objectives on a critic
            that is already good. Not with ``resume``.
        dataset: optional ``GraspDataset`` (``fga_ros.core.common.dataset``): the replay
            prefill takes all its records instead of asking the environment for
            demonstrations, so no oracle is needed.
        offline_steps: critic + actor updates on the prefilled replay before the first
            interaction (offline pre-training; part of the prefill, not counted in ``step``).
        recorder: optional ``DatasetWriter``: every oracle prefill example and every tried
            grasp (image as the environment gave it, grasps, outcomes) is added to it; the
            caller closes it.
    """

    def __init__(self, config: TrainConfig, env: Environment, out_dir: str | os.PathLike,
                 resume: bool = False, warm_start: Optional[str | os.PathLike] = None,
                 dataset: Optional[GraspDataset] = None, offline_steps: int = 0,
                 recorder: Optional[DatasetWriter] = None) -> None:
        self.config = config
        self.env = env
        self.out_dir = Path(out_dir)
        self.device = select_device(config.device)
        configure_threads(config.num_threads)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        check_parameter_count(config)  # before the networks are built
        self.model = build_network(config)
        if warm_start is not None:
            self._warm_start(warm_start, resume)
        self.model.to(self.device)
        actor = self.model.actor_parameters()  # none for the heat-map methods
        self.opt_actor = torch.optim.Adam(actor, lr=config.lr_actor) if actor else None
        self.opt_critic = torch.optim.Adam(self.model.critic_parameters(), lr=config.lr_critic)
        self.input_size: int = self.model.input_size
        """Side of the observations the replay stores and the model takes, pixels."""
        self.replay = ReplayMemory(config.replay_positive, config.replay_negative,
                                   self.input_size)
        self.step = 0
        self.train_seconds = 0.0
        """Wall-clock seconds spent in ``run`` by this and earlier (resumed) processes."""
        self._started: Optional[float] = None
        # the step of the checkpoint in out_dir; None: none written
        self._saved_step: Optional[int] = None
        self.prefilled = False
        self.dataset = dataset
        self.offline_steps = int(offline_steps)
        self.recorder = recorder
        self.successes = 0
        self.interactions = 0
        self.camera_view_fit: Optional[TableViewFit] = None
        """what the camera-view fit of this process's prefill found (``camera_view: fitted``)"""
        check_writable(self.out_dir)  # before any work: a run that cannot save is refused
        ckpt.remove_leftovers(self.out_dir / CHECKPOINT_NAME)
        if resume and (self.out_dir / CHECKPOINT_NAME).exists():
            self.load(self.out_dir / CHECKPOINT_NAME)

    def _warm_start(self, source: str | os.PathLike, resume: bool) -> None:
        """Load the extractor and critic of ``source`` into the new model."""
        if resume:
            raise ValueError('warm_start and resume exclude each other: a resumed run '
                             'already holds its critic')
        if isinstance(self.model, HeatmapModel):
            raise ValueError(f"warm_start copies an actor-critic's critic; method "
                             f'{self.config.method} has none')
        self.model.load_state_dict(ckpt.load_critic_weights(source, self.config), strict=False)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The run's optimisers by name: 'actor' (when the model has one) and 'critic'."""
        named = {'actor': self.opt_actor, 'critic': self.opt_critic}
        return {name: opt for name, opt in named.items() if opt is not None}

    # -- data -----------------------------------------------------------------------------

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        return images_to_tensor(images, self.input_size, self.device)

    def prefill_scenes(self) -> tuple[int, int]:
        """(scenes, demonstrations per scene) of the replay prefill (Algorithm 1, line 1);
        from a dataset, (its scenes, 0): each scene has its own number."""
        cfg = self.config
        if self.dataset is not None:
            return len(self.dataset.images), 0
        if cfg.prefill_examples <= 0:
            return 0, 0
        per_state = max(1, math.ceil(cfg.prefill_examples / max(1, cfg.prefill_scenes)))
        return math.ceil(cfg.prefill_examples / per_state), per_state

    def prefill(self, hooks: TrainingHooks | None = None) -> None:
        """Fill the replay memory (Algorithm 1, line 1) with the dataset's records, or with
        the environment's imitation + random examples; then run ``offline_steps`` updates.

        ``hooks.on_prefill`` follows each scene; when ``hooks.should_stop()`` the prefill
        ends incomplete (``prefilled`` stays False) with the replay memory emptied.
        """
        cfg = self.config
        hooks = hooks or TrainingHooks()
        num_states, per_state = self.prefill_scenes()
        demos: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]
        if self.dataset is not None:
            demos = self.dataset.records()
        elif num_states:
            demos = self.env.demonstrations(num_states, per_state, prefill_rng(cfg.seed),
                                            cfg.prefill_imitation_fraction)
        else:
            demos = ()
        rectifier = getattr(self.model, 'rectifier', None)
        view_samples: list[tuple[np.ndarray, np.ndarray]] = []
        for done, (image, actions, labels) in enumerate(demos, 1):
            self.replay.add(resize_images(image, self.input_size), actions, labels)
            if rectifier is not None:  # the fit reads network-sized images
                view_samples.append((resize_images(image, cfg.image_size),
                                     np.asarray(actions)[np.asarray(labels, bool), :2]))
            if self.recorder is not None and self.dataset is None:
                self.recorder.add(image, actions, labels)
            hooks.on_prefill(done, num_states)
            if done < num_states and hooks.should_stop():
                self._empty_replay()
                return
        if rectifier is not None:
            self._fit_camera_view(rectifier, view_samples)
        for _ in range(self.offline_steps):
            self.model.train()
            for _ in range(cfg.critic_steps):
                self.critic_update()
            for _ in range(cfg.actor_steps if self.opt_actor is not None else 0):
                self.actor_update()
            if hooks.should_stop():
                self._empty_replay()
                return
        self.prefilled = True

    def _fit_camera_view(self, rectifier: TableRectifier,
                         samples: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Fit the camera's table view from the prefill's (image, successful grasp centres
        in observation pixels (k, 2)) and write it, with its fit figures, to
        ``CAMERA_VIEW_NAME`` in the run directory."""
        fit = fit_table_view(np.stack([image for image, _ in samples]) if samples
                             else np.zeros((0, 1, 1, 3), np.uint8),
                             [pixels_to_table(centres) for _, centres in samples])
        with torch.no_grad():
            rectifier.homography.copy_(torch.from_numpy(fit.homography))
        self.camera_view_fit = fit
        write_text(self.out_dir / CAMERA_VIEW_NAME, json.dumps({
            'homography': fit.homography.tolist(), 'centres': fit.centres,
            'on_object': _finite_or_none(fit.on_object),
            'on_object_identity': _finite_or_none(fit.on_object_identity)},
            indent=1) + '\n')

    def _empty_replay(self):
        cfg = self.config
        self.replay = ReplayMemory(cfg.replay_positive, cfg.replay_negative, self.input_size)

    # -- one step -------------------------------------------------------------------------

    def interact(self) -> tuple[np.ndarray, np.ndarray]:
        """Try the most uncertain of U proposals on new states; store the experiences.

        ``interaction_steps`` new states at once (the environment may work on them in
        parallel), ``grasps_per_state`` grasps on each (the paper: 1 and 1). Returns the
        outcomes and the critic scores of the tried grasps, both (states, grasps).
        """
        cfg = self.config
        observed = np.stack(self.env.new_states(cfg.interaction_steps))
        images = resize_images(observed, self.input_size)
        actions, scores = most_uncertain_actions(
            self.model, self._tensor(images), cfg.uncertainty_proposals, cfg.grasps_per_state,
            self.generator)
        tried_px = actions.cpu().numpy().astype(np.float64)
        outcomes = np.asarray(self.env.try_grasps(tried_px), dtype=np.bool_)
        for image, tried, won in zip(images, tried_px, outcomes):
            self.replay.add(image, tried, won)
        if self.recorder is not None:
            for image, tried, won in zip(observed, actions, outcomes):
                self.recorder.add(image, tried, won)
        self.interactions += outcomes.size
        self.successes += int(outcomes.sum())
        return outcomes, scores.cpu().numpy()

    def critic_update(self) -> tuple[float, float]:
        """One critic (GAN discriminator, heat map) step on a replayed batch: (loss, accuracy)."""
        cfg = self.config
        if isinstance(self.model, HeatmapModel):
            batch = self.replay.sample_grouped(cfg.critic_batch, cfg.critic_actions_per_state,
                                               self.rng)
            loss, acc = heatmap_step_loss(
                self.model, self._tensor(batch.images),
                torch.as_tensor(batch.actions, device=self.device),
                torch.as_tensor(batch.labels, device=self.device))
        elif cfg.divergence == 'gan':
            batch = self.replay.sample_positive(cfg.critic_batch, self.rng)
            loss, acc = discriminator_step_loss(
                self.model, self._tensor(batch.images),
                torch.as_tensor(batch.actions, device=self.device), self.generator)
        else:
            batch = self.replay.sample_grouped(cfg.critic_batch, cfg.critic_actions_per_state,
                                               self.rng)
            loss, acc = critic_step_loss(
                self.model, self._tensor(batch.images),
                torch.as_tensor(batch.actions, device=self.device),
                torch.as_tensor(batch.labels, device=self.device))
        self.opt_critic.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_critic.step()
        return loss.item(), acc

    def actor_update(self) -> tuple[float, float]:
        """One actor step on replayed states: (loss, mean critic score of its samples)."""
        if self.opt_actor is None or isinstance(self.model, HeatmapModel):
            raise ValueError(f'method {self.config.method} has no actor to update')
        images = self.replay.sample_states(self.config.actor_batch, self.rng)
        loss, stats = actor_step_loss(self.model, self.config, self._tensor(images),
                                      self.generator)
        self.opt_actor.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_actor.step()
        return loss.item(), stats['actor_score']

    def train_step(self) -> StepStats:
        """One outer iteration of Algorithm 1; returns ``StepStats``."""
        cfg = self.config
        stats = StepStats()
        self.model.train()
        outcomes, scores = self.interact()
        stats.interaction_success = float(outcomes.mean())
        stats.chosen_score = float(scores.mean())
        for _ in range(cfg.critic_steps):
            stats.critic_loss, stats.critic_accuracy = self.critic_update()
        for _ in range(cfg.actor_steps if self.opt_actor is not None else 0):
            stats.actor_loss, stats.actor_score = self.actor_update()
        self.step += 1
        return stats

    # -- persistence ----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to resume, as a ``weights_only``-loadable payload."""
        env_state = self.env.state_dict() if hasattr(self.env, 'state_dict') else None
        return {
            'config': config_to_dict(self.config),
            'model': self.model.state_dict(),
            'optim': {name: opt.state_dict() for name, opt in self.optimizers().items()},
            'step': self.step,
            'train_seconds': self._elapsed(),
            'prefilled': self.prefilled,
            'counters': {'successes': self.successes, 'interactions': self.interactions},
            'rng': {'numpy': self.rng.bit_generator.state,
                    'torch': torch.get_rng_state(),
                    'generator': self.generator.get_state()},
            'env': env_state,
        }

    def _elapsed(self) -> float:
        """Training seconds of this and earlier processes, counting a ``run`` in progress."""
        return self.train_seconds if self._started is None else time.monotonic() - self._started

    def save(self) -> Path:
        """Write checkpoint + replay memory atomically; return the checkpoint path."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / CHECKPOINT_NAME
        ckpt.save_checkpoint(path, self.state(), replay_state=self.replay.state_dict())
        return path

    def load(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by ``save`` (model, optimisers, replay, RNG, step)."""
        payload = ckpt.load_checkpoint(path, map_location=self.device)
        refused = refused_changes(model_file.config_of(path, payload), self.config)
        if refused:
            raise model_file.CheckpointError(
                f'{path} was written with another configuration: ' + '; '.join(refused)
                + "; resume with the run's configuration, or start a new run directory")
        try:  # every field is checked before any is applied
            check_training_state(payload, self.optimizers(), self.generator)
        except ValueError as error:
            raise model_file.CheckpointError(f'{path}: {error}') from None
        ckpt.restore_replay(path, payload, self.replay)
        if payload.get('env') is not None and hasattr(self.env, 'load_state_dict'):
            try:
                self.env.load_state_dict(payload['env'])
            except (KeyError, TypeError, ValueError) as error:
                raise model_file.CheckpointError(f'{path}: its simulator state is unusable: '
                                                 f'{type(error).__name__}') from None
        self.model.load_state_dict(payload['model'])
        rates = {'actor': self.config.lr_actor, 'critic': self.config.lr_critic}
        for name, optimiser in self.optimizers().items():
            optimiser.load_state_dict(payload['optim'][name])
            for group in optimiser.param_groups:  # a resume may change the learning rates
                group['lr'] = rates[name]
        self.step = self._saved_step = int(payload['step'])
        self.train_seconds = float(payload.get('train_seconds', 0.0))
        self.prefilled = bool(payload['prefilled'])
        self.successes = int(payload['counters']['successes'])
        self.interactions = int(payload['counters']['interactions'])
        self.rng.bit_generator.state = payload['rng']['numpy']
        torch.set_rng_state(payload['rng']['torch'])
        self.generator.set_state(payload['rng']['generator'])

    def export(self, path: Optional[str | os.PathLike] = None,
               meta: Optional[Mapping[str, Any]] = None) -> Path:
        """Write the small inference-only model (weights + config); return its path."""
        path = Path(path) if path else self.out_dir / MODEL_NAME
        info = {'step': self.step, 'method': self.config.method}
        if self.opt_actor is not None:
            info['divergence'] = self.config.divergence
        info.update(meta or {})
        model_file.export_model(path, self.model, self.config, info)
        return path

    # -- loop -----------------------------------------------------------------------------

    def run(self, steps: int | None = None, hooks: Iterable[TrainingHooks] = (),
            evaluate: Optional[Callable[['Trainer'], Mapping[str, float]]] = None,
            wall_limit: float | None = None) -> RunResult:
        """Train until ``steps`` total steps (default: config.steps): the one training loop.

        Args:
            steps: total step count to reach (a resumed run continues from ``self.step``).
            hooks: ``TrainingHooks`` (progress, logging, stop requests), called in order.
            evaluate: optional callable(trainer) -> {name: scalar}, run every
                ``config.eval_every`` steps; results go to ``eval.jsonl`` and ``on_eval``.
            wall_limit: optional seconds of this call after which training stops.

        Prefills the replay memory first if needed. A checkpoint is written and ``model.pt``
        exported every ``config.checkpoint_every`` steps and when the loop ends (target
        reached, ``should_stop``, wall-clock limit), and also before an exception
        (KeyboardInterrupt, a failing environment) propagates, once the prefill is
        complete. Records of ``eval.jsonl`` after ``self.step`` (logged by a killed process
        after its last checkpoint) are dropped first. Nothing is written when
        ``self.step >= steps`` already.
        """
        group = HookGroup(hooks)
        cfg = self.config
        target = cfg.steps if steps is None else steps
        group.on_start(self, target)
        stats, reason, saved = StepStats(), FINISHED, None
        start, start_step = time.monotonic(), self.step
        self._started = start - self.train_seconds
        if self.step < target:  # evaluations a killed process logged after its checkpoint
            truncate_eval_log(self.out_dir, self.step)
        try:
            if not self.prefilled and self.step < target:
                self.prefill(group)
                reason = FINISHED if self.prefilled else STOPPED
            while reason == FINISHED and self.step < target:
                stats = self.train_step()
                group.on_step(self.step, stats)
                if self.step % cfg.log_every == 0:
                    group.on_log(self.step, self._scalars(stats, start, start_step))
                if evaluate is not None and cfg.eval_every and self.step % cfg.eval_every == 0:
                    self._evaluate(evaluate, group)
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    saved = self._checkpoint(group)
                if self.step >= target:
                    break
                if wall_limit is not None and time.monotonic() - start >= wall_limit:
                    reason = WALL_LIMIT
                elif group.should_stop():
                    reason = STOPPED
        except BaseException:
            if self.prefilled and self._saved_step != self.step:
                self._checkpoint(group)
            raise
        finally:
            self.train_seconds = self._elapsed()
            self._started = None
        if self.prefilled and self._saved_step != self.step:
            saved = self._checkpoint(group)
        result = RunResult(reason, self.step, target, stats, saved)
        group.on_end(result)
        return result

    def _checkpoint(self, hooks: TrainingHooks) -> SavedPaths:
        """Write the checkpoint and export the model; tell the hooks; return the paths."""
        self._saved_step = self.step  # set first: a failed write is not retried on the way out
        paths = SavedPaths(self.save(), self.export())
        hooks.on_checkpoint(self.step, paths)
        return paths

    def _scalars(self, stats: StepStats, start: float, start_step: int) -> dict[str, float]:
        """TensorBoard-style scalars of ``TrainingHooks.on_log``."""
        scalars = {f'train/{name}': value for name, value in dataclasses.asdict(stats).items()}
        scalars['train/collection_success_rate'] = self.successes / max(1, self.interactions)
        scalars['train/steps_per_second'] = ((self.step - start_step)
                                             / max(1e-9, time.monotonic() - start))
        scalars.update({f'replay/{name}': value for name, value in self.replay.sizes().items()})
        return scalars

    def _evaluate(self, evaluate: Callable[['Trainer'], Mapping[str, float]],
                  hooks: TrainingHooks) -> dict[str, float]:
        self.model.eval()
        results = {k: float(v) for k, v in evaluate(self).items()}
        self.model.train()
        record = {'step': self.step, 'seconds': round(self._elapsed(), 1), **results}
        append_line(self.out_dir / EVAL_LOG_NAME, json.dumps(record))
        hooks.on_eval(self.step, results)
        return results


def _finite_or_none(value: float) -> Optional[float]:
    """value, or None (JSON null) when it is NaN or infinite."""
    return value if math.isfinite(value) else None


def _eval_record(line: str) -> Optional[dict]:
    """The evaluation record on one line of ``eval.jsonl``; None for a line cut short by a
    kill or anything else that is not a record with an integer step."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if isinstance(record, dict) and isinstance(record.get('step'), int):
        return record
    return None


def read_eval_log(out_dir: str | os.PathLike) -> list[dict]:
    """The periodic evaluation records of ``out_dir/eval.jsonl`` in file order, leaving out
    a line cut short by a kill; [] when there is no log."""
    path = Path(out_dir) / EVAL_LOG_NAME
    if not path.is_file():
        return []
    lines = path.read_text(errors='replace').splitlines()  # damaged bytes: not a record
    records = (_eval_record(line) for line in lines)
    return [record for record in records if record is not None]


def truncate_eval_log(out_dir: str | os.PathLike, step: int) -> int:
    """Drop the ``eval.jsonl`` records of steps after ``step`` (a resume repeats them).

    Returns:
        The number of records dropped (the file is rewritten atomically only then).
    """
    path = Path(out_dir) / EVAL_LOG_NAME
    if not path.is_file():
        return 0
    lines = [line for line in path.read_text(errors='replace').splitlines() if line.strip()]
    kept = [line for line in lines
            if (record := _eval_record(line)) is not None and record['step'] <= step]
    if len(kept) != len(lines):
        write_text(path, ''.join(line + '\n' for line in kept))
    return len(lines) - len(kept)
