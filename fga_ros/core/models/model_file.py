"""Model files: exported inference-only models, and reading model or checkpoint files.

An exported model is a small inference-only ``torch.save`` dict (loaded with
``weights_only=True``)::

    {'format': 'fga_ros.model/2', 'version', 'torch', 'config', 'model', 'meta', 'digest'}

``load_model`` also accepts a training checkpoint (``fga_ros.core.training.checkpoint``).

Every file is checked before it costs anything (:func:`read_payload`): its zip container
(``integrity.check_torch_archive``: no compressed or oversized records), torch's
weights-only unpickler, the format, and the ``digest`` (SHA-256 of the rest of the payload,
``integrity.payload_digest``) written with it, so a damaged file is refused, never loaded.
Then the stored config is validated (its sizes are bounded, ``config.UPPER_BOUNDS``) and
the weights are matched to the architecture it describes (names, shapes, float32, finite;
``weights.check_weights``) before the networks are built. Files of format ``/1`` (no digest)
are refused; ``upgrade_file`` converts one after the same checks.
"""

import hmac
import os
from pathlib import Path
import pickle
from typing import Any, Iterable, Mapping, Optional, Sequence
import zipfile

import torch

import fga_ros
from fga_ros.core.common.config import TrainConfig, config_from_dict, config_to_dict
from fga_ros.core.common.integrity import (
    DIGEST_KEY,
    IntegrityError,
    check_torch_archive,
    file_digest,
    payload_digest,
)
from fga_ros.core.models.networks import Network, build_network
from fga_ros.core.models.weights import check_weights
from fga_ros.file_writes import atomic_write
from fga_ros.safe_yaml import clip, quote

FORMAT = 'fga_ros.checkpoint/2'
MODEL_FORMAT = 'fga_ros.model/2'
LEGACY_FORMATS = {'fga_ros.checkpoint/1': FORMAT, 'fga_ros.model/1': MODEL_FORMAT}
"""Older formats (without a digest) and the format ``upgrade_file`` turns each into."""
MAX_MODEL_BYTES = 20 * 1024 * 1024
"""Limit on the bundled model's tensor data (pass as ``export_model(max_bytes=...)``)."""
MAX_FILE_BYTES = 4 * 1024 ** 3
"""Largest model or checkpoint file read, bytes."""


class CheckpointError(ValueError):
    """A checkpoint or model file that cannot be used: corrupt, truncated, incompatible."""


def _torch_reason(error: BaseException) -> str:
    """The reason of a torch.load failure in one short line, without torch's advice to
    retry with unsafe loading."""
    marker = 'WeightsUnpickler error:'
    kept = []
    for line in str(error).splitlines():
        line = line.strip()
        if marker in line:
            line = line[line.index(marker) + len(marker):].strip()
        if line and 'weights_only' not in line and not line.startswith(
                ('Weights only load failed', 'Check the documentation')):
            kept.append(line)
    return clip(' '.join(kept) or type(error).__name__)


def _load_archive(path: Path) -> Any:
    """``torch.load`` (weights only, to the CPU) with one-line errors."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f'{path}: not a readable checkpoint (corrupt, truncated, or it '
                              f'holds objects weights-only loading refuses): '
                              f'{_torch_reason(error)}') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, IndexError,
            OSError, TypeError, AttributeError, MemoryError, OverflowError,
            RecursionError) as error:  # torch raises these on damage
        raise CheckpointError(f'{path}: not a readable checkpoint (corrupt or truncated?): '
                              f'{type(error).__name__}: {_torch_reason(error)}') from None


def read_payload(path: str | os.PathLike, map_location: Any = None,
                 formats: Sequence[str] = (FORMAT, MODEL_FORMAT)) -> tuple[Path, dict]:
    """(path, payload dict without its digest) read from a model or checkpoint file, after
    the container, format and digest checks of the module docstring.

    Tensors stay on the CPU (``map_location`` is accepted for compatibility and ignored;
    callers move what they build).

    Raises:
        FileNotFoundError: no such file. CheckpointError: anything else, one line naming
            the file.
    """
    del map_location
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if not path.is_file():
        raise CheckpointError(f'{path}: not a file')
    if path.stat().st_size > MAX_FILE_BYTES:
        raise CheckpointError(f'{path}: larger than {MAX_FILE_BYTES} bytes')
    try:
        records = check_torch_archive(path)
    except IntegrityError as error:
        raise CheckpointError(f'{path}: {error}') from None
    data = _load_archive(path)
    if not isinstance(data, dict):
        raise CheckpointError(f'{path}: expected a dict, got {type(data).__name__}')
    fmt = data.get('format')
    if fmt in LEGACY_FORMATS and LEGACY_FORMATS[fmt] in formats:
        raise CheckpointError(f'{path}: format {fmt} has no integrity digest (written by an '
                              f'older fga_ros); convert it with `python3 -m '
                              f'fga_ros.core.models.model_file upgrade {path}`')
    if fmt not in formats:
        raise CheckpointError(f'{path}: format {quote(fmt)} is not '
                              + ' or '.join(repr(f) for f in formats))
    data = dict(data)
    stored = data.pop(DIGEST_KEY, None)
    if not isinstance(stored, str):
        raise CheckpointError(f'{path}: has no integrity digest (damaged file)')
    try:
        computed = payload_digest(data, max_tensor_bytes=records)
    except IntegrityError as error:
        raise CheckpointError(f'{path}: {error}') from None
    if not hmac.compare_digest(stored, computed):
        raise CheckpointError(f'{path}: integrity check failed: its content does not match '
                              f'the digest stored with it (damaged file)')
    if not isinstance(data.get('meta', {}), dict):
        raise CheckpointError(f'{path}: meta is a {type(data["meta"]).__name__}, not a mapping')
    return path, data


def config_of(path: str | os.PathLike, payload: Mapping[str, Any]) -> TrainConfig:
    """The ``TrainConfig`` stored in a checkpoint or model payload.

    Raises:
        CheckpointError: the stored config is missing or invalid (sizes out of bounds...).
    """
    values = payload.get('config')
    if not isinstance(values, dict):
        raise CheckpointError(f'{path}: holds no config mapping')
    try:
        return config_from_dict(dict(values), source='stored config')
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f'{path}: {error}') from None


def checked_weights(path: str | os.PathLike, payload: Mapping[str, Any], config: TrainConfig,
                    parts: Optional[Iterable[str]] = None) -> dict:
    """``payload['model']`` after :func:`weights.check_weights` against ``config``.

    Raises:
        CheckpointError: missing, unexpected, misshapen, non-float32 or non-finite weights.
    """
    if 'model' not in payload:
        raise CheckpointError(f'{path}: holds no model weights')
    try:
        check_weights(payload['model'], config, parts)
    except ValueError as error:
        raise CheckpointError(f'{path}: {error}') from None
    return payload['model']


def build_model(path: str | os.PathLike, payload: Mapping[str, Any], config: TrainConfig,
                map_location: Any = 'cpu') -> Network:
    """``build_network(config)`` (an ``ActorCritic`` or, for a heat-map method, a
    ``HeatmapModel``) holding the checked weights of ``payload``, in eval mode."""
    weights = checked_weights(path, payload, config)
    model = build_network(config)
    try:
        model.load_state_dict(weights, strict=True)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise CheckpointError(f'{path}: weights do not fit the stored config: '
                              f'{_torch_reason(error)}') from None
    return model.to(map_location).eval()


def sign(payload: dict) -> dict:
    """``payload`` with its ``digest`` (computed over everything else)."""
    payload = {k: v for k, v in payload.items() if k != DIGEST_KEY}
    payload[DIGEST_KEY] = payload_digest(payload)
    return payload


def export_model(path: str | os.PathLike, model: Network, config: TrainConfig,
                 meta: Optional[Mapping[str, Any]] = None,
                 max_bytes: Optional[int] = None) -> int:
    """Write an inference-only model file (weights, config, metadata, digest) atomically.

    Args:
        path: output file.
        model: ``ActorCritic`` or ``HeatmapModel``.
        config: its ``TrainConfig``.
        meta: JSON-like dict (e.g. training step, evaluation figures).
        max_bytes: refuse models whose tensors exceed this many bytes (None: no limit;
            ``MAX_MODEL_BYTES`` for the model bundled with the package).

    Returns:
        Size of the written file in bytes.

    Raises:
        WriteError: the file cannot be written (names it and the cause).
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    size = sum(t.numel() * t.element_size() for t in state.values())
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f'model tensors take {size} bytes, more than the {max_bytes} allowed '
                         f'for an exported model')
    payload = sign({'format': MODEL_FORMAT, 'version': fga_ros.__version__,
                    'torch': str(torch.__version__), 'config': config_to_dict(config),
                    'model': state, 'meta': dict(meta or {})})
    atomic_write(path, lambda f: torch.save(payload, f))
    return Path(path).stat().st_size


def load_model(path: str | os.PathLike, map_location: Any = 'cpu'
               ) -> tuple[Network, TrainConfig, dict[str, Any]]:
    """Load an exported model or a training checkpoint for inference (checked first).

    Returns:
        (model in eval mode, TrainConfig, meta dict; for a checkpoint: {'step': step}).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: damaged file, unknown format, unusable config, or weights that do
            not fit the stored config.
    """
    path, data = read_payload(path)
    if data['format'] == MODEL_FORMAT:
        meta = dict(data.get('meta', {}))
    else:
        meta = {'step': data.get('step')}
    config = config_of(path, data)
    model = build_model(path, data, config, map_location)
    return model, config, meta


def upgrade_file(path: str | os.PathLike, out: Optional[str | os.PathLike] = None) -> Path:
    """Rewrite a format ``/1`` model or checkpoint file (no digest) in the current format,
    after the checks of :func:`load_model` (weights matched to the config, finite). A
    checkpoint also gets the digest of the replay file beside it (upgrade it in place).

    Returns:
        The path written (``out``, default: ``path`` itself).
    """
    path = Path(path)
    try:
        check_torch_archive(path)
    except IntegrityError as error:
        raise CheckpointError(f'{path}: {error}') from None
    data = _load_archive(path)
    if not isinstance(data, dict) or data.get('format') not in LEGACY_FORMATS:
        raise CheckpointError(f'{path}: not a format /1 model or checkpoint')
    data = dict(data, format=LEGACY_FORMATS[data['format']])
    checked_weights(path, data, config_of(path, data))
    replay = data.get('replay')
    if replay is not None:  # a checkpoint: the digest of its replay file, as saved now
        if not isinstance(replay, str) or '/' in replay or '\\' in replay \
                or not path.with_name(replay).is_file():
            raise CheckpointError(f'{path}: its replay memory {quote(replay)} is missing')
        data['replay_digest'] = file_digest(path.with_name(replay))
    out = Path(out) if out else path
    atomic_write(out, lambda f: torch.save(sign(data), f))
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python3 -m fga_ros.core.models.model_file upgrade FILE [OUT]``."""
    import sys
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) not in (2, 3) or args[0] != 'upgrade':
        print('usage: python3 -m fga_ros.core.models.model_file upgrade FILE [OUT]',
              file=sys.stderr)
        return 2
    try:
        written = upgrade_file(args[1], args[2] if len(args) == 3 else None)
    except (ValueError, FileNotFoundError) as error:
        print(f'upgrade: error: {error}', file=sys.stderr)
        return 2
    print(f'upgraded: {written}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
