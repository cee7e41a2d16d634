"""Checkpoints: atomic writes, weights_only loading, replay files, clear errors, export."""

import os
import stat

import numpy as np
import pytest
import torch

import fga_ros
from fga_ros.core.common.config import config_to_dict, load_config
from fga_ros.core.common.integrity import IntegrityError
from fga_ros.core.common.tensors import images_to_tensor
from fga_ros.core.models.model_file import (
    FORMAT,
    MAX_MODEL_BYTES,
    CheckpointError,
    config_of,
    export_model,
    load_model,
    sign,
)
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.training.checkpoint import (
    load_checkpoint,
    load_replay,
    load_replay_state,
    replay_path,
    save_checkpoint,
    save_replay,
)
from fga_ros.core.training.replay import ReplayMemory
from fga_ros.file_writes import WriteError, atomic_write


@pytest.fixture(scope='module')
def config(tiny_config):
    return tiny_config


def _payload(config, step=5):
    torch.manual_seed(step)
    model = ActorCritic(config)
    optim = torch.optim.Adam(model.critic_parameters(), lr=1e-3)
    model.critic.head.tail[-1].bias.sum().backward()
    optim.step()
    rng = np.random.default_rng(7)
    rng.random(3)
    return model, {
        'config': config_to_dict(config), 'model': model.state_dict(),
        'optim': {'critic': optim.state_dict()}, 'step': step,
        'rng': {'numpy': rng.bit_generator.state, 'torch': torch.get_rng_state()},
    }


def _replay(config):
    memory = ReplayMemory(8, 8, config.image_size)
    image = np.full((config.image_size, config.image_size, 3), 40, np.uint8)
    memory.add(image, np.array([[30.0, 40.0, 0.1], [50.0, 60.0, 1.0]]), [True, False])
    return memory


class _Unsaveable:
    def __reduce__(self):
        raise RuntimeError('cannot be saved')


def _leftovers(directory):
    return [p.name for p in directory.iterdir() if p.name.endswith('.tmp')]


def test_round_trip_restores_everything(tmp_path, config):
    model, payload = _payload(config)
    path = tmp_path / 'run' / 'checkpoint.pt'
    save_checkpoint(path, payload)
    loaded = load_checkpoint(path)
    assert loaded['format'] == FORMAT and loaded['step'] == 5
    assert loaded['version'] == fga_ros.__version__ and loaded['torch'] == torch.__version__
    assert 'replay' not in loaded and load_replay_state(path, loaded) is None
    restored = ActorCritic(config)
    restored.load_state_dict(loaded['model'])
    for a, b in zip(model.state_dict().values(), restored.state_dict().values()):
        torch.testing.assert_close(a, b)
    rng = np.random.default_rng()
    rng.bit_generator.state = loaded['rng']['numpy']
    expected = np.random.default_rng(7)
    expected.random(3)
    assert rng.random() == expected.random()
    assert torch.equal(loaded['rng']['torch'], payload['rng']['torch'])
    optim = torch.optim.Adam(restored.critic_parameters(), lr=1e-3)
    optim.load_state_dict(loaded['optim']['critic'])
    assert _leftovers(path.parent) == []


def test_replay_file_follows_the_checkpoint(tmp_path, config):
    _, payload = _payload(config)
    path = tmp_path / 'checkpoint.pt'
    memory = _replay(config)
    first = save_checkpoint(path, payload, memory.state_dict())
    assert first == replay_path(path, 5) and first.is_file()
    restored = ReplayMemory(8, 8, config.image_size)
    restored.load_state_dict(load_replay_state(path, load_checkpoint(path)))
    assert restored.sizes() == memory.sizes()
    second = save_checkpoint(path, dict(payload, step=9), memory.state_dict())
    assert not first.exists() and second.is_file()  # the stale replay file is gone
    assert load_checkpoint(path)['replay'] == second.name
    second.unlink()
    with pytest.raises(CheckpointError, match='replay memory .* is missing'):
        load_replay_state(path, load_checkpoint(path))


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, config, monkeypatch):
    _, payload = _payload(config)
    memory = _replay(config)
    path = tmp_path / 'checkpoint.pt'
    save_checkpoint(path, payload, memory.state_dict())
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir())
    with pytest.raises(IntegrityError, match='unsupported type _Unsaveable'):
        save_checkpoint(path, dict(payload, step=6, model=_Unsaveable()), memory.state_dict())
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir()) == before

    def full_disk(obj, stream, *args, **kwargs):  # what torch raises on ENOSPC
        stream.write(b'partial')
        raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0')
    monkeypatch.setattr(torch, 'save', full_disk)
    with pytest.raises(WriteError, match=f'cannot write {path}: disk full'):
        save_checkpoint(path, dict(payload, step=7), memory.state_dict())
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir()) == before
    assert _leftovers(tmp_path) == []


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / 'nope.pt'
    with pytest.raises(FileNotFoundError, match='nope.pt'):
        load_checkpoint(missing)
    with pytest.raises(FileNotFoundError, match='nope.pt'):
        load_model(missing)
    with pytest.raises(FileNotFoundError, match='nope.npz'):
        load_replay(tmp_path / 'nope.npz')


def test_corrupt_and_truncated_files_raise_checkpoint_error(tmp_path, config):
    _, payload = _payload(config)
    path = tmp_path / 'checkpoint.pt'
    save_checkpoint(path, payload)
    data = path.read_bytes()
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(data[:len(data) // 2])
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a checkpoint at all')
    for bad in (truncated, garbage):
        with pytest.raises(CheckpointError, match=bad.name):
            load_checkpoint(bad)
        assert isinstance(CheckpointError('x'), ValueError)
    npz = tmp_path / 'bad.npz'
    npz.write_bytes(b'PK\x03\x04 broken')
    with pytest.raises(CheckpointError, match='bad.npz'):
        load_replay(npz)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / 'evil.pt'
    torch.save({'format': FORMAT, 'config': {}, 'model': {}, 'step': 0,
                'obj': np.random.default_rng()}, path)
    with pytest.raises(CheckpointError, match='evil.pt'):
        load_checkpoint(path)


def test_missing_keys_and_wrong_format(tmp_path, config):
    _, payload = _payload(config)
    path = tmp_path / 'partial.pt'
    torch.save({k: v for k, v in dict(payload, format=FORMAT).items() if k != 'model'}, path)
    with pytest.raises(CheckpointError, match='partial.pt: has no integrity digest'):
        load_checkpoint(path)
    torch.save(sign({k: v for k, v in dict(payload, format=FORMAT).items() if k != 'model'}),
               path)
    with pytest.raises(CheckpointError, match='lacks model'):
        load_checkpoint(path)
    torch.save(sign(dict(payload, format='other/1')), path)
    with pytest.raises(CheckpointError, match="format 'other/1'"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match='lacks model'):
        save_checkpoint(path, {'config': {}, 'step': 1})


def test_unusable_stored_config_is_reported(tmp_path, config):
    _, payload = _payload(config)
    path = tmp_path / 'checkpoint.pt'
    save_checkpoint(path, payload)
    loaded = load_checkpoint(path)
    assert config_of(path, loaded) == config
    loaded['config']['divergence'] = 'bogus'
    with pytest.raises(CheckpointError, match='stored config: divergence must be one of'):
        config_of(path, loaded)


def test_export_and_load_model(tmp_path, config):
    model, payload = _payload(config)
    path = tmp_path / 'model.pt'
    size = export_model(path, model, config, {'step': 5, 'accuracy': 0.5})
    assert size == path.stat().st_size
    loaded, loaded_config, meta = load_model(path)
    assert loaded_config == config and meta == {'step': 5, 'accuracy': 0.5}
    assert not loaded.training
    images = images_to_tensor(np.zeros((1, 32, 32, 3), np.uint8), 32)
    with torch.no_grad():
        torch.testing.assert_close(model.features(images), loaded.features(images))
    save_checkpoint(tmp_path / 'ckpt.pt', payload)
    assert load_model(tmp_path / 'ckpt.pt')[2] == {'step': 5}
    with pytest.raises(ValueError, match='more than the 100 allowed'):
        export_model(tmp_path / 'big.pt', model, config, max_bytes=100)
    assert not (tmp_path / 'big.pt').exists()


def test_weights_that_do_not_fit_the_config(tmp_path, config):
    model, _ = _payload(config)
    path = tmp_path / 'model.pt'
    export_model(path, model, config)
    data = torch.load(path, weights_only=True)
    data['config']['embed_channels'] = 16
    torch.save(data, path)
    with pytest.raises(CheckpointError, match='model.pt: integrity check failed'):
        load_model(path)
    torch.save(sign(data), path)
    with pytest.raises(CheckpointError, match='has shape .*, expected'):
        load_model(path)


def test_cpu_preset_model_fits_the_bundle_limit(tmp_path):
    config = load_config('cpu')
    size = export_model(tmp_path / 'model.pt', ActorCritic(config), config,
                        max_bytes=MAX_MODEL_BYTES)
    assert size <= 20 * 2**20


def test_save_replay_round_trip(tmp_path, config):
    state = _replay(config).state_dict()
    save_replay(tmp_path / 'r.npz', state)
    loaded = load_replay(tmp_path / 'r.npz')
    assert loaded.keys() == state.keys()
    for key in state:
        np.testing.assert_array_equal(loaded[key], state[key])


def test_written_files_are_readable_by_others_as_umask_allows(tmp_path):
    """Not the 0600 of a temporary file: an installed model must be readable by every user."""
    path = tmp_path / 'file.bin'
    atomic_write(path, lambda stream: stream.write(b'x'))
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_legacy_format_is_refused_then_upgraded(tmp_path, config, capsys):
    from fga_ros.core.models import model_file
    model, _ = _payload(config)
    path = tmp_path / 'old.pt'
    torch.save({'format': 'fga_ros.model/1', 'version': '0', 'torch': '0',
                'config': config_to_dict(config), 'model': model.state_dict(),
                'meta': {'step': 3}}, path)
    with pytest.raises(CheckpointError, match='old.pt: format fga_ros.model/1 has no '
                                              'integrity digest.*model_file upgrade'):
        load_model(path)
    assert model_file.main(['upgrade', str(path)]) == 0
    loaded, _, meta = load_model(path)
    assert meta == {'step': 3}
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                 model.state_dict().values()))
    assert model_file.main(['upgrade', str(path)]) == 2  # already current: refused
    assert 'not a format /1' in capsys.readouterr().err


def test_legacy_checkpoint_upgrade_adds_its_replay_digest(tmp_path, config):
    from fga_ros.core.models import model_file
    _, payload = _payload(config)
    path = tmp_path / 'checkpoint.pt'
    save_checkpoint(path, payload, _replay(config).state_dict())
    legacy = torch.load(path, weights_only=True)
    for key in ('digest', 'replay_digest'):
        del legacy[key]
    torch.save(dict(legacy, format='fga_ros.checkpoint/1'), path)
    with pytest.raises(CheckpointError, match='no integrity digest'):
        load_checkpoint(path)
    model_file.upgrade_file(path)
    assert load_replay_state(path, load_checkpoint(path)) is not None
