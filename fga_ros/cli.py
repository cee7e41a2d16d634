"""The ``fga`` command line: the product's jobs on the in-process simulator, without ROS.

Every sub-command is a thin adapter: parse arguments, call the library, print or save.
Errors a user can fix (bad arguments, missing or corrupt files) end with a one-line message
and exit status 2, never a traceback.
"""

import argparse
import json
from pathlib import Path
import sys

EXIT_USAGE = 2


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def _add_scene_args(parser, default_shape='H'):
    parser.add_argument('--shape', default=default_shape,
                        help='shape family: H, 8, Spoon, T (training) or Box (held out)')
    parser.add_argument('--seed', type=int, default=0, help='scene seed (same seed, same scene)')
    parser.add_argument('--distortion', default='none',
                        help='camera distortion: none, rotation, projection, both')


def cmd_sim(args):
    from fga_ros import sim
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
        from fga_ros.core.bench_propose import print_propose_bench, run_propose_bench
        print_propose_bench(run_propose_bench(checkpoint=args.checkpoint, repeats=args.repeats,
                                              device=args.device))


def cmd_train(args):
    import yaml

    from fga_ros.core import checkpoint as ckpt
    from fga_ros.core.config import config_to_dict, load_config, parse_overrides
    from fga_ros.core.env import SimEnvironment
    from fga_ros.core.trainer import CHECKPOINT_NAME, Trainer

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
    out.mkdir(parents=True, exist_ok=True)
    env = SimEnvironment(config.shapes, config.distortion, seed=config.seed)
    try:
        trainer = Trainer(config, env, out, resume=args.resume)
    except ckpt.CheckpointError as exc:
        raise UserError(str(exc)) from None
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
    wall = args.wall_hours * 3600 if args.wall_hours else None
    try:
        trainer.run(progress=not args.no_progress, evaluate=evaluate, writer=writer,
                    wall_limit=wall)
    except KeyboardInterrupt:
        print(f'interrupted: checkpoint written to {out / CHECKPOINT_NAME}; '
              f'continue with --resume', file=sys.stderr)
        return
    finally:
        if writer is not None:
            writer.close()
    model = trainer.export()
    print(f'step {trainer.step}: checkpoint {out / CHECKPOINT_NAME}, model {model}')


def _periodic_evaluation(config, seed):
    """Evaluation callback for the trainer: accuracy with and without rejection."""
    from fga_ros.core.evaluation import quick_accuracy

    def evaluate(trainer):
        return quick_accuracy(trainer.model, config, config.shapes + ('Box',),
                              config.eval_states, seed=seed)
    return evaluate


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
    p.add_argument('--divergence', default=None, help='js, fkl, rkl, gan or me')
    p.add_argument('--steps', type=int, default=None, help='total training steps')
    p.add_argument('--seed', type=int, default=None, help='seed of every random generator')
    p.add_argument('--device', default=None, help='auto, cpu, cuda, cuda:N')
    p.add_argument('--set', action='append', metavar='KEY=VALUE',
                   help='override any config field (YAML value), repeatable')
    p.add_argument('--resume', action='store_true', help='continue the checkpoint in --out')
    p.add_argument('--wall-hours', type=float, default=None,
                   help='stop (checkpointed) after this many hours')
    p.add_argument('--seed-eval', type=int, default=1_000_000,
                   help='first scene seed of the periodic evaluation')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.set_defaults(func=cmd_train)

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
