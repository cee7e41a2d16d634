"""Model files: exported inference-only models, and reading model or checkpoint files.

An exported model is a small inference-only ``torch.save`` dict (loaded with
``weights_only=True``):
``{'format': 'fga_ros.model/1', 'version', 'torch', 'config', 'model', 'meta'}``.
``load_model`` also accepts a training checkpoint (``fga_ros.core.training.checkpoint``).
"""

from pathlib import Path
import pickle
import zipfile

import torch

import fga_ros
from fga_ros.core.common.config import config_from_dict, config_to_dict
from fga_ros.core.common.files import atomic_write
from fga_ros.core.models.nets import ActorCritic

FORMAT = 'fga_ros.checkpoint/1'
MODEL_FORMAT = 'fga_ros.model/1'
MAX_MODEL_BYTES = 20 * 1024 * 1024
"""Limit on the bundled model's tensor data (pass as ``export_model(max_bytes=...)``)."""


class CheckpointError(ValueError):
    """A checkpoint or model file that cannot be used: corrupt, truncated, incompatible."""


def read_payload(path, map_location):
    """(path, dict) read from a ``torch.save`` file with ``weights_only=True``.

    Raises:
        FileNotFoundError: no such file. CheckpointError: unreadable, or not a dict.
    """
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


def config_of(path, payload):
    """The ``TrainConfig`` stored in a checkpoint or model payload.

    Raises:
        CheckpointError: the stored config is missing or invalid.
    """
    try:
        return config_from_dict(dict(payload['config']), source=f'{path} config')
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f'{path}: stored config is unusable: {error}') from None


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
    path, data = read_payload(path, map_location)
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
