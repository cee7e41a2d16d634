"""What ``fga train`` plugs into ``Trainer.run``: progress bars, TensorBoard, Ctrl-C/SIGTERM."""

import math
import os
import signal
import sys
import threading

from tqdm import tqdm

from fga_ros.core.models.camera_view import describe_fit
from fga_ros.core.training.hooks import TrainingHooks
from fga_ros.file_writes import WriteError, write_error


class ProgressHooks(TrainingHooks):
    """tqdm bars for the prefill (scenes) and the training steps; messages above them.

    Before the training bar, the camera-view fit's line (``camera_view: fitted``). The
    training bar shows steps/s and the ETA, and every ``log_every`` steps ``critic``
    (critic accuracy on its last batch), ``score`` (mean critic score of the actor's
    samples) and ``hit`` (share of tried grasps that succeeded, whole run).
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = None
        self.training = False  # the bar is the training one (else the prefill's, or none)
        self.target = 0
        self.divergence = ''
        self.trainer = None

    def on_start(self, trainer, target):
        self.trainer = trainer
        self.target = target
        self.divergence = trainer.config.divergence
        if not trainer.prefilled and trainer.step < target:
            self.bar = tqdm(total=trainer.prefill_scenes()[0], desc='prefill (scenes)',
                            unit='scene', disable=not self.enabled)

    def on_prefill(self, scenes_done, scenes_total):
        self.bar.update(1)

    def on_step(self, step, stats):
        if not self.training:
            self.close()
            self.training = True
            fit = getattr(self.trainer, 'camera_view_fit', None)
            if fit is not None:
                tqdm.write(describe_fit(fit))
            self.bar = tqdm(total=self.target, initial=step - 1, unit='step',
                            desc=f'train {self.divergence}', dynamic_ncols=True,
                            disable=not self.enabled)
        self.bar.update(1)

    def on_log(self, step, scalars):
        self.bar.set_postfix(critic=f'{scalars["train/critic_accuracy"]:.2f}',
                             score=f'{scalars["train/actor_score"]:.2f}',
                             hit=f'{scalars["train/collection_success_rate"]:.2f}')

    def on_eval(self, step, metrics):
        tqdm.write(f'step {step}: ' + ' '.join(f'{k}={v:.3f}' for k, v in metrics.items()))

    def on_end(self, result):
        self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TensorBoardHooks(TrainingHooks):
    """Scalars of ``on_log`` and ``on_eval`` (as ``eval/<name>``) in ``log_dir``.

    Args:
        log_dir: event file directory.
        purge_step: a resumed run's first new step: events from it on (written by the
            interrupted process after its last checkpoint) are hidden, not repeated.
    """

    def __init__(self, log_dir, purge_step: int | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print('tensorboard is not installed: no TensorBoard scalars', file=sys.stderr)
            self.writer = None
            return
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)
        self._excepthook = threading.excepthook
        threading.excepthook = self._writer_thread_error

    def _writer_thread_error(self, args: threading.ExceptHookArgs) -> None:
        """An OSError of TensorBoard's writer thread (a full disk, a read-only directory) is
        not printed as a traceback: the writer raises it again at the next scalar or at
        close, in the training thread, where ``fga train`` reports it in one line."""
        if isinstance(args.exc_value, OSError) \
                and type(args.thread).__module__.startswith('tensorboard'):
            return
        self._excepthook(args)

    def _add(self, scalars, step, prefix=''):
        """Add scalars (NaN skipped); an OSError of the writer (this call's or its thread's)
        becomes the WriteError naming the event file."""
        if self.writer is None:
            return
        try:
            for name, value in scalars.items():
                if not math.isnan(value):
                    self.writer.add_scalar(prefix + name, value, step)
        except OSError as error:
            raise self._write_error(error) from None

    def _write_error(self, error: OSError) -> WriteError:
        path = error.filename if error.filename is not None else self.writer.get_logdir()
        return write_error(os.fsdecode(path), error)

    def on_log(self, step, scalars):
        self._add(scalars, step)

    def on_eval(self, step, metrics):
        self._add(metrics, step, 'eval/')

    def close(self):
        if self.writer is not None:
            threading.excepthook = self._excepthook
            try:
                self.writer.close()
            except OSError as error:
                raise self._write_error(error) from None


class SignalStop(TrainingHooks):
    """Ctrl-C (SIGINT) or SIGTERM asks the run to stop after the current step; a second
    one raises KeyboardInterrupt at once (the trainer still checkpoints on its way out).

    A context manager: the handlers are installed on entry and restored on exit (main
    thread only). ``signum`` is the first signal received, or None.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        return False

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        tqdm.write(f'{signal.Signals(signum).name}: stopping after the current step '
                   '(again to stop at once)', file=sys.stderr)

    def should_stop(self):
        return self.signum is not None

    @property
    def exit_status(self) -> int:
        """The shell's status for the signal received: 128 + its number (130: SIGINT)."""
        return 128 + (self.signum or signal.SIGINT)
