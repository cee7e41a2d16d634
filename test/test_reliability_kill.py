"""kill -9 at random points of a tiny ``fga train`` run, half of them while a checkpoint is
being written: every resume works, loses at most ``checkpoint_every`` steps, and no
temporary file is left once the next run has started.

CI runs ``FGA_KILL_POINTS`` (default 2) kill points; the issue's figure is 20:
``FGA_KILL_POINTS=20 python3 -m pytest -q -s test/test_reliability_kill.py``.
"""

import os
from pathlib import Path
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from fga_ros.core.training import checkpoint as ckpt
from fga_ros.core.training.trainer import CHECKPOINT_NAME
from fga_ros.file_writes import temporaries

ROOT = Path(__file__).resolve().parents[1]
KILL_POINTS = int(os.environ.get('FGA_KILL_POINTS', '2'))
CHECKPOINT_EVERY = 2
SETTINGS = {'steps': 100_000, 'checkpoint_every': CHECKPOINT_EVERY, 'eval_every': 0,
            'log_every': 1000, 'prefill_examples': 60, 'prefill_scenes': 6}
START_TIMEOUT = 120.0


def _start(run, log_dir, index, steps=None):
    """``fga train`` on ``run``: a new run with ``SETTINGS``, or ``--resume`` of the run there
    (which remembers its settings; ``steps`` raises its target)."""
    argv = [sys.executable, '-m', 'fga_ros.cli', 'train', '--out', str(run)]
    if (run / 'run.yaml').exists() or (run / CHECKPOINT_NAME).exists():
        argv += ['--resume'] + (['--steps', str(steps)] if steps else [])
    else:
        argv += ['--preset', 'tiny'] + [f'--set={k}={v}' for k, v in SETTINGS.items()]
    out = open(log_dir / f'{index}.out', 'w')
    err = open(log_dir / f'{index}.err', 'w')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    process = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err, env=env)
    return process, log_dir / f'{index}.out', log_dir / f'{index}.err'


def _wait_started(process, out, err):
    """Wait for the start line (the trainer is built: leftovers cleaned, checkpoint read);
    return the step the run starts at."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = out.read_text()
        match = re.search(r'resuming .* at step (\d+) of|^training \w+ to step', text, re.M)
        if match:
            return int(match.group(1) or 0)
        if process.poll() is not None:
            pytest.fail(f'the run ended before training (status {process.returncode}): '
                        f'{err.read_text()[-1500:]}')
        time.sleep(0.02)
    process.kill()
    pytest.fail('the run did not start in time')


def _reached(err):
    """Last step count the progress bar showed (a lower bound of the steps done)."""
    counts = re.findall(r'train js:[^\r\n]*?\| *(\d+)/\d+', err.read_text())
    return int(counts[-1]) if counts else 0


def _kill_during_write(process, run, timeout=20.0):
    """Poll the run directory; SIGKILL as soon as a temporary file appears."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with os.scandir(run) as entries:
            if any(e.name.startswith('.') and e.name.endswith('.tmp') for e in entries):
                process.send_signal(signal.SIGKILL)
                return True
    process.send_signal(signal.SIGKILL)
    return False


@pytest.mark.kill9
def test_kill_9_at_random_points(tmp_path, request):
    rng = random.Random(int(os.environ.get('FGA_KILL_SEED', '0')))
    run = tmp_path / 'run'
    logs = tmp_path / 'logs'
    logs.mkdir()
    expected_step = 0
    leftovers = []
    during_writes = lost_max = left_by_kills = 0
    for index in range(KILL_POINTS):
        process, out, err = _start(run, logs, index)
        started_at = _wait_started(process, out, err)
        assert started_at == expected_step, (index, started_at, expected_step)
        assert not [p for p in leftovers if p.exists()], 'leftovers of the killed write remain'
        if index % 2:
            during_writes += _kill_during_write(process, run)
        else:
            time.sleep(rng.uniform(0.0, 1.5))
            process.send_signal(signal.SIGKILL)
        process.wait()
        leftovers = temporaries(run)
        left_by_kills += len(leftovers)
        path = run / CHECKPOINT_NAME
        step = 0
        if path.exists():
            payload = ckpt.load_checkpoint(path)  # every kill leaves a loadable checkpoint
            assert ckpt.load_replay_state(path, payload) is not None
            step = payload['step']
        lost = _reached(err) - step
        assert lost <= CHECKPOINT_EVERY, (index, _reached(err), step)
        lost_max = max(lost_max, lost)
        expected_step = step
    final = expected_step + CHECKPOINT_EVERY
    process, out, err = _start(run, logs, 'final', steps=final)
    assert _wait_started(process, out, err) == expected_step
    assert process.wait(timeout=600) == 0, err.read_text()[-1500:]
    assert not [p for p in leftovers if p.exists()]
    assert temporaries(run) == []
    assert ckpt.load_checkpoint(run / CHECKPOINT_NAME)['step'] == final
    assert len(list(run.glob(f'{CHECKPOINT_NAME}.replay-*.npz'))) == 1
    line = (f'kill -9: {KILL_POINTS} points ({during_writes} while a temporary file was being '
            f'written), {KILL_POINTS} resumes worked, at most {max(0, lost_max)} steps lost '
            f'(checkpoint_every {CHECKPOINT_EVERY}); the kills left {left_by_kills} temporary '
            f'files, 0 remained after the next start')
    print(line)
    request.config.fga_summary = getattr(request.config, 'fga_summary', []) + [line]
