"""Crafted-file matrix: every entry point that reads a file refuses every damaged or hostile
file with one clear line (naming the file), no traceback, and never loads it silently.

Entry points: model files (``load_model``, ``Proposer.reload``, the warm-start reader,
``fga propose --checkpoint``, ``fga train --warm-start``), training checkpoints and their
replay memories (``Trainer(resume=True)``, ``fga train --resume``), YAML (``load_config``,
``fga train --preset`` / ``--set``, the preset a ROS parameter file names, the simulator's
data files) and images (``read_image``, ``fga propose --image``). The case count is printed
at the end of the module.
"""

import collections
import os
from pathlib import Path
import shutil

import numpy as np
import pytest
import reliability_craft as craft
import torch

from fga_ros import cli
from fga_ros.core.common.config import config_from_dict, load_config
from fga_ros.core.common.env import SimEnvironment
from fga_ros.core.inference.proposer import Proposer
from fga_ros.core.models.model_file import export_model, load_model
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.training.checkpoint import load_critic_weights
from fga_ros.core.training.trainer import CHECKPOINT_NAME, Trainer
from fga_ros.image_files import read_image
from fga_ros.sim.gripper import load_gripper_config
from fga_ros.sim.render import load_camera
from fga_ros.sim.world import load_world

pytestmark = pytest.mark.usefixtures('one_thread')

TALLY = collections.Counter()
"""Outcomes of the matrix: 'refused' (one clear line) per entry kind; failures stay 0."""
REFUSALS = (ValueError, FileNotFoundError)
"""What a refusal raises in the Python API (every package error derives from ValueError)."""


@pytest.fixture(scope='module', autouse=True)
def summary(request):
    yield
    total = sum(TALLY.values())
    line = (f'crafted-file matrix: {total} cases refused with one clear line, 0 tracebacks, '
            f'0 silent loads (' + ', '.join(f'{k} {v}' for k, v in sorted(TALLY.items()))
            + ')')
    request.config.fga_summary = getattr(request.config, 'fga_summary', []) + [line]
    print(line)


def check_line(message, path, kind):
    """One line, short, naming ``path``, without a traceback or torch's unsafe advice."""
    assert '\n' not in message.strip(), message
    assert len(message) < 1000, message[:300]
    assert 'Traceback' not in message
    assert 'weights_only=False' not in message and 'weights_only' not in message, message
    if path is not None:
        assert Path(path).name in message, (Path(path).name, message)
    TALLY[kind] += 1
    if os.environ.get('FGA_RELIABILITY_LOG'):  # for reviewing every message by eye
        with open(os.environ['FGA_RELIABILITY_LOG'], 'a', encoding='utf-8') as log:
            log.write(f'{kind} | {message}\n')


def refused(call, path, kind):
    """``call()`` must raise a refusal whose message is one clear line naming ``path``."""
    with pytest.raises(REFUSALS) as info:
        call()
    check_line(str(info.value), path, kind)
    return str(info.value)


def cli_refused(argv, capsys, path, kind):
    """``fga argv`` must exit with status 2 and one ``fga <command>: error:`` line."""
    capsys.readouterr()
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_USAGE, (status, out[-500:], err[-500:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'fga {argv[0]}: error: '), err[-800:]
    check_line(lines[0], path, kind)


# -- model files -----------------------------------------------------------------------------


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    """A valid tiny model file and every crafted model file, in one directory."""
    directory = tmp_path_factory.mktemp('models')
    config = craft.tiny_config()
    torch.manual_seed(0)
    good = directory / 'good.pt'
    export_model(good, ActorCritic(config), config, {'step': 0})
    payload = craft.model_payload(good)
    files = {'good': good}
    for name, crafted in craft.model_payload_cases(payload).items():
        files[name] = craft.write_torch(directory / f'{name}.pt', crafted)
    files.update(craft.model_byte_cases(good, directory))
    files['missing_file'] = directory / 'no_such_model.pt'
    (directory / 'a_directory.pt').mkdir()
    files['a_directory'] = directory / 'a_directory.pt'
    unsigned = dict(payload)
    del unsigned['digest']
    files['digest_missing'] = craft.write_torch(directory / 'digest_missing.pt', unsigned,
                                                sign=False)
    files['digest_wrong'] = craft.write_torch(directory / 'digest_wrong.pt',
                                              dict(payload, digest='0' * 64), sign=False)
    files['digest_not_string'] = craft.write_torch(directory / 'digest_not_string.pt',
                                                   dict(payload, digest=12), sign=False)
    return files


MODEL_CASES = sorted(set(craft.MODEL_PAYLOAD_CASES) | set(craft.MODEL_BYTE_CASES)
                     | {'missing_file', 'a_directory', 'digest_missing', 'digest_wrong',
                        'digest_not_string'})


@pytest.fixture(scope='module')
def live_proposer(model_dir):
    return Proposer.from_checkpoint(model_dir['good'], seed=0)


def test_valid_model_loads_everywhere(model_dir, live_proposer, capsys, tmp_path):
    model, config, meta = load_model(model_dir['good'])
    assert meta == {'step': 0} and config.image_size == 32
    live_proposer.reload(model_dir['good'])
    assert load_critic_weights(model_dir['good'], config)
    image = np.zeros((128, 128, 3), np.uint8)
    assert len(live_proposer.propose(image, num_grasps=3, seed=1)) == 3


@pytest.mark.parametrize('case', MODEL_CASES)
def test_load_model_refuses(model_dir, case):
    refused(lambda: load_model(model_dir[case]), model_dir[case], 'model:load_model')


@pytest.mark.parametrize('case', MODEL_CASES)
def test_reload_refuses_and_keeps_the_model(model_dir, live_proposer, case):
    before = live_proposer.snapshot()
    refused(lambda: live_proposer.reload(model_dir[case]), model_dir[case], 'model:reload')
    assert live_proposer.snapshot() is before


@pytest.mark.parametrize('case', MODEL_CASES)
def test_warm_start_reader_refuses(model_dir, case):
    config = craft.tiny_config()
    refused(lambda: load_critic_weights(model_dir[case], config), model_dir[case],
            'model:warm_start')


@pytest.mark.parametrize('case', MODEL_CASES)
def test_cli_propose_refuses(model_dir, case, capsys):
    cli_refused(['propose', '--checkpoint', model_dir[case], '--out', '', '--num', '2'],
                capsys, model_dir[case], 'model:fga propose')


WARM_CLI_CASES = [c for c in MODEL_CASES if c.startswith(('weight_', 'model_', 'digest_',
                                                          'bitflip_', 'truncated_', 'config_'))]


@pytest.mark.parametrize('case', WARM_CLI_CASES)
def test_cli_warm_start_refuses(model_dir, case, capsys, tmp_path):
    out = tmp_path / 'run'
    cli_refused(['train', '--preset', 'tiny', '--out', out, '--warm-start', model_dir[case],
                 '--no-progress'], capsys, model_dir[case], 'model:fga train --warm-start')
    assert not (out / CHECKPOINT_NAME).exists()


# -- training checkpoints and replay memories ------------------------------------------------


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory):
    """A tiny run directory after 2 training steps: checkpoint + replay memory."""
    directory = tmp_path_factory.mktemp('run')
    config = load_config('tiny', {'steps': 4, 'prefill_examples': 40, 'prefill_scenes': 4})
    env = SimEnvironment(config.shapes, config.distortion, seed=config.seed)
    trainer = Trainer(config, env, directory)
    trainer.prefill()
    trainer.train_step()
    trainer.train_step()
    trainer.save()
    return directory, config


def _replay_file(directory):
    (path,) = directory.glob(f'{CHECKPOINT_NAME}.replay-*.npz')
    return path


def _copy_run(source, target):
    shutil.copytree(source, target)
    return target


CHECKPOINT_CASES = sorted(craft.CHECKPOINT_PAYLOAD_CASES + craft.REPLAY_STATE_CASES
                          + craft.NPZ_BYTE_CASES + ('checkpoint_bitflip', 'checkpoint_truncated'))


@pytest.fixture(scope='module')
def crafted_runs(trained_run, tmp_path_factory):
    """``{case: run directory}`` with one crafted checkpoint or replay memory each."""
    source, config = trained_run
    root = tmp_path_factory.mktemp('crafted_runs')
    good = torch.load(source / CHECKPOINT_NAME, weights_only=True)
    replay_name = _replay_file(source).name
    with np.load(_replay_file(source)) as arrays:
        replay = {k: arrays[k] for k in arrays.files}
    runs = {}
    for name, payload in craft.checkpoint_payload_cases(good).items():
        run = _copy_run(source, root / name)
        craft.write_torch(run / CHECKPOINT_NAME, payload)
        runs[name] = run
    for name, state in craft.replay_state_cases(replay).items():
        run = _copy_run(source, root / name)
        np.savez(run / replay_name, **state)
        _resign_replay(run, good)
        runs[name] = run
    for name, data in craft.npz_byte_cases(_replay_file(source), root).items():
        run = _copy_run(source, root / name)
        (run / replay_name).write_bytes(data)
        if name != 'npz_bitflip':  # the bit flip must be caught by the stored digest
            _resign_replay(run, good)
        runs[name] = run
    run = _copy_run(source, root / 'checkpoint_bitflip')
    spans = craft.record_offsets(run / CHECKPOINT_NAME, '/data/')
    start, size = max(spans, key=lambda s: s[1])
    craft.flip_byte(run / CHECKPOINT_NAME, start + size // 3, run / CHECKPOINT_NAME)
    runs['checkpoint_bitflip'] = run
    run = _copy_run(source, root / 'checkpoint_truncated')
    data = (run / CHECKPOINT_NAME).read_bytes()
    (run / CHECKPOINT_NAME).write_bytes(data[:len(data) * 2 // 3])
    runs['checkpoint_truncated'] = run
    return runs, config


def _resign_replay(run, good):
    """Store the digest of the (crafted) replay file in the checkpoint, so that the checks
    behind the digest are the ones that must refuse it."""
    from fga_ros.core.common.integrity import file_digest
    payload = dict(good, replay_digest=file_digest(_replay_file(run)))
    craft.write_torch(run / CHECKPOINT_NAME, payload)


def test_valid_checkpoint_resumes(trained_run, tmp_path):
    source, config = trained_run
    run = _copy_run(source, tmp_path / 'run')
    env = SimEnvironment(config.shapes, config.distortion, seed=config.seed)
    trainer = Trainer(config, env, run, resume=True)
    assert trainer.step == 2 and trainer.prefilled


def _named_path(run, case):
    """The file the refusal must name: the replay memory for a damaged replay memory."""
    if case.startswith(('replay_', 'npz_')) and not case.startswith('replay_name') \
            and case != 'replay_absent':
        return _replay_file(run)
    return run / CHECKPOINT_NAME


@pytest.mark.parametrize('case', CHECKPOINT_CASES)
def test_resume_api_refuses(crafted_runs, case, tmp_path):
    runs, config = crafted_runs
    run = _copy_run(runs[case], tmp_path / 'run')
    env = SimEnvironment(config.shapes, config.distortion, seed=config.seed)
    path = _named_path(run, case)
    refused(lambda: Trainer(config, env, run, resume=True), path, 'checkpoint:Trainer resume')


@pytest.mark.parametrize('case', CHECKPOINT_CASES)
def test_cli_resume_refuses(crafted_runs, case, capsys, tmp_path):
    runs, config = crafted_runs
    run = _copy_run(runs[case], tmp_path / 'run')
    # the CLI compares the run's configuration first and names the changed field instead
    path = None if case == 'config_other_divergence' else _named_path(run, case)
    cli_refused(['train', '--preset', 'tiny', '--out', run, '--resume', '--no-progress',
                 '--steps', config.steps, '--set', f'prefill_examples={config.prefill_examples}',
                 '--set', f'prefill_scenes={config.prefill_scenes}'], capsys, path,
                'checkpoint:fga train --resume')


# -- YAML ------------------------------------------------------------------------------------


YAML_CASES = sorted(craft.yaml_cases())


@pytest.fixture(scope='module')
def yaml_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp('yaml')
    files = {}
    for name, data in {**craft.yaml_cases(), **craft.training_yaml_cases()}.items():
        files[name] = directory / f'{name}.yaml'
        files[name].write_bytes(data)
    return files


@pytest.mark.parametrize('case', YAML_CASES)
def test_load_config_refuses(yaml_dir, case):
    refused(lambda: load_config(yaml_dir[case]), yaml_dir[case], 'yaml:load_config')


@pytest.mark.parametrize('case', YAML_CASES + sorted(craft.training_yaml_cases()))
def test_cli_preset_refuses(yaml_dir, case, capsys, tmp_path):
    cli_refused(['train', '--preset', yaml_dir[case], '--out', tmp_path / 'run',
                 '--no-progress'], capsys, yaml_dir[case], 'yaml:fga train --preset')


@pytest.mark.parametrize('case', YAML_CASES)
def test_ros_parameter_preset_refuses(yaml_dir, case):
    """trainer_node reads its ``preset`` parameter with ``load_config`` and applies the
    ``config.*`` parameters with ``config_from_dict``; both refuse in one line."""
    def start():
        base = load_config(str(yaml_dir[case]))
        return config_from_dict({'steps': 5}, base=base, source='trainer parameters')
    refused(start, yaml_dir[case], 'yaml:ROS preset parameter')


OVERRIDE_CASES = sorted(craft.override_cases())


@pytest.mark.parametrize('case', OVERRIDE_CASES)
def test_cli_set_refuses(case, capsys, tmp_path):
    item = craft.override_cases()[case]
    cli_refused(['train', '--preset', 'tiny', '--out', tmp_path / 'run', '--set', item,
                 '--no-progress'], capsys, None, 'yaml:fga train --set')


@pytest.mark.parametrize('case', OVERRIDE_CASES)
def test_ros_config_parameters_refuse(case):
    """A ``config.<field>`` parameter reaches the core as a value: the same checks apply."""
    from fga_ros.core.common.config import parse_overrides
    item = craft.override_cases()[case]

    def apply():
        return config_from_dict(parse_overrides([item]), base=load_config('tiny'),
                                source='trainer parameters')
    refused(apply, None, 'yaml:ROS config parameters')


SIM_LOADERS = {'shapes': load_world, 'camera': load_camera, 'gripper': load_gripper_config}
SIM_CASES = sorted(craft.sim_yaml_cases())


@pytest.mark.parametrize('loader', sorted(SIM_LOADERS))
@pytest.mark.parametrize('case', SIM_CASES)
def test_sim_data_refuses(case, loader, tmp_path):
    path = tmp_path / f'{loader}.yaml'
    path.write_bytes(craft.sim_yaml_cases()[case])
    refused(lambda: SIM_LOADERS[loader](str(path)), path, f'yaml:sim {loader}')


# -- images ----------------------------------------------------------------------------------


IMAGE_CASES = sorted(craft.image_cases())


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp('images')
    files = {}
    for name, data in craft.image_cases().items():
        files[name] = directory / f'{name}.png'
        files[name].write_bytes(data)
    return files


@pytest.mark.parametrize('case', [c for c in IMAGE_CASES if c != 'tiny_png_wrong_size'])
def test_read_image_refuses(image_dir, case):
    refused(lambda: read_image(image_dir[case]), image_dir[case], 'image:read_image')


@pytest.mark.parametrize('case', IMAGE_CASES)
def test_cli_propose_image_refuses(image_dir, case, capsys):
    path = None if case == 'tiny_png_wrong_size' else image_dir[case]
    cli_refused(['propose', '--image', image_dir[case], '--out', '', '--num', '2'], capsys,
                path, 'image:fga propose --image')
