"""GetDemonstrations payloads: per-state (image, actions (n, 3), labels (n,)) <-> flat arrays."""

from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike


def pack_demonstrations(
        items: Iterable[tuple[Any, ArrayLike, ArrayLike]]
) -> tuple[list[Any], list[float], list[bool], int]:
    """Flatten an iterable of (image, actions (n, 3), labels (n,)) with the same n for all.

    Returns (images list, actions as a flat float list, labels as a bool list, per_state n).
    """
    images: list[Any] = []
    actions: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    per_state: int | None = None
    for image, acts, labs in items:
        acts = np.asarray(acts, dtype=np.float64).reshape(-1, 3)
        labs = np.asarray(labs, dtype=bool).reshape(-1)
        if len(labs) != len(acts):
            raise ValueError(f'demonstration has {len(acts)} actions but {len(labs)} labels')
        if per_state is None:
            per_state = len(acts)
        elif len(acts) != per_state:
            raise ValueError(
                f'demonstrations must have the same number of actions per state: '
                f'{per_state} and {len(acts)}')
        images.append(image)
        actions.append(acts)
        labels.append(labs)
    if not images:
        return [], [], [], 0
    return (images, np.concatenate(actions).ravel().tolist(),
            np.concatenate(labels).tolist(), len(actions[0]))


def unpack_demonstrations(images: Sequence[Any], actions: ArrayLike, labels: ArrayLike
                          ) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    """Yield (image, actions (n, 3) float64, labels (n,) bool) per image of a response.

    ``actions`` is the row-major flat (len(images) * n * 3,) list, ``labels`` (len(images) * n,).
    """
    num_states = len(images)
    acts = np.asarray(actions, dtype=np.float64)
    labs = np.asarray(labels, dtype=bool)
    if num_states == 0:
        if acts.size or labs.size:
            raise ValueError('demonstrations carry actions but no images')
        return
    if len(labs) % num_states or acts.size != 3 * len(labs):
        raise ValueError(
            f'demonstrations do not fit together: {num_states} images, {acts.size} action '
            f'values, {len(labs)} labels (need labels = images * n and values = 3 * labels)')
    acts = acts.reshape(num_states, -1, 3)
    labs = labs.reshape(num_states, -1)
    for image, a, b in zip(images, acts, labs):
        yield image, a, b
