"""trainer_node: trains the actor and critic on simulators reached over ROS.

The core ``Trainer`` runs in its own thread (never in a callback) on a ``RosEnvironment``
over the ``sim_namespaces`` simulators; the main thread spins the node, which answers the
service responses. Every ``TrainConfig`` field is a read-only parameter ``config.<field>``
(defaults from the ``preset``). Publishes ``diagnostics`` (DiagnosticArray) and, after every
checkpoint, the exported model path on ``checkpoint`` (latched, for grasp_proposal_node).
SIGINT stops the loop after the current step (or the simulator call it waits for) and writes
a checkpoint. An error in the learning thread (a simulator that fails or stops answering) is
logged and published, then the node writes a checkpoint and exits with status 1.
"""

import dataclasses
import math
from pathlib import Path
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String

from fga_ros.core.common.config import (
    config_from_dict,
    config_to_dict,
    field_descriptions,
    load_config,
)
from fga_ros.core.models.model_file import CheckpointError
from fga_ros.core.training.trainer import CHECKPOINT_NAME, Trainer
from fga_ros.nodes.common import closing_logger, descriptor, run
from fga_ros.nodes.ros_environment import EnvironmentStoppedError, RosEnvironment


class TrainerNode(Node):
    """Runs ``fga_ros.core.training.trainer.Trainer`` over simulator services."""

    def __init__(self, **kwargs):
        super().__init__('trainer', **kwargs)
        self.declare_parameter('preset', 'cpu', descriptor(
            'training preset (config/presets/<name>.yaml) or YAML path; config.* override it',
            read_only=True))
        self.declare_parameter('out_dir', 'fga_runs/ros', descriptor(
            'run directory: checkpoint, replay memory, exported model', read_only=True))
        self.declare_parameter('resume', True, descriptor(
            'continue from out_dir/checkpoint.pt when it exists; false refuses a run '
            'directory that holds one', read_only=True))
        self.declare_parameter('warm_start', '', descriptor(
            'model or checkpoint whose feature extractor and critic start a new run (the '
            'actor starts fresh; the critic architecture must match); "" = none; unused '
            'when an out_dir checkpoint is resumed', read_only=True))
        self.declare_parameter('steps', 0, descriptor(
            'total training steps to reach; 0 = config.steps', read_only=True,
            int_range=(0, 10**9)))
        self.declare_parameter('sim_namespaces', [''], descriptor(
            'namespaces of the grasp_sim_node instances to train on ("" = this node\'s '
            'namespace); each step spreads config.interaction_steps new scenes over them, '
            'in parallel', read_only=True))
        self.declare_parameter('service_timeout', 30.0, descriptor(
            'seconds to wait for a simulator service', read_only=True,
            float_range=(0.1, 3600.0)))
        base = load_config(self.get_parameter('preset').value)
        help_texts = field_descriptions()
        for name, value in config_to_dict(base).items():
            self.declare_parameter(f'config.{name}', value, descriptor(
                f'TrainConfig.{name}: {help_texts.get(name, "")}', read_only=True,
                dynamic_typing=True))
        values = {f.name: self.get_parameter(f'config.{f.name}').value
                  for f in dataclasses.fields(base)}
        self.config = config_from_dict(values, base=base, source='trainer parameters')

        self.out_dir = Path(self.get_parameter('out_dir').value).expanduser()
        resume = self.get_parameter('resume').value
        if not resume and (self.out_dir / CHECKPOINT_NAME).exists():
            raise CheckpointError(
                f'{self.out_dir} already holds a training checkpoint; set resume: true to '
                'continue it, or choose another out_dir (nothing was overwritten)')
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.checkpoint_pub = self.create_publisher(String, 'checkpoint', latched)
        self.env = RosEnvironment(self, list(self.get_parameter('sim_namespaces').value),
                                  self.get_parameter('service_timeout').value,
                                  shapes=self.config.shapes, distortion=self.config.distortion,
                                  seed=self.config.seed)
        # Raises CheckpointError (naming the differing fields) when out_dir holds a run of
        # another configuration.
        resuming = resume and (self.out_dir / CHECKPOINT_NAME).exists()
        warm_start = None if resuming else self.get_parameter('warm_start').value or None
        self.trainer = Trainer(self.config, self.env, self.out_dir, resume=resuming,
                               warm_start=warm_start)
        self.total_steps = self.get_parameter('steps').value or self.config.steps
        self.stop_requested = threading.Event()
        self.error = None
        if warm_start:
            self.get_logger().info(f'new run on the feature extractor and critic of '
                                   f'{warm_start}')
        if self.trainer.step:
            self.get_logger().info(f'resuming {self.out_dir / CHECKPOINT_NAME} at step '
                                   f'{self.trainer.step}')
        if self.trainer.step >= self.total_steps:
            self.get_logger().warning(f'already at step {self.trainer.step} >= {self.total_steps} '
                                   'total steps: nothing to train (raise steps to continue)')
        self.thread = threading.Thread(target=self.learn, name='learning', daemon=True)
        self.thread.start()
        self.get_logger().info(
            f'training {self.config.divergence} to step {self.total_steps} in {self.out_dir}')

    # -- learning thread ---------------------------------------------------------------------

    def _stopping(self):
        return self.stop_requested.is_set() or not self.context.ok()

    def learn(self):
        """The learning loop (own thread): prefill, then train_step until total_steps."""
        trainer, cfg = self.trainer, self.config
        started, start_step = time.monotonic(), trainer.step
        seconds_before = trainer.train_seconds
        try:
            if not trainer.prefilled:
                self.get_logger().info('prefilling the replay memory with demonstrations')
                trainer.prefill()
            while trainer.step < self.total_steps and not self._stopping():
                stats = trainer.train_step()
                trainer.train_seconds = seconds_before + time.monotonic() - started
                if trainer.step % cfg.log_every == 0:
                    rate = (trainer.step - start_step) / max(1e-9, time.monotonic() - started)
                    self.publish_diagnostics(stats, rate)
                if cfg.checkpoint_every and trainer.step % cfg.checkpoint_every == 0:
                    self.checkpoint()
            if not self._stopping():
                self.checkpoint()
                self.get_logger().info(f'finished at step {trainer.step}')
        except EnvironmentStoppedError:
            pass
        except Exception as error:  # noqa: BLE001 - reported, then the node stops cleanly
            if self._stopping():  # a simulator call cut short by the shutdown
                return
            self.error = error
            self.get_logger().error(f'training stopped at step {trainer.step}: '
                                    f'{type(error).__name__}: {error}')
            self.publish_status(DiagnosticStatus.ERROR, str(error), {'step': trainer.step})
            # End the node (close() still writes the checkpoint; exit status 1), and with it
            # train.launch.py: a trainer that cannot go on should not idle.
            self.context.try_shutdown()

    def checkpoint(self):
        """Write the checkpoint and the exported model; announce the model path."""
        self.trainer.save()
        model = self.trainer.export()
        self.checkpoint_pub.publish(String(data=str(Path(model).resolve())))

    def publish_diagnostics(self, stats, rate):
        trainer = self.trainer
        values = {'step': trainer.step, 'total_steps': self.total_steps,
                  'steps_per_second': round(rate, 3),
                  'collection_success_rate': trainer.successes / max(1, trainer.interactions)}
        values.update(dataclasses.asdict(stats))
        values.update({f'replay_{k}': v for k, v in trainer.replay.sizes().items()})
        level = DiagnosticStatus.OK
        if any(isinstance(v, float) and math.isnan(v) for v in values.values()):
            level = DiagnosticStatus.WARN
        self.publish_status(level, f'step {trainer.step}/{self.total_steps}', values)

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
        """Stop learning after the current step (or waiting call) and write a checkpoint."""
        self.stop_requested.set()
        self.env.stop()
        self.thread.join()
        if self.trainer.step > 0 or self.trainer.prefilled:
            path = self.trainer.save()
            closing_logger(self).info(f'checkpoint written: {path} (step {self.trainer.step})')


def main(args=None):
    return run(TrainerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
