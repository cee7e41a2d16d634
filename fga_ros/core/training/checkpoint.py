"""Atomic training checkpoints and the replay memory beside them.

A training checkpoint is a ``torch.save`` dict (loaded with ``weights_only=True``)::

    {'format': 'fga_ros.checkpoint/2', 'version': fga_ros version, 'torch': torch version,
     'config': config_to_dict(config), 'model': state_dict, 'optim': {...}, 'step': int,
     'rng': {...}, 'replay': 'name.replay-000001000.npz' (optional),
     'replay_digest': SHA-256 of that file, 'digest': SHA-256 of the rest of the payload}

The replay memory goes to a sibling ``.npz`` whose name carries the step; the checkpoint
names the one it belongs to and holds its digest. Both are written to a temporary file in
the same directory, fsynced and renamed into place, the replay file first and older replay
files removed last, so a kill at any moment leaves the previous checkpoint and its replay
file intact; a failed write removes what it started and raises ``WriteError`` (path and
cause). ``remove_leftovers`` cleans a run directory of killed writes at the next start.
Exported models and reading either kind of file: ``fga_ros.core.models.model_file``.
"""

import hmac
import os
from pathlib import Path
import re
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional
import zipfile

import numpy as np
import torch

import fga_ros
from fga_ros.core.common.config import (
    ARCHITECTURE_FIELDS,
    WARM_START_FREE_FIELDS,
    TrainConfig,
    config_to_dict,
)
from fga_ros.core.common.integrity import IntegrityError, check_npz_archive, file_digest
from fga_ros.core.models.model_file import (
    FORMAT,
    MODEL_FORMAT,
    CheckpointError,
    checked_weights,
    config_of,
    read_payload,
    sign,
)
from fga_ros.file_writes import atomic_write, discard, remove_temporaries
from fga_ros.safe_yaml import quote

if TYPE_CHECKING:
    from fga_ros.core.training.replay import ReplayMemory

CHECKPOINT_KEYS = ('format', 'config', 'model', 'step')
"""Keys every training checkpoint must hold."""


def replay_path(path: str | os.PathLike, step: int) -> Path:
    """Replay file belonging to checkpoint ``path`` at ``step``: ``<name>.replay-<step>.npz``."""
    path = Path(path)
    return path.with_name(f'{path.name}.replay-{int(step):09d}.npz')


def _replay_pattern(path: str | os.PathLike) -> re.Pattern:
    return re.compile(re.escape(Path(path).name) + r'\.replay-\d{9}\.npz')


def save_replay(path: str | os.PathLike, replay_state: Mapping[str, Any]) -> None:
    """Write replay arrays (``ReplayMemory.state_dict()``) to ``path`` (.npz) atomically."""
    atomic_write(path, lambda f: np.savez(f, **replay_state))


def load_replay(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read replay arrays written by ``save_replay`` (``allow_pickle=False``), after a
    bounded check of the archive (``integrity.check_npz_archive``).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable, truncated or crafted file (names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'replay memory not found: {path}')
    try:
        check_npz_archive(path)
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except IntegrityError as error:
        raise CheckpointError(f'{path}: unreadable replay memory: {error}') from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, MemoryError) as error:
        raise CheckpointError(f'{path}: unreadable replay memory: {type(error).__name__}: '
                              f'{str(error)[:80]}') from None


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any],
                    replay_state: Optional[Mapping[str, np.ndarray]] = None
                    ) -> Optional[Path]:
    """Write a training checkpoint (and optionally the replay memory) atomically.

    Args:
        path: checkpoint file (``.pt``).
        payload: dict with at least 'config', 'model' and 'step' (see the module docstring);
            'format', 'version', 'torch', the digests and 'replay' are filled in.
        replay_state: optional dict of numpy arrays (``ReplayMemory.state_dict()``).

    Returns:
        The path of the replay file written, or None.

    Raises:
        WriteError: a file cannot be written (names it and the cause); the previous
            checkpoint and its replay memory are kept, nothing new is left behind.
    """
    path = Path(path)
    missing = [k for k in ('config', 'model', 'step') if k not in payload]
    if missing:
        raise ValueError(f'checkpoint payload lacks {", ".join(missing)}')
    payload = dict(payload, format=FORMAT, version=fga_ros.__version__,
                   torch=str(torch.__version__))
    payload.pop('replay', None)
    payload.pop('replay_digest', None)
    written = None
    if replay_state is not None:
        written = replay_path(path, payload['step'])
        existed = written.exists()
        save_replay(written, replay_state)
        payload['replay'] = written.name
        payload['replay_digest'] = file_digest(written)
    try:
        signed = sign(payload)
        atomic_write(path, lambda f: torch.save(signed, f))
    except BaseException:
        if written is not None and not existed:
            discard(written)
        raise
    for stale in path.parent.glob(f'{path.name}.replay-*.npz'):
        if stale.name != payload.get('replay'):
            discard(stale)  # one left behind is removed at the next start (remove_leftovers)
    return written


def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Clean the directory of checkpoint ``path`` before a run starts or resumes there:
    temporary files of killed writes, and replay files the checkpoint does not name (a
    kill between the replay and the checkpoint write leaves one).

    Returns:
        The paths removed.
    """
    path = Path(path)
    removed = remove_temporaries(path.parent)
    named = None
    if path.is_file():
        try:
            named = read_payload(path)[1].get('replay')
        except (CheckpointError, FileNotFoundError):
            return removed  # a damaged checkpoint: keep everything for inspection
    for replay in path.parent.glob(f'{path.name}.replay-*.npz'):
        if replay.name != named:
            replay.unlink(missing_ok=True)
            removed.append(replay)
    return removed


def load_checkpoint(path: str | os.PathLike, map_location: Any = 'cpu') -> dict[str, Any]:
    """Load a training checkpoint written by ``save_checkpoint`` (tensors on the CPU),
    checking its container, digest, config and weights (see ``model_file``).

    Raises:
        FileNotFoundError: no such file (names it).
        CheckpointError: corrupt or truncated file, wrong format, missing keys, unusable
            config or weights.
    """
    path, data = read_payload(path, map_location, formats=(FORMAT,))
    missing = [k for k in CHECKPOINT_KEYS if k not in data]
    if missing:
        raise CheckpointError(f'{path}: checkpoint lacks {", ".join(missing)}')
    checked_weights(path, data, config_of(path, data))
    return data


def load_replay_state(path: str | os.PathLike, payload: Mapping[str, Any]
                      ) -> Optional[dict[str, np.ndarray]]:
    """Replay arrays saved with checkpoint ``path`` (payload from ``load_checkpoint``),
    verified against the digest the checkpoint holds.

    Returns:
        dict of numpy arrays, or None when the checkpoint was saved without a replay memory.

    Raises:
        CheckpointError: the named replay file is missing, damaged or unreadable.
    """
    name = payload.get('replay')
    if name is None:
        return None
    if not isinstance(name, str) or not _replay_pattern(path).fullmatch(name):
        raise CheckpointError(f'{path}: names the replay memory {quote(name)}, not a replay '
                              f'file of this checkpoint')
    replay = Path(path).with_name(name)
    if not replay.is_file():
        raise CheckpointError(f'{path}: its replay memory {replay} is missing')
    stored = payload.get('replay_digest')
    if not isinstance(stored, str):
        raise CheckpointError(f'{path}: holds no digest of its replay memory')
    if not hmac.compare_digest(stored, file_digest(replay)):
        raise CheckpointError(f'{replay}: integrity check failed: the replay memory does not '
                              f'match the digest its checkpoint holds (damaged file)')
    return load_replay(replay)


def restore_replay(path: str | os.PathLike, payload: Mapping[str, Any],
                   memory: 'ReplayMemory') -> None:
    """Load the replay memory of checkpoint ``path`` into ``memory`` (``ReplayMemory``),
    checking every array (``ReplayMemory.load_state_dict``).

    Raises:
        CheckpointError: no replay memory, or a damaged one (names the file).
    """
    state = load_replay_state(path, payload)
    if state is None:
        raise CheckpointError(f'{path} holds no replay memory; cannot resume')
    try:
        memory.load_state_dict(state)
    except ValueError as error:
        raise CheckpointError(f'{Path(path).with_name(payload["replay"])}: {error}') from None


def _check_fields(path: str | os.PathLike, payload: Mapping[str, Any], config: TrainConfig,
                  fields: Iterable[str], what: str) -> None:
    """Raise ``CheckpointError`` naming every field of ``fields`` the saved config and
    ``config`` disagree on."""
    saved = config_to_dict(config_of(path, payload))
    wanted = config_to_dict(config)
    diffs = [f'{k}: saved {saved[k]!r}, configured {wanted[k]!r}'
             for k in fields if saved[k] != wanted[k]]
    if diffs:
        raise CheckpointError(f'{path}: {what} do not match the configuration ('
                              + '; '.join(diffs) + ')')


CRITIC_PARTS = ('extractor', 'critic')
"""The ``ActorCritic`` submodules a warm start copies (the critic side)."""


def load_critic_weights(path: str | os.PathLike, config: TrainConfig) -> dict[str, Any]:
    """The extractor and critic weights of a model or checkpoint, for a warm start.

    Args:
        path: exported model or training checkpoint.
        config: the ``TrainConfig`` of the run to start; its extractor and critic must have
            the saved architecture (the actor head may differ).

    Returns:
        state dict of the ``CRITIC_PARTS`` (keys as in ``ActorCritic.state_dict()``).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable file, unknown format, or another critic architecture.
    """
    path, data = read_payload(path, formats=(MODEL_FORMAT, FORMAT))
    _check_fields(path, data, config,
                  [k for k in ARCHITECTURE_FIELDS if k not in WARM_START_FREE_FIELDS],
                  'its extractor and critic')
    weights = checked_weights(path, data, config_of(path, data))  # the whole file is sound
    return {k: v for k, v in weights.items() if k.split('.', 1)[0] in CRITIC_PARTS}


