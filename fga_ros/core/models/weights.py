"""The weights a configuration's networks have, and the check of weights read from a file.

:func:`expected_weights` builds the networks of a config (``networks.build_network``) on
torch's ``meta`` device: every parameter's name, shape and dtype, with no memory allocated.
A file's weights are compared with it (:func:`check_weights`) before the real networks are
built, so a file whose config asks for huge layers, or whose tensors do not fit its config,
is refused before it costs anything.
"""

from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import torch

from fga_ros.core.common.config import TrainConfig
from fga_ros.core.models.camera_view import check_homography
from fga_ros.core.models.networks import build_network

WEIGHT_DTYPE = torch.float32
"""The dtype of every network weight."""
RECTIFIER_KEY = 'rectifier.homography'
"""The fitted camera view of a ``camera_view: fitted`` model (``camera_view.TableRectifier``)."""


class _MetaParameters(torch.overrides.TorchFunctionMode):
    """Within it (this thread only), ``torch.empty`` without a device, which is how
    ``nn.Linear`` / ``nn.Conv2d`` create their weights, allocates on the meta device: shapes
    without memory. Other factories (the small constant buffers) stay on the CPU; building
    those on meta would first load torch's Python reference kernels (seconds)."""

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: Sequence[Any] = (),
                           kwargs: Optional[Mapping[str, Any]] = None) -> Any:
        kwargs = dict(kwargs or {})
        if func is torch.empty and kwargs.get('device') is None:
            kwargs['device'] = 'meta'
        return func(*args, **kwargs)


def expected_weights(config: TrainConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """``{name: (shape tuple, dtype)}`` of ``build_network(config).state_dict()``, without
    allocating the weights (they are built on the meta device)."""
    with _MetaParameters():
        model = build_network(config)
    return {name: (tuple(t.shape), t.dtype) for name, t in model.state_dict().items()}


def parameter_count(config: TrainConfig) -> int:
    """Number of weights of ``build_network(config)`` (no allocation)."""
    count = 0
    for shape, _ in expected_weights(config).values():
        size = 1
        for side in shape:
            size *= side
        count += size
    return count


MAX_PARAMETERS = 32_000_000
"""Most weights a network may have (128 MB of float32; the paper preset has 7.9 M): with
gradients and Adam's two moments a run holds four times that."""


class NetworkTooLargeError(ValueError):
    """A configuration whose networks have more than ``MAX_PARAMETERS`` weights."""


def check_parameter_count(config: TrainConfig) -> int:
    """The weight count of ``config``'s networks; NetworkTooLargeError above the bound."""
    count = parameter_count(config)
    if count > MAX_PARAMETERS:
        raise NetworkTooLargeError(f'the configured networks have {count} weights, more than '
                         f'{MAX_PARAMETERS}')
    return count


def _describe(tensor: torch.Tensor) -> str:
    return f'{tensor.dtype} {tuple(tensor.shape)}'


def check_tensor(name: str, tensor: Any, shape: Optional[Sequence[int]] = None,
                 dtype: Optional[torch.dtype] = WEIGHT_DTYPE) -> None:
    """Raise ValueError unless ``tensor`` is a dense, finite ``dtype`` tensor of ``shape``
    (None: any shape) whose storage holds all its elements."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f'{name} is a {type(tensor).__name__}, not a tensor')
    if tensor.layout != torch.strided or tensor.device.type == 'meta':
        raise ValueError(f'{name} is a {tensor.layout} tensor on {tensor.device}, not a dense '
                         f'one')
    if shape is not None and tuple(tensor.shape) != tuple(shape):
        raise ValueError(f'{name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}')
    if dtype is not None and tensor.dtype != dtype:
        raise ValueError(f'{name} is {tensor.dtype}, expected {dtype}')
    needed = tensor.numel() * tensor.element_size()
    if not tensor.is_contiguous() or tensor.untyped_storage().nbytes() < needed:
        raise ValueError(f'{name} ({_describe(tensor)}) is not a contiguous tensor backed by '
                         f'its own data')
    if tensor.is_floating_point() or tensor.is_complex():
        if not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(f'{name} holds {bad} NaN or infinite value(s)')


def check_weights(weights: Any, config: TrainConfig,
                  parts: Optional[Iterable[str]] = None) -> None:
    """Check a state dict read from a file against the architecture of ``config``.

    Args:
        weights: the file's ``'model'`` value.
        config: the ``TrainConfig`` the weights must fit.
        parts: optional top-level module names (e.g. ``('extractor', 'critic')``): only
            those weights are required and checked; the others are ignored.

    Raises:
        ValueError: not a mapping of names to tensors, missing or unexpected weights, a
            wrong shape or dtype, a view that is not backed by data, NaN or infinite values,
            a fitted camera view that is not a usable homography.
            The message names the first few problems.
    """
    if not isinstance(weights, dict):
        raise ValueError(f'the weights are a {type(weights).__name__}, not a mapping')
    if not all(isinstance(k, str) for k in weights):
        raise ValueError('the weights have names that are not strings')
    expected = expected_weights(config)
    if parts is not None:
        expected = {k: v for k, v in expected.items() if k.split('.', 1)[0] in parts}
        weights = {k: v for k, v in weights.items() if k.split('.', 1)[0] in parts}
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    if missing or unexpected:
        text = []
        if missing:
            text.append(f'{len(missing)} missing ({", ".join(missing[:3])}'
                        f'{", ..." if len(missing) > 3 else ""})')
        if unexpected:
            names = ', '.join(k[:60] for k in unexpected[:3])
            text.append(f'{len(unexpected)} unexpected ({names}'
                        f'{", ..." if len(unexpected) > 3 else ""})')
        raise ValueError('the weights do not fit the architecture of the stored config: '
                         + '; '.join(text))
    for name, (shape, dtype) in expected.items():
        check_tensor(f'weight {name}', weights[name], shape, dtype)
    if RECTIFIER_KEY in expected:
        check_homography(weights[RECTIFIER_KEY])
