"""The ``fga`` command line: the product's jobs on the in-process simulator, without ROS.

Every sub-command is a thin adapter: parse arguments, check its output paths
(``fga_ros.outputs``), call the library, print or save. Errors a user can fix (bad
arguments, missing or corrupt files, unusable output paths) end with a one-line message and
exit status 2, never a traceback; a closed pipe (``fga ... | head``) ends quietly.
"""

import argparse
import dataclasses
import json
import os
from pathlib import Path
import sys
from typing import Any

import numpy as np

from fga_ros import sim
from fga_ros.cli_types import (
    MAX_BENCH_SECONDS,
    MAX_BENCH_STATES,
    MAX_FIGURE_GRASPS,
    MAX_REPEATS,
    MAX_WALL_HOURS,
    float_in,
    int_in,
    seed,
)
from fga_ros.core.common.choices import DIVERGENCES, F_DIVERGENCES, METHODS, RANKINGS
from fga_ros.core.common.dataset import MAX_ATTEMPTS, MAX_STATES
from fga_ros.core.inference.defaults import (
    EXPLORE,
    EXPLORE_SHARE,
    MAX_SAMPLES,
    MIN_CANDIDATES,
    NUM_GRASPS,
    OVERSAMPLE,
    PAPER_REJECT_FRACTION,
    RANKING,
    REJECT_FRACTION,
    RESAMPLE,
    SHARPNESS,
)
from fga_ros.file_writes import WriteError, describe_os_error, write_text
from fga_ros.image_files import MAX_IMAGE_SIDE
from fga_ros.outputs import FIGURE_SUFFIXES, UserError, check_dir, check_file, make_parent

EXIT_USAGE = 2
EXIT_NO_GRASP = 1
"""Exit status of ``fga propose`` when it abstains or no grasp satisfies the constraints."""
EXIT_BROKEN_PIPE = 141
"""Status after the reader of stdout went away (128 + SIGPIPE, as a shell reports it)."""
EXIT_INTERRUPTED = 130
"""Status after Ctrl-C (128 + SIGINT)."""
EXIT_WALL_LIMIT = 3
"""``fga train`` stopped at its ``--wall-hours`` limit (checkpointed; resume to go on).
Stopped by Ctrl-C or SIGTERM it exits with the shell's 128 + signal number (130, 143)."""
STEADY_STATE = 'steady state: the second of two identical calls'
"""How ``fga propose`` times a proposal (the first call warms the model up)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: ...)" to every option's help that does not state its default."""

    def _get_help_string(self, action):
        text = action.help or ''
        if 'default' in text or any(action.default is v for v in (None, False,
                                                                  argparse.SUPPRESS)):
            return text
        return super()._get_help_string(action)


def _figure_path(path, option='--out'):
    """None for no figure, else the checked path of a figure file."""
    return check_file(path, option, FIGURE_SUFFIXES) if path else None


def _names(names):
    """'a, b, c or d': the simulator's and the core's names in help texts."""
    return ', '.join(names[:-1]) + f' or {names[-1]}' if len(names) > 1 else names[0]


def _add_scene_args(parser, default_shape='H'):
    parser.add_argument('--shape', default=default_shape,
                        help=f'shape family: {_names(sim.train_shapes())} (training) or '
                             f'{_names(sim.heldout_shapes())} (held out)')
    parser.add_argument('--seed', type=seed, default=0, help='scene seed (same seed, same scene)')
    parser.add_argument('--distortion', default=sim.DISTORTIONS[0],
                        help=f'camera distortion: {_names(sim.DISTORTIONS)}')


FIGURE_HELP = ('figure file; the type follows the extension: ' + ', '.join(FIGURE_SUFFIXES)
               + ' (default: none written)')


def cmd_sim(args):
    out = _figure_path(args.out)
    scene = sim.make_scene(args.shape, args.seed, args.distortion)
    gt = sim.ground_truth(scene)
    if out:
        sim.sim_figure(scene, gt, make_parent(out), num_grasps=args.num_grasps)
    summary = sim.summary(scene, gt)
    if args.camera_out:
        _write_tilted_camera(scene, args)
    if args.json:
        print(json.dumps(summary))
        return
    print(f'scene: {json.dumps(summary["scene"])}')
    print(f'feasible fraction: {summary["feasible_fraction"]:.4f} '
          f'(random grasps succeed {100 * summary["feasible_fraction"]:.2f}% of the time)')
    shares = ', '.join(f'{100 * s:.1f}%' for s in summary['mode_shares'])
    print(f'modes: {summary["num_modes"]} (shares, largest first: {shares})')
    if out:
        print(f'figure: {out}')


def _image_size(text):
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise UserError(
            f'--camera-size must be WIDTHxHEIGHT, e.g. 640x480, got {text[:40]!r}') from None
    if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
        raise UserError(f'--camera-size must be at most {MAX_IMAGE_SIDE} px a side (what fga '
                        f'propose reads), got {text[:40]}')
    return width, height


def _write_tilted_camera(scene, args):
    """``fga sim --camera-out``: the scene seen by a tilted pinhole camera, with its model."""
    import cv2

    from fga_ros.bridge.camera_files import write_camera_files
    from fga_ros.bridge.geometry import DEFAULT_CAMERA_FRAME
    from fga_ros.sim.pinhole import TABLE_FRAME, render_view, tilted_view

    if scene.distortion != 'none':
        raise UserError('--camera-out renders the scene through a camera pose; use it with '
                        '--distortion none')
    width, height = _image_size(args.camera_size)
    view = tilted_view(args.camera_tilt, width, height)
    out = check_dir(args.camera_out, '--camera-out')
    out.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out / 'image.png'), render_view(scene, view)[..., ::-1])
    info, pose = write_camera_files(view, out, TABLE_FRAME, DEFAULT_CAMERA_FRAME)
    print(f'tilted camera ({args.camera_tilt:g} deg, {width} x {height}): {out / "image.png"}, '
          f'{info}, {pose}')


def cmd_bench(args):
    if args.target == 'camera':
        from fga_ros.bridge.camera_bench import print_camera_bench, run_camera_bench
        try:
            tilts = tuple(float(t) for t in args.tilts.split(','))
        except ValueError:
            raise UserError(f'--tilts must be comma-separated degrees, e.g. 0,20,35,45, got '
                            f'{args.tilts[:40]!r}') from None
        width, height = _image_size(args.camera_size)
        shapes = sim.train_shapes()
        rows = run_camera_bench(args.checkpoint, tilts, args.states, width=width,
                                height=height, seed=args.seed, shapes=shapes,
                                device=args.device)
        print_camera_bench(rows, args.states, shapes)
    elif args.target == 'sim':
        from fga_ros.bench_sim import print_sim_bench, run_sim_bench
        print_sim_bench(run_sim_bench(seconds_budget=args.seconds,
                                      progress=not args.no_progress))
    elif args.target == 'defaults':
        from fga_ros.core.analysis import bench_defaults as bench
        proposer = _load_proposer(args.checkpoint, args.device)
        if args.floors:
            bench.print_floor_sweep(bench.floor_sweep(proposer, sim.shapes(), args.states,
                                                      seed=args.seed + 1))
            return
        bench.print_defaults_bench(bench.run_defaults_bench(proposer, sim.shapes(), args.states,
                                                            seed=args.seed))
    else:
        from fga_ros.core.analysis.bench_propose import print_propose_bench, run_propose_bench
        print_propose_bench(run_propose_bench(checkpoint=args.checkpoint, repeats=args.repeats,
                                              device=args.device,
                                              progress=not args.no_progress))


def _train_overrides(args):
    """The config fields the ``fga train`` command line sets explicitly."""
    from fga_ros.core.common.config import parse_overrides

    check_dir(args.out, '--out')
    overrides = parse_overrides(args.set or [])
    for name in ('method', 'divergence', 'steps', 'seed', 'device'):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    return overrides


def _open_run(args, out, overrides):
    """(config, run record or None, changes) for a new run or a resume of the run in ``out``."""
    from fga_ros.core.common.config import load_config
    from fga_ros.core.training import run_record as runs

    if not args.resume:
        if runs.holds_run(out):
            raise UserError(f'{out} already holds a training run; pass --resume to continue '
                            'it, or choose another --out (nothing was overwritten)')
        return load_config(args.preset or runs.DEFAULT_PRESET, overrides), None, {}
    if args.warm_start:
        raise UserError('--warm-start starts a new run; a resumed run already holds its '
                        'critic (drop one of --warm-start and --resume)')
    if not runs.holds_run(out):
        raise UserError(f'--resume: {out} holds no training run (no {runs.RUN_FILE} or '
                        f'{runs.CHECKPOINT_NAME}); drop --resume to start a new one')
    record = runs.read_run(out)
    config, changes = runs.resumed_config(record, args.preset, overrides,
                                          (out / runs.CHECKPOINT_NAME).is_file())
    return config, record, changes


def _resume_command(out):
    import shlex
    return f'fga train --resume --out {shlex.quote(str(out))}'


def _record_run(args, out, overrides, config, record, changes, trainer):
    """Write ``out/run.yaml`` for a new run (``record`` None) or a resumed one, say what
    starts; return the record written."""
    import shlex

    from fga_ros.core.analysis.evaluation import TRAINING_EVAL_SEED
    from fga_ros.core.training import run_record as runs

    command = shlex.join(['fga', *args.argv])
    seed_eval = args.seed_eval
    if record is None:
        record = runs.RunRecord(
            config=config, preset=args.preset or runs.DEFAULT_PRESET, overrides=overrides,
            eval_seed=TRAINING_EVAL_SEED if seed_eval is None else seed_eval,
            command=command, created=runs.now(), warm_start=args.warm_start)
        print(f'training {_objective(config)} to step {config.steps} on {trainer.device}; '
              f'run directory {out}')
        if args.warm_start:
            print(f'new run on the feature extractor and critic of {args.warm_start}')
    else:
        if seed_eval is not None and seed_eval != record.eval_seed:
            changes['eval_seed'] = (record.eval_seed, seed_eval)
            record = dataclasses.replace(record, eval_seed=seed_eval)
        print(f'resuming {out} at step {trainer.step} of {config.steps} ({_objective(config)} '
              f'on {trainer.device})' + (f'; changed: {runs.format_changes(changes)}'
                                        if changes else ''))
        record = runs.resumed_record(record, config, args.preset, overrides, command,
                                     trainer.step, changes)
    runs.write_run(out, record)
    return record


def _objective(config):
    """What a run trains, in words: the actor's divergence or the heat-map method."""
    if config.method == METHODS[0]:
        return config.divergence
    return f'the {config.method} baseline'


def cmd_train(args):
    from fga_ros.cli_hooks import ProgressHooks, SignalStop, TensorBoardHooks
    from fga_ros.core.analysis.evaluation import TRAINING_EVAL_SEED, periodic_evaluation
    from fga_ros.core.common.env import SimEnvironment
    from fga_ros.core.models import model_file
    from fga_ros.core.models.weights import NetworkTooLargeError, check_parameter_count
    from fga_ros.core.training import run_record as runs
    from fga_ros.core.training.trainer import Trainer

    out = Path(args.out)
    overrides = _train_overrides(args)
    if args.record:
        check_file(args.record, '--record')
        if Path(args.record).exists():
            raise UserError(f'--record: {args.record} exists; choose another file (nothing '
                            'was overwritten)')
    try:
        config, record, changes = _open_run(args, out, overrides)
        check_parameter_count(config)  # the networks must fit before any work
        env = SimEnvironment(config.shapes, config.distortion, seed=config.seed)
        if args.offline_steps < 0:
            raise UserError(f'--offline-steps must be >= 0, got {args.offline_steps}')
        dataset = _read_dataset(args.dataset) if args.dataset else None
        trainer = Trainer(config, env if dataset is None else WithoutOracle(env), out,
                          resume=args.resume, warm_start=args.warm_start, dataset=dataset,
                          offline_steps=args.offline_steps)
    except (runs.RunError, model_file.CheckpointError) as exc:
        raise UserError(str(exc)) from None
    except NetworkTooLargeError as exc:
        raise UserError(f'{args.preset or "the run configuration"}: {exc}') from None
    if dataset is not None and trainer.prefilled:
        raise UserError(f'{out} is past its replay prefill: --dataset applies to a new run '
                        '(drop it to resume)')
    if config.steps < trainer.step:
        raise UserError(f'steps {config.steps} is below the step the run has reached, '
                        f'{trainer.step}')
    if record is not None and trainer.step >= config.steps:
        print(f'{out} is complete: step {trainer.step} of {config.steps}; raise --steps to '
              'train further (nothing was written)')
        return 0
    record = _record_run(args, out, overrides, config, record, changes, trainer)
    progress = ProgressHooks(enabled=not args.no_progress)
    board = TensorBoardHooks(out / 'tensorboard', purge_step=trainer.step + 1)
    evaluate = periodic_evaluation(TRAINING_EVAL_SEED if record.eval_seed is None
                                   else record.eval_seed)
    wall = args.wall_hours * 3600 if args.wall_hours else None
    _start_dataset_io(args, dataset, trainer)
    with SignalStop() as stop:
        try:
            result = trainer.run(hooks=[progress, board, stop], evaluate=evaluate,
                                 wall_limit=wall)
        except KeyboardInterrupt:
            return _report_interrupted(out, trainer, trainer.prefilled, stop.exit_status)
        finally:
            progress.close()
            board.close()
            _close_recorder(trainer.recorder)
    return _report_end(args, out, trainer, result, stop)


def _start_dataset_io(args, dataset, trainer):
    """Say where the prefill comes from; open the ``--record`` file."""
    if dataset is not None:
        print(f'replay prefill from {args.dataset}: {len(dataset.images)} scenes, '
              f'{len(dataset.actions)} grasps ({int(dataset.labels.sum())} successes), no '
              f'oracle; {args.offline_steps} offline steps, then training online')
    if args.record:
        import shlex

        from fga_ros.core.common.dataset import DatasetWriter
        trainer.recorder = DatasetWriter(args.record, source=shlex.join(['fga', *args.argv]))


def _close_recorder(recorder):
    """Write the ``--record`` file (or drop it when nothing was recorded)."""
    if recorder is None:
        return
    if recorder.num_states:
        print(f'recorded {recorder.num_states} scenes, {recorder.num_attempts} grasps: '
              f'{recorder.close()}')
    else:
        recorder.abort()


def _report_end(args, out, trainer, result, stop):
    """Say how ``trainer.run`` ended (and how to continue); return the exit status."""
    from fga_ros.core.training.hooks import FINISHED, WALL_LIMIT

    if result.reason == FINISHED:
        print(f'step {trainer.step}: checkpoint {result.saved.checkpoint}, model '
              f'{result.saved.model}')
        curve = _plot_learning_curve(out)
        if curve:
            print(f'learning curve: {curve}')
        return 0
    if result.reason == WALL_LIMIT:
        print(f'wall-clock limit of {args.wall_hours:g} h reached', file=sys.stderr)
        return _report_interrupted(out, trainer, result.saved is not None, EXIT_WALL_LIMIT)
    return _report_interrupted(out, trainer, result.saved is not None, stop.exit_status)


def _report_interrupted(out, trainer, saved, status):
    """Say where an unfinished run stands and how to continue it; return ``status``."""
    from fga_ros.core.training.trainer import CHECKPOINT_NAME, MODEL_NAME

    if saved:
        print(f'stopped at step {trainer.step} of {trainer.config.steps}: checkpoint '
              f'{out / CHECKPOINT_NAME}, model {out / MODEL_NAME}', file=sys.stderr)
        curve = _plot_learning_curve(out)
        if curve:
            print(f'learning curve so far: {curve}', file=sys.stderr)
    else:
        print('stopped during the replay prefill: no checkpoint yet', file=sys.stderr)
    print(f'continue with: {_resume_command(out)}', file=sys.stderr)
    return status


class WithoutOracle:
    """An environment whose demonstrations are refused: training from a dataset must not
    fall back on the simulator's oracle."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        if name == 'demonstrations':
            raise AttributeError('demonstrations: training from a dataset uses no oracle')
        return getattr(self._env, name)


def _read_dataset(path):
    from fga_ros.core.common.dataset import DatasetError, read_dataset
    try:
        dataset = read_dataset(path)
    except DatasetError as exc:
        raise UserError(str(exc)) from None
    if not dataset.labels.any():
        raise UserError(f'{path} holds no successful grasp: the replay memory needs at least '
                        'one to train from (fga record --imitation-fraction above 0 writes '
                        'some)')
    return dataset


def cmd_record(args):
    """Oracle demonstrations of the simulator written to a dataset file."""
    from fga_ros.core.common.config import load_config
    from fga_ros.core.common.dataset import write_dataset
    from fga_ros.core.common.env import SimEnvironment, prefill_rng

    check_file(args.out, '--out')
    if Path(args.out).exists():
        raise UserError(f'--out: {args.out} exists; choose another file (nothing was '
                        'overwritten)')
    config = load_config(args.preset)
    shapes = _split_shapes(args.shapes) if args.shapes else config.shapes
    per_state = args.per_state or max(1, -(-config.prefill_examples
                                           // max(1, config.prefill_scenes)))
    states = args.states or -(-config.prefill_examples // per_state)
    if states > MAX_STATES or states * per_state > MAX_ATTEMPTS:
        raise UserError(f'{states} states x {per_state} grasps: a dataset holds at most '
                        f'{MAX_STATES} states and {MAX_ATTEMPTS} grasps (what fga train '
                        '--dataset reads)')
    fraction = (config.prefill_imitation_fraction if args.imitation_fraction is None
                else args.imitation_fraction)
    env = SimEnvironment(shapes, args.distortion, seed=args.seed)
    demos = env.demonstrations(states, per_state, prefill_rng(args.seed), fraction)
    source = (f'fga record: simulator oracle, shapes {",".join(shapes)}, distortion '
              f'{args.distortion}, seed {args.seed}, imitation fraction {fraction:g}')
    path = write_dataset(args.out, demos, source)
    print(f'{states} states x {per_state} grasps ({100 * fraction:g} % expert): {path} '
          f'({path.stat().st_size / 1e6:.1f} MB)')


def _plot_learning_curve(out):
    """Plot ``out/eval.jsonl`` to ``out/learning_curve.png``; None when there is no record."""
    from fga_ros.core.analysis.figures import learning_curve_figure
    from fga_ros.core.training.trainer import read_eval_log
    records = read_eval_log(out)
    if not records:
        return None
    path = out / 'learning_curve.png'
    learning_curve_figure(records, path)
    return path


def _load_proposer(checkpoint, device, seed=None):
    from fga_ros.core.inference.proposer import Proposer
    from fga_ros.core.models.model_file import CheckpointError
    try:
        return Proposer.from_checkpoint(checkpoint, device=device, seed=seed)
    except CheckpointError as exc:
        raise UserError(str(exc)) from None


RESAMPLING_FLAGS = '--resample, --explore-share and --sharpness'


def _eval_sampler(args, proposer):
    """``fga eval``'s sampler, and (actor samples, explored grasps) of the pool each of its
    samples is resampled from (None: the sampler's own samples)."""
    from fga_ros.core.analysis.evaluation import ResampledSampler
    from fga_ros.core.common.checks import check_count, check_number
    from fga_ros.core.inference.cem import CEMSampler
    from fga_ros.core.inference.defaults import MAX_EXPLORE_SHARE, MAX_RESAMPLE, MAX_SHARPNESS
    from fga_ros.core.inference.resampling import can_resample, check_pool, pool_sizes

    state = proposer.snapshot()
    asked = any(value is not None for value in (args.resample, args.explore_share,
                                                   args.sharpness))
    if args.sampler == 'cem':
        if asked:
            raise UserError(f'{RESAMPLING_FLAGS} apply to --sampler actor, not to CEM')
        return CEMSampler(state.model, seed=args.seed), None
    resample = RESAMPLE if args.resample is None else args.resample
    share = EXPLORE_SHARE if args.explore_share is None else args.explore_share
    sharpness = SHARPNESS if args.sharpness is None else args.sharpness
    try:
        actions = check_count('--actions', args.actions, 1, MAX_SAMPLES)
        resample = check_count('--resample', resample, 1, MAX_RESAMPLE)
        share = check_number('--explore-share', share, 0.0, MAX_EXPLORE_SHARE)
        sharpness = check_number('--sharpness', sharpness, 0.0, MAX_SHARPNESS)
        if resample > 1 and not can_resample(state.model, state.config):
            if asked:
                raise ValueError(f'{RESAMPLING_FLAGS} need a feasibility critic; this model '
                                 '(GAN or heat map) has none: use --resample 1')
            resample = 1
        if resample > 1:
            check_pool(actions, resample, share)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    pool = pool_sizes(actions, resample, share) if resample > 1 else None
    return ResampledSampler(proposer, resample, share, sharpness), pool


def _samples_line(args, sampler, pool):
    """What ``fga eval``'s samples were, in one line."""
    if args.sampler == 'cem':
        return f'samples: {args.actions} per scene from CEM on the critic'
    if pool is None:
        return (f"samples: {args.actions} per scene, the model's own (not resampled: "
                f'--resample 1, or a model without a feasibility critic)')
    return (f"samples: {args.actions} per scene, resampled towards the critic's target "
            f'(sharpness {sampler.sharpness:g}) from {pool[0]} actor samples and {pool[1]} '
            f'grasps centred on the object (--resample {pool[0] // args.actions}; '
            f"--resample 1 for the actor's own)")


def _sampler_name(args, pool):
    """A few words naming ``fga eval``'s sampler, for figure titles."""
    if args.sampler == 'cem':
        return 'critic + CEM'
    return 'actor' if pool is None else 'actor, resampled'


def _split_shapes(text):
    shapes = tuple(s.strip() for s in text.split(',') if s.strip())
    if not shapes:
        raise UserError(f'--shapes must name at least one shape, e.g. {",".join(sim.shapes())}')
    return shapes


def _check_shape_names(shapes):
    """``shapes``, each known to the world (``World.family`` names an unknown one)."""
    from fga_ros.sim.world import load_world
    for name in shapes:
        load_world().family(name)
    return shapes


def cmd_eval(args):
    from fga_ros.core.analysis.coverage_figure import coverage_figure, worst_cases
    from fga_ros.core.analysis.evaluation import evaluate, format_table
    from fga_ros.core.analysis.figures import critic_actor_figure, rank_share_figure

    json_path = check_file(args.json, '--json') if args.json else None
    plots = check_dir(args.plots, '--plots') if args.plots else None
    proposer = _load_proposer(args.checkpoint, args.device, seed=args.seed)
    state = proposer.snapshot()
    sampler, pool = _eval_sampler(args, proposer)
    shapes = _split_shapes(args.shapes)
    samples = {shape: {} for shape in shapes}  # kept for the worst-coverage figures

    def keep(shape, scene, actions, log_density):
        samples[shape][scene.seed] = (scene, actions, log_density)

    results = evaluate(sampler, shapes, args.states, args.actions, distortion=args.distortion,
                       seed=args.seed, reject_fraction=args.reject,
                       progress=not args.no_progress, on_scene=keep if args.plots else None)
    print(format_table(results))
    print(_samples_line(args, sampler, pool))
    from fga_ros.core.analysis.calibration_fit import measure_calibration
    from fga_ros.core.inference.calibration import ECE_BINS
    calibration = measure_calibration(proposer, shapes, args.states, seed=args.seed)
    fitted = state.calibration.fitted
    print(f'expected calibration error of the {"calibrated" if fitted else "UNCALIBRATED"} '
          f'critic scores (candidates of default proposals; {ECE_BINS} equal-width bins, '
          f'ECE = sum_b n_b/N |mean score_b - feasible fraction_b|):')
    for shape, res in calibration.items():
        print(f'  {shape:<7} ECE {res["ece"]:.4f} (raw critic {res["ece_raw"]:.4f}), '
              f'{res["samples"]} candidates, {100 * res["feasible"]:.1f}% feasible')
    for shape in shapes:
        results[shape]['calibration'] = calibration[shape]
        results[shape]['resampling_pool'] = None if pool is None else list(pool)
        results[shape]['resampling_sharpness'] = None if pool is None else sampler.sharpness
    if json_path:
        write_text(json_path, json.dumps(results, indent=2) + '\n')
        print(f'metrics: {json_path}')
    if plots:
        out = plots
        out.mkdir(parents=True, exist_ok=True)
        from fga_ros.core.analysis.reliability_figure import reliability_figure
        rank_share_figure(results, out / 'rank_shares.png', reject_fraction=args.reject)
        reliability_figure(calibration, out / 'reliability.png')
        for shape in shapes:
            scene = sim.make_scene(shape, args.seed, args.distortion)
            critic_actor_figure(state.model, state.config, scene, sim.ground_truth(scene),
                                out / f'critic_actor_{shape}.png')
            cases = worst_cases(results[shape], samples[shape])
            if cases:
                coverage_figure(cases, out / f'coverage_worst_{shape}.png', args.reject,
                                title=f'{shape}: the {len(cases)} evaluation scenes of worst '
                                      f'mode coverage by the {_sampler_name(args, pool)} '
                                      f'(of {args.states}, {args.actions} samples each)')
        print(f'figures: {out}/rank_shares.png, {out}/reliability.png, '
              f'{out}/critic_actor_<shape>.png, {out}/coverage_worst_<shape>.png')


def _read_image(path):
    from fga_ros.image_files import read_image
    return read_image(path)


def _numbers(flag, text, count=None):
    """Comma-separated numbers of a CLI flag (``count`` of them, or an even number)."""
    try:
        values = [float(v) for v in text.split(',')]
    except ValueError:
        raise UserError(f'{flag} must be comma-separated numbers, got {text!r}') from None
    if count is not None and len(values) != count:
        raise UserError(f'{flag} takes {count} comma-separated numbers, got {text!r}')
    if count is None and (len(values) < 6 or len(values) % 2):
        raise UserError(f'{flag} takes a polygon as x0,y0,x1,y1,x2,y2[,...] (at least 3 '
                        f'points), got {text!r}')
    return values


def constraints_from_args(args):
    """``TaskConstraints`` of ``fga propose``'s --region, --angle-range, --keep-out, --prefer,
    --prefer-weight and --min-score (None when none is given)."""
    from fga_ros.core.inference.constraints import ConstraintError, TaskConstraints, rectangle
    from fga_ros.core.inference.defaults import PREFERENCE_WEIGHT
    fields = {}
    if args.region:
        x0, y0, x1, y1 = _numbers('--region', args.region, 4)
        if not (x0 < x1 and y0 < y1):
            raise UserError(f'--region must be X0,Y0,X1,Y1 with X0 < X1 and Y0 < Y1, got '
                            f'{args.region!r}')
        fields['region'] = rectangle(x0, y0, x1, y1)
    if args.angle_range:
        fields['angle_range'] = tuple(np.radians(_numbers('--angle-range', args.angle_range,
                                                          2)))
    if args.keep_out:
        fields['keep_out'] = tuple(np.reshape(_numbers('--keep-out', text), (-1, 2))
                                   for text in args.keep_out)
    if args.prefer:
        fields['preferred_point'] = _numbers('--prefer', args.prefer, 2)
    if args.prefer_weight is not None:
        fields['preference_weight'] = args.prefer_weight
    if args.min_score is not None:
        fields['min_score'] = args.min_score
    if not fields:
        return None
    fields.setdefault('preference_weight', PREFERENCE_WEIGHT)
    try:
        return TaskConstraints(**fields)
    except ConstraintError as error:
        names = {'region': '--region', 'angle_range': '--angle-range', 'keep_out': '--keep-out',
                 'preferred_point': '--prefer', 'preference_weight': '--prefer-weight',
                 'min_score': '--min-score'}
        text = str(error)
        for field, flag in names.items():
            if text.startswith(field):
                text = flag + text[len(field):]
                break
        raise UserError(text) from None


def cmd_propose(args):
    from fga_ros.core.analysis.figures import proposal_figure

    out = _figure_path(args.out)
    constraints = constraints_from_args(args) if hasattr(args, 'region') else None
    proposer = _load_proposer(args.checkpoint, args.device)
    scene = mapping = None
    if args.image:
        image = _read_image(args.image)
        mapping = _camera_mapping(args, image)
        if mapping is not None:
            image = mapping.warp(image)
    else:
        scene = sim.make_scene(args.shape, args.seed, args.distortion)
        image = sim.render(scene)
    optional = {name: value for name, value in (('reject_fraction', args.reject),
                                                ('oversample', args.oversample),
                                                ('min_candidates', args.min_candidates),
                                                ('explore', args.explore))
                if value is not None}
    # The first call warms the model up (allocations, kernels); the second, identical one
    # gives the proposal and its steady-state time.
    for _ in range(2):
        proposal = proposer.propose(image, num_grasps=args.num, ranking=args.ranking,
                                    seed=args.seed, constraints=constraints, **optional)
    source = args.image or (f'scene {args.shape} seed {args.seed}' + (
        '' if args.distortion == 'none' else f', {args.distortion} distortion'))
    feasible = None
    if scene is not None:
        feasible = sim.grasp_success(scene, proposal.actions)
    if args.json:
        _print_proposal_json(proposal, feasible, mapping)
    elif proposal.abstained:
        print(f'no grasps for {source} in {proposal.inference_ms:.1f} ms '
              f'({STEADY_STATE}): {proposal.message}')
        return EXIT_NO_GRASP
    else:
        _print_proposal_table(proposal, source, feasible)
        if mapping is not None:
            _print_metric_poses(mapping, proposal.actions)
    if out and not proposal.abstained:
        proposal_figure(image, proposal, make_parent(out), feasible=feasible,
                        distortion='none' if scene is None else scene.distortion,
                        timing=STEADY_STATE, title=f'fga propose: {source}')
        if not args.json:
            print(f'figure: {out}')
    return EXIT_NO_GRASP if proposal.abstained else 0


def _print_proposal_json(proposal: Any, feasible: np.ndarray | None, mapping=None) -> None:
    """``fga propose --json``: the proposal as one JSON object, a row per grasp (with its
    camera-frame and table-frame poses when a camera ``mapping`` is given)."""
    rows = [{'rank': int(proposal.ranks[i]), 'x': float(a[0]), 'y': float(a[1]),
             'angle': float(a[2]), 'score': float(proposal.scores[i]),
             'log_density': float(proposal.log_density[i]),
             'cluster': int(proposal.cluster_ids[i]),
             **({'feasible': bool(feasible[i])} if feasible is not None else {})}
            for i, a in enumerate(proposal.actions)]
    if mapping is not None:
        _add_metric_poses(rows, mapping, proposal.actions)
    print(json.dumps({'success': not proposal.abstained, 'message': proposal.message,
                      'grasps': rows, 'num_sampled': proposal.num_sampled,
                      'num_rejected': proposal.num_rejected,
                      'inference_ms': proposal.inference_ms}))


def _print_proposal_table(proposal: Any, source: str, feasible: np.ndarray | None) -> None:
    """``fga propose``: a summary line and a table of the grasps, with the simulator's
    verdict where there is one."""
    print(f'{len(proposal.actions)} grasps for {source} in {proposal.inference_ms:.1f} ms '
          f'({STEADY_STATE}; {proposal.num_sampled} sampled, {proposal.num_rejected} '
          f'rejected as lowest density, {proposal.num_clusters} '
          f'cluster{"s" * (proposal.num_clusters != 1)})')
    header = (f'{"rank":>4} {"x px":>7} {"y px":>7} {"angle deg":>9} {"score":>6} '
              f'{"cluster":>7}')
    print(header + ('  feasible' if feasible is not None else ''))
    for i, (x, y, a) in enumerate(proposal.actions):
        line = (f'{proposal.ranks[i]:>4} {x:>7.2f} {y:>7.2f} {np.degrees(a):>9.1f} '
                f'{proposal.scores[i]:>6.3f} {proposal.cluster_ids[i]:>7}')
        if feasible is not None:
            line += f'  {"yes" if feasible[i] else "no"}'
        print(line)
    if feasible is not None:
        print(f'feasible (simulator ground truth): {int(feasible.sum())}/{len(feasible)}')


def cmd_calibrate(args):
    """Fit score calibration and the novelty gates on training-shape scenes; write the model."""
    from fga_ros.core.analysis.calibration_fit import (
        CALIBRATION_SCENES,
        MAX_CALIBRATION_SCENES,
        MIN_CALIBRATION_SCENES,
        fit_calibration,
    )
    from fga_ros.core.inference.calibration import GATE_KEYS
    from fga_ros.core.inference.proposer import bundled_model_path
    from fga_ros.core.models.model_file import CheckpointError, export_model, load_model

    source = Path(args.checkpoint) if args.checkpoint else bundled_model_path()
    out = check_file(args.out or source, '--out')
    shapes = _check_shape_names(_split_shapes(args.shapes))
    scenes = CALIBRATION_SCENES if args.scenes is None else args.scenes
    if not MIN_CALIBRATION_SCENES <= scenes <= MAX_CALIBRATION_SCENES:
        raise UserError(f'--scenes must be in [{MIN_CALIBRATION_SCENES}, '
                        f'{MAX_CALIBRATION_SCENES}], got {scenes}')
    heldout = [s for s in shapes if s not in sim.train_shapes()]
    if heldout:
        raise UserError(f'calibration is fitted on training shapes only '
                        f'({", ".join(sim.train_shapes())}); {", ".join(heldout)} is held out')
    try:
        model, config, meta = load_model(source)
    except CheckpointError as exc:
        raise UserError(str(exc)) from None
    if out.exists() and _is_training_checkpoint(out):
        raise UserError(f'{out} is a training checkpoint: writing the calibrated model over it '
                        f'would end the run; name another model file with --out')
    print(f'fitting on {scenes} calibration scenes per shape ({", ".join(shapes)}) of '
          f'{source}')
    calibration, gates, report = fit_calibration(
        model, config, shapes, scenes, seed=args.seed,
        progress=lambda done, total: print(f'  {done}/{total} shapes', file=sys.stderr))
    meta = dict(meta)
    meta['calibration'] = calibration.to_meta()
    for gate in gates:
        meta[GATE_KEYS[gate.statistic]] = gate.to_meta()
    size = export_model(out, model, config, meta)
    _print_calibration(calibration, report)
    for gate in gates:
        print(f'novelty gate {gate.statistic}: threshold {gate.threshold:.2f} (quantile '
              f'{dict(gate.info)["quantile"]} of held-out training-shape scenes)')
    print(f'model written: {out} ({size} bytes; same weights)')


def _is_training_checkpoint(path):
    """Whether ``path`` holds a readable training checkpoint."""
    from fga_ros.core.models.model_file import FORMAT, CheckpointError, read_payload
    try:
        return read_payload(path)[1]['format'] == FORMAT
    except CheckpointError:
        return False


def _print_calibration(calibration, report):
    """The outcome of ``fga calibrate``: the scaling kept, why, and its ECEs."""
    choice = report['choice']
    print(f'temperature {calibration.temperature:.4f}, bias {calibration.bias:.4f} '
          f'({choice["kept"]} scaling kept) over {calibration.num_views} views on '
          f'{report["samples"]} candidates:')
    for kind in ('fitted', 'identity'):
        if kind in choice:
            print(f'  leave-one-family-out ECE, {kind:<8}: familiar max '
                  f'{max(choice[kind]["familiar"]):.4f}, novel mean '
                  f'{sum(choice[kind]["novel"]) / len(choice[kind]["novel"]):.4f}')
    for name in ('familiar', 'novel'):
        part = report[name]
        print(f'  {name + " scenes":<16} {part["samples"]:>7} candidates, '
              f'{100 * part["feasible"]:.1f}% feasible: ECE {part["ece_raw"]:.4f} unscaled -> '
              f'{part["ece_fit"]:.4f} kept')


def _camera_mapping(args, image):
    """The camera -> top-down mapping of --camera-info/--camera-pose, or None for a
    128 x 128 top-down image without them."""
    from fga_ros.bridge.camera_files import read_mapping
    from fga_ros.bridge.camera_geometry import CameraGeometryError, Workspace, default_workspace

    if args.camera_info is None and args.camera_pose is None:
        if image.shape[:2] != (sim.IMAGE_SIZE, sim.IMAGE_SIZE):
            raise UserError(
                f'{args.image} is {image.shape[1]} x {image.shape[0]} px: the mapping from '
                f"this camera to the model's {sim.IMAGE_SIZE} x {sim.IMAGE_SIZE} top-down "
                f'input at {1000 * sim.load_camera().pixel_size_m:g} mm/px is unknown; give '
                '--camera-info and --camera-pose (see fga propose --help)')
        return None
    if args.camera_info is None or args.camera_pose is None:
        raise UserError('--camera-info and --camera-pose go together: the mapping needs the '
                        'intrinsics and the table -> camera transform')
    try:
        workspace = default_workspace()
        if args.workspace is not None:
            values = [float(v) for v in args.workspace.split(',')]
            if len(values) != 3:
                raise ValueError
            workspace = Workspace(*values)
    except ValueError:
        raise UserError(
            f'--workspace must be X,Y,SIZE in metres, got {args.workspace!r}') from None
    try:
        return read_mapping(args.camera_info, args.camera_pose, workspace)
    except CameraGeometryError as exc:
        raise UserError(str(exc)) from None


def _add_metric_poses(rows, mapping, actions):
    positions, quaternions = mapping.action_poses(actions)
    table_positions, table_quaternions = mapping.table_action_poses(actions)
    for i, row in enumerate(rows):
        row['camera_pose'] = {'frame': mapping.camera_frame,
                              'position': positions[i].tolist(),
                              'orientation': quaternions[i].tolist()}
        row['table_pose'] = {'frame': mapping.table_frame,
                             'position': table_positions[i].tolist(),
                             'orientation': table_quaternions[i].tolist()}


def _print_metric_poses(mapping, actions):
    positions, _ = mapping.action_poses(actions)
    table_positions, _ = mapping.table_action_poses(actions)
    pixels = mapping.top_down_to_camera_pixels(actions[:, :2])
    print(f'x, y, angle are pixels of the rectified {sim.IMAGE_SIZE} x {sim.IMAGE_SIZE} '
          f'top-down view ({1000 * mapping.pixel_size:g} mm/px); metric grasp centres (m):')
    print(f'{"rank":>4} {"camera u,v px":>15} {mapping.camera_frame + " x y z":>34} '
          f'{mapping.table_frame + " x y":>22}')
    for i in range(len(actions)):
        cam, tab = positions[i], table_positions[i]
        print(f'{i:>4} {pixels[i, 0]:>7.1f},{pixels[i, 1]:<7.1f} '
              f'{cam[0]:>11.4f} {cam[1]:>10.4f} {cam[2]:>10.4f} {tab[0]:>11.4f} {tab[1]:>10.4f}')


def cmd_demo(args):
    """The main job on the embedded defaults: bundled model, held-out Box scene."""
    args.checkpoint = None
    args.image = None
    out_dir = check_dir(args.out_dir, '--out-dir') if args.out_dir else None
    print('fga demo: the bundled model proposes grasps on a held-out Box scene and on an H '
          '(in-process simulator)')
    for shape in ('Box', 'H'):
        args.shape = shape
        args.out = out_dir / f'demo_{shape}.png' if out_dir else None
        cmd_propose(args)


def cmd_modes(args):
    """Section 3's controlled experiment: generators trained on the simulator, no critic."""
    from fga_ros.core.analysis import oracle_experiment as oracle

    out = _figure_path(args.out)
    json_path = check_file(args.json, '--json') if args.json else None
    divergences = tuple(d.strip() for d in args.divergences.split(',') if d.strip())
    steps = oracle.STEPS if args.steps is None else args.steps
    lr = oracle.LR if args.lr is None else args.lr
    samples = oracle.SAMPLES if args.samples is None else args.samples
    scene = sim.make_scene(args.shape, args.seed)
    gt = sim.ground_truth(scene)
    print(f'{args.shape} seed {args.seed}: {gt.num_modes} modes, random grasps succeed '
          f'{100 * gt.feasible_fraction:.2f}%; {steps} steps, lr {lr:g} per divergence')
    results = oracle.run_oracle_experiment(
        args.shape, args.seed, divergences, steps=steps, lr=lr, samples=samples,
        rng_seed=args.rng_seed, progress=not args.no_progress)
    print(oracle.format_modes_table(results))
    if json_path:
        rows = {k: {n: v for n, v in r.items() if n != 'actions'} for k, r in results.items()}
        write_text(json_path, json.dumps(
            {'scene': scene.to_dict(), 'steps': steps, 'lr': lr, 'rng_seed': args.rng_seed,
             'results': rows}, indent=2) + '\n')
        print(f'metrics: {json_path}')
    if out:
        oracle.modes_figure(results, scene, make_parent(out))
        print(f'figure: {out}')


def cmd_choices(args):
    """Where a spatial actor loses mode coverage: choices, placement or critic."""
    from fga_ros.core.analysis.choice_diagnosis import diagnose, format_diagnosis
    from fga_ros.core.common.tensors import select_device
    from fga_ros.core.inference.proposer import bundled_model_path
    from fga_ros.core.models.model_file import CheckpointError, load_model

    json_path = check_file(args.json, '--json') if args.json else None
    path = args.checkpoint or bundled_model_path()
    try:
        model, _, _ = load_model(path, map_location=select_device(args.device))
    except CheckpointError as exc:
        raise UserError(str(exc)) from None
    try:
        results = diagnose(model, _split_shapes(args.shapes), args.states, args.samples,
                           seed=args.seed, progress=not args.no_progress)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(format_diagnosis(results))
    if json_path:
        write_text(json_path, json.dumps(results, indent=2) + '\n')
        print(f'metrics: {json_path}')


def cmd_grid(args):
    """A rows x columns grid of evaluations (e.g. Table 5): JSON and a figure."""
    from fga_ros.core.analysis.result_grid import build_grid, format_grid, grid_figure

    json_path = check_file(args.json, '--json') if args.json else None
    figure = _figure_path(args.figure, '--figure')
    cells = []
    for text in args.cells:
        name, sep, path = text.partition('=')
        row, slash, column = name.partition('/')
        paths = path.split(',')
        if not (sep and slash and row and column and all(paths)):
            raise UserError(f'cell {text!r} must read ROW/COLUMN=EVAL_JSON[,EVAL_JSON...]')
        cells.append((row, column, paths))
    grid = build_grid(cells)
    print(format_grid(grid))
    if json_path:
        write_text(json_path, json.dumps(grid, indent=1) + '\n')
        print(f'grid: {json_path}')
    if figure:
        grid_figure(grid, make_parent(figure), args.title)
        print(f'figure: {figure}')


def build_parser() -> argparse.ArgumentParser:
    """The ``fga`` argument parser: one sub-command per job, each added by its ``_add_*``."""
    from fga_ros.resources import package_version

    parser = argparse.ArgumentParser(
        prog='fga', description='Learn to propose all feasible planar grasps (no ROS needed).',
        formatter_class=HelpFormatter)
    parser.add_argument('--version', action='version', version=f'%(prog)s {package_version()}')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    add = sub.add_parser

    def sub_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return add(name, formatter_class=HelpFormatter, description=kwargs.get('help'),
                   **kwargs)
    sub.add_parser = sub_parser  # type: ignore[method-assign]
    for add_command in (_add_sim, _add_train, _add_record, _add_eval, _add_propose, _add_demo,
                        _add_calibrate, _add_modes, _add_choices, _add_bench, _add_grid):
        add_command(sub)
    return parser


def _add_checkpoint(p: argparse.ArgumentParser) -> None:
    """``--checkpoint``: the model a command reads (the bundled one by default)."""
    p.add_argument('--checkpoint', default=None,
                   help='model or checkpoint (default: the bundled model)')


def _add_device(p: argparse.ArgumentParser) -> None:
    """``--device`` of the commands that run the model."""
    p.add_argument('--device', default='cpu', help='cpu, cuda or auto')


def _add_no_progress(p: argparse.ArgumentParser) -> None:
    """``--no-progress`` of the commands that show a progress bar."""
    p.add_argument('--no-progress', action='store_true', help='no progress bar')


def _add_sim(sub: Any) -> None:
    """``fga sim``."""
    p = sub.add_parser('sim', help='render a scene with its ground-truth feasible grasps')
    _add_scene_args(p)
    p.add_argument('--out', default=None, help=FIGURE_HELP)
    p.add_argument('--num-grasps', type=int_in(0, MAX_FIGURE_GRASPS), default=24,
                   help='feasible grasps drawn')
    p.add_argument('--json', action='store_true',
                   help='print the scene and its ground-truth summary as one JSON object')
    p.add_argument('--camera-out', default=None, metavar='DIR',
                   help='also write the scene as seen by a tilted pinhole camera: '
                        'DIR/image.png, camera_info.yaml, camera_pose.yaml (default: none)')
    p.add_argument('--camera-tilt', type=float, default=35.0,
                   help='tilt from straight down of the --camera-out camera, degrees')
    p.add_argument('--camera-size', default='640x480', help='--camera-out image WIDTHxHEIGHT')
    p.set_defaults(func=cmd_sim)


def _add_train(sub: Any) -> None:
    """``fga train``."""
    p = sub.add_parser('train', help='train actor and critic on the in-process simulator')
    p.add_argument('--preset', default=None,
                   help='preset name in config/presets (cpu, paper, tiny) or a YAML path '
                        '(default: cpu; a resumed run keeps its own)')
    p.add_argument('--out', required=True,
                   help='run directory (run.yaml, checkpoints, model.pt, TensorBoard)')
    p.add_argument('--method', default=None, choices=METHODS,
                   help="what is trained: the paper's actor-critic, or the heat-map "
                        "baselines H (heatmap) and SH (stacked-heatmap) of its appendix D.1 "
                        "(default: the preset's, actor-critic)")
    p.add_argument('--divergence', default=None,
                   help=f"{_names(DIVERGENCES)} (default: the preset's)")
    p.add_argument('--steps', type=int, default=None,
                   help="total training steps (default: the preset's)")
    p.add_argument('--seed', type=seed, default=None,
                   help="seed of every random generator (default: the preset's)")
    p.add_argument('--device', default=None,
                   help="auto, cpu, cuda, cuda:N (default: the preset's)")
    p.add_argument('--set', action='append', metavar='KEY=VALUE',
                   help='override any config field (YAML value), repeatable (default: none)')
    p.add_argument('--resume', action='store_true',
                   help='continue the run in --out with its own configuration and target '
                        'steps; flags given with it change the run (or are refused)')
    p.add_argument('--warm-start', default=None, metavar='MODEL',
                   help='start from the feature extractor and critic of this model or '
                        'checkpoint (same critic architecture); the actor starts fresh '
                        '(default: none)')
    p.add_argument('--dataset', default=None, metavar='FILE',
                   help='prefill the replay of a new run from this dataset file (fga record, '
                        '--record) instead of the simulator oracle, then train online '
                        '(default: the oracle)')
    p.add_argument('--offline-steps', type=int, default=0,
                   help='critic + actor updates on the prefilled replay before the first '
                        'grasp is tried (default: 0)')
    p.add_argument('--record', default=None, metavar='FILE',
                   help='write every oracle prefill example and every tried grasp of this '
                        'invocation to this new dataset file (default: none)')
    p.add_argument('--wall-hours', type=float_in(0, MAX_WALL_HOURS, low_open=True),
                   default=None,
                   help='stop (checkpointed, exit status 3) after this many hours of this '
                        'process; not remembered by --resume (default: no limit)')
    p.add_argument('--seed-eval', type=seed, default=None,
                   help="first scene seed of the periodic evaluation (default: the core's "
                        "TRAINING_EVAL_SEED; a resumed run keeps its own)")
    _add_no_progress(p)
    p.set_defaults(func=cmd_train)


def _add_record(sub: Any) -> None:
    """``fga record``."""
    p = sub.add_parser('record', help='write simulator oracle demonstrations to a dataset '
                                      'file (the format fga train --dataset reads)')
    p.add_argument('--out', required=True, help='dataset file to write (.zip; must not exist)')
    p.add_argument('--preset', default='cpu',
                   help='take states, grasps per state, shapes and imitation fraction from '
                        "this preset's replay prefill (default: cpu)")
    p.add_argument('--states', type=int_in(1, MAX_STATES), default=None,
                   help="scenes recorded (default: the preset's prefill scenes)")
    p.add_argument('--per-state', type=int_in(1, MAX_ATTEMPTS), default=None,
                   help="grasps per scene (default: the preset's)")
    p.add_argument('--shapes', default=None,
                   help="comma-separated shapes (default: the preset's)")
    p.add_argument('--imitation-fraction', type=float, default=None,
                   help="share of expert (feasible) grasps, the rest uniform random (default: "
                        "the preset's)")
    p.add_argument('--distortion', default=sim.DISTORTIONS[0],
                   help=f'{_names(sim.DISTORTIONS)} (default: none)')
    p.add_argument('--seed', type=seed, default=0, help='seed of scenes and grasps (default: 0)')
    p.set_defaults(func=cmd_record)


def _add_eval(sub: Any) -> None:
    """``fga eval``."""
    p = sub.add_parser('eval', help='Table 3 metrics: accuracy, mode-rank shares, coverage')
    _add_checkpoint(p)
    p.add_argument('--shapes', default=','.join(sim.shapes()), help='comma-separated shapes')
    p.add_argument('--states', type=int, default=64, help='scenes per shape (paper: 1024)')
    p.add_argument('--actions', type=int, default=1024, help='samples per scene (paper: 1024)')
    p.add_argument('--distortion', default=sim.DISTORTIONS[0],
                   help=_names(sim.DISTORTIONS))
    p.add_argument('--reject', type=float, default=PAPER_REJECT_FRACTION,
                   help="fraction rejected as lowest density for the * metrics (the paper's)")
    p.add_argument('--sampler', choices=['actor', 'cem'], default='actor',
                   help="evaluate the model's own sampler (the actor; eq. 14 for a heat-map "
                        'model), or CEM on its critic (default: actor)')
    p.add_argument('--resample', type=int, default=None,
                   help='actor samples drawn per evaluated sample, resampled towards the '
                        "critic's target; 1: the actor's own samples (default: "
                        f'{RESAMPLE}; a GAN or heat-map model has no feasibility critic '
                        'and is not resampled)')
    p.add_argument('--explore-share', type=float, default=None,
                   help='grasps centred on the object added to the resampling pool per actor '
                        f'sample (default: {EXPLORE_SHARE})')
    p.add_argument('--sharpness', type=float, default=None,
                   help="scale of the critic's logit in the resampling target: 1 is the "
                        "actor's training target, larger weighs grasps the critic is unsure "
                        f'of less (default: {SHARPNESS:g})')
    p.add_argument('--seed', type=seed, default=0,
                   help='evaluation seed: selects the scenes and seeds the sampling (the same '
                        'seed, model and machine give the same figures)')
    p.add_argument('--json', default=None,
                   help='write the metrics as JSON to this file (default: none written)')
    p.add_argument('--plots', default=None,
                   help='write PNG figures to this directory (default: none written)')
    _add_device(p)
    _add_no_progress(p)
    p.set_defaults(func=cmd_eval)


def _add_propose(sub: Any) -> None:
    """``fga propose``."""
    p = sub.add_parser('propose', help='propose ranked grasps for one image or scene')
    _add_checkpoint(p)
    p.add_argument('--image', default=None,
                   help='RGB image file (default: a simulator scene): a 128x128 top-down '
                        'image, or any camera with --camera-info/--camera-pose')
    p.add_argument('--camera-info', default=None, metavar='YAML',
                   help='intrinsics of the --image camera (ROS calibration YAML; default: none, '
                        'the image is a 128x128 top-down view)')
    p.add_argument('--camera-pose', default=None, metavar='YAML',
                   help='table -> camera transform of the --image camera: translation '
                        '[x, y, z], rotation [x, y, z, w] (default: none)')
    p.add_argument('--workspace', default=None, metavar='X,Y,SIZE',
                   help="table square (m, table frame) rectified into the model input "
                        "(default: centre 0, 0, the training image's side, 128 px x "
                        'sim/camera.yaml pixel size)')
    _add_scene_args(p)
    p.add_argument('--out', default=None, help=FIGURE_HELP)
    p.add_argument('--json', action='store_true', help='print grasps as JSON')
    p.add_argument('--region', default=None, metavar='X0,Y0,X1,Y1',
                   help='rectangle (px) the grasp centre must lie in (default: anywhere)')
    p.add_argument('--angle-range', default=None, metavar='DEG0,DEG1',
                   help='allowed closing directions, degrees, DEG0 <= DEG1; a window '
                        'across 0 is e.g. --angle-range=-10,10 (with "="; default: any)')
    p.add_argument('--keep-out', action='append', default=None,
                   metavar='X0,Y0,X1,Y1,X2,Y2,...',
                   help='polygon (px) no jaw may touch (repeatable; default: none)')
    p.add_argument('--prefer', default=None, metavar='X,Y',
                   help='preferred grasp centre (px): distance adds to the ranking '
                        'cost (default: none)')
    p.add_argument('--prefer-weight', type=float, default=None,
                   help='ranking cost per pixel of distance to --prefer (default: '
                        "the core's PREFERENCE_WEIGHT)")
    p.add_argument('--min-score', type=float, default=None,
                   help='return no grasp scoring below this, in [0, 1] (default: 0, '
                        'no minimum beyond the score floor)')
    _add_proposal_options(p)
    p.set_defaults(func=cmd_propose)


def _add_demo(sub: Any) -> None:
    """``fga demo``."""
    p = sub.add_parser('demo', help='the main job: bundled model on simulator scenes')
    p.add_argument('--seed', type=seed, default=0, help='scene seed')
    p.add_argument('--distortion', default=sim.DISTORTIONS[0],
                   help=f'camera distortion: {_names(sim.DISTORTIONS)}')
    p.add_argument('--out-dir', default=None,
                   help='write demo_Box.png and demo_H.png here (default: no figures)')
    p.set_defaults(json=False)
    _add_proposal_options(p)
    p.set_defaults(func=cmd_demo)


def _add_proposal_options(p: argparse.ArgumentParser) -> None:
    """The proposal options ``fga propose`` and ``fga demo`` share."""
    p.add_argument('--num', type=int, default=NUM_GRASPS, help='grasps to return')
    p.add_argument('--reject', type=float, default=None,
                   help='fraction of samples rejected as lowest KDE density (default: '
                        f"{REJECT_FRACTION:g}; the paper's * variants: "
                        f'{PAPER_REJECT_FRACTION:g})')
    p.add_argument('--ranking', choices=RANKINGS, default=RANKING,
                   help='best score first, or best of each cluster first')
    p.add_argument('--oversample', type=int, default=None,
                   help='actor samples per returned grasp, the critic keeps the best '
                        f'(default: {OVERSAMPLE})')
    p.add_argument('--min-candidates', type=int, default=None,
                   help='actor samples drawn at least (default: '
                        f'{MIN_CANDIDATES}; fewer: faster, rare modes missed more often)')
    p.add_argument('--explore', type=int, default=None,
                   help='grasps centred on the object the critic also scores (default: '
                        f'{EXPLORE}; 0: none)')
    _add_device(p)


def _add_calibrate(sub: Any) -> None:
    """``fga calibrate``."""
    p = sub.add_parser('calibrate', help='fit calibrated scores (familiar and novel-geometry '
                       'scenes of the training shapes) and the novelty gates, and store them '
                       'with the model')
    p.add_argument('--checkpoint', default=None,
                   help='model or checkpoint (default: the bundled model, rewritten in place)')
    p.add_argument('--out', default=None, help='model file to write (default: --checkpoint)')
    p.add_argument('--shapes', default=','.join(sim.train_shapes()),
                   help='training shapes to fit on (comma-separated)')
    p.add_argument('--scenes', type=int, default=None,
                   help='familiar and novel calibration scenes per shape, each (default: '
                        'CALIBRATION_SCENES)')
    p.add_argument('--seed', type=seed, default=0, help='selects the calibration scenes')
    p.set_defaults(func=cmd_calibrate)


def _add_modes(sub: Any) -> None:
    """``fga modes``."""
    p = sub.add_parser('modes', help='controlled experiment: which divergences cover all modes')
    p.add_argument('--shape', default='H', help=f'shape family: {_names(sim.shapes())}')
    p.add_argument('--seed', type=seed, default=0, help='scene seed (same seed, same scene)')
    p.add_argument('--divergences', default=','.join(F_DIVERGENCES),
                   help=f'comma-separated: {", ".join(F_DIVERGENCES)}')
    p.add_argument('--steps', type=int, default=None,
                   help='generator updates per divergence (default: oracle_experiment.STEPS)')
    p.add_argument('--lr', type=float, default=None,
                   help='Adam learning rate (default: oracle_experiment.LR)')
    p.add_argument('--samples', type=int, default=None,
                   help='samples evaluated per divergence (default: oracle_experiment.SAMPLES)')
    p.add_argument('--rng-seed', type=seed, default=0,
                   help='seed of initialisation, latents and resampling noise')
    p.add_argument('--out', default=None, help=FIGURE_HELP)
    p.add_argument('--json', default=None,
                   help='write the metrics as JSON to this file (default: none written)')
    _add_no_progress(p)
    p.set_defaults(func=cmd_modes)


def _add_choices(sub: Any) -> None:
    """``fga choices``."""
    p = sub.add_parser('choices', help='where a spatial actor loses mode coverage: its choice '
                                       'probabilities, its placement or its critic')
    _add_checkpoint(p)
    p.add_argument('--shapes', default=','.join(sim.shapes()), help='comma-separated shapes')
    p.add_argument('--states', type=int, default=16,
                   help="scenes per shape (fga eval's scenes for the same seed)")
    p.add_argument('--samples', type=int, default=4096, help='actor samples per scene')
    p.add_argument('--seed', type=seed, default=0,
                   help='evaluation seed: selects the scenes and seeds the sampling')
    p.add_argument('--json', default=None,
                   help='write the figures as JSON to this file (default: none written)')
    _add_device(p)
    _add_no_progress(p)
    p.set_defaults(func=cmd_choices)


def _add_bench(sub: Any) -> None:
    """``fga bench``."""
    p = sub.add_parser('bench', help='print throughput / latency figures')
    p.add_argument('target', choices=['sim', 'propose', 'defaults', 'camera'],
                   help='sim: simulator throughput (about 15 s); propose: latency and accuracy '
                        'of the actor against critic + CEM (minutes); defaults: what default '
                        'requests return (feasible, abstained, modes; minutes); camera: '
                        'grasps from tilted cameras through the camera mapping, checked by '
                        'the simulator (minutes)')
    p.add_argument('--states', type=int_in(1, MAX_BENCH_STATES), default=50,
                   help='defaults, camera: evaluation scenes per shape')
    p.add_argument('--seed', type=seed, default=0, help='defaults, camera: evaluation seed')
    p.add_argument('--floors', action='store_true',
                   help='defaults: compare score floors (false abstention on held-out scenes '
                        'against abstention on no-object images) instead')
    p.add_argument('--tilts', default='0,20,35,45', help='camera: tilts from straight down, deg')
    p.add_argument('--camera-size', default='640x480', help='camera: image WIDTHxHEIGHT')
    p.add_argument('--seconds', type=float_in(0, MAX_BENCH_SECONDS, low_open=True),
                   default=2.0, help='time budget per sim figure')
    p.add_argument('--checkpoint', default=None, help='model (default: the bundled one)')
    p.add_argument('--repeats', type=int_in(1, MAX_REPEATS), default=200,
                   help='timed calls per configuration')
    _add_device(p)
    _add_no_progress(p)
    p.set_defaults(func=cmd_bench)

def _add_grid(sub: Any) -> None:
    """``fga grid``."""
    p = sub.add_parser('grid', help='a rows x columns table of fga eval results (e.g. '
                                    'methods x distortions, Table 5): printed, JSON, figure')
    p.add_argument('cells', nargs='+', metavar='ROW/COLUMN=EVAL_JSON[,EVAL_JSON...]',
                   help='one cell: its row and column names and the fga eval --json file of '
                        'each of its runs (e.g. seeds; several are averaged, their range shown)')
    p.add_argument('--json', default=None, help='write the grid as JSON (default: none)')
    p.add_argument('--figure', default=None, help='write the grid figure (default: none)')
    p.add_argument('--title', default='', help='figure title (default: none)')
    p.set_defaults(func=cmd_grid)


def _quiet_stdout():
    """After a broken pipe: send what is still buffered for stdout to /dev/null, so that
    the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv=None):
    command = 'fga'
    try:
        args = build_parser().parse_args(argv)
        command = f'fga {args.command}'
        args.argv = list(sys.argv[1:] if argv is None else argv)
        status = args.func(args) or 0
        sys.stdout.flush()
        return status
    except (UserError, ValueError, FileNotFoundError, WriteError) as exc:
        print(f'{command}: error: {exc}', file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (`fga ... | head`): nothing to report
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f'{command}: interrupted', file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # (not a broken pipe) a path met outside file_writes
        print(f'{command}: error: {describe_os_error(exc)}', file=sys.stderr)
        return EXIT_USAGE
    except RecursionError:  # a file nested deeper than a reader without its own bound
        print(f'{command}: error: an input file is nested too deeply to read', file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(f'{command}: error: out of memory (an input larger than this machine can hold?)',
              file=sys.stderr)
        return EXIT_USAGE


if __name__ == '__main__':
    sys.exit(main())
