"""``fga`` output paths, pipes, version, help and progress: a user's first hour (issue 12).

Each test names the failure it guards against: output paths are checked before any work,
a closed pipe ends quietly, the figure type follows the extension, nothing is written
unless asked, ``--version``, defaults in every help text, progress bars on stderr.
"""

import json
import os
from pathlib import Path
import re
import subprocess
import sys

import pytest

from fga_ros import cli
from fga_ros.resources import package_version

pytestmark = pytest.mark.usefixtures('one_thread')

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
JPEG_MAGIC = b'\xff\xd8\xff'


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a command gets as far as loading a model or building a trainer."""
    def forbidden(*args, **kwargs):
        raise AssertionError('the command started its work before checking its outputs')
    monkeypatch.setattr(cli, '_load_proposer', forbidden)
    from fga_ros.core.training import trainer
    monkeypatch.setattr(trainer.Trainer, '__init__', forbidden)


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _fails_with(capsys, message, *argv):
    code, _, err = _run(capsys, *argv)
    assert code == cli.EXIT_USAGE, err
    assert message in err and 'Traceback' not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_train_out_existing_file_is_refused_before_training(capsys, tmp_path, no_work):
    existing = tmp_path / 'notes.txt'
    existing.write_text('keep me')
    _fails_with(capsys, 'is an existing file', 'train', '--preset', 'tiny', '--out', existing)
    assert existing.read_text() == 'keep me'


def test_propose_out_directory_is_refused_before_proposing(capsys, tmp_path, no_work):
    _fails_with(capsys, 'is a directory', 'propose', '--out', tmp_path)


def test_eval_json_directory_is_refused_before_the_evaluation(capsys, tmp_path, no_work):
    """It used to fail only after the whole evaluation had run."""
    _fails_with(capsys, 'is a directory', 'eval', '--json', tmp_path, '--no-progress')


def test_eval_plots_existing_file_is_refused_before_the_evaluation(capsys, tmp_path, no_work):
    existing = tmp_path / 'figs'
    existing.write_text('')
    _fails_with(capsys, 'is an existing file', 'eval', '--plots', existing, '--no-progress')


@pytest.mark.parametrize('argv', [
    ['sim', '--out', '{file}/sub/sim.png'],
    ['modes', '--json', '{file}/m.json'],
    ['eval', '--plots', '{file}/figs', '--no-progress'],
    ['train', '--preset', 'tiny', '--out', '{file}/run'],
])
def test_a_parent_that_is_a_file_is_refused(capsys, tmp_path, no_work, argv):
    blocker = tmp_path / 'blocker'
    blocker.write_text('')
    argv = [a.replace('{file}', str(blocker)) for a in argv]
    _fails_with(capsys, 'is a file, not a directory', *argv)


@pytest.mark.skipif(os.geteuid() == 0, reason='root may write into read-only directories')
def test_an_unwritable_directory_is_refused(capsys, tmp_path, no_work):
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _fails_with(capsys, 'not writable', 'propose', '--out', locked / 'p.png')
        _fails_with(capsys, 'not writable', 'train', '--preset', 'tiny', '--out', locked / 'r')
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(not Path('/proc/self').is_dir(), reason='needs Linux /proc')
def test_an_unwritable_file_system_is_refused_even_for_root(capsys, no_work):
    _fails_with(capsys, 'not writable', 'propose', '--out', '/proc/fga/p.png')


def test_figure_type_follows_the_extension(capsys, tmp_path):
    """`--out x.jpg` used to write a PNG under that name."""
    for name, magic in (('p.png', PNG_MAGIC), ('p.jpg', JPEG_MAGIC), ('p.jpeg', JPEG_MAGIC)):
        code, _, err = _run(capsys, 'propose', '--num', 2, '--out', tmp_path / name)
        assert code == 0, err
        assert (tmp_path / name).read_bytes().startswith(magic), name
    code, _, _ = _run(capsys, 'sim', '--shape', 'T', '--out', tmp_path / 'sim.pdf')
    assert code == 0 and (tmp_path / 'sim.pdf').read_bytes().startswith(b'%PDF')


def test_an_unknown_extension_is_refused_naming_the_supported_ones(capsys, tmp_path, no_work):
    err = _fails_with(capsys, '".gif" is not a supported file type', 'propose', '--out',
                      tmp_path / 'p.gif')
    assert '.png, .jpg, .jpeg, .pdf, .svg' in err
    _fails_with(capsys, 'no extension', 'sim', '--out', tmp_path / 'figure')
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('argv', [
    ['sim', '--shape', 'H', '--seed', 3, '--json'],
    ['sim', '--shape', 'Box', '--seed', 1],
    ['propose', '--num', 4, '--json'],
    ['demo', '--num', 2],
])
def test_nothing_is_written_unless_asked(capsys, tmp_path, monkeypatch, argv):
    """`fga sim --json` used to write sim.png into the working directory."""
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    assert not list(tmp_path.iterdir())
    if '--json' in argv:
        json.loads(out)  # stdout is exactly one JSON document


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`fga ... | head` used to end with a BrokenPipeError traceback."""
    root = str(Path(cli.__file__).resolve().parents[1])  # this checkout, from any cwd
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=root)
    process = subprocess.Popen(
        [sys.executable, '-m', 'fga_ros.cli', 'sim', '--shape', 'H', '--seed', '3'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    process.stdout.close()  # the reader is gone before the first line is written
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == cli.EXIT_BROKEN_PIPE
    assert err == ''


def test_version_comes_from_package_xml(capsys):
    with pytest.raises(SystemExit) as done:
        cli.build_parser().parse_args(['--version'])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f'fga {package_version()}'


def _sub_parsers():
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == '_SubParsersAction']
    return sub.choices


def test_every_help_text_shows_the_defaults():
    for name, parser in _sub_parsers().items():
        helps = parser.format_help()
        for action in parser._actions:
            if not action.option_strings or action.required or action.nargs == 0:
                continue  # -h, flags and required options have no default to show
            text = parser._get_formatter()._get_help_string(action)
            assert 'default' in text, f'fga {name} {action.option_strings[0]}: {text!r}'
        assert 'default' in helps


@pytest.mark.parametrize('name', ['bench', 'eval', 'modes', 'train'])
def test_long_commands_have_a_progress_switch(name):
    """Each of them shows a progress bar; --no-progress turns it off."""
    assert '--no-progress' in _sub_parsers()[name].format_help()


def test_bench_sim_progress_goes_to_stderr(capsys):
    from fga_ros.bench_sim import run_sim_bench
    run_sim_bench(seconds_budget=0.01, batch=1000, scenes=8, progress=True)
    out, err = capsys.readouterr()
    assert out == '' and 'bench sim' in err and '6/6' in err


def test_bench_propose_progress_goes_to_stderr(capsys):
    """`fga bench propose` used to run for 4 minutes without a sign of life."""
    from fga_ros.core.analysis.bench_propose import run_propose_bench
    result = run_propose_bench(repeats=1, accuracy_scenes=1, progress=True)
    out, err = capsys.readouterr()
    assert out == '' and 'bench propose' in err and 'call/s' in err
    done, total = re.findall(r'(\d+)/(\d+) \[', err)[-1]
    assert done == total  # the bar ends full, also when the CEM search stops early
    assert result['latency_ms']['propose_64']['calls'] == 1
