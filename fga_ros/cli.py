"""The ``fga`` command line: the product's jobs on the in-process simulator, without ROS.

Every sub-command is a thin adapter: parse arguments, call the library, print or save.
Errors a user can fix (bad arguments, missing or corrupt files) end with a one-line message
and exit status 2, never a traceback.
"""

import argparse
import json
from pathlib import Path
import signal
import sys

import numpy as np

from fga_ros import sim
from fga_ros.core.common.choices import DIVERGENCES, F_DIVERGENCES, RANKINGS
from fga_ros.core.inference.defaults import NUM_GRASPS, RANKING, REJECT_FRACTION

EXIT_USAGE = 2


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def _names(names):
    """'a, b, c or d': the simulator's and the core's names in help texts."""
    return ', '.join(names[:-1]) + f' or {names[-1]}' if len(names) > 1 else names[0]


def _add_scene_args(parser, default_shape='H'):
    parser.add_argument('--shape', default=default_shape,
                        help=f'shape family: {_names(sim.train_shapes())} (training) or '
                             f'{_names(sim.heldout_shapes())} (held out)')
    parser.add_argument('--seed', type=int, default=0, help='scene seed (same seed, same scene)')
    parser.add_argument('--distortion', default=sim.DISTORTIONS[0],
                        help=f'camera distortion: {_names(sim.DISTORTIONS)}')


def cmd_sim(args):
    scene = sim.make_scene(args.shape, args.seed, args.distortion)
    gt = sim.ground_truth(scene)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        sim.sim_figure(scene, gt, out, num_grasps=args.num_grasps)
    summary = sim.summary(scene, gt)
    if args.json:
        print(json.dumps(summary))
        return
    print(f'scene: {json.dumps(summary["scene"])}')
    print(f'feasible fraction: {summary["feasible_fraction"]:.4f} '
          f'(random grasps succeed {100 * summary["feasible_fraction"]:.2f}% of the time)')
    shares = ', '.join(f'{100 * s:.1f}%' for s in summary['mode_shares'])
    print(f'modes: {summary["num_modes"]} (shares, largest first: {shares})')
    if args.out:
        print(f'figure: {args.out}')


def cmd_bench(args):
    if args.target == 'sim':
        from fga_ros.bench_sim import print_sim_bench, run_sim_bench
        print_sim_bench(run_sim_bench(seconds_budget=args.seconds))
    else:
        from fga_ros.core.analysis.bench_propose import print_propose_bench, run_propose_bench
        print_propose_bench(run_propose_bench(checkpoint=args.checkpoint, repeats=args.repeats,
                                              device=args.device))


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_train(args):
    import yaml

    from fga_ros.core.common.config import config_to_dict, load_config, parse_overrides
    from fga_ros.core.common.env import SimEnvironment
    from fga_ros.core.models import model_file
    from fga_ros.core.training.trainer import CHECKPOINT_NAME, Trainer

    overrides = parse_overrides(args.set or [])
    for name in ('divergence', 'steps', 'seed', 'device'):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    config = load_config(args.preset, overrides)
    out = Path(args.out)
    if (out / CHECKPOINT_NAME).exists() and not args.resume:
        raise UserError(f'{out} already holds a training checkpoint; pass --resume to continue '
                        'it, or choose another --out (nothing was overwritten)')
    if args.warm_start and args.resume:
        raise UserError('--warm-start starts a new run; a resumed run already holds its '
                        'critic (drop one of --warm-start and --resume)')
    env = SimEnvironment(config.shapes, config.distortion, seed=config.seed)
    try:
        trainer = Trainer(config, env, out, resume=args.resume, warm_start=args.warm_start)
    except model_file.CheckpointError as exc:
        raise UserError(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / 'config.yaml').write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    writer = None
    try:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(out / 'tensorboard'))
    except ImportError:
        print('tensorboard is not installed: no TensorBoard scalars', file=sys.stderr)
    evaluate = _periodic_evaluation(config, args.seed_eval)
    print(f'training {config.divergence} for {config.steps} steps on {trainer.device} '
          f'(resuming at step {trainer.step}); run directory {out}')
    if args.warm_start:
        print(f'new run on the feature extractor and critic of {args.warm_start}')
    wall = args.wall_hours * 3600 if args.wall_hours else None
    # A job scheduler's (or `kill`'s) SIGTERM stops training like Ctrl-C: with a checkpoint.
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        trainer.run(progress=not args.no_progress, evaluate=evaluate, writer=writer,
                    wall_limit=wall)
    except KeyboardInterrupt:
        if trainer.prefilled:
            print(f'interrupted: checkpoint written to {out / CHECKPOINT_NAME}; '
                  f'continue with --resume', file=sys.stderr)
        else:
            print('interrupted during the replay prefill: nothing was saved', file=sys.stderr)
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
        if writer is not None:
            writer.close()
    model = trainer.export()
    print(f'step {trainer.step}: checkpoint {out / CHECKPOINT_NAME}, model {model}')
    curve = _plot_learning_curve(out)
    if curve:
        print(f'learning curve: {curve}')


def _plot_learning_curve(out):
    """Plot ``out/eval.jsonl`` to ``out/learning_curve.png``; None when there is no record."""
    from fga_ros.core.analysis.figures import learning_curve_figure
    from fga_ros.core.training.trainer import EVAL_LOG_NAME
    log = out / EVAL_LOG_NAME
    if not log.exists():
        return None
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    path = out / 'learning_curve.png'
    learning_curve_figure(records, path)
    return path


def _periodic_evaluation(config, seed):
    """Evaluation callback for the trainer: accuracy with and without rejection."""
    from fga_ros.core.analysis.evaluation import quick_accuracy

    def evaluate(trainer):
        return quick_accuracy(trainer.model, config, config.shapes + sim.heldout_shapes(),
                              config.eval_states, seed=seed)
    return evaluate


def _load_proposer(checkpoint, device):
    from fga_ros.core.inference.proposer import Proposer
    from fga_ros.core.models.model_file import CheckpointError
    try:
        return Proposer.from_checkpoint(checkpoint, device=device)
    except CheckpointError as exc:
        raise UserError(str(exc)) from None


def _split_shapes(text):
    shapes = tuple(s.strip() for s in text.split(',') if s.strip())
    if not shapes:
        raise UserError(f'--shapes must name at least one shape, e.g. {",".join(sim.shapes())}')
    return shapes


def cmd_eval(args):
    from fga_ros.core.analysis.evaluation import evaluate, format_table
    from fga_ros.core.analysis.figures import critic_actor_figure, rank_share_figure
    from fga_ros.core.inference.cem import CEMSampler

    proposer = _load_proposer(args.checkpoint, args.device)
    state = proposer.snapshot()
    sampler = CEMSampler(state.model, seed=args.seed) if args.method == 'cem' else proposer
    shapes = _split_shapes(args.shapes)
    results = evaluate(sampler, shapes, args.states, args.actions, distortion=args.distortion,
                       seed=args.seed, reject_fraction=args.reject,
                       progress=not args.no_progress)
    print(format_table(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + '\n')
        print(f'metrics: {args.json}')
    if args.plots:
        out = Path(args.plots)
        out.mkdir(parents=True, exist_ok=True)
        rank_share_figure(results, out / 'rank_shares.png')
        for shape in shapes:
            scene = sim.make_scene(shape, args.seed, args.distortion)
            critic_actor_figure(state.model, state.config, scene, sim.ground_truth(scene),
                                out / f'critic_actor_{shape}.png')
        print(f'figures: {out}/rank_shares.png, {out}/critic_actor_<shape>.png')


def _read_image(path):
    import cv2
    path = Path(path)
    if not path.is_file():
        raise UserError(f'image not found: {path}')
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise UserError(f'{path} is not a readable image (PNG, JPEG, ...)')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def cmd_propose(args):
    from fga_ros.core.analysis.figures import proposal_figure

    proposer = _load_proposer(args.checkpoint, args.device)
    scene = None
    if args.image:
        image = _read_image(args.image)
    else:
        scene = sim.make_scene(args.shape, args.seed, args.distortion)
        image = sim.render(scene)
    optional = {name: value for name, value in (('reject_fraction', args.reject),
                                                ('oversample', args.oversample))
                if value is not None}
    proposal = proposer.propose(image, num_grasps=args.num, ranking=args.ranking,
                                seed=args.seed, **optional)
    feasible = None
    if scene is not None:
        feasible = sim.grasp_success(scene, proposal.actions)
    if args.json:
        rows = [{'rank': int(proposal.ranks[i]), 'x': float(a[0]), 'y': float(a[1]),
                 'angle': float(a[2]), 'score': float(proposal.scores[i]),
                 'log_density': float(proposal.log_density[i]),
                 'mode': int(proposal.mode_ids[i]),
                 **({'feasible': bool(feasible[i])} if feasible is not None else {})}
                for i, a in enumerate(proposal.actions)]
        print(json.dumps({'grasps': rows, 'num_sampled': proposal.num_sampled,
                          'num_rejected': proposal.num_rejected,
                          'inference_ms': proposal.inference_ms}))
    else:
        source = args.image or f'scene {args.shape} seed {args.seed} ({args.distortion})'
        print(f'{len(proposal.actions)} grasps for {source} in {proposal.inference_ms:.1f} ms '
              f'({proposal.num_sampled} sampled, {proposal.num_rejected} rejected as lowest '
              f'density, {proposal.num_modes} modes)')
        header = f'{"rank":>4} {"x px":>7} {"y px":>7} {"angle deg":>9} {"score":>6} {"mode":>4}'
        print(header + ('  feasible' if feasible is not None else ''))
        for i, (x, y, a) in enumerate(proposal.actions):
            line = (f'{proposal.ranks[i]:>4} {x:>7.2f} {y:>7.2f} {np.degrees(a):>9.1f} '
                    f'{proposal.scores[i]:>6.3f} {proposal.mode_ids[i]:>4}')
            if feasible is not None:
                line += f'  {"yes" if feasible[i] else "no"}'
            print(line)
        if feasible is not None:
            print(f'feasible (simulator ground truth): {int(feasible.sum())}/{len(feasible)}')
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        proposal_figure(image, proposal, args.out)
        if not args.json:
            print(f'figure: {args.out}')


def cmd_demo(args):
    """The main job on the embedded defaults: bundled model, held-out Box scene."""
    args.checkpoint = None
    args.image = None
    print('fga demo: the bundled model proposes grasps on a held-out Box scene and on an H '
          '(in-process simulator)')
    for shape in ('Box', 'H'):
        args.shape = shape
        args.out = f'{args.out_dir}/demo_{shape}.png'
        cmd_propose(args)


def cmd_modes(args):
    """Section 3's controlled experiment: generators trained on the simulator, no critic."""
    from fga_ros.core.analysis import oracle_experiment as oracle

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
    if args.json:
        rows = {k: {n: v for n, v in r.items() if n != 'actions'} for k, r in results.items()}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(
            {'scene': scene.to_dict(), 'steps': steps, 'lr': lr, 'rng_seed': args.rng_seed,
             'results': rows}, indent=2) + '\n')
        print(f'metrics: {args.json}')
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        oracle.modes_figure(results, scene, args.out)
        print(f'figure: {args.out}')


def build_parser():
    parser = argparse.ArgumentParser(
        prog='fga', description='Learn to propose all feasible planar grasps (no ROS needed).')
    sub = parser.add_subparsers(dest='command', required=True)

    p = sub.add_parser('sim', help='render a scene with its ground-truth feasible grasps')
    _add_scene_args(p)
    p.add_argument('--out', default='sim.png', help='PNG figure path ("" for none)')
    p.add_argument('--num-grasps', type=int, default=24, help='feasible grasps drawn')
    p.add_argument('--json', action='store_true',
                   help='print the scene and its ground-truth summary as one JSON object')
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser('train', help='train actor and critic on the in-process simulator')
    p.add_argument('--preset', default='cpu',
                   help='preset name in config/presets (cpu, paper, tiny) or a YAML path')
    p.add_argument('--out', required=True, help='run directory (checkpoints, TensorBoard)')
    p.add_argument('--divergence', default=None, help=_names(DIVERGENCES))
    p.add_argument('--steps', type=int, default=None, help='total training steps')
    p.add_argument('--seed', type=int, default=None, help='seed of every random generator')
    p.add_argument('--device', default=None, help='auto, cpu, cuda, cuda:N')
    p.add_argument('--set', action='append', metavar='KEY=VALUE',
                   help='override any config field (YAML value), repeatable')
    p.add_argument('--resume', action='store_true', help='continue the checkpoint in --out')
    p.add_argument('--warm-start', default=None, metavar='MODEL',
                   help='start from the feature extractor and critic of this model or '
                        'checkpoint (same critic architecture); the actor starts fresh')
    p.add_argument('--wall-hours', type=float, default=None,
                   help='stop (checkpointed) after this many hours')
    p.add_argument('--seed-eval', type=int, default=1_000_000,
                   help='first scene seed of the periodic evaluation')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.set_defaults(func=cmd_train)

    p = sub.add_parser('eval', help='Table 3 metrics: accuracy and mode-rank shares')
    p.add_argument('--checkpoint', default=None, help='model or checkpoint (default: bundled)')
    p.add_argument('--shapes', default=','.join(sim.shapes()), help='comma-separated shapes')
    p.add_argument('--states', type=int, default=64, help='scenes per shape (paper: 1024)')
    p.add_argument('--actions', type=int, default=1024, help='samples per scene (paper: 1024)')
    p.add_argument('--distortion', default=sim.DISTORTIONS[0],
                   help=_names(sim.DISTORTIONS))
    p.add_argument('--reject', type=float, default=REJECT_FRACTION,
                   help='fraction rejected as lowest density for the * metrics')
    p.add_argument('--method', choices=['actor', 'cem'], default='actor',
                   help='evaluate the actor, or the critic + CEM baseline')
    p.add_argument('--seed', type=int, default=0, help='evaluation seed')
    p.add_argument('--json', default=None, help='write the metrics as JSON to this file')
    p.add_argument('--plots', default=None, help='write PNG figures to this directory')
    p.add_argument('--device', default='cpu', help='cpu, cuda or auto')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.set_defaults(func=cmd_eval)

    for name, func, text in (
            ('propose', cmd_propose, 'propose ranked grasps for one image or scene'),
            ('demo', cmd_demo, 'the main job: bundled model on simulator scenes')):
        p = sub.add_parser(name, help=text)
        if name == 'propose':
            p.add_argument('--checkpoint', default=None,
                           help='model or checkpoint (default: bundled)')
            p.add_argument('--image', default=None,
                           help='128x128 RGB image file (default: a simulator scene)')
            _add_scene_args(p)
            p.add_argument('--out', default='proposals.png', help='PNG figure ("" for none)')
            p.add_argument('--json', action='store_true', help='print grasps as JSON')
        else:
            p.add_argument('--seed', type=int, default=0, help='scene seed')
            p.add_argument('--distortion', default=sim.DISTORTIONS[0],
                           help=f'camera distortion: {_names(sim.DISTORTIONS)}')
            p.add_argument('--out-dir', default='.', help='where demo_<shape>.png go')
            p.set_defaults(json=False)
        p.add_argument('--num', type=int, default=NUM_GRASPS, help='grasps to return')
        p.add_argument('--reject', type=float, default=None,
                       help='fraction of samples rejected as lowest KDE density (default: '
                            "the core's REJECT_FRACTION, the paper's 10 %%)")
        # the demo shows every mode; a caller of propose gets the best grasps first
        p.add_argument('--ranking', choices=RANKINGS,
                       default='diverse' if name == 'demo' else RANKING,
                       help='best score first, or best of each mode first')
        p.add_argument('--oversample', type=int, default=None,
                       help='actor samples per returned grasp, the critic keeps the best '
                            "(default: the core's OVERSAMPLE)")
        p.add_argument('--device', default='cpu', help='cpu, cuda or auto')
        p.set_defaults(func=func)

    p = sub.add_parser('modes', help='controlled experiment: which divergences cover all modes')
    p.add_argument('--shape', default='H', help=f'shape family: {_names(sim.shapes())}')
    p.add_argument('--seed', type=int, default=0, help='scene seed (same seed, same scene)')
    p.add_argument('--divergences', default=','.join(F_DIVERGENCES),
                   help=f'comma-separated: {", ".join(F_DIVERGENCES)}')
    p.add_argument('--steps', type=int, default=None,
                   help='generator updates per divergence (default: oracle_experiment.STEPS)')
    p.add_argument('--lr', type=float, default=None,
                   help='Adam learning rate (default: oracle_experiment.LR)')
    p.add_argument('--samples', type=int, default=None,
                   help='samples evaluated per divergence (default: oracle_experiment.SAMPLES)')
    p.add_argument('--rng-seed', type=int, default=0,
                   help='seed of initialisation, latents and resampling noise')
    p.add_argument('--out', default='modes.png', help='PNG figure ("" for none)')
    p.add_argument('--json', default=None, help='write the metrics as JSON to this file')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.set_defaults(func=cmd_modes)

    p = sub.add_parser('bench', help='print throughput / latency figures')
    p.add_argument('target', choices=['sim', 'propose'])
    p.add_argument('--seconds', type=float, default=2.0, help='time budget per sim figure')
    p.add_argument('--checkpoint', default=None, help='model (default: the bundled one)')
    p.add_argument('--repeats', type=int, default=200, help='timed calls per configuration')
    p.add_argument('--device', default='cpu', help='cpu, cuda or auto')
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (UserError, ValueError, FileNotFoundError) as exc:
        print(f'fga {args.command}: error: {exc}', file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == '__main__':
    sys.exit(main())
