"""The training loop: it learns, it checkpoints, and a killed run resumes exactly."""

import dataclasses

import numpy as np
import pytest
import torch

from fga_ros.core.common.config import load_config
from fga_ros.core.common.env import SimEnvironment
from fga_ros.core.common.tensors import images_to_tensor
from fga_ros.core.models import model_file
from fga_ros.core.training.trainer import CHECKPOINT_NAME, Trainer
from fga_ros.core.training.updates import critic_step_loss

pytestmark = pytest.mark.usefixtures('one_thread')


def _config(**overrides):
    return dataclasses.replace(load_config('tiny'), **overrides)


def _held_out_accuracy(trainer, batch):
    images, actions, labels = batch
    with torch.no_grad():
        _, accuracy = critic_step_loss(trainer.model, images_to_tensor(images, 32),
                                       torch.as_tensor(actions)[:, None],
                                       torch.as_tensor(labels)[:, None])
    return accuracy


def _held_out_batch(env, num_states=40, per_state=8, seed=123):
    """Balanced experiences on scenes the trainer never sees: expert grasps and random ones."""
    rng = np.random.default_rng(seed)
    images, actions, labels = [], [], []
    for image, acts, labs in env.demonstrations(num_states, per_state, rng):
        pos, neg = np.flatnonzero(labs), np.flatnonzero(~labs)
        k = min(len(pos), len(neg))
        for i in np.concatenate([pos[:k], neg[:k]]):
            images.append(image)
            actions.append(acts[i])
            labels.append(labs[i])
    return np.stack(images), np.array(actions), np.array(labels)


GROUPED = {'critic_readout': 'local', 'grasps_per_state': 4, 'critic_actions_per_state': 4}
"""The cpu preset's way of training: local critic, several grasps per state and per batch."""


@pytest.mark.parametrize('variant', [{}, GROUPED], ids=['paper', 'grouped-local'])
def test_short_training_improves_critic_accuracy(tmp_path, variant):
    config = _config(steps=300, prefill_examples=1600, prefill_scenes=80, lr_critic=3e-3,
                     eval_every=0, checkpoint_every=0, **variant)
    batch = _held_out_batch(SimEnvironment(config.shapes, seed=999), num_states=80)
    assert 0.4 < batch[2].mean() < 0.6  # balanced
    trainer = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path)
    before = _held_out_accuracy(trainer, batch)
    trainer.run()
    after = _held_out_accuracy(trainer, batch)
    assert trainer.step == 300
    assert after >= before + 0.1, (before, after)
    assert after >= 0.6, (before, after)


def _state(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize('variant', [{}, GROUPED], ids=['paper', 'grouped-local'])
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, variant):
    config = _config(steps=12, checkpoint_every=6, eval_every=0, **variant)
    straight = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path / 'a')
    straight.run()

    first = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path / 'b')
    first.run(steps=6)  # "killed" after the checkpoint at step 6
    resumed = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path / 'b',
                      resume=True)
    assert resumed.step == 6
    assert len(resumed.replay) == len(first.replay)
    resumed.run()

    assert resumed.step == straight.step == 12
    a, b = _state(straight), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.replay.sizes() == straight.replay.sizes()


def test_resume_with_another_configuration_is_refused(tmp_path):
    config = _config(steps=2, eval_every=0)
    Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path).run()
    other = dataclasses.replace(config, divergence='fkl')
    with pytest.raises(model_file.CheckpointError, match='divergence'):
        Trainer(other, SimEnvironment(config.shapes, seed=0), tmp_path, resume=True)
    # A longer schedule is a legitimate resume.
    longer = dataclasses.replace(config, steps=4)
    assert Trainer(longer, SimEnvironment(config.shapes, seed=0), tmp_path,
                   resume=True).step == 2


def test_corrupt_checkpoint_gives_clear_error_and_keeps_file(tmp_path):
    config = _config(steps=2, eval_every=0)
    Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path).run()
    path = tmp_path / CHECKPOINT_NAME
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(model_file.CheckpointError, match='corrupt or truncated'):
        Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path, resume=True)
    assert path.stat().st_size == len(data) // 2  # nothing was overwritten


@pytest.mark.parametrize('divergence', ['js', 'fkl', 'rkl', 'gan', 'me'])
def test_every_objective_runs_and_exports(tmp_path, divergence):
    config = _config(steps=3, divergence=divergence, eval_every=0)
    trainer = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path)
    stats = trainer.run().stats
    assert np.isfinite(stats.actor_loss) and np.isfinite(stats.critic_loss)
    model, loaded, meta = model_file.load_model(trainer.export())
    assert loaded == config and meta['divergence'] == divergence


def test_warm_start_copies_the_critic_and_starts_a_fresh_actor(tmp_path):
    source = _config(steps=2, eval_every=0)
    trained = Trainer(source, SimEnvironment(source.shapes, seed=0), tmp_path / 'source')
    trained.run()
    model_path = trained.export()
    # the camera view is no part of the critic: it is fitted anew after the prefill
    config = dataclasses.replace(source, actor_head='spatial', divergence='fkl',
                                 camera_view='fitted')
    warm = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path / 'warm',
                   warm_start=model_path)
    fresh = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path / 'fresh')
    src, got, new = _state(trained), _state(warm), _state(fresh)
    critic_keys = [k for k in got if k.startswith(('extractor.', 'critic.'))]
    assert critic_keys and all(torch.equal(got[k], src[k]) for k in critic_keys)
    assert not all(torch.equal(new[k], src[k]) for k in critic_keys)
    assert all(torch.equal(got[k], new[k]) for k in got if k.startswith('actor.'))
    assert torch.equal(got['rectifier.homography'], torch.eye(3))
    warm.run(steps=1)  # and it trains

    other = dataclasses.replace(config, critic_hidden=(8, 8))
    with pytest.raises(model_file.CheckpointError, match=r'critic_hidden: saved \[16, 16\]'):
        Trainer(other, SimEnvironment(config.shapes, seed=0), tmp_path / 'x',
                warm_start=model_path)
    with pytest.raises(ValueError, match='exclude each other'):
        Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path / 'y', resume=True,
                warm_start=model_path)
