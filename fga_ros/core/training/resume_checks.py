"""Checks of a training checkpoint's state before a resumed run applies any of it.

:func:`check_training_state` looks at every field a resume restores (optimiser moments,
random generator states, counters, the step) and names the first one that is missing,
mistyped, of the wrong shape, out of range or not finite, so a damaged checkpoint is
refused before training, not half-applied or crashing mid-run.
"""

import math
from typing import Any

import numpy as np
import torch

from fga_ros.core.common.config import UPPER_BOUNDS
from fga_ros.core.models.weights import check_tensor

TRAINING_KEYS = ('optim', 'rng', 'counters', 'prefilled', 'step')
"""Fields a resumable checkpoint holds beyond its config and model weights."""
MAX_STEP = UPPER_BOUNDS['steps']
"""Largest step a checkpoint may be at (a run's target is at most this; whether the run is
complete or its target was lowered is for the caller: the CLI and the node say so)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_optimizer_state(name: str, saved: Any, optimizer: torch.optim.Optimizer) -> None:
    """Raise ValueError unless ``saved`` is a state dict ``optimizer`` can take: the same
    parameter groups, and for each parameter finite moments of its shape (Adam-style
    ``step`` / ``exp_avg`` / ``exp_avg_sq``)."""
    fresh = optimizer.state_dict()
    if not isinstance(saved, dict) or set(saved) != {'state', 'param_groups'} \
            or not isinstance(saved['state'], dict) or not isinstance(saved['param_groups'], list):
        raise ValueError(f'optimizer {name} is not an optimizer state (state, param_groups)')
    groups = saved['param_groups']
    if len(groups) != len(fresh['param_groups']):
        raise ValueError(f'optimizer {name} has {len(groups)} parameter groups, expected '
                         f'{len(fresh["param_groups"])}')
    for saved_group, fresh_group in zip(groups, fresh['param_groups']):
        # other keys may come and go with torch versions; the parameters must be the same
        if not isinstance(saved_group, dict) or 'lr' not in saved_group \
                or saved_group.get('params') != fresh_group['params']:
            raise ValueError(f'optimizer {name}: its parameter groups do not match the model')
        for key, value in saved_group.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f'optimizer {name}: {key} is not finite')
    shapes = [tuple(p.shape) for group in optimizer.param_groups for p in group['params']]
    for index, entry in saved['state'].items():
        where = f'optimizer {name} state of parameter {index!r}'[:80]
        if not _is_int(index) or not 0 <= index < len(shapes) or not isinstance(entry, dict):
            raise ValueError(f'{where} does not belong to a model parameter')
        for key, value in entry.items():
            if key == 'step':
                check_tensor(f'{where}: step', value, shape=(), dtype=None)
                if float(value) < 0:
                    raise ValueError(f'{where}: step is negative')
            elif key in ('exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'):
                check_tensor(f'{where}: {key}', value, shape=shapes[index])
                if key != 'exp_avg' and bool((value < 0).any()):
                    raise ValueError(f'{where}: {key} has negative values')
            else:
                raise ValueError(f'{where}: unexpected entry {str(key)[:40]!r}')


def _check_rng(rng: Any, generator: torch.Generator) -> None:
    if not isinstance(rng, dict) or not {'numpy', 'torch', 'generator'} <= set(rng):
        raise ValueError('rng must hold the numpy, torch and generator states')
    try:
        np.random.default_rng().bit_generator.state = rng['numpy']
    except (TypeError, ValueError, KeyError, OverflowError):
        raise ValueError('rng numpy is not a numpy generator state') from None
    for key, expected in (('torch', torch.get_rng_state()), ('generator', generator.get_state())):
        check_tensor(f'rng {key}', rng[key], shape=tuple(expected.shape), dtype=expected.dtype)


def _check_counters(counters: Any) -> None:
    if not isinstance(counters, dict) or set(counters) != {'successes', 'interactions'}:
        raise ValueError('counters must hold successes and interactions')
    successes, interactions = counters['successes'], counters['interactions']
    if not (_is_int(successes) and _is_int(interactions)
            and 0 <= successes <= interactions):
        raise ValueError(f'counters must be integers with 0 <= successes <= interactions, '
                         f'got {str(successes)[:20]} and {str(interactions)[:20]}')


def check_training_state(payload: dict, optimizers: dict,
                         generator: torch.Generator) -> None:
    """Check the resumable fields of a training checkpoint payload.

    Args:
        payload: the checkpoint dict (config and weights are checked elsewhere).
        optimizers: ``{'actor': optimizer, 'critic': optimizer}`` of the run to restore.
        generator: the run's torch generator (its state's shape is the reference).

    Raises:
        ValueError: names the first missing or bad field.
    """
    missing = [k for k in TRAINING_KEYS if k not in payload]
    if missing:
        raise ValueError(f'lacks {", ".join(missing)} (not a resumable training checkpoint)')
    step = payload['step']
    if not _is_int(step) or not 0 <= step <= MAX_STEP:
        raise ValueError(f'step must be an integer in [0, {MAX_STEP}], got {str(step)[:40]}')
    seconds = payload.get('train_seconds', 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f'train_seconds must be a finite number >= 0, got {str(seconds)[:40]}')
    if not isinstance(payload['prefilled'], bool):
        raise ValueError('prefilled must be true or false')
    _check_counters(payload['counters'])
    optim = payload['optim']
    if not isinstance(optim, dict) or set(optim) != set(optimizers):
        raise ValueError(f'optim must hold the optimizers {", ".join(sorted(optimizers))}')
    for name, optimizer in optimizers.items():
        check_optimizer_state(name, optim[name], optimizer)
    _check_rng(payload['rng'], generator)
