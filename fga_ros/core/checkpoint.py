"""Atomic training checkpoints, the replay memory beside them, and exported models.

A training checkpoint is a ``torch.save`` dict (loaded with ``weights_only=True``)::

    {'format': 'fga_ros.checkpoint/1', 'version': fga_ros version, 'torch': torch version,
     'config': config_to_dict(config), 'model': state_dict, 'optim': {...}, 'step': int,
     'rng': {...}, 'replay': 'name.replay-000001000.npz' (optional)}

The replay memory goes to a sibling ``.npz`` whose name carries the step; the checkpoint
names the one it belongs to. Both are written to a temporary file in the same directory,
fsynced and renamed into place, the replay file first and older replay files removed
last, so a kill at any moment leaves the previous checkpoint and its replay file intact.

An exported model is a small inference-only file:
``{'format': 'fga_ros.model/1', 'version', 'torch', 'config', 'model', 'meta'}``.
"""

import os
from pathlib import Path
import pickle
import tempfile
import zipfile

import numpy as np
import torch

import fga_ros
from fga_ros.core.config import (
    ACTOR_ARCHITECTURE_FIELDS,
    ARCHITECTURE_FIELDS,
    config_from_dict,
    config_to_dict,
)
from fga_ros.core.nets import ActorCritic

FORMAT = 'fga_ros.checkpoint/1'
MODEL_FORMAT = 'fga_ros.model/1'
CHECKPOINT_KEYS = ('format', 'config', 'model', 'step')
"""Keys every training checkpoint must hold."""
MAX_MODEL_BYTES = 20 * 1024 * 1024
"""Limit on the bundled model's tensor data (pass as ``export_model(max_bytes=...)``)."""


class CheckpointError(ValueError):
    """A checkpoint or model file that cannot be used: corrupt, truncated, incompatible."""


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_read_umask()
"""Permissions of written checkpoints and models: a plain new file's (read once at import,
as reading the umask briefly changes it for the whole process)."""


def atomic_write(path, write):
    """Write ``path`` atomically: ``write(file)`` into a temporary sibling, fsync, rename.

    The file gets the permissions of a plainly created one (0666 less the umask), not the
    0600 of the temporary file: a model installed by one user must be readable by others.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as stream:
            write(stream)
            stream.flush()
            os.fchmod(stream.fileno(), FILE_MODE)
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


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


def _load(path, map_location):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        detail = str(error)
        reason = detail[detail.find('WeightsUnpickler error:'):].split('\n')[0] \
            if 'WeightsUnpickler error:' in detail else detail
        raise CheckpointError(f'{path}: not a readable checkpoint (corrupt, truncated, or it '
                              f'holds objects weights-only loading refuses): {reason}') \
            from None
    except (RuntimeError, EOFError, zipfile.BadZipFile,
            ValueError, KeyError, IndexError, OSError) as error:  # torch raises these on damage
        raise CheckpointError(f'{path}: not a readable checkpoint (corrupt or truncated?): '
                              f'{type(error).__name__}: {error}') from None
    if not isinstance(data, dict):
        raise CheckpointError(f'{path}: expected a dict, got {type(data).__name__}')
    return path, data


def load_checkpoint(path, map_location='cpu'):
    """Load a training checkpoint written by ``save_checkpoint``.

    Raises:
        FileNotFoundError: no such file (names it).
        CheckpointError: corrupt or truncated file, wrong format, missing keys.
    """
    path, data = _load(path, map_location)
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


def config_of(path, payload):
    """The ``TrainConfig`` stored in a checkpoint or model payload.

    Raises:
        CheckpointError: the stored config is missing or invalid.
    """
    try:
        return config_from_dict(dict(payload['config']), source=f'{path} config')
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f'{path}: stored config is unusable: {error}') from None


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


def check_compatible(path, payload, config):
    """Raise ``CheckpointError`` unless the saved networks have ``config``'s architecture."""
    _check_fields(path, payload, config, ARCHITECTURE_FIELDS, 'networks')


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
    path, data = _load(path, 'cpu')
    if data.get('format') not in (MODEL_FORMAT, FORMAT) or 'model' not in data:
        raise CheckpointError(f'{path}: format {data.get("format")!r} is neither '
                              f'{MODEL_FORMAT!r} nor {FORMAT!r} with model weights')
    _check_fields(path, data, config,
                  [k for k in ARCHITECTURE_FIELDS if k not in ACTOR_ARCHITECTURE_FIELDS],
                  'its extractor and critic')
    return {k: v for k, v in data['model'].items() if k.split('.', 1)[0] in CRITIC_PARTS}


def export_model(path, model, config, meta=None, max_bytes=None):
    """Write an inference-only model file (weights, config, metadata) atomically.

    Args:
        path: output file.
        model: ``ActorCritic``.
        config: its ``TrainConfig``.
        meta: JSON-like dict (e.g. training step, evaluation figures).
        max_bytes: refuse models whose tensors exceed this many bytes (None: no limit;
            ``MAX_MODEL_BYTES`` for the model bundled with the package).

    Returns:
        Size of the written file in bytes.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    size = sum(t.numel() * t.element_size() for t in state.values())
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f'model tensors take {size} bytes, more than the {max_bytes} allowed '
                         f'for an exported model')
    payload = {'format': MODEL_FORMAT, 'version': fga_ros.__version__,
               'torch': str(torch.__version__), 'config': config_to_dict(config), 'model': state,
               'meta': dict(meta or {})}
    atomic_write(path, lambda f: torch.save(payload, f))
    return Path(path).stat().st_size


def load_model(path, map_location='cpu'):
    """Load an exported model or a training checkpoint for inference.

    Returns:
        (model in eval mode, TrainConfig, meta dict; for a checkpoint: {'step': step}).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: corrupt file, unknown format, or weights that do not fit the
            stored config.
    """
    path, data = _load(path, map_location)
    if data.get('format') == MODEL_FORMAT:
        meta = dict(data.get('meta') or {})
    elif data.get('format') == FORMAT:
        meta = {'step': data.get('step')}
    else:
        raise CheckpointError(f'{path}: format {data.get("format")!r} is neither '
                              f'{MODEL_FORMAT!r} nor {FORMAT!r}')
    if 'model' not in data:
        raise CheckpointError(f'{path}: holds no model weights')
    config = config_of(path, data)
    model = ActorCritic(config)
    try:
        model.load_state_dict(data['model'])
    except (RuntimeError, TypeError, AttributeError) as error:
        raise CheckpointError(f'{path}: weights do not fit the stored config: {error}') \
            from None
    model.to(map_location).eval()
    return model, config, meta
