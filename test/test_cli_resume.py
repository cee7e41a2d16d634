"""`fga train --resume`: the run directory remembers its configuration and target steps.

Interruptions are real signals: a hook on the progress bar sends SIGINT to this process at
a chosen step, and ``fga train``'s own handler takes it from there.
"""

import json
import os
import signal

import pytest
import yaml

from fga_ros import cli, cli_hooks
from fga_ros.core.models import model_file
from fga_ros.core.training import checkpoint as ckpt
from fga_ros.core.training.run_record import RUN_FILE
from fga_ros.core.training.trainer import (
    CHECKPOINT_NAME,
    EVAL_LOG_NAME,
    MODEL_NAME,
    read_eval_log,
    truncate_eval_log,
)

pytestmark = pytest.mark.usefixtures('one_thread')

START = ('train', '--preset', 'tiny', '--steps', 20, '--set', 'lr_actor=0.002', '--set',
         'eval_every=5', '--set', 'checkpoint_every=4', '--no-progress')
"""A short version of the issue's `fga train --preset tiny --steps 3000 --set
lr_actor=0.002`, evaluated every 5 and checkpointed every 4 steps."""


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def signal_at(monkeypatch):
    """``signal_at(step, count)``: send SIGINT ``count`` times once training reaches ``step``."""
    def arm(step, count=1):
        original = cli_hooks.ProgressHooks.on_step

        def on_step(self, at, stats):
            original(self, at, stats)
            if at == step:
                for _ in range(count):
                    os.kill(os.getpid(), signal.SIGINT)
        monkeypatch.setattr(cli_hooks.ProgressHooks, 'on_step', on_step)
        return lambda: monkeypatch.setattr(cli_hooks.ProgressHooks, 'on_step', original)
    return arm


def _checkpoint(out):
    payload = ckpt.load_checkpoint(out / CHECKPOINT_NAME)
    return payload['step'], model_file.config_of(out, payload), payload


def _eval_steps(out):
    return [json.loads(line)['step'] for line in (out / EVAL_LOG_NAME).read_text().splitlines()]


def test_an_interrupted_run_resumes_with_its_own_configuration(capsys, tmp_path, signal_at):
    out = tmp_path / 'run'
    disarm = signal_at(7)
    code, stdout, err = _run(capsys, *START, '--out', out)
    disarm()
    assert code == 128 + signal.SIGINT
    assert 'SIGINT: stopping after the current step' in err
    assert f'stopped at step 7 of 20: checkpoint {out / CHECKPOINT_NAME}' in err
    assert f'continue with: fga train --resume --out {out}' in err
    assert model_file.load_model(out / MODEL_NAME)[2]['step'] == 7  # usable as it is
    assert _eval_steps(out) == [5]
    assert f'learning curve so far: {out / "learning_curve.png"}' in err
    assert (out / 'learning_curve.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    description = yaml.safe_load((out / RUN_FILE).read_text())
    assert description['config']['steps'] == 20 and description['config']['lr_actor'] == 0.002
    assert description['preset'] == 'tiny' and 'lr_actor=0.002' in description['command']

    code, stdout, err = _run(capsys, 'train', '--resume', '--out', out, '--no-progress')
    assert code == 0, err
    assert f'resuming {out} at step 7 of 20' in stdout and 'changed' not in stdout
    step, config, payload = _checkpoint(out)
    assert step == 20 and config.lr_actor == 0.002 and config.steps == 20
    assert [g['lr'] for g in payload['optim']['actor']['param_groups']] == [0.002]
    assert _eval_steps(out) == [5, 10, 15, 20]
    resumes = yaml.safe_load((out / RUN_FILE).read_text())['resumes']
    assert [(r['step'], r['changes']) for r in resumes] == [(7, {})]


def test_a_resume_applies_allowed_changes_and_reports_them(capsys, tmp_path):
    out = tmp_path / 'run'
    assert _run(capsys, *START, '--steps', 8, '--out', out)[0] == 0
    code, stdout, _ = _run(capsys, 'train', '--resume', '--out', out, '--steps', 12, '--set',
                           'lr_critic=0.005', '--no-progress')
    assert code == 0
    assert 'changed: steps 8 -> 12, lr_critic 0.001 -> 0.005' in stdout
    step, config, payload = _checkpoint(out)
    assert (step, config.lr_critic, config.lr_actor) == (12, 0.005, 0.002)
    assert [g['lr'] for g in payload['optim']['critic']['param_groups']] == [0.005]
    # naming the run's own preset again changes nothing: its overrides are remembered
    code, stdout, _ = _run(capsys, 'train', '--resume', '--out', out, '--preset', 'tiny',
                           '--steps', 13, '--no-progress')
    assert code == 0 and 'changed: steps 12 -> 13' in stdout
    assert _checkpoint(out)[1].lr_actor == 0.002


def test_a_resume_refuses_other_changes_naming_field_values_and_reason(capsys, tmp_path):
    out = tmp_path / 'run'
    assert _run(capsys, *START, '--steps', 4, '--out', out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code, _, err = _run(capsys, 'train', '--resume', '--out', out, '--steps', 8,
                        '--divergence', 'fkl', '--set', 'critic_hidden=[8, 8]')
    assert code == cli.EXIT_USAGE and 'Traceback' not in err
    assert "divergence 'js' -> 'fkl' (the actor was trained toward the run's objective" in err
    assert "critic_hidden (16, 16) -> (8, 8) (the saved network weights have the run's" in err
    assert 'steps' not in err.split('It may change')[0]  # an allowed change is not blamed
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_resume_without_a_run_is_an_error_and_creates_nothing(capsys, tmp_path):
    out = tmp_path / 'typo'
    code, _, err = _run(capsys, 'train', '--resume', '--out', out)
    assert code == cli.EXIT_USAGE
    assert f'{out} holds no training run' in err and 'drop --resume' in err
    assert not out.exists()


def test_a_finished_run_says_so_and_writes_nothing(capsys, tmp_path):
    out = tmp_path / 'run'
    assert _run(capsys, *START, '--steps', 4, '--out', out)[0] == 0
    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, stdout, _ = _run(capsys, 'train', '--resume', '--out', out)
    assert code == 0 and 'is complete: step 4 of 4; raise --steps' in stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == written
    code, _, err = _run(capsys, 'train', '--resume', '--out', out, '--steps', 2)
    assert code == cli.EXIT_USAGE and 'steps 2 is below the step the run has reached, 4' in err


def test_a_second_signal_stops_at_once_with_a_checkpoint(capsys, tmp_path, signal_at):
    out = tmp_path / 'run'
    disarm = signal_at(3, count=2)
    code, _, err = _run(capsys, *START, '--out', out)
    disarm()
    assert code == 128 + signal.SIGINT and 'Traceback' not in err
    assert 'continue with: fga train --resume' in err
    assert _checkpoint(out)[0] == 3


def test_the_wall_clock_limit_is_a_planned_stop_with_its_own_status(capsys, tmp_path):
    out = tmp_path / 'run'
    code, _, err = _run(capsys, *START, '--wall-hours', 1e-9, '--out', out)
    assert code == cli.EXIT_WALL_LIMIT == 3
    assert 'wall-clock limit of 1e-09 h reached' in err
    assert f'continue with: fga train --resume --out {out}' in err
    assert _checkpoint(out)[0] == 1
    # not remembered: the resumed run trains to its target
    assert _run(capsys, 'train', '--resume', '--out', out, '--no-progress')[0] == 0
    assert _checkpoint(out)[0] == 20


def test_a_run_from_before_run_descriptions_resumes_from_its_checkpoint(capsys, tmp_path):
    out = tmp_path / 'run'
    assert _run(capsys, *START, '--steps', 4, '--out', out)[0] == 0
    (out / RUN_FILE).unlink()
    code, stdout, _ = _run(capsys, 'train', '--resume', '--out', out, '--steps', 6,
                           '--no-progress')
    assert code == 0 and 'changed: steps 4 -> 6' in stdout
    assert _checkpoint(out)[1].lr_actor == 0.002 and (out / RUN_FILE).is_file()


def test_a_run_stopped_in_its_prefill_resumes_with_any_change(capsys, tmp_path, monkeypatch):
    out = tmp_path / 'run'
    original = cli_hooks.ProgressHooks.on_prefill

    def on_prefill(self, done, total):
        original(self, done, total)
        if done == 2:
            os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(cli_hooks.ProgressHooks, 'on_prefill', on_prefill)
    code, _, err = _run(capsys, *START, '--out', out)
    monkeypatch.setattr(cli_hooks.ProgressHooks, 'on_prefill', original)
    assert code == 128 + signal.SIGTERM
    assert 'stopped during the replay prefill: no checkpoint yet' in err
    assert f'continue with: fga train --resume --out {out}' in err
    assert not (out / CHECKPOINT_NAME).exists()
    # nothing was trained: even a field fixed by training may change
    code, stdout, _ = _run(capsys, 'train', '--resume', '--out', out, '--steps', 2,
                           '--set', 'prefill_examples=60', '--no-progress')
    assert code == 0 and 'prefill_examples 200 -> 60' in stdout
    assert _checkpoint(out)[0] == 2


@pytest.mark.parametrize('text, reason', [
    ('config: [1, 2', 'malformed YAML'),
    ('format: fga_ros.run/1\nconfig: {steps: -3}\n', 'steps must be > 0'),
    ('format: something/9\n', "format 'something/9'"),
])
def test_an_unusable_run_description_is_named(capsys, tmp_path, text, reason):
    out = tmp_path / 'run'
    out.mkdir()
    (out / RUN_FILE).write_text(text)
    code, _, err = _run(capsys, 'train', '--resume', '--out', out)
    assert code == cli.EXIT_USAGE and 'Traceback' not in err
    assert f'{out / RUN_FILE}' in err and reason in err
    assert (out / RUN_FILE).read_text() == text


def test_tensorboard_writer_thread_errors_are_left_to_the_one_line_report(tmp_path,
                                                                          monkeypatch):
    import threading
    writer_thread = pytest.importorskip('tensorboard.summary.writer.event_file_writer')
    seen = []
    monkeypatch.setattr(threading, 'excepthook', seen.append)

    def args(error, thread):
        return threading.ExceptHookArgs((type(error), error, None, thread))

    board = cli_hooks.TensorBoardHooks(tmp_path / 'tb')
    tb_thread = writer_thread._AsyncWriterThread.__new__(writer_thread._AsyncWriterThread)
    threading.excepthook(args(OSError(30, 'Read-only file system', b'/x/events'), tb_thread))
    assert seen == []  # the training thread meets it again and reports it in one line
    other = args(OSError(30, 'Read-only file system'), threading.Thread())
    threading.excepthook(other)
    threading.excepthook(args(ValueError('bug'), tb_thread))
    assert [a.exc_type for a in seen] == [OSError, ValueError]  # anything else as before
    board.close()
    assert threading.excepthook == seen.append


def test_tensorboard_write_errors_become_one_line_write_errors(tmp_path, monkeypatch):
    from fga_ros.file_writes import WriteError
    board = cli_hooks.TensorBoardHooks(tmp_path / 'tb')
    if board.writer is None:
        pytest.skip('tensorboard is not installed')

    def read_only(*args, **kwargs):
        raise OSError(30, 'Read-only file system', b'/runs/js/tensorboard/events.out')

    monkeypatch.setattr(board.writer, 'add_scalar', read_only)
    with pytest.raises(WriteError, match='^cannot write /runs/js/tensorboard/events.out: '
                                         'read-only file system$'):
        board.on_log(3, {'loss/critic': 0.5})
    monkeypatch.setattr(board.writer, 'close', read_only)
    with pytest.raises(WriteError, match='cannot write /runs/js/tensorboard/events.out'):
        board.close()


def test_the_learning_curve_skips_an_evaluation_line_cut_short_by_a_kill(tmp_path):
    log = tmp_path / EVAL_LOG_NAME
    log.write_text('{"step": 5, "seconds": 1.0}\n{"step": 10, "seconds": 2.0}\n{"step": 1')
    assert [r['step'] for r in read_eval_log(tmp_path)] == [5, 10]
    assert read_eval_log(tmp_path / 'no-run') == []


def test_a_damaged_evaluation_log_loses_only_its_damaged_lines(tmp_path):
    log = tmp_path / EVAL_LOG_NAME
    log.write_bytes(b'\xff\xfe garbage\n{"a": 1}\n[1, 2]\n{"step": 5, "seconds": 1.0}\n')
    assert [r['step'] for r in read_eval_log(tmp_path)] == [5]
    assert truncate_eval_log(tmp_path, 5) == 3
    assert log.read_text() == '{"step": 5, "seconds": 1.0}\n'
