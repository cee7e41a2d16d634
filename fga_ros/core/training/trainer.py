"""The training loop of Algorithm 1: interaction, critic steps, actor steps.

The trainer sees the world only through an ``Environment`` (``new_states``, ``try_grasps``,
``demonstrations``), so it runs the same on the in-process simulator and behind ROS.
It owns the model, the optimisers, the balanced replay memory and every random
generator, and checkpoints all of them so that a killed run resumes exactly.
"""

import dataclasses
import json
import math
from pathlib import Path
import time

import numpy as np
import torch

from fga_ros.core.common.config import config_to_dict
from fga_ros.core.common.tensors import (
    configure_threads,
    images_to_tensor,
    resize_images,
    select_device,
)
from fga_ros.core.models import model_file
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.training import checkpoint as ckpt
from fga_ros.core.training.replay import ReplayMemory
from fga_ros.core.training.updates import (
    actor_step_loss,
    critic_step_loss,
    discriminator_step_loss,
    most_uncertain_actions,
)

CHECKPOINT_NAME = 'checkpoint.pt'
"""File name of the resumable checkpoint inside the run directory."""
RESUMABLE_CHANGES = ('steps', 'interaction_steps', 'grasps_per_state', 'eval_every',
                     'eval_states', 'eval_actions', 'checkpoint_every', 'log_every', 'device',
                     'num_threads')
"""Config fields a resumed run may change; every other field must match the checkpoint."""
MODEL_NAME = 'model.pt'
"""File name of the inference-only model exported at the end of training."""
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
    """

    def __init__(self, config, env, out_dir, resume=False, warm_start=None):
        self.config = config
        self.env = env
        self.out_dir = Path(out_dir)
        self.device = select_device(config.device)
        configure_threads(config.num_threads)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.model = ActorCritic(config)
        if warm_start is not None:
            if resume:
                raise ValueError('warm_start and resume exclude each other: a resumed run '
                                 'already holds its critic')
            self.model.load_state_dict(ckpt.load_critic_weights(warm_start, config),
                                       strict=False)
        self.model.to(self.device)
        self.opt_actor = torch.optim.Adam(self.model.actor_parameters(), lr=config.lr_actor)
        self.opt_critic = torch.optim.Adam(self.model.critic_parameters(), lr=config.lr_critic)
        self.replay = ReplayMemory(config.replay_positive, config.replay_negative,
                                   config.image_size)
        self.step = 0
        self.train_seconds = 0.0
        """Wall-clock seconds spent in ``run`` by this and earlier (resumed) processes."""
        self.prefilled = False
        self.successes = 0
        self.interactions = 0
        if resume and (self.out_dir / CHECKPOINT_NAME).exists():
            self.load(self.out_dir / CHECKPOINT_NAME)

    # -- data -----------------------------------------------------------------------------

    def _tensor(self, images):
        return images_to_tensor(images, self.config.image_size, self.device)

    def prefill(self, progress=None):
        """Fill the replay memory with imitation + random examples (Algorithm 1, line 1)."""
        cfg = self.config
        if cfg.prefill_examples <= 0:
            self.prefilled = True
            return
        per_state = max(1, math.ceil(cfg.prefill_examples / max(1, cfg.prefill_scenes)))
        num_states = math.ceil(cfg.prefill_examples / per_state)
        demos = self.env.demonstrations(num_states, per_state, self.rng,
                                          cfg.prefill_imitation_fraction)
        for image, actions, labels in demos:
            self.replay.add(resize_images(image, cfg.image_size), actions, labels)
            if progress is not None:
                progress(1)
        self.prefilled = True

    # -- one step -------------------------------------------------------------------------

    def interact(self):
        """Try the most uncertain of U proposals on new states; store the experiences.

        ``interaction_steps`` new states at once (the environment may work on them in
        parallel), ``grasps_per_state`` grasps on each (the paper: 1 and 1). Returns the
        outcomes and the critic scores of the tried grasps, both (states, grasps).
        """
        cfg = self.config
        images = resize_images(np.stack(self.env.new_states(cfg.interaction_steps)),
                               cfg.image_size)
        actions, scores = most_uncertain_actions(
            self.model, self._tensor(images), cfg.uncertainty_proposals, cfg.grasps_per_state,
            self.generator)
        actions = actions.cpu().numpy().astype(np.float64)
        outcomes = np.asarray(self.env.try_grasps(actions), dtype=bool)
        for image, tried, won in zip(images, actions, outcomes):
            self.replay.add(image, tried, won)
        self.interactions += outcomes.size
        self.successes += int(outcomes.sum())
        return outcomes, scores.cpu().numpy()

    def critic_update(self):
        cfg = self.config
        if cfg.divergence == 'gan':
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

    def actor_update(self):
        images = self.replay.sample_states(self.config.actor_batch, self.rng)
        loss, stats = actor_step_loss(self.model, self.config, self._tensor(images),
                                      self.generator)
        self.opt_actor.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_actor.step()
        return loss.item(), stats['actor_score']

    def train_step(self):
        """One outer iteration of Algorithm 1; returns ``StepStats``."""
        cfg = self.config
        stats = StepStats()
        self.model.train()
        outcomes, scores = self.interact()
        stats.interaction_success = float(outcomes.mean())
        stats.chosen_score = float(scores.mean())
        for _ in range(cfg.critic_steps):
            stats.critic_loss, stats.critic_accuracy = self.critic_update()
        for _ in range(cfg.actor_steps):
            stats.actor_loss, stats.actor_score = self.actor_update()
        self.step += 1
        return stats

    # -- persistence ----------------------------------------------------------------------

    def state(self):
        """Everything needed to resume, as a ``weights_only``-loadable payload."""
        env_state = self.env.state_dict() if hasattr(self.env, 'state_dict') else None
        return {
            'config': config_to_dict(self.config),
            'model': self.model.state_dict(),
            'optim': {'actor': self.opt_actor.state_dict(),
                      'critic': self.opt_critic.state_dict()},
            'step': self.step,
            'train_seconds': self._elapsed(),
            'prefilled': self.prefilled,
            'counters': {'successes': self.successes, 'interactions': self.interactions},
            'rng': {'numpy': self.rng.bit_generator.state,
                    'torch': torch.get_rng_state(),
                    'generator': self.generator.get_state()},
            'env': env_state,
        }

    def _elapsed(self):
        started = getattr(self, '_started', None)
        return self.train_seconds if started is None else time.monotonic() - started

    def save(self):
        """Write checkpoint + replay memory atomically; return the checkpoint path."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / CHECKPOINT_NAME
        ckpt.save_checkpoint(path, self.state(), replay_state=self.replay.state_dict())
        return path

    def load(self, path):
        """Restore a checkpoint written by ``save`` (model, optimisers, replay, RNG, step)."""
        payload = ckpt.load_checkpoint(path, map_location=self.device)
        saved = model_file.config_of(path, payload)
        diff = [f.name for f in dataclasses.fields(saved)
                if f.name not in RESUMABLE_CHANGES
                and getattr(saved, f.name) != getattr(self.config, f.name)]
        if diff:
            raise model_file.CheckpointError(
                f'{path} was written with a different configuration (fields {diff}); '
                'resume with the same preset and overrides, or start a new run directory')
        self.model.load_state_dict(payload['model'])
        self.opt_actor.load_state_dict(payload['optim']['actor'])
        self.opt_critic.load_state_dict(payload['optim']['critic'])
        self.step = int(payload['step'])
        self.train_seconds = float(payload.get('train_seconds', 0.0))
        self.prefilled = bool(payload['prefilled'])
        self.successes = int(payload['counters']['successes'])
        self.interactions = int(payload['counters']['interactions'])
        self.rng.bit_generator.state = payload['rng']['numpy']
        torch.set_rng_state(payload['rng']['torch'])
        self.generator.set_state(payload['rng']['generator'])
        if payload.get('env') is not None and hasattr(self.env, 'load_state_dict'):
            self.env.load_state_dict(payload['env'])
        replay = ckpt.load_replay_state(path, payload)
        if replay is None:
            raise model_file.CheckpointError(f'{path} holds no replay memory; cannot resume')
        self.replay.load_state_dict(replay)

    def export(self, path=None, meta=None):
        """Write the small inference-only model (weights + config); return its path."""
        path = Path(path) if path else self.out_dir / MODEL_NAME
        info = {'step': self.step, 'divergence': self.config.divergence}
        info.update(meta or {})
        model_file.export_model(path, self.model, self.config, info)
        return path

    # -- loop -----------------------------------------------------------------------------

    def run(self, steps=None, progress=True, evaluate=None, writer=None, wall_limit=None):
        """Train until ``steps`` (default: config.steps) total steps; return the last stats.

        Args:
            steps: total step count to reach (a resumed run continues from ``self.step``).
            progress: show a tqdm bar (steps/s, ETA, losses).
            evaluate: optional callable(trainer) -> dict of scalars, run every
                ``config.eval_every`` steps and at the end.
            writer: optional TensorBoard ``SummaryWriter``.
            wall_limit: optional seconds after which training stops (checkpointed).

        A KeyboardInterrupt checkpoints before it propagates.
        """
        from tqdm import tqdm

        cfg = self.config
        total = cfg.steps if steps is None else steps
        if not self.prefilled:
            with tqdm(total=math.ceil(cfg.prefill_examples / max(1, math.ceil(
                    cfg.prefill_examples / max(1, cfg.prefill_scenes)))),
                    desc='prefill (scenes)', disable=not progress, unit='scene') as bar:
                self.prefill(bar.update)
        bar = tqdm(total=total, initial=self.step, desc=f'train {cfg.divergence}',
                   disable=not progress, unit='step', dynamic_ncols=True)
        start = time.monotonic()
        self._started = start - self.train_seconds
        stats = StepStats()
        try:
            while self.step < total:
                stats = self.train_step()
                bar.update(1)
                if self.step % cfg.log_every == 0:
                    rate = self.successes / max(1, self.interactions)
                    bar.set_postfix(critic=f'{stats.critic_accuracy:.2f}',
                                    score=f'{stats.actor_score:.2f}', hit=f'{rate:.2f}')
                    if writer is not None:
                        self._log(writer, stats)
                if evaluate and cfg.eval_every and self.step % cfg.eval_every == 0:
                    self._evaluate(evaluate, writer, bar)
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save()
                if wall_limit is not None and time.monotonic() - start > wall_limit:
                    bar.write(f'wall-clock limit of {wall_limit:.0f} s reached at step '
                              f'{self.step}')
                    break
        except KeyboardInterrupt:
            bar.write(f'interrupted at step {self.step}: writing a checkpoint')
            self.save()
            raise
        finally:
            bar.close()
        self.save()
        return stats

    def _log(self, writer, stats):
        for name, value in dataclasses.asdict(stats).items():
            if not math.isnan(value):
                writer.add_scalar(f'train/{name}', value, self.step)
        sizes = self.replay.sizes()
        for name, value in sizes.items():
            writer.add_scalar(f'replay/{name}', value, self.step)
        writer.add_scalar('train/collection_success_rate',
                          self.successes / max(1, self.interactions), self.step)

    def _evaluate(self, evaluate, writer, bar):
        self.model.eval()
        results = evaluate(self)
        self.model.train()
        record = {'step': self.step, 'seconds': round(time.monotonic() - self._started, 1),
                  **{k: float(v) for k, v in results.items()}}
        with open(self.out_dir / EVAL_LOG_NAME, 'a') as stream:
            stream.write(json.dumps(record) + '\n')
        if writer is not None:
            for name, value in results.items():
                writer.add_scalar(f'eval/{name}', value, self.step)
        text = ' '.join(f'{k}={v:.3f}' for k, v in results.items())
        bar.write(f'step {self.step}: {text}')
        return results
