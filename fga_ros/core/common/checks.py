"""Argument checks shared by the core and the bridge (numpy only): each returns the value
or raises ValueError naming the argument."""

from typing import Any

import numpy as np

from fga_ros.sim.workspace import IMAGE_SIZE


def check_image(image: Any) -> np.ndarray:
    """Return ``image`` if it is a (128, 128, 3) uint8 RGB array, else raise ValueError."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f'image must be a numpy array, got {type(image).__name__}')
    if image.dtype != np.uint8:
        raise ValueError(f'image must have dtype uint8, got {image.dtype}')
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(f'image must have shape ({IMAGE_SIZE}, {IMAGE_SIZE}, 3) (RGB camera '
                         f'frame), got {image.shape}')
    return image


def check_count(name: str, value: Any, low: int, high: int) -> int:
    """Return ``value`` as int if it is an integer in [low, high], else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f'{name} must be an integer, got {value!r}')
    if not low <= value <= high:
        raise ValueError(f'{name} must be in [{low}, {high}], got {value}')
    return int(value)


def check_number(name: str, value: Any, low: float, high: float) -> float:
    """Return ``value`` as float if it is a number in [low, high], else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f'{name} must be a number in [{low:g}, {high:g}], got {value!r}')
    if not low <= value <= high:
        raise ValueError(f'{name} must be in [{low:g}, {high:g}], got {value}')
    return float(value)


def check_fraction(name: str, value: Any) -> float:
    """Return ``value`` as float if it is a number in [0, 1), else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f'{name} must be a number in [0, 1), got {value!r}')
    if not 0.0 <= value < 1.0:
        raise ValueError(f'{name} must be in [0, 1), got {value}')
    return float(value)
