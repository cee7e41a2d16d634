"""trainer_node: trains the actor and critic on simulators reached over ROS.

The core ``Trainer.run`` (the same loop as ``fga train``: prefill, periodic evaluation,
checkpoints, wall-clock limit) runs in its own thread (never in a callback) on a
``RosEnvironment`` over the ``sim_namespaces`` simulators; the main thread spins the node,
which answers the service responses. ``TrainerNodeHooks`` connect the loop to ROS: logging,
``diagnostics`` (DiagnosticArray) and, after every checkpoint, the exported model path on
``checkpoint`` (latched, for grasp_proposal_node).

The run directory describes itself (``run.yaml``): with ``resume`` true a run found in
``out_dir`` continues with its own configuration and target steps, and only the
``config.<field>``, ``steps`` and ``preset`` parameters that are set explicitly change it
(or are refused, naming the field and the reason). Every ``TrainConfig`` field is a
read-only parameter ``config.<field>``, unset unless given. SIGINT stops the loop after the
current step (or the simulator call it waits for) and writes a checkpoint. An error in the
learning thread (a simulator that fails or stops answering) is logged and published, then
the node writes a checkpoint and exits with status 1.
"""

import math
from pathlib import Path
import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String

from fga_ros.core.analysis.evaluation import TRAINING_EVAL_SEED, periodic_evaluation
from fga_ros.core.common.config import field_descriptions, field_names, load_config
from fga_ros.core.training import run_record as runs
from fga_ros.core.training.hooks import STOPPED, WALL_LIMIT, TrainingHooks
from fga_ros.core.training.trainer import MODEL_NAME, Trainer
from fga_ros.nodes.common import closing_logger, descriptor, run
from fga_ros.nodes.ros_environment import EnvironmentStoppedError, RosEnvironment


class TrainerNodeHooks(TrainingHooks):
    """``Trainer.run`` seen from ROS: logs, diagnostics, the model path, shutdown."""

    def __init__(self, node):
        self.node = node
        self.target = 0

    def on_start(self, trainer, target):
        self.target = target
        if not trainer.prefilled and trainer.step < target:
            self.node.get_logger().info('prefilling the replay memory with demonstrations')

    def on_log(self, step, scalars):
        values = {'step': step, 'total_steps': self.target}
        for name, value in scalars.items():
            group, key = name.split('/', 1)
            values[key if group == 'train' else f'{group}_{key}'] = value
        nan = any(isinstance(v, float) and math.isnan(v) for v in values.values())
        self.node.publish_status(DiagnosticStatus.WARN if nan else DiagnosticStatus.OK,
                                 f'step {step}/{self.target}', values)

    def on_eval(self, step, metrics):
        text = ' '.join(f'{k}={v:.3f}' for k, v in metrics.items())
        self.node.get_logger().info(f'evaluation at step {step}: {text}')
        self.node.publish_status(DiagnosticStatus.OK, f'evaluation at step {step}',
                                 {'step': step, **metrics})

    def on_checkpoint(self, step, paths):
        closing_logger(self.node).info(f'checkpoint written: {paths.checkpoint} (step {step})')
        self.node.announce_model(paths.model)

    def should_stop(self):
        return self.node.stop_requested.is_set() or not self.node.context.ok()

    def on_end(self, result):
        logger = closing_logger(self.node)
        if result.reason == WALL_LIMIT:
            logger.warning(f'wall-clock limit reached at step {result.step} of {result.target}; '
                           'launch again with the same out_dir to continue')
        elif result.reason == STOPPED:
            logger.info(f'stopped at step {result.step} of {result.target}')
        else:
            logger.info(f'finished at step {result.step}')
        model = self.node.out_dir / MODEL_NAME
        if result.saved is None and model.is_file():  # nothing trained: the run's own model
            self.node.announce_model(model)


class TrainerNode(Node):
    """Runs ``fga_ros.core.training.trainer.Trainer`` over simulator services."""

    def __init__(self, **kwargs):
        super().__init__('trainer', **kwargs)
        self._declare_parameters()
        self.out_dir = Path(self.get_parameter('out_dir').value).expanduser()
        config, record, changes = self._open_run()
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.checkpoint_pub = self.create_publisher(String, 'checkpoint', latched)
        self.env = RosEnvironment(self, list(self.get_parameter('sim_namespaces').value),
                                  self.get_parameter('service_timeout').value,
                                  shapes=config.shapes, distortion=config.distortion,
                                  seed=config.seed)
        # Raises CheckpointError when the checkpoint is unreadable or does not fit.
        warm_start = None if record else self.get_parameter('warm_start').value or None
        self.trainer = Trainer(config, self.env, self.out_dir, resume=record is not None,
                               warm_start=warm_start)
        self.config = config
        if config.steps < self.trainer.step:
            raise runs.RunError(f'steps {config.steps} is below the step the run has reached, '
                                f'{self.trainer.step}')
        record = self._record_run(record, config, changes, warm_start)
        self.evaluate = periodic_evaluation(TRAINING_EVAL_SEED if record.eval_seed is None
                                            else record.eval_seed)
        hours = self.get_parameter('wall_hours').value
        self.wall_limit = hours * 3600 if hours > 0 else None
        self.hooks = TrainerNodeHooks(self)
        self.stop_requested = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self.learn, name='learning', daemon=True)
        self.thread.start()

    def _declare_parameters(self):
        self.declare_parameter('preset', '', descriptor(
            'training preset (config/presets/<name>.yaml) or YAML path; "" = the run\'s own '
            f'when resuming, else {runs.DEFAULT_PRESET}; config.* override it', read_only=True))
        self.declare_parameter('out_dir', 'fga_runs/ros', descriptor(
            'run directory: run.yaml, checkpoint, replay memory, exported model, eval.jsonl',
            read_only=True))
        self.declare_parameter('resume', True, descriptor(
            'continue the run in out_dir when it holds one (its own configuration and target '
            'steps; explicitly set config.*, steps and preset change it or are refused); '
            'false refuses an out_dir that holds a run', read_only=True))
        self.declare_parameter('warm_start', '', descriptor(
            'model or checkpoint whose feature extractor and critic start a new run (the '
            'actor starts fresh; the critic architecture must match); "" = none; unused '
            'when a run in out_dir is resumed', read_only=True))
        self.declare_parameter('steps', 0, descriptor(
            'total training steps to reach; 0 = config.steps (of the resumed run, or the '
            'preset)', read_only=True, int_range=(0, 10**9)))
        self.declare_parameter('wall_hours', 0.0, descriptor(
            'stop (checkpointed) after this many hours of this process; 0 = no limit',
            read_only=True, float_range=(0.0, 10.0**6)))
        self.declare_parameter('sim_namespaces', [''], descriptor(
            'namespaces of the grasp_sim_node instances to train on ("" = this node\'s '
            'namespace); each step spreads config.interaction_steps new scenes over them, '
            'in parallel', read_only=True))
        self.declare_parameter('service_timeout', 30.0, descriptor(
            'seconds to wait for a simulator service', read_only=True,
            float_range=(0.1, 3600.0)))
        help_texts = field_descriptions()
        for name in field_names():  # unset (None) unless given: a resume keeps the run's
            self.declare_parameter(f'config.{name}', None, descriptor(
                f'TrainConfig.{name}: {help_texts.get(name, "")} (unset: the resumed run\'s '
                "value, else the preset's)", read_only=True, dynamic_typing=True))

    def _explicit_settings(self):
        """(preset or None, {field: value}) of the parameters that were set explicitly."""
        overrides = {name: value for name in field_names()
                     if (value := self.get_parameter(f'config.{name}').value) is not None}
        if self.get_parameter('steps').value:
            overrides['steps'] = self.get_parameter('steps').value
        return self.get_parameter('preset').value or None, overrides

    def _open_run(self):
        """(config, the run's record or None for a new run, {field: (old, new)} changes).

        Raises:
            RunError: out_dir holds a run and resume is false, or a change a resumed run
                may not make (naming field, values and reason).
        """
        preset, overrides = self._explicit_settings()
        if not runs.holds_run(self.out_dir):
            config = load_config(preset or runs.DEFAULT_PRESET, overrides)
            return config, None, {}
        if not self.get_parameter('resume').value:
            raise runs.RunError(
                f'{self.out_dir} already holds a training run; set resume: true to continue '
                'it, or choose another out_dir (nothing was overwritten)')
        record = runs.read_run(self.out_dir)
        config, changes = runs.resumed_config(record, preset, overrides,
                                              (self.out_dir / runs.CHECKPOINT_NAME).is_file())
        return config, record, changes

    def _record_run(self, record, config, changes, warm_start):
        """Write run.yaml for a new or resumed run, log what happens; return the record."""
        preset, overrides = self._explicit_settings()
        settings = {'preset': preset} if preset else {}
        settings.update({f'config.{k}': v for k, v in overrides.items()}, out_dir=self.out_dir)
        command = 'trainer_node ' + ' '.join(f'{k}:={v}' for k, v in settings.items())
        logger, step = self.get_logger(), self.trainer.step
        if record is None:
            record = runs.RunRecord(
                config=config, preset=preset or runs.DEFAULT_PRESET, overrides=overrides,
                eval_seed=TRAINING_EVAL_SEED, command=command, created=runs.now(),
                warm_start=warm_start)
            logger.info(f'training {config.divergence} to step {config.steps} in '
                        f'{self.out_dir}' + (f' on the feature extractor and critic of '
                                             f'{warm_start}' if warm_start else ''))
        else:
            if step >= config.steps:
                logger.info(f'{self.out_dir} is complete: step {step} of {config.steps}; '
                            'raise steps to train further')
                return record
            record = runs.resumed_record(record, config, preset, overrides, command, step,
                                         changes)
            logger.info(f'resuming {self.out_dir} at step {step} of {config.steps}'
                        + (f'; changed: {runs.format_changes(changes)}' if changes else ''))
        runs.write_run(self.out_dir, record)
        return record

    # -- learning thread ---------------------------------------------------------------------

    def _stopping(self):
        return self.stop_requested.is_set() or not self.context.ok()

    def learn(self):
        """The learning thread: ``Trainer.run`` to the target step, with the node's hooks."""
        try:
            self.trainer.run(hooks=[self.hooks], evaluate=self.evaluate,
                             wall_limit=self.wall_limit)
        except EnvironmentStoppedError:
            pass
        except Exception as error:  # noqa: BLE001 - reported, then the node stops cleanly
            if self._stopping():  # a simulator call cut short by the shutdown
                return
            self.error = error
            step = self.trainer.step
            self.get_logger().error(f'training stopped at step {step}: '
                                    f'{type(error).__name__}: {error}')
            self.publish_status(DiagnosticStatus.ERROR, str(error), {'step': step})
            # End the node (exit status 1), and with it train.launch.py: a trainer that
            # cannot go on should not idle. Trainer.run wrote a checkpoint on its way out.
            self.context.try_shutdown()

    def announce_model(self, path):
        """Publish the exported model's absolute path on ``checkpoint`` (while ROS runs)."""
        if self.context.ok():
            self.checkpoint_pub.publish(String(data=str(Path(path).resolve())))

    def publish_status(self, level, message, values):
        """One DiagnosticStatus; ``level`` is a DiagnosticStatus constant (a byte)."""
        status = DiagnosticStatus(level=level, name=f'{self.get_name()}: training',
                                  message=message, hardware_id='fga_ros')
        status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    # -- shutdown -----------------------------------------------------------------------------

    def close(self):
        """Stop learning after the current step (or waiting call); ``Trainer.run`` then
        writes the checkpoint."""
        self.stop_requested.set()
        self.env.stop()
        self.thread.join()


def main(args=None):
    return run(TrainerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
