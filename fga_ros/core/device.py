"""Torch device selection and CPU thread set-up."""

import torch


def select_device(name='auto'):
    """Return the torch device for ``name``.

    Args:
        name: 'auto' (cuda when available, else cpu), 'cpu', 'cuda', 'cuda:<index>', or any
            other device string torch understands (e.g. 'mps').

    Raises:
        ValueError: an unknown device string, or a CUDA device that is not available.
    """
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f'unknown device {name!r}: {error}') from None
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {name!r} requested but CUDA is not available; '
                             f"use 'cpu' or 'auto'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f'device {name!r} requested but only '
                             f'{torch.cuda.device_count()} CUDA device(s) exist')
    return device


def configure_threads(num_threads=0):
    """Set torch's intra-op CPU threads; 0 keeps torch's default. Returns the count in use.

    Inter-op threads are set to the same number when torch still allows it (only before
    the first parallel operation), otherwise left alone.
    """
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 0:
        raise ValueError(f'num_threads must be an integer >= 0, got {num_threads!r}')
    if num_threads > 0:
        torch.set_num_threads(num_threads)
        try:
            torch.set_num_interop_threads(num_threads)
        except RuntimeError:  # already set, or parallel work has started
            pass
    return torch.get_num_threads()
