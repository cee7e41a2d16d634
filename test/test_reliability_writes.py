"""Write failures: one clear line naming the path and the cause, the last good checkpoint
kept, no temporary file left; writability checked before training; leftovers of killed
writes removed at the next start.

A full disk is a real 1 MB tmpfs where this process may mount one (root on Linux), and an
injected ENOSPC everywhere; a read-only run directory is a tmpfs remounted read-only, or a
chmod 555 directory for an ordinary user.
"""

import errno
import os
from pathlib import Path
import shutil
import subprocess

import numpy as np
import pytest

from fga_ros import cli, file_writes
from fga_ros.core.common.config import load_config
from fga_ros.core.common.env import SimEnvironment
from fga_ros.core.models.model_file import export_model, load_model
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.training import checkpoint as ckpt
from fga_ros.core.training.trainer import CHECKPOINT_NAME, Trainer
from fga_ros.file_writes import WriteError, atomic_write, check_writable, temporaries

pytestmark = pytest.mark.usefixtures('one_thread')

SMALL = {'steps': 4, 'prefill_examples': 40, 'prefill_scenes': 4, 'checkpoint_every': 1,
         'eval_every': 0}


def _config():
    return load_config('tiny', SMALL)


def _trainer(directory, resume=False):
    config = _config()
    env = SimEnvironment(config.shapes, config.distortion, seed=config.seed)
    return Trainer(config, env, directory, resume=resume)


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in Path(directory).iterdir() if p.is_file()}


def _mount(target, options):
    if os.geteuid() != 0 or shutil.which('mount') is None:
        return False
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(target)],
                            capture_output=True)
    return result.returncode == 0


def _umount(target):
    subprocess.run(['umount', '-l', str(target)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs (skipped where it cannot be mounted)."""
    target = tmp_path / 'disk'
    target.mkdir()
    if not _mount(target, 'size=1m'):
        pytest.skip('cannot mount a tmpfs here (needs root); the injected ENOSPC tests cover '
                    'the same paths')
    yield target
    _umount(target)


@pytest.fixture
def read_only_dir(tmp_path):
    """(directory, make_read_only) where the second makes the first read-only."""
    target = tmp_path / 'ro'
    target.mkdir()
    mounted = _mount(target, 'size=4m')

    def make_read_only():
        if mounted:
            done = subprocess.run(['mount', '-o', 'remount,ro', str(target)],
                                  capture_output=True)
            if done.returncode != 0:  # busy: a process holds a file open for writing
                pytest.skip(f'cannot remount read-only: {done.stderr.decode().strip()}')
        else:
            os.chmod(target, 0o555)
        probe = target / '.probe'
        try:
            probe.write_bytes(b'x')
        except OSError:
            return
        probe.unlink()
        pytest.skip('cannot make a directory read-only here')
    yield target, make_read_only
    if mounted:
        _umount(target)
    else:
        os.chmod(target, 0o755)


def _fill(directory, keep_free):
    """Fill ``directory``'s file system to ``keep_free`` bytes of free space."""
    free = file_writes.free_bytes(directory)
    with open(directory / 'filler', 'wb') as stream:
        stream.write(bytes(max(0, free - keep_free)))


# -- messages and clean-up of one write ------------------------------------------------------


@pytest.mark.parametrize('code, cause', [(errno.ENOSPC, 'disk full'),
                                         (errno.EACCES, 'permission denied'),
                                         (errno.EROFS, 'read-only file system'),
                                         (errno.EDQUOT, 'disk quota exceeded')])
def test_injected_errors_name_path_and_cause(tmp_path, monkeypatch, code, cause):
    path = tmp_path / 'out' / 'file.bin'
    atomic_write(path, lambda s: s.write(b'old'))

    def failing(stream):
        stream.write(b'partial')
        raise OSError(code, os.strerror(code))
    with pytest.raises(WriteError) as info:
        atomic_write(path, failing)
    assert str(info.value).startswith(f'cannot write {path}: {cause}')
    assert '\n' not in str(info.value)
    assert path.read_bytes() == b'old' and temporaries(path.parent) == []


def test_torch_enforce_failure_reads_as_disk_full(tmp_path):
    error = RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 1 vs 2')
    assert file_writes.cause_of(error) == 'disk full'
    assert str(file_writes.write_error(tmp_path / 'x.pt', error)).startswith(
        f'cannot write {tmp_path / "x.pt"}: disk full (')


def test_every_writer_reports_a_full_disk(tmp_path, monkeypatch):
    """Models, figures, evaluation records, text files: one WriteError each, nothing left."""
    config = _config()
    real_fsync = os.fsync

    def no_space(fd):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(os, 'fsync', no_space)
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    figure = plt.figure()
    writers = {
        'model.pt': lambda p: export_model(p, ActorCritic(config), config),
        'figure.png': lambda p: file_writes.save_figure(figure, p),
        'metrics.json': lambda p: file_writes.write_text(p, '{}'),
        'eval.jsonl': lambda p: file_writes.append_line(p, '{}'),
    }
    for name, write in writers.items():
        with pytest.raises(WriteError, match=f'cannot write {tmp_path / name}: disk full'):
            write(tmp_path / name)
    plt.close(figure)
    monkeypatch.setattr(os, 'fsync', real_fsync)
    assert temporaries(tmp_path) == []
    assert not (tmp_path / 'model.pt').exists() and not (tmp_path / 'figure.png').exists()


def test_check_writable(tmp_path):
    assert check_writable(tmp_path / 'new' / 'run') == tmp_path / 'new' / 'run'
    assert list((tmp_path / 'new' / 'run').iterdir()) == []
    (tmp_path / 'file').write_text('x')
    with pytest.raises(WriteError, match='not a directory'):
        check_writable(tmp_path / 'file')
    with pytest.raises(WriteError, match='disk full'):
        check_writable(tmp_path, min_free=2 ** 62)


# -- training ----------------------------------------------------------------------------------


def test_checkpoint_write_error_keeps_the_last_good_one(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    trainer.prefill()
    trainer.train_step()
    trainer.save()
    before = _snapshot(tmp_path)
    trainer.train_step()
    calls = []
    real_save = ckpt.torch.save

    def full_disk(obj, stream, *args, **kwargs):
        calls.append(1)
        stream.write(b'some bytes')
        raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 8 vs 0')
    monkeypatch.setattr(ckpt.torch, 'save', full_disk)
    with pytest.raises(WriteError, match=f'cannot write {tmp_path / CHECKPOINT_NAME}: disk '
                                         f'full'):
        trainer.save()
    monkeypatch.setattr(ckpt.torch, 'save', real_save)
    assert calls and _snapshot(tmp_path) == before  # no orphan replay file, no temp file
    assert _trainer(tmp_path, resume=True).step == 1


def test_full_disk_during_training(small_disk, capsys):
    """A real full file system: the run stops with one line, the last checkpoint resumes."""
    run = small_disk / 'run'
    trainer = _trainer(run)
    trainer.prefill()
    trainer.train_step()
    trainer.save()
    good = _snapshot(run)
    _fill(small_disk, keep_free=8 * 1024)
    trainer.train_step()
    with pytest.raises(WriteError, match='disk full'):
        trainer.save()
    assert _snapshot(run) == good and temporaries(run) == []
    capsys.readouterr()
    status = cli.main(['train', '--preset', 'tiny', '--out', str(run), '--resume',
                       '--no-progress'] + [f'--set={k}={v}' for k, v in SMALL.items()])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == cli.EXIT_USAGE and len(err) == 1 and 'disk full' in err[0], err
    assert temporaries(run) == []
    (small_disk / 'filler').unlink()
    resumed = _trainer(run, resume=True)
    assert resumed.step == 1 and resumed.prefilled


def test_read_only_run_directory(read_only_dir, capsys):
    directory, make_read_only = read_only_dir
    trainer = _trainer(directory / 'run')
    trainer.prefill()
    trainer.train_step()
    trainer.save()
    good = _snapshot(directory / 'run')
    make_read_only()
    with pytest.raises(WriteError, match=r'cannot write .*run.*: (read-only file system|'
                                         r'permission denied)'):
        _trainer(directory / 'run', resume=True)
    for out, extra in ((directory / 'run', ['--resume']), (directory / 'new', [])):
        capsys.readouterr()
        status = cli.main(['train', '--preset', 'tiny', '--out', str(out), '--no-progress']
                          + extra + [f'--set={k}={v}' for k, v in SMALL.items()])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == cli.EXIT_USAGE and len(err) == 1, err
        assert any(cause in err[0] for cause in ('read-only file system', 'permission denied',
                                                 'not writable')), err
    assert _snapshot(directory / 'run') == good


def test_leftovers_of_killed_writes_are_removed_at_the_next_start(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.prefill()
    trainer.train_step()
    trainer.save()
    leftovers = [tmp_path / '.checkpoint.pt.k3j2.tmp',
                 tmp_path / '.checkpoint.pt.replay-000000002.npz.x9.tmp',
                 tmp_path / '.model.pt.abc.tmp', tmp_path / 'checkpoint.pt.replay-000000002.npz']
    for path in leftovers:
        path.write_bytes(b'half written')
    (tmp_path / 'notes.txt').write_text('kept')
    resumed = _trainer(tmp_path, resume=True)
    assert resumed.step == 1
    assert not any(p.exists() for p in leftovers)
    assert (tmp_path / 'notes.txt').exists()
    assert ckpt.replay_path(tmp_path / CHECKPOINT_NAME, 1).exists()


def test_damaged_checkpoint_keeps_its_directory_untouched(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.prefill()
    trainer.train_step()
    trainer.save()
    data = bytearray((tmp_path / CHECKPOINT_NAME).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / CHECKPOINT_NAME).write_bytes(bytes(data))
    before = _snapshot(tmp_path)
    with pytest.raises(ckpt.CheckpointError):
        _trainer(tmp_path, resume=True)
    assert _snapshot(tmp_path) == before  # the replay file is kept for inspection


def test_model_written_on_a_full_disk_is_not_half_there(small_disk):
    config = load_config('cpu')
    _fill(small_disk, keep_free=64 * 1024)
    with pytest.raises(WriteError, match='disk full'):
        export_model(small_disk / 'model.pt', ActorCritic(config), config)
    assert not (small_disk / 'model.pt').exists() and temporaries(small_disk) == []
    (small_disk / 'filler').unlink()
    export_model(small_disk / 'model.pt', ActorCritic(load_config('tiny')), load_config('tiny'))
    assert load_model(small_disk / 'model.pt')[1].image_size == 32
    assert np.isfinite(file_writes.free_bytes(small_disk))


def test_sigterm_while_the_run_directory_is_read_only(read_only_dir):
    """SIGTERM asks for a last checkpoint; on a read-only directory that fails in one line."""
    import signal
    import sys
    import time
    directory, make_read_only = read_only_dir
    run = directory / 'run'
    argv = [sys.executable, '-m', 'fga_ros.cli', 'train', '--preset', 'tiny', '--out', str(run),
            '--no-progress'] + [f'--set={k}={v}' for k, v in dict(
                SMALL, steps=100_000, checkpoint_every=50).items()]
    # checkpoints 50 steps apart: the next periodic one cannot fail on the read-only directory
    # before the SIGTERM is handled (with one per step it sometimes did, and the process then
    # met the SIGTERM on its way out, after its handler was gone)
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
    deadline = time.monotonic() + 120
    while not (run / CHECKPOINT_NAME).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (run / CHECKPOINT_NAME).exists(), process.communicate(timeout=30)
    try:
        make_read_only()
    except BaseException:
        process.kill()
        process.wait()
        raise
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    lines = err.strip().splitlines()  # the SIGTERM notice, then one error line
    assert process.returncode == cli.EXIT_USAGE, err[-1500:]
    assert 'Traceback' not in err and len(lines) <= 2, err[-1500:]
    assert lines[-1].startswith('fga train: error: cannot write ') and (
        'read-only file system' in lines[-1] or 'permission denied' in lines[-1]), lines
    assert ckpt.load_checkpoint(run / CHECKPOINT_NAME)['step'] >= 1


def test_os_errors_name_the_file_as_text():
    error = OSError(30, 'Read-only file system', b'/runs/js/tensorboard/events.out')
    assert file_writes.describe_os_error(error) == \
        '/runs/js/tensorboard/events.out: read-only file system'
    assert file_writes.describe_os_error(OSError(28, 'No space')).startswith('a file: ')
