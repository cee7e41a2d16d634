"""Concurrent proposals while the model is reloaded (the proposal node's hot reload): no
error, and every answer is exactly the answer of one of the models, never a mix; a damaged
file offered for reload is refused and the model in service stays."""

import threading
import time

import numpy as np
import pytest
import torch

from fga_ros.core.common.config import load_config
from fga_ros.core.inference.proposer import Proposer
from fga_ros.core.models.model_file import CheckpointError, export_model
from fga_ros.core.models.nets import ActorCritic
from fga_ros.sim import make_scene, render

pytestmark = pytest.mark.usefixtures('one_thread')

SEEDS = range(6)
PROPOSERS = 4
RELOADS = 30


def _model_file(path, seed):
    config = load_config('tiny')
    torch.manual_seed(seed)
    export_model(path, ActorCritic(config), config, {'seed': seed})
    return path


def _answer(proposer, image, seed):
    proposal = proposer.propose(image, num_grasps=4, seed=seed, floor=0.0)  # never abstains
    assert len(proposal) == 4
    return np.concatenate([proposal.actions.ravel(), proposal.scores])


def test_proposals_during_reloads(tmp_path, request):
    files = [_model_file(tmp_path / 'a.pt', 1), _model_file(tmp_path / 'b.pt', 2)]
    damaged = tmp_path / 'damaged.pt'
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0x40
    damaged.write_bytes(bytes(data))
    image = render(make_scene('H', 3))
    references = [{s: _answer(Proposer.from_checkpoint(f), image, s) for s in SEEDS}
                  for f in files]
    assert not np.array_equal(references[0][0], references[1][0])
    proposer = Proposer.from_checkpoint(files[0])
    stop = threading.Event()
    errors, mixed, answers = [], [], [0]

    def propose_forever(offset):
        k = offset
        while not stop.is_set():
            seed = SEEDS[k % len(SEEDS)]
            k += 1
            try:
                got = _answer(proposer, image, seed)
            except Exception as error:  # noqa: BLE001 - any error is a failure here
                errors.append(repr(error))
                continue
            if not any(np.array_equal(got, ref[seed]) for ref in references):
                mixed.append(seed)
            answers[0] += 1

    threads = [threading.Thread(target=propose_forever, args=(i,)) for i in range(PROPOSERS)]
    for thread in threads:
        thread.start()
    refused = 0
    try:
        for k in range(RELOADS):
            if k % 3 == 2:
                before = proposer.snapshot()
                with pytest.raises(CheckpointError, match='damaged.pt'):
                    proposer.reload(damaged)
                assert proposer.snapshot() is before
                refused += 1
            else:
                proposer.reload(files[k % 2])
            time.sleep(0.005)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == [] and mixed == []
    assert answers[0] > 0
    line = (f'concurrent reloads: {RELOADS} reloads ({refused} of a damaged file, refused) '
            f'during {answers[0]} proposals from {PROPOSERS} threads: 0 errors, 0 mixed '
            f'answers')
    print(line)
    request.config.fga_summary = getattr(request.config, 'fga_summary', []) + [line]
