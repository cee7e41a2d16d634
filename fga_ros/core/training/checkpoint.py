"""Atomic training checkpoints and the replay memory beside them.

A training checkpoint is a ``torch.save`` dict (loaded with ``weights_only=True``)::

    {'format': 'fga_ros.checkpoint/1', 'version': fga_ros version, 'torch': torch version,
     'config': config_to_dict(config), 'model': state_dict, 'optim': {...}, 'step': int,
     'rng': {...}, 'replay': 'name.replay-000001000.npz' (optional)}

The replay memory goes to a sibling ``.npz`` whose name carries the step; the checkpoint
names the one it belongs to. Both are written to a temporary file in the same directory,
fsynced and renamed into place, the replay file first and older replay files removed
last, so a kill at any moment leaves the previous checkpoint and its replay file intact.
Exported models and reading either kind of file: ``fga_ros.core.models.model_file``.
"""

from pathlib import Path
import zipfile

import numpy as np
import torch

import fga_ros
from fga_ros.core.common.config import (
    ACTOR_ARCHITECTURE_FIELDS,
    ARCHITECTURE_FIELDS,
    config_to_dict,
)
from fga_ros.core.common.files import atomic_write
from fga_ros.core.models.model_file import (
    FORMAT,
    MODEL_FORMAT,
    CheckpointError,
    config_of,
    read_payload,
)

CHECKPOINT_KEYS = ('format', 'config', 'model', 'step')
"""Keys every training checkpoint must hold."""


def replay_path(path, step):
    """Replay file belonging to checkpoint ``path`` at ``step``: ``<name>.replay-<step>.npz``."""
    path = Path(path)
    return path.with_name(f'{path.name}.replay-{int(step):09d}.npz')


def save_replay(path, replay_state):
    """Write replay arrays (``ReplayMemory.state_dict()``) to ``path`` (.npz) atomically."""
    atomic_write(path, lambda f: np.savez(f, **replay_state))


def load_replay(path):
    """Read replay arrays written by ``save_replay`` (``allow_pickle=False``).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable or truncated file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'replay memory not found: {path}')
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f'{path}: unreadable replay memory: {error}') from None


def save_checkpoint(path, payload, replay_state=None):
    """Write a training checkpoint (and optionally the replay memory) atomically.

    Args:
        path: checkpoint file (``.pt``).
        payload: dict with at least 'config', 'model' and 'step' (see the module docstring);
            'format', 'version' and 'torch' are filled in.
        replay_state: optional dict of numpy arrays (``ReplayMemory.state_dict()``).

    Returns:
        The path of the replay file written, or None.
    """
    path = Path(path)
    missing = [k for k in ('config', 'model', 'step') if k not in payload]
    if missing:
        raise ValueError(f'checkpoint payload lacks {", ".join(missing)}')
    payload = dict(payload, format=FORMAT, version=fga_ros.__version__,
                   torch=str(torch.__version__))
    written = None
    if replay_state is not None:
        written = replay_path(path, payload['step'])
        save_replay(written, replay_state)
        payload['replay'] = written.name
    else:
        payload.pop('replay', None)
    atomic_write(path, lambda f: torch.save(payload, f))
    for stale in path.parent.glob(f'{path.name}.replay-*.npz'):
        if stale.name != payload.get('replay'):
            stale.unlink(missing_ok=True)
    return written


def load_checkpoint(path, map_location='cpu'):
    """Load a training checkpoint written by ``save_checkpoint``.

    Raises:
        FileNotFoundError: no such file (names it).
        CheckpointError: corrupt or truncated file, wrong format, missing keys.
    """
    path, data = read_payload(path, map_location)
    if data.get('format') != FORMAT:
        raise CheckpointError(f'{path}: format {data.get("format")!r} is not '
                              f'{FORMAT!r}')
    missing = [k for k in CHECKPOINT_KEYS if k not in data]
    if missing:
        raise CheckpointError(f'{path}: checkpoint lacks {", ".join(missing)}')
    return data


def load_replay_state(path, payload):
    """Replay arrays saved with checkpoint ``path`` (payload from ``load_checkpoint``).

    Returns:
        dict of numpy arrays, or None when the checkpoint was saved without a replay memory.

    Raises:
        CheckpointError: the named replay file is missing or unreadable.
    """
    name = payload.get('replay')
    if name is None:
        return None
    replay = Path(path).with_name(name)
    if not replay.is_file():
        raise CheckpointError(f'{path}: its replay memory {replay} is missing')
    return load_replay(replay)


def _check_fields(path, payload, config, fields, what):
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


def load_critic_weights(path, config):
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
    path, data = read_payload(path, 'cpu')
    if data.get('format') not in (MODEL_FORMAT, FORMAT) or 'model' not in data:
        raise CheckpointError(f'{path}: format {data.get("format")!r} is neither '
                              f'{MODEL_FORMAT!r} nor {FORMAT!r} with model weights')
    _check_fields(path, data, config,
                  [k for k in ARCHITECTURE_FIELDS if k not in ACTOR_ARCHITECTURE_FIELDS],
                  'its extractor and critic')
    return {k: v for k, v in data['model'].items() if k.split('.', 1)[0] in CRITIC_PARTS}


