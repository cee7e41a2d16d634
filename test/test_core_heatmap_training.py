"""Training, saving, resuming and serving the heat-map baselines (appendix D.1)."""

import dataclasses

import numpy as np
import pytest
import torch

from fga_ros import cli
from fga_ros.core.common.config import load_config
from fga_ros.core.common.env import SimEnvironment
from fga_ros.core.common.tensors import images_to_tensor
from fga_ros.core.inference.proposer import Proposer
from fga_ros.core.models import model_file
from fga_ros.core.models.heatmap_nets import HeatmapModel
from fga_ros.core.training.run_record import read_run
from fga_ros.core.training.trainer import CHECKPOINT_NAME, MODEL_NAME, Trainer
from fga_ros.core.training.updates import heatmap_step_loss
from fga_ros.sim import make_scene, render

pytestmark = pytest.mark.usefixtures('one_thread')
METHODS = ('heatmap', 'stacked-heatmap')


def _config(method, **overrides):
    values = dict(method=method, eval_every=0, checkpoint_every=0, steps=4)
    values.update(overrides)
    return dataclasses.replace(load_config('tiny'), **values)


def _fixed_batch(trainer, size=64, seed=7):
    batch = trainer.replay.sample_grouped(size, 1, np.random.default_rng(seed))
    return (images_to_tensor(batch.images, trainer.config.image_size),
            torch.as_tensor(batch.actions), torch.as_tensor(batch.labels))


def _loss(trainer, batch):
    with torch.no_grad():
        return heatmap_step_loss(trainer.model, *batch)[0].item()


@pytest.mark.parametrize('method', METHODS)
def test_critic_steps_reduce_the_loss(tmp_path, method):
    """100 critic steps of the tiny preset on its replay prefill: the class-balanced
    cross-entropy on 64 replayed grasps falls well below its start (~ log 2)."""
    config = _config(method, lr_critic=2e-3)
    trainer = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path)
    trainer.prefill()
    batch = _fixed_batch(trainer)
    before = _loss(trainer, batch)
    for _ in range(100):
        trainer.critic_update()
    after = _loss(trainer, batch)
    assert after < 0.85 * before, (before, after)


@pytest.mark.parametrize('method', METHODS)
def test_training_runs_end_to_end_and_resumes_exactly(tmp_path, method):
    config = _config(method)
    trainer = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path)
    assert trainer.opt_actor is None and set(trainer.optimizers()) == {'critic'}
    result = trainer.run(steps=2)
    assert result.step == 2 and np.isnan(result.stats.actor_loss)
    assert np.isfinite(result.stats.critic_loss)
    resumed = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path, resume=True)
    assert resumed.step == 2
    for ours, theirs in zip(trainer.model.state_dict().values(),
                            resumed.model.state_dict().values()):
        assert torch.equal(ours, theirs)
    trainer.run(steps=4)
    resumed.run(steps=4)
    for ours, theirs in zip(trainer.model.state_dict().values(),
                            resumed.model.state_dict().values()):
        assert torch.equal(ours, theirs)


def test_heatmap_runs_have_no_actor_to_update_or_warm_start(tmp_path):
    config = _config('heatmap')
    trainer = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path / 'a')
    with pytest.raises(ValueError, match='no actor'):
        trainer.actor_update()
    with pytest.raises(ValueError, match='heatmap has none'):
        Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path / 'b',
                warm_start=tmp_path / 'whatever.pt')


@pytest.mark.parametrize('method', METHODS)
def test_save_load_round_trip(tmp_path, method):
    config = _config(method)
    trainer = Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path)
    trainer.run(steps=1)
    model, loaded_config, meta = model_file.load_model(tmp_path / MODEL_NAME)
    assert isinstance(model, HeatmapModel) and loaded_config == config
    assert meta['method'] == method and 'divergence' not in meta
    images = images_to_tensor(render(make_scene('H', 3)), config.image_size)
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(model.features(images).trunk, trainer.model.features(images).trunk)
    from_checkpoint, _, _ = model_file.load_model(tmp_path / CHECKPOINT_NAME)
    assert isinstance(from_checkpoint, HeatmapModel)


def test_a_file_whose_weights_do_not_fit_its_method_is_refused(tmp_path):
    config = _config('heatmap')
    model = HeatmapModel(config)
    path = tmp_path / 'm.pt'
    model_file.export_model(path, model, dataclasses.replace(config, method='stacked-heatmap'))
    with pytest.raises(model_file.CheckpointError, match='network.output.weight has shape'):
        model_file.load_model(path)
    model_file.export_model(path, model, dataclasses.replace(config, method='actor-critic'))
    with pytest.raises(model_file.CheckpointError, match='missing'):
        model_file.load_model(path)


def test_a_resume_cannot_change_the_method(tmp_path):
    config = _config('heatmap')
    Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path).run(steps=1)
    other = dataclasses.replace(config, method='stacked-heatmap')
    with pytest.raises(model_file.CheckpointError, match='method'):
        Trainer(other, SimEnvironment(config.shapes, seed=0), tmp_path, resume=True)


@pytest.mark.parametrize('method', METHODS)
def test_the_proposer_serves_a_heatmap_model(tmp_path, method):
    config = _config(method)
    Trainer(config, SimEnvironment(config.shapes, seed=0), tmp_path).run(steps=1)
    proposer = Proposer.from_checkpoint(tmp_path / MODEL_NAME, seed=0)
    image = render(make_scene('T', 1))
    actions, log_density = proposer.sample_actions(image, 64)
    assert actions.shape == (64, 3) and np.all(np.isfinite(log_density))
    # eq. 14 draws cell centres: angles are multiples of pi / heatmap_angles
    bins = actions[:, 2] * config.heatmap_angles / np.pi
    assert np.allclose(bins, np.round(bins), atol=1e-4)
    proposal = proposer.propose(image, num_grasps=3, floor=0.0)
    assert len(proposal.actions) == 3


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_fga_train_method_option(capsys, tmp_path):
    out = tmp_path / 'run'
    code, stdout, _ = _run(capsys, 'train', '--preset', 'tiny', '--method', 'stacked-heatmap',
                           '--out', out, '--steps', 1, '--no-progress', '--set', 'eval_every=0')
    assert code == 0 and 'stacked-heatmap baseline' in stdout
    assert read_run(out).config.method == 'stacked-heatmap'
    code, _, err = _run(capsys, 'train', '--preset', 'tiny', '--out', tmp_path / 'x',
                        '--set', 'method=heat-map')
    assert code == cli.EXIT_USAGE and 'method must be one of' in err and 'Traceback' not in err
