"""Proposals in worker processes (the proposal node's default): the same answers as the
in-process proposer, a model swap that reaches every worker, bad arguments and bad files
refused, and a worker that dies or hangs replaced without stopping the service."""

import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from fga_ros.core.common.config import load_config
from fga_ros.core.inference.proposer import Proposer
from fga_ros.core.inference.proposer_pool import ProposerPool, WorkerError
from fga_ros.core.models.model_file import CheckpointError, export_model
from fga_ros.core.models.nets import ActorCritic
from fga_ros.sim import make_scene, render

pytestmark = pytest.mark.usefixtures('one_thread')

SEEDS = range(4)


def _model_file(path, seed):
    config = load_config('tiny')
    torch.manual_seed(seed)
    export_model(path, ActorCritic(config), config, {'seed': seed})
    return path


def _answer(proposal):
    assert len(proposal) == 4
    return np.concatenate([proposal.actions.ravel(), proposal.scores])


def _propose(source, image, seed):
    return source.propose(image, num_grasps=4, seed=seed, floor=0.0)  # never abstains


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('pool')
    return [_model_file(folder / 'a.pt', 1), _model_file(folder / 'b.pt', 2)]


@pytest.fixture(scope='module')
def image():
    return render(make_scene('H', 3))


def _references(path, image):
    proposer = Proposer.from_checkpoint(path)
    return {seed: _answer(_propose(proposer, image, seed)) for seed in SEEDS}


def test_workers_answer_as_the_proposer_and_follow_reloads(files, image, tmp_path):
    references = [_references(path, image) for path in files]
    assert not np.array_equal(references[0][0], references[1][0])
    damaged = tmp_path / 'damaged.pt'
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0x40
    damaged.write_bytes(bytes(data))
    with ProposerPool(Proposer.from_checkpoint(files[0]), workers=2) as pool:
        assert len(pool.warm_up(image, num_grasps=4)) == 2
        answers: dict[int, list] = {seed: [] for seed in SEEDS}

        def call(seed):
            answers[seed].append(_answer(_propose(pool, image, seed)))

        threads = [threading.Thread(target=call, args=(seed,)) for seed in SEEDS for _ in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for seed in SEEDS:  # both workers served, each answer that of the in-process proposer
            assert len(answers[seed]) == 2
            for got in answers[seed]:
                np.testing.assert_array_equal(got, references[0][seed])
        proposal = _propose(pool, image, 0)
        assert not proposal.actions.flags.writeable
        pool.reload(files[1])
        for _ in range(2):  # every worker takes the new model before its next call
            for seed in SEEDS:
                np.testing.assert_array_equal(_answer(_propose(pool, image, seed)),
                                              references[1][seed])
        with pytest.raises(CheckpointError, match='damaged.pt'):
            pool.reload(damaged)
        for seed in SEEDS:  # the damaged file changed nothing
            np.testing.assert_array_equal(_answer(_propose(pool, image, seed)),
                                          references[1][seed])


def test_bad_arguments_are_named_and_the_pool_keeps_serving(files, image):
    with ProposerPool(Proposer.from_checkpoint(files[0]), workers=1) as pool:
        with pytest.raises(ValueError, match='num_grasps'):
            pool.propose(image, num_grasps=0)
        with pytest.raises(ValueError, match='ranking'):
            pool.propose(image, ranking='best')
        assert len(_propose(pool, image, 0)) == 4
    with pytest.raises(ValueError, match='workers'):
        ProposerPool(Proposer.from_checkpoint(files[0]), workers=0)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f'/proc/{pid}/stat') as stat:  # a zombie is not alive
        return stat.read().split(') ')[1][0] != 'Z'


def test_a_dead_or_hung_worker_is_replaced(files, image):
    with ProposerPool(Proposer.from_checkpoint(files[0]), workers=1, call_timeout=5.0) as pool:
        pool.warm_up(image, num_grasps=4)
        (first,) = pool.worker_pids()
        os.kill(first, signal.SIGKILL)
        time.sleep(0.2)
        with pytest.raises(WorkerError, match='restarted'):
            _propose(pool, image, 0)
        (second,) = pool.worker_pids()
        assert second != first and not _alive(first)
        assert len(_propose(pool, image, 0)) == 4  # the fresh worker got the model
        os.kill(second, signal.SIGSTOP)  # hangs: the call times out, the worker is replaced
        start = time.monotonic()
        with pytest.raises(WorkerError, match='TimeoutError'):
            _propose(pool, image, 0)
        assert time.monotonic() - start < 30
        assert pool.worker_pids() != [second] and not _alive(second)
        assert len(_propose(pool, image, 1)) == 4
        pids = pool.worker_pids()
    for pid in pids:  # closing stops every worker
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid)
    with pytest.raises(RuntimeError, match='closed'):
        pool.propose(image)


def test_closing_during_a_call_answers_it_and_starts_no_worker(files, image):
    pool = ProposerPool(Proposer.from_checkpoint(files[0]), workers=1, call_timeout=30.0)
    pool.warm_up(image, num_grasps=4)
    (pid,) = pool.worker_pids()
    os.kill(pid, signal.SIGSTOP)  # the call below waits for it
    errors: list[BaseException] = []

    def call():
        try:
            _propose(pool, image, 0)
        except BaseException as error:  # noqa: BLE001 - inspected below
            errors.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    pool.close()
    thread.join(20)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert 'closed during the call' in str(errors[0])
    assert pool.worker_pids() == [pid] and not _alive(pid)
