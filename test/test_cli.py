"""The ``fga`` command line: its jobs work end to end and bad input ends in a clear error."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from fga_ros import cli, sim
from fga_ros.core.common.config import load_config
from fga_ros.core.common.env import SimEnvironment
from fga_ros.core.inference.defaults import REJECT_FRACTION
from fga_ros.core.inference.density import num_to_reject
from fga_ros.core.models import model_file
from fga_ros.core.training.trainer import CHECKPOINT_NAME, Trainer

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def model_path(tmp_path_factory):
    config = load_config('tiny', {'steps': 2, 'eval_every': 0})
    out = tmp_path_factory.mktemp('run')
    trainer = Trainer(config, SimEnvironment(config.shapes, seed=0), out)
    trainer.run()
    return trainer.export()


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_sim_json_has_the_documented_keys(capsys, tmp_path):
    code, out, _ = _run(capsys, 'sim', '--shape', 'H', '--seed', 3, '--json',
                        '--out', tmp_path / 'h.png')
    assert code == 0
    summary = json.loads(out)
    truth = sim.ground_truth(sim.make_scene('H', 3))
    assert summary['num_modes'] == truth.num_modes == 5
    assert summary['feasible_fraction'] == pytest.approx(truth.feasible_fraction)
    assert summary['mode_shares'] == sorted(summary['mode_shares'], reverse=True)
    assert summary['scene']['shape'] == 'H' and summary['scene']['seed'] == 3
    assert (tmp_path / 'h.png').stat().st_size > 0


def test_propose_on_a_scene_and_on_an_image_file(capsys, tmp_path, model_path):
    code, out, _ = _run(capsys, 'propose', '--shape', 'Box', '--seed', 2, '--num', 8, '--json',
                        '--out', tmp_path / 'p.png')  # the bundled model
    assert code == 0
    result = json.loads(out)
    assert [g['rank'] for g in result['grasps']] == list(range(8))
    assert all('feasible' in g for g in result['grasps'])
    assert result['num_rejected'] == num_to_reject(result['num_sampled'], REJECT_FRACTION)
    image = sim.render(sim.make_scene('T', 1))
    path = tmp_path / 'camera.png'
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    code, out, _ = _run(capsys, 'propose', '--image', path, '--num', 4, '--out', '')
    assert code == 0 and '4 grasps for' in out
    # a model of two training steps loads and answers: grasps, or (exit 1) an abstention
    code, out, _ = _run(capsys, 'propose', '--checkpoint', model_path, '--image', path,
                        '--num', 4, '--json', '--out', '')
    result = json.loads(out)
    assert (code, result['success']) in ((0, True), (1, False))
    assert len(result['grasps']) == (4 if code == 0 else 0)


def test_propose_candidate_counts_trade_coverage_for_speed(capsys):
    code, out, err = _run(capsys, 'propose', '--shape', 'H', '--seed', 3, '--json', '--out', '',
                          '--min-candidates', 128, '--explore', 0)
    assert code == 0, err
    result = json.loads(out)
    assert result['num_sampled'] == 128 and len(result['grasps']) == 16
    for flag, value, message in (('--min-candidates', 0, 'min_candidates must be in [1, '),
                                 ('--explore', -1, 'explore must be in [0, ')):
        code, _, err = _run(capsys, 'propose', '--out', '', flag, value)
        assert code == 2 and message in err, err


def test_eval_writes_the_documented_json(capsys, tmp_path, model_path):
    path = tmp_path / 'eval.json'
    code, out, _ = _run(capsys, 'eval', '--checkpoint', model_path, '--shapes', 'H,Box',
                        '--states', 2, '--actions', 64, '--json', path, '--no-progress')
    assert code == 0 and 'Box' in out
    metrics = json.loads(path.read_text())
    assert set(metrics) == {'H', 'Box'}
    for shape in metrics.values():
        for key in ('accuracy', 'accuracy_rejected'):
            assert 0.0 <= shape[key] <= 1.0
        for key in ('rank_shares', 'rank_shares_rejected'):
            shares = shape[key]
            assert shares == sorted(shares, reverse=True) and 0 <= sum(shares) <= 1 + 1e-9
        for key in ('all_modes_hit', 'mode_recall', 'tv_distance'):
            assert 0.0 <= shape[key] <= 1.0 and 0.0 <= shape[f'{key}_rejected'] <= 1.0
        assert 1 <= len(shape['worst_scenes']) <= 2
        assert shape['resampling_pool'] == [256, 128]  # 4 x 64 actor samples, 128 explored
        assert shape['resampling_sharpness'] == 4.0
    assert 'recall %' in out and 'TV floor' in out
    assert '(sharpness 4) from 256 actor samples and 128 grasps centred on the object' in out


def test_eval_resample_one_evaluates_the_actors_own_samples(capsys, tmp_path, model_path):
    path = tmp_path / 'eval.json'
    code, out, _ = _run(capsys, 'eval', '--checkpoint', model_path, '--shapes', 'T',
                        '--states', 1, '--actions', 32, '--resample', 1, '--json', path,
                        '--no-progress')
    assert code == 0 and "32 per scene, the model's own" in out
    assert json.loads(path.read_text())['T']['resampling_pool'] is None


@pytest.mark.parametrize('args, message', [
    (('--resample', 0), '--resample must be in [1, 16], got 0'),
    (('--explore-share', 1.5), '--explore-share must be in [0, 1], got 1.5'),
    (('--sharpness', 20), '--sharpness must be in [0, 16], got 20'),
    (('--actions', 16384, '--resample', 8), 'must hold at most 98304'),
    (('--sampler', 'cem', '--sharpness', 2), 'and --sharpness apply to --sampler actor'),
])
def test_eval_bad_resampling_settings(capsys, args, message):
    code, _, err = _run(capsys, 'eval', '--shapes', 'T', '--states', 1, '--no-progress', *args)
    assert code == 2 and message in err, err


def test_eval_is_reproducible(capsys, tmp_path):
    # The bundled model: its samples vary from call to call, so unseeded sampling would
    # change the figures; the same --seed gives the same ones.
    texts = []
    for run in range(2):
        path = tmp_path / f'eval{run}.json'
        code, out, _ = _run(capsys, 'eval', '--shapes', 'H', '--states', 2, '--actions', 64,
                            '--seed', 5, '--json', path, '--no-progress')
        assert code == 0
        texts.append(path.read_text())
    assert texts[0] == texts[1]
    assert 0.0 < json.loads(texts[0])['H']['accuracy'] < 1.0


def test_eval_plots_the_worst_covered_scenes(capsys, tmp_path, model_path):
    code, out, _ = _run(capsys, 'eval', '--checkpoint', model_path, '--shapes', 'T',
                        '--states', 2, '--actions', 32, '--plots', tmp_path, '--no-progress')
    assert code == 0
    for name in ('rank_shares.png', 'critic_actor_T.png', 'coverage_worst_T.png'):
        assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_periodic_evaluation_records_coverage(capsys, tmp_path):
    out = tmp_path / 'run'
    code, _, _ = _run(capsys, 'train', '--preset', 'tiny', '--out', out, '--steps', 2,
                      '--no-progress', '--set', 'eval_every=2', '--set', 'eval_states=1',
                      '--set', 'eval_actions=16')
    assert code == 0
    records = [json.loads(line) for line in (out / 'eval.jsonl').read_text().splitlines()]
    assert records[-1]['step'] == 2
    for prefix in ('acc', 'acc*', 'hit', 'recall', 'tv'):
        assert 0.0 <= records[-1][f'{prefix}/mean'] <= 1.0
        assert f'{prefix}/Box' in records[-1]
    assert (out / 'learning_curve.png').exists()


def test_train_refuses_to_overwrite_and_resumes(capsys, tmp_path):
    out = tmp_path / 'run'
    args = ('train', '--preset', 'tiny', '--out', out, '--steps', 2, '--no-progress',
            '--set', 'eval_every=0')
    assert _run(capsys, *args)[0] == 0
    saved = (out / CHECKPOINT_NAME).read_bytes()
    code, _, err = _run(capsys, *args)
    assert code == cli.EXIT_USAGE and '--resume' in err
    assert (out / CHECKPOINT_NAME).read_bytes() == saved
    code, stdout, _ = _run(capsys, *args[:6], 4, *args[7:], '--resume')
    assert code == 0 and 'step 4' in stdout


@pytest.mark.parametrize('argv, message', [
    (['sim', '--shape', 'Star'], 'Star'),
    (['sim', '--distortion', 'fisheye'], 'fisheye'),
    (['propose', '--checkpoint', '/nonexistent/model.pt'], 'not found'),
    (['train', '--preset', 'tiny', '--out', 'x', '--set', 'bogus=1'], 'bogus'),
    (['train', '--preset', 'no_such_preset', '--out', 'x'], 'no_such_preset'),
    (['train', '--preset', 'tiny', '--out', 'x', '--warm-start', 'm.pt', '--resume'],
     '--warm-start starts a new run'),
    (['train', '--preset', 'tiny', '--out', 'x', '--warm-start', '/nonexistent/m.pt'],
     'm.pt'),
    (['train', '--preset', 'tiny', '--out', 'x', '--set', 'actor_head=grid'], 'actor_head'),
])
def test_bad_input_is_one_clear_line(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, *argv)
    assert code == cli.EXIT_USAGE
    assert message in err and 'Traceback' not in err


def test_corrupt_image_and_corrupt_model_are_named(capsys, tmp_path, model_path):
    bad_image = tmp_path / 'bad.png'
    bad_image.write_bytes(b'not a png')
    code, _, err = _run(capsys, 'propose', '--checkpoint', model_path, '--image', bad_image)
    assert code == cli.EXIT_USAGE and 'bad.png' in err
    bad_model = tmp_path / 'bad.pt'
    bad_model.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    code, _, err = _run(capsys, 'propose', '--checkpoint', bad_model)
    assert code == cli.EXIT_USAGE and 'bad.pt' in err


def test_train_stops_with_a_checkpoint_on_sigterm(capsys, tmp_path):
    """`kill` (or a job scheduler) stops training like Ctrl-C: checkpoint, status 143 and
    the command that continues the run."""
    out = tmp_path / 'run'
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    process = subprocess.Popen(
        [sys.executable, '-m', 'fga_ros.cli', 'train', '--preset', 'tiny', '--out', str(out),
         '--steps', '1000000', '--set', 'checkpoint_every=5', '--set', 'eval_every=0',
         '--no-progress'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / CHECKPOINT_NAME).exists():  # the first checkpoint: training runs
        if process.poll() is not None:
            pytest.fail(f'fga train ended early: {process.communicate()[1]}')
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail('no checkpoint within 120 s')
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert 'Traceback' not in err
    assert f'continue with: fga train --resume --out {out}' in err
    _, _, meta = model_file.load_model(out / 'model.pt')  # the interrupted run is usable
    step = meta['step']
    assert step >= 5
    # it continues from its own run description; --steps is a change a resume may make
    code, stdout, _ = _run(capsys, 'train', '--resume', '--out', out, '--steps', step + 2,
                           '--no-progress')
    assert code == 0 and f'resuming {out} at step {step} of {step + 2}' in stdout
    assert f'steps 1000000 -> {step + 2}' in stdout and f'step {step + 2}:' in stdout


def test_calibrate_writes_a_calibrated_copy_with_the_same_weights(capsys, tmp_path, model_path):
    import torch
    out = tmp_path / 'calibrated.pt'
    before = model_path.read_bytes()
    code, text, err = _run(capsys, 'calibrate', '--checkpoint', model_path, '--out', out,
                           '--scenes', 12)
    assert code == 0, err
    assert 'temperature' in text and 'novelty gate' in text
    assert model_path.read_bytes() == before  # the source is untouched
    source = torch.load(model_path, weights_only=True)
    written = torch.load(out, weights_only=True)
    assert all(torch.equal(source['model'][k], written['model'][k]) for k in source['model'])
    assert written['meta']['calibration']['method'] == 'platt'
    assert written['meta']['calibration']['shapes'] == list(sim.train_shapes())
    assert written['meta']['novelty']['threshold'] > 0
    assert written['meta']['novelty_texture']['threshold'] > 0
    assert written['meta']['calibration']['views'][0] == [0, 1, 2]
    code, _, err = _run(capsys, 'calibrate', '--checkpoint', model_path, '--out', out,
                        '--shapes', 'H,Box')
    assert code == 2 and 'Box is held out' in err


@pytest.mark.parametrize('flags, message', [
    (('--region', '60,60,40,80'), '--region must be X0,Y0,X1,Y1 with X0 < X1'),
    (('--region', '1,2,3'), '--region takes 4'),
    (('--angle-range', '30,10'), '--angle-range is inverted'),
    (('--angle-range', 'nan,10'), '--angle-range must be finite'),
    (('--keep-out', '0,0,10,10,10,0,0,10'), '--keep-out[0] is self-intersecting'),
    (('--keep-out', '0,0,10,10'), '--keep-out takes a polygon'),
    (('--min-score', '1.5'), '--min-score must be in [0, 1]'),
])
def test_propose_refuses_bad_constraints(capsys, flags, message):
    code, _, err = _run(capsys, 'propose', '--out', '', *flags)
    assert code == 2 and message in err, err


def test_propose_with_constraints_and_abstention(capsys, tmp_path):
    code, out, err = _run(capsys, 'propose', '--shape', 'H', '--seed', 3, '--json', '--out', '',
                          '--region', '25,25,64,103', '--angle-range=-45,45')
    assert code == 0, err
    result = json.loads(out)
    assert result['success'] and len(result['grasps']) == 16
    for g in result['grasps']:
        assert g['x'] <= 64 and min(g['angle'], np.pi - g['angle']) <= np.radians(45) + 1e-9
        assert g['cluster'] >= 1
    blank = tmp_path / 'blank.png'
    cv2.imwrite(str(blank), np.full((128, 128, 3), 200, np.uint8))
    code, out, _ = _run(capsys, 'propose', '--image', blank, '--out', '')
    assert code == cli.EXIT_NO_GRASP and 'abstained' in out


def test_choices_diagnoses_the_bundled_model_and_refuses_a_flat_actor(capsys, tmp_path,
                                                                      model_path):
    path = tmp_path / 'choices.json'
    code, out, _ = _run(capsys, 'choices', '--shapes', 'H', '--states', 1, '--samples', 256,
                        '--json', path, '--no-progress')
    assert code == 0 and '| H |' in out and 'choice TV' in out
    figures = json.loads(path.read_text())['H']
    assert {'mode_tv', 'mode_tv_target_choices', 'critic_mode_tv'} <= set(figures)
    assert all(0.0 <= value <= 1.0 for value in figures.values())
    code, _, err = _run(capsys, 'choices', '--checkpoint', model_path, '--no-progress')
    assert code == cli.EXIT_USAGE and 'spatial' in err and 'Traceback' not in err
    code, _, err = _run(capsys, 'choices', '--checkpoint', tmp_path / 'none.pt')
    assert code == cli.EXIT_USAGE and 'none.pt' in err and 'Traceback' not in err
