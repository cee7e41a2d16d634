"""Torch helpers shared by the core: device and threads, generators, image tensors, latents."""

from typing import Optional, Union

import cv2
import numpy as np
import torch
from torch import nn

Device = Union[str, torch.device]
"""A torch device or its name ('cpu', 'cuda:0', ...)."""

IMAGE_CHANNELS = 3


def select_device(name: str = 'auto') -> torch.device:
    """Return the torch device for ``name``.

    Args:
        name: 'auto' (cuda when available, else cpu), 'cpu', 'cuda', 'cuda:<index>' or
            'mps' (Apple GPUs).

    Raises:
        ValueError: an unknown or unsupported device string, or a device that is not
            available.
    """
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f'unknown device {name!r}: {error}') from None
    if device.type not in ('cpu', 'cuda', 'mps'):
        raise ValueError(f"device {name!r} is not supported; use 'cpu', 'cuda', 'cuda:<index>', "
                         f"'mps' or 'auto'")
    if device.type == 'mps' and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but MPS is not available; use 'cpu' or "
                         f"'auto'")
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {name!r} requested but CUDA is not available; '
                             f"use 'cpu' or 'auto'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f'device {name!r} requested but only '
                             f'{torch.cuda.device_count()} CUDA device(s) exist')
    return device


def configure_threads(num_threads: int = 0) -> int:
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


def make_generator(device: Device, generator: Optional[torch.Generator] = None,
                   seed: Optional[int] = None) -> Optional[torch.Generator]:
    """The torch generator to sample with: ``generator``, one seeded with ``seed``, or None.

    Raises:
        ValueError: both given, a generator on another device, or a bad seed.
    """
    device = torch.device(device)
    if generator is not None and seed is not None:
        raise ValueError('give either generator or seed, not both')
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f'seed must be an integer >= 0, got {seed!r}')
        return torch.Generator(device=device).manual_seed(int(seed))
    if generator is not None and generator.device.type != device.type:
        raise ValueError(f'generator is on {generator.device}, the model on {device}')
    return generator


def model_device(model: nn.Module) -> torch.device:
    """Device of a model's first parameter (cpu for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device('cpu')


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 images (..., H, W, 3) to (..., size, size, 3) with area interpolation.

    Returns the input unchanged when it already has the size.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim < 3 or images.shape[-1] != IMAGE_CHANNELS:
        raise ValueError(f'images must be uint8 with shape (..., H, W, 3), got '
                         f'{images.dtype} {images.shape}')
    if images.shape[-3:-1] == (size, size):
        return images
    flat = images.reshape((-1,) + images.shape[-3:])
    out = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in flat])
    return out.reshape(images.shape[:-3] + (size, size, IMAGE_CHANNELS))


def images_to_tensor(images: np.ndarray, image_size: int,
                     device: Optional[Device] = None) -> torch.Tensor:
    """uint8 images (H, W, 3) or (S, H, W, 3) -> uint8 tensor (S, 3, size, size) on device.

    Images of another size are resized (area interpolation) to ``image_size``.
    """
    images = resize_images(images, image_size)
    if images.ndim == 3:
        images = images[None]
    tensor = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return tensor.permute(0, 3, 1, 2).contiguous()


def sample_latent(num_states: int, n: int, latent_dim: int,
                  generator: Optional[torch.Generator] = None,
                  device: Optional[Device] = None) -> torch.Tensor:
    """Latent inputs z ~ Uniform([-1, 1]^d), shape (num_states, n, latent_dim), float32."""
    u = torch.rand((num_states, n, latent_dim), generator=generator, device=device)
    return 2.0 * u - 1.0
