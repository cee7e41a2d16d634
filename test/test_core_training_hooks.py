"""Trainer.run, the one training loop, seen through its hooks (in-process simulator)."""

import dataclasses
import json

import pytest
import torch

from fga_ros.core.common.config import load_config
from fga_ros.core.common.env import SimEnvironment
from fga_ros.core.models import model_file
from fga_ros.core.training.hooks import FINISHED, STOPPED, WALL_LIMIT, TrainingHooks
from fga_ros.core.training.trainer import CHECKPOINT_NAME, EVAL_LOG_NAME, MODEL_NAME, Trainer

pytestmark = pytest.mark.usefixtures('one_thread')


def _config(**overrides):
    values = dict(steps=6, prefill_examples=40, prefill_scenes=4, log_every=2, eval_every=3,
                  checkpoint_every=4)
    values.update(overrides)
    return dataclasses.replace(load_config('tiny'), **values)


def _trainer(config, out, **kwargs):
    return Trainer(config, SimEnvironment(config.shapes, seed=0), out, **kwargs)


class Recorder(TrainingHooks):
    """Records every call; asks to stop once ``stop_at(calls)`` is true."""

    def __init__(self, stop_at=None):
        self.calls = []
        self.stop_at = stop_at

    def on_start(self, trainer, target):
        self.calls.append(('start', trainer.step, target))

    def on_prefill(self, scenes_done, scenes_total):
        self.calls.append(('prefill', scenes_done, scenes_total))

    def on_step(self, step, stats):
        self.calls.append(('step', step))

    def on_log(self, step, scalars):
        self.calls.append(('log', step, dict(scalars)))

    def on_eval(self, step, metrics):
        self.calls.append(('eval', step, dict(metrics)))

    def on_checkpoint(self, step, paths):
        self.calls.append(('checkpoint', step, paths))

    def should_stop(self):
        return self.stop_at is not None and self.stop_at(self.calls)

    def on_end(self, result):
        self.calls.append(('end', result))

    def of(self, kind):
        return [call[1:] for call in self.calls if call[0] == kind]


def _evaluate(trainer):
    return {'step_seen': trainer.step}


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_hooks_see_prefill_steps_logs_evaluations_and_checkpoints(tmp_path):
    config = _config()
    trainer = _trainer(config, tmp_path)
    hook = Recorder()
    result = trainer.run(hooks=[hook], evaluate=_evaluate)

    assert hook.calls[0] == ('start', 0, 6)
    assert hook.of('prefill') == [(i, 4) for i in range(1, 5)]
    assert hook.of('step') == [(i,) for i in range(1, 7)]
    logs = hook.of('log')
    assert [step for step, _ in logs] == [2, 4, 6]
    assert {'train/critic_loss', 'train/actor_score', 'train/collection_success_rate',
            'train/steps_per_second', 'replay/positive', 'replay/negative'} <= set(logs[0][1])
    assert hook.of('eval') == [(3, {'step_seen': 3.0}), (6, {'step_seen': 6.0})]
    records = [json.loads(line) for line in (tmp_path / EVAL_LOG_NAME).read_text().splitlines()]
    assert [r['step'] for r in records] == [3, 6]
    # every checkpoint_every steps and at the end, each with the exported model
    checkpoints = hook.of('checkpoint')
    assert [step for step, _ in checkpoints] == [4, 6]
    paths = checkpoints[-1][1]
    assert paths.checkpoint == tmp_path / CHECKPOINT_NAME and paths.model == tmp_path / MODEL_NAME
    assert model_file.load_model(paths.model)[2]['step'] == 6
    assert hook.calls[-1] == ('end', result)
    assert result.reason == FINISHED and result.step == result.target == 6
    assert result.saved == paths


def test_a_stop_request_checkpoints_and_the_run_resumes_exactly(tmp_path):
    config = _config(eval_every=0)
    straight = _trainer(config, tmp_path / 'straight')
    straight.run()

    hook = Recorder(stop_at=lambda calls: ('step', 5) in calls)  # 5: no checkpoint step
    stopped = _trainer(config, tmp_path / 'stopped')
    result = stopped.run(hooks=[hook])
    assert result.reason == STOPPED and result.step == 5
    assert [step for step, _ in hook.of('checkpoint')] == [4, 5]
    assert model_file.load_model(tmp_path / 'stopped' / MODEL_NAME)[2]['step'] == 5

    resumed = _trainer(config, tmp_path / 'stopped', resume=True)
    assert resumed.step == 5
    assert resumed.run().reason == FINISHED
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_stop_during_the_prefill_saves_nothing(tmp_path):
    trainer = _trainer(_config(), tmp_path)
    hook = Recorder(stop_at=lambda calls: ('prefill', 2, 4) in calls)
    result = trainer.run(hooks=[hook])
    assert result.reason == STOPPED and result.step == 0 and result.saved is None
    assert hook.of('prefill') == [(1, 4), (2, 4)] and not hook.of('step')
    assert not trainer.prefilled and len(trainer.replay) == 0
    assert not (tmp_path / CHECKPOINT_NAME).exists()


def test_the_wall_clock_limit_stops_with_a_checkpoint(tmp_path):
    trainer = _trainer(_config(), tmp_path)
    result = trainer.run(wall_limit=0.0)
    assert result.reason == WALL_LIMIT and result.step == 1
    assert _trainer(_config(), tmp_path, resume=True).step == 1
    # a run that reaches its target at the limit has finished
    assert _trainer(_config(steps=1), tmp_path / 'one').run(wall_limit=0.0).reason == FINISHED


class FailingEnvironment(SimEnvironment):
    """Fails on the ``fail_at``-th ``new_states`` call, like a simulator that stops answering."""

    def __init__(self, *args, fail_at, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.fail_at = 0, fail_at

    def new_states(self, count):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError('simulator gone')
        return super().new_states(count)


def test_an_error_in_the_loop_writes_a_checkpoint_before_it_propagates(tmp_path):
    config = _config(checkpoint_every=0)
    trainer = Trainer(config, FailingEnvironment(config.shapes, seed=0, fail_at=3), tmp_path)
    hook = Recorder()
    with pytest.raises(RuntimeError, match='simulator gone'):
        trainer.run(hooks=[hook])
    assert [step for step, _ in hook.of('checkpoint')] == [2]
    assert not hook.of('end')
    assert _trainer(config, tmp_path, resume=True).step == 2


def test_nothing_to_train_writes_nothing(tmp_path):
    config = _config(eval_every=0)
    _trainer(config, tmp_path).run()
    written = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    hook = Recorder()
    result = _trainer(config, tmp_path, resume=True).run(hooks=[hook])
    assert result.reason == FINISHED and result.step == 6 and result.saved is None
    assert not hook.of('checkpoint') and not hook.of('prefill')
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == written


def test_a_resume_drops_evaluations_after_the_checkpoint(tmp_path):
    config = _config(steps=8, eval_every=2, checkpoint_every=4)
    _trainer(config, tmp_path).run(steps=4, evaluate=_evaluate)
    # what a kill after step 6 leaves: evaluations of steps 5-6, a line cut short
    with open(tmp_path / EVAL_LOG_NAME, 'a') as stream:
        stream.write(json.dumps({'step': 6, 'seconds': 1.0, 'step_seen': 6.0}) + '\n')
        stream.write('{"step": 8, "seco')
    hook = Recorder()
    _trainer(config, tmp_path, resume=True).run(evaluate=_evaluate, hooks=[hook])
    assert [step for step, _ in hook.of('eval')] == [6, 8]
    lines = (tmp_path / EVAL_LOG_NAME).read_text().splitlines()
    assert [json.loads(line)['step'] for line in lines] == [2, 4, 6, 8]


def test_a_resume_applies_new_learning_rates(tmp_path):
    config = _config(eval_every=0)
    _trainer(config, tmp_path).run(steps=2)
    faster = dataclasses.replace(config, lr_actor=0.002, lr_critic=0.003)
    resumed = _trainer(faster, tmp_path, resume=True)
    assert [g['lr'] for g in resumed.opt_actor.param_groups] == [0.002]
    assert [g['lr'] for g in resumed.opt_critic.param_groups] == [0.003]
    assert resumed.opt_actor.state  # Adam's moments were restored, not reset


def test_every_hook_is_called_and_any_can_stop(tmp_path):
    watcher = Recorder()
    stopper = Recorder(stop_at=lambda calls: ('step', 2) in calls)
    result = _trainer(_config(eval_every=0), tmp_path).run(hooks=[watcher, stopper])
    assert result.reason == STOPPED and result.step == 2
    assert watcher.calls == stopper.calls and watcher.calls[-1] == ('end', result)
