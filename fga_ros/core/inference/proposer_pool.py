"""Grasp proposals from worker processes: many requests served at once on a multi-core CPU.

Python threads share one interpreter lock: two proposals in one process take turns between
torch's calls, and a ROS node's executor, message building and display share that lock
too. A :class:`ProposerPool` runs each proposal in one of ``workers`` processes instead,
each holding a copy of the model; the calling thread only sends the image and receives the
:class:`Proposal` (a few kilobytes each way through a pipe).

The model rule of :class:`Proposer` holds: a call runs on the model that was current when
it started (a worker takes a new model only between two calls), and never on two. A model
file is checked and loaded in the calling process first (``reload``): a bad file raises
there and the pool keeps serving the previous model. A worker that dies (killed, out of
memory) or does not answer within ``call_timeout`` s is replaced by a fresh one and the
call raises :class:`WorkerError`; the next call is served as usual.

Workers are started with the 'spawn' method (no fork of a process that holds threads),
ignore SIGINT (the node's own shutdown stops them) and exit when the pool closes or its
process ends.
"""

import dataclasses
import multiprocessing
from multiprocessing.connection import Connection
import os
import queue
import signal
import threading
from typing import Any, Optional

import numpy as np

from fga_ros.core.common.checks import check_count
from fga_ros.core.inference.proposer import ModelState, Proposal, Proposer

MAX_WORKERS = 64
"""Largest number of worker processes of one pool."""

CALL_TIMEOUT_S = 60.0
"""Default wall time, s, a worker may take for one call before it is replaced."""

START_TIMEOUT_S = 300.0
"""Wall time, s, a new worker may take to start (import torch) and receive the model."""


class WorkerError(RuntimeError):
    """A worker process stopped or did not answer during a call (it has been replaced)."""


def _serve(conn: Connection, torch_threads: int, seed: int) -> None:
    """Worker process: answer ('load', model, config, meta) and ('propose', image, kwargs)
    messages with ('ok', value) or ('error', exception) until None or the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from fga_ros.core.common.tensors import configure_threads
    configure_threads(torch_threads)
    proposer: Optional[Proposer] = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the pool's process is gone
            return
        if message is None:
            return
        try:
            if message[0] == 'load':
                if proposer is None:
                    proposer = Proposer(message[1], message[2], meta=message[3], seed=seed)
                else:
                    proposer.load_state(*message[1:4])
                reply: tuple[str, Any] = ('ok', None)
            elif proposer is None:
                raise RuntimeError('no model was sent to this worker before a proposal')
            else:
                reply = ('ok', proposer.propose(message[1], **message[2]))
        except Exception as error:  # noqa: BLE001 - handed to the caller, raised there
            reply = ('error', error)
        try:
            conn.send(reply)
        except Exception as error:  # noqa: BLE001 - e.g. an exception that does not pickle
            conn.send(('error', RuntimeError(f'{type(error).__name__}: {error}')))


class _Worker:
    """One worker process, its end of the pipe and the model generation it holds."""

    def __init__(self, context: Any, torch_threads: int, seed: int) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, torch_threads, seed),
                                       name='fga_proposal_worker', daemon=True)
        self.process.start()
        child.close()
        self.generation = 0
        """generation of the model it holds (0: none yet)"""

    def send(self, message: Any) -> None:
        self.conn.send(message)

    def receive(self, timeout: float) -> Any:
        """The worker's reply value; raises its exception, or TimeoutError / EOFError."""
        if not self.conn.poll(timeout):
            raise TimeoutError(f'no answer within {timeout:g} s')
        kind, value = self.conn.recv()
        if kind == 'error':
            raise value
        return value

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the process to exit; terminate it if it does not within ``timeout`` s."""
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1.0)
        self.conn.close()


class ProposerPool:
    """``propose`` in ``workers`` processes, each with a copy of ``proposer``'s model.

    Thread-safe: up to ``workers`` calls run at once, further calls wait for a free worker.

    Args:
        proposer: validates model files (``reload``); its model is what the workers serve.
        workers: number of worker processes, 1..MAX_WORKERS.
        torch_threads: torch intra-op threads of each worker (0: torch's default).
        seed: worker i draws from seed + i (None: a random seed per worker).
        call_timeout: s a worker may take for one call before it is replaced, > 0 (a new
            worker gets START_TIMEOUT_S to start and load the model first).
    """

    def __init__(self, proposer: Proposer, workers: int, torch_threads: int = 1,
                 seed: Optional[int] = None, call_timeout: float = CALL_TIMEOUT_S) -> None:
        workers = check_count('workers', workers, 1, MAX_WORKERS)
        if not (isinstance(call_timeout, (int, float)) and call_timeout > 0):
            raise ValueError(f'call_timeout must be a positive number of seconds, got '
                             f'{call_timeout!r}')
        self.proposer = proposer
        self.call_timeout = float(call_timeout)
        self._torch_threads = torch_threads
        self._seed = int.from_bytes(os.urandom(7), 'little') if seed is None else int(seed)
        self._context = multiprocessing.get_context('spawn')
        self._lock = threading.Lock()
        self._current: tuple[int, ModelState] = (1, proposer.snapshot())
        self._closed = False
        self._workers = [self._start(i) for i in range(workers)]
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        for worker in self._workers:
            self._idle.put(worker)

    def _start(self, index: int) -> _Worker:
        return _Worker(self._context, self._torch_threads, self._seed + index)

    @property
    def num_workers(self) -> int:
        return len(self._workers)

    def worker_pids(self) -> list[int]:
        """Process ids of the workers (for CPU accounting and tests)."""
        return [worker.process.pid or 0 for worker in self._workers]

    def warm_up(self, image: np.ndarray, **kwargs: Any) -> list[float]:
        """Load the model into every worker and run one proposal of ``image`` in each, all
        at once (call before serving); returns each worker's ``inference_ms``.

        Raises:
            WorkerError: a worker did not start within START_TIMEOUT_S.
        """
        workers = [self._idle.get() for _ in range(self.num_workers)]
        try:
            generation, state = self._current
            for worker in workers:
                self._load(worker, generation, state, START_TIMEOUT_S)
            for worker in workers:
                worker.send(('propose', image, kwargs))
            replies = []
            for worker in workers:  # every reply is read, so that no pipe holds a stale one
                try:
                    replies.append(worker.receive(START_TIMEOUT_S))
                except ValueError as error:
                    replies.append(error)
        except (EOFError, OSError, TimeoutError) as error:
            for index, worker in enumerate(workers):
                workers[index] = self._replace(worker)
            raise WorkerError(f'a proposal worker did not start: {type(error).__name__}: '
                              f'{error}') from None
        finally:
            for worker in workers:
                self._idle.put(worker)
        for reply in replies:
            if isinstance(reply, ValueError):
                raise reply
        return [reply.inference_ms for reply in replies]

    def propose(self, image: np.ndarray, **kwargs: Any) -> Proposal:
        """``Proposer.propose(image, **kwargs)`` in a free worker (waits for one).

        Raises:
            ValueError: as ``Proposer.propose`` (a bad argument, named).
            WorkerError: the worker died or timed out during the call (it was replaced).
            RuntimeError: the pool is closed.
        """
        if self._closed:
            raise RuntimeError('the proposal pool is closed')
        generation, state = self._current  # the model of this call, read once
        worker = self._idle.get()
        try:
            if worker.generation != generation:  # a new worker may still be starting
                self._load(worker, generation, state,
                           START_TIMEOUT_S if worker.generation == 0 else self.call_timeout)
            worker.send(('propose', image, kwargs))
            proposal = worker.receive(self.call_timeout)
        except (EOFError, OSError, TimeoutError) as error:
            if self._closed:
                raise RuntimeError('the proposal pool was closed during the call') from None
            worker = self._replace(worker)
            raise WorkerError(f'a proposal worker failed during the call ({type(error).__name__}'
                              f'{": " + str(error) if str(error) else ""}); it was '
                              f'restarted') from None
        finally:
            self._idle.put(worker)
        return dataclasses.replace(proposal)  # its arrays read-only again

    @staticmethod
    def _load(worker: _Worker, generation: int, state: ModelState, timeout: float) -> None:
        worker.send(('load', state.model, state.config, state.meta))
        worker.receive(timeout)
        worker.generation = generation

    def _replace(self, worker: _Worker) -> _Worker:
        """A fresh worker in place of ``worker`` (stopped); it loads the model on its first
        call. A closed pool starts none."""
        worker.stop(timeout=1.0)
        with self._lock:
            if self._closed:
                return worker
            index = self._workers.index(worker)
            fresh = self._start(index + len(self._workers))  # a seed not used before
            self._workers[index] = fresh
        return fresh

    def reload(self, path: Optional[str | os.PathLike] = None) -> None:
        """Check and load a model file (None: the bundled one) here, then serve it: calls
        that start afterwards run on it. On any error the pool keeps its model and the
        error propagates (as ``Proposer.reload``)."""
        with self._lock:
            self.proposer.reload(path)
            self._current = (self._current[0] + 1, self.proposer.snapshot())

    def close(self) -> None:
        """Stop every worker (calls still running then raise RuntimeError)."""
        with self._lock:
            self._closed = True
            workers = list(self._workers)
        for worker in workers:
            worker.stop()

    def __enter__(self) -> 'ProposerPool':
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

