"""Balanced replay memory (section 4.1): a positive and a negative ring buffer.

An experience is (state id, action (3,) pixels float32, label). The observations are
kept once per state in an observation store shared by all its experiences, as PNG
bytes of the uint8 image at network resolution; a state is dropped as soon as the ring
buffers have overwritten its last experience. Critic batches take half of their
experiences from each memory, so the critic sees balanced labels whatever the actor's
success rate. A grouped critic batch (``sample_grouped``) adds, to each of those anchor
experiences, more experiences of the same state: one decoded image (one pass of the
feature extractor) then serves several labelled actions.

``state_dict()`` returns plain numpy arrays (``np.savez`` / ``np.load(allow_pickle=False)``)
from which ``load_state_dict()`` restores the memory exactly.
"""

import bisect
import sys
from typing import Any, Iterable, Mapping, NamedTuple, Optional, Sequence

import cv2
import numpy as np

from fga_ros.core.common.tensors import resize_images

PNG_LEVEL = 9
"""zlib level of the stored PNGs (0-9). On rendered scenes 9 gives ~40% smaller files than 3
for ~1 ms per stored observation (one per training step), and decodes faster."""
_MEMORIES = ('positive', 'negative')


class CriticBatch(NamedTuple):
    """Experiences for one critic step: L states, k experiences each."""

    images: np.ndarray
    """(L, H, W, 3) uint8 observations at network resolution"""
    actions: np.ndarray
    """(L, k, 3) float32 pixel actions (x, y, alpha)"""
    labels: np.ndarray
    """(L, k) bool grasp outcomes"""


class _Ring:
    """Fixed-capacity ring buffer of (state id, action) for one label."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.state_ids = np.zeros(capacity, dtype=np.int64)
        self.actions = np.zeros((capacity, 3), dtype=np.float32)
        self.count = 0
        self.cursor = 0

    def push(self, state_id: int, action: np.ndarray) -> tuple[int, Optional[int]]:
        """Store one experience; return (its slot, the state id it overwrote or None)."""
        slot = self.cursor
        evicted = int(self.state_ids[slot]) if self.count == self.capacity else None
        self.state_ids[slot] = state_id
        self.actions[slot] = action
        self.cursor = (slot + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)
        return slot, evicted


class ReplayMemory:
    """Balanced replay memory with a shared, PNG-compressed observation store.

    Args:
        positive_capacity: experiences the positive (success) memory keeps.
        negative_capacity: experiences the negative (failure) memory keeps.
        image_size: side of the stored observations in pixels (network resolution);
            larger or smaller images are resized on ``add``.
    """

    def __init__(self, positive_capacity: int, negative_capacity: int,
                 image_size: int) -> None:
        for name, value in (('positive_capacity', positive_capacity),
                            ('negative_capacity', negative_capacity),
                            ('image_size', image_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f'{name} must be a positive integer, got {value!r}')
        self.image_size = int(image_size)
        self._rings = {'positive': _Ring(int(positive_capacity)),
                       'negative': _Ring(int(negative_capacity))}
        self._png: dict[int, bytes] = {}  # state id -> PNG bytes
        self._refs: dict[int, int] = {}  # state id -> number of experiences referring to it
        self._live: list[int] = []  # stored state ids, in any order (uniform state sampling)
        self._slot: dict[int, int] = {}  # state id -> its index in _live
        # state id -> sorted member codes of its experiences (_member_code)
        self._members: dict[int, list[int]] = {}
        self._next_id = 0

    def __len__(self) -> int:
        return sum(ring.count for ring in self._rings.values())

    def sizes(self) -> dict[str, int]:
        """Counts: ``{'positive': n, 'negative': n, 'states': distinct observations}``."""
        sizes = {name: ring.count for name, ring in self._rings.items()}
        sizes['states'] = len(self._png)
        return sizes

    def nbytes(self) -> int:
        """Approximate memory held: ring arrays + PNG objects + store dict overhead."""
        rings = sum(r.state_ids.nbytes + r.actions.nbytes for r in self._rings.values())
        pngs = sum(sys.getsizeof(png) for png in self._png.values())
        containers = sum(sys.getsizeof(c) for c in (self._png, self._refs, self._slot,
                                                     self._live))
        ints = 3 * 32 * len(self._refs)  # boxed int keys, counts and slots (upper bound)
        return rings + pngs + containers + ints

    def add(self, image: np.ndarray, actions: np.ndarray, labels: np.ndarray) -> None:
        """Store one observation and the n grasps tried on it.

        Args:
            image: (H, W, 3) uint8 observation (resized to ``image_size`` if needed).
            actions: (n, 3) pixel actions (x, y, alpha).
            labels: (n,) bool outcomes (True: success).
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.dtype != np.uint8 or image.shape[2] != 3:
            raise ValueError(f'image must be uint8 with shape (H, W, 3), got '
                             f'{image.dtype} {image.shape}')
        actions = np.asarray(actions, dtype=np.float32)
        labels = np.asarray(labels)
        if actions.ndim != 2 or actions.shape[1] != 3:
            raise ValueError(f'actions must have shape (n, 3), got {actions.shape}')
        if labels.shape != (actions.shape[0],):
            raise ValueError(f'labels must have shape ({actions.shape[0]},), got {labels.shape}')
        if labels.dtype != np.bool_ and not np.isin(labels, (0, 1)).all():
            raise ValueError('labels must be booleans (or 0/1)')
        if not np.isfinite(actions).all():
            raise ValueError('actions must be finite')
        if actions.shape[0] == 0:
            return
        state_id = self._next_id
        self._next_id += 1
        self._png[state_id] = _encode(resize_images(image, self.image_size))
        self._refs[state_id] = 0
        self._members[state_id] = []
        self._slot[state_id] = len(self._live)
        self._live.append(state_id)
        for action, label in zip(actions, labels.astype(bool)):
            self._refs[state_id] += 1
            name = 'positive' if label else 'negative'
            slot, evicted = self._rings[name].push(state_id, action)
            if evicted is not None:
                self._release(evicted, _member_code(name, slot))
            bisect.insort(self._members[state_id], _member_code(name, slot))

    def _release(self, state_id: int, code: int) -> None:
        self._members[state_id].remove(code)
        self._refs[state_id] -= 1
        if self._refs[state_id] == 0:
            del self._refs[state_id]
            del self._png[state_id]
            del self._members[state_id]
            # swap-remove from the live list
            slot = self._slot.pop(state_id)
            last = self._live.pop()
            if last != state_id:
                self._live[slot] = last
                self._slot[last] = slot

    def _images(self, state_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        out = np.empty((len(state_ids), self.image_size, self.image_size, 3), dtype=np.uint8)
        for i, state_id in enumerate(state_ids):
            out[i] = _decode(self._png[int(state_id)])
        return out

    def _draw(self, name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        ring = self._rings[name]
        if ring.count == 0:
            raise ValueError(f'the {name} replay memory is empty; prefill it (imitation '
                             f'examples) before sampling')
        index = rng.integers(ring.count, size=n)
        return ring.state_ids[index], ring.actions[index]

    def _balanced_draw(self, batch_size: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if batch_size < 2:
            raise ValueError(f'batch_size must be >= 2, got {batch_size}')
        n_pos = batch_size // 2
        pos_ids, pos_actions = self._draw('positive', n_pos, rng)
        neg_ids, neg_actions = self._draw('negative', batch_size - n_pos, rng)
        order = rng.permutation(batch_size)
        ids = np.concatenate([pos_ids, neg_ids])[order]
        actions = np.concatenate([pos_actions, neg_actions])[order]
        labels = (np.arange(batch_size) < n_pos)[order]
        return ids, actions, labels

    def sample_balanced(self, batch_size: int, rng: np.random.Generator) -> CriticBatch:
        """Critic batch: ``batch_size // 2`` positives, the rest negatives, shuffled; k = 1.

        Raises:
            ValueError: when either memory is empty (no silent fallback: an unbalanced
                batch is exactly what this memory exists to prevent).
        """
        ids, actions, labels = self._balanced_draw(batch_size, rng)
        return CriticBatch(self._images(ids), actions[:, None], labels[:, None])

    def sample_grouped(self, batch_size: int, per_state: int,
                       rng: np.random.Generator) -> CriticBatch:
        """Critic batch of ``batch_size`` states with k = ``per_state`` experiences each.

        Column 0 holds the balanced draw of ``sample_balanced`` (the anchors); the other
        columns are experiences of the anchor's state drawn uniformly, with replacement,
        from those the memory still holds, whatever their label. ``per_state`` = 1 is
        ``sample_balanced``.
        """
        if isinstance(per_state, bool) or not isinstance(per_state, (int, np.integer)) \
                or per_state < 1:
            raise ValueError(f'per_state must be a positive integer, got {per_state!r}')
        ids, anchor_actions, anchor_labels = self._balanced_draw(batch_size, rng)
        actions = np.empty((batch_size, per_state, 3), dtype=np.float32)
        labels = np.empty((batch_size, per_state), dtype=bool)
        actions[:, 0], labels[:, 0] = anchor_actions, anchor_labels
        for row, state_id in enumerate(ids):
            members = self._members[int(state_id)]
            for col, k in enumerate(rng.integers(len(members), size=per_state - 1), 1):
                name, slot = _member_slot(members[k])
                actions[row, col] = self._rings[name].actions[slot]
                labels[row, col] = name == 'positive'
        return CriticBatch(self._images(ids), actions, labels)

    def sample_positive(self, batch_size: int, rng: np.random.Generator) -> CriticBatch:
        """``batch_size`` experiences of the positive memory (the GAN's real samples)."""
        ids, actions = self._draw('positive', batch_size, rng)
        return CriticBatch(self._images(ids), actions[:, None],
                           np.ones((batch_size, 1), dtype=bool))

    def sample_states(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Observations (K, H, W, 3) for the actor step, drawn uniformly (with replacement)
        over the stored states, whatever the number of experiences of each."""
        if not self._live:
            raise ValueError('the replay memory is empty; add experiences before sampling')
        index = rng.integers(len(self._live), size=batch_size)
        return self._images([self._live[i] for i in index])

    def state_dict(self) -> dict[str, np.ndarray]:
        """The whole memory as a dict of numpy arrays (no objects; ``allow_pickle=False``)."""
        ids = np.array(self._live, dtype=np.int64)
        lengths = np.array([len(self._png[int(i)]) for i in ids], dtype=np.int64)
        blob = np.frombuffer(b''.join(self._png[int(i)] for i in ids), dtype=np.uint8)
        state = {
            'image_size': np.int64(self.image_size),
            'next_id': np.int64(self._next_id),
            'state_ids': ids,
            'png_lengths': lengths,
            'png_blob': blob.copy(),
        }
        for name, ring in self._rings.items():
            state[f'{name}_capacity'] = np.int64(ring.capacity)
            state[f'{name}_count'] = np.int64(ring.count)
            state[f'{name}_cursor'] = np.int64(ring.cursor)
            state[f'{name}_state_ids'] = ring.state_ids.copy()
            state[f'{name}_actions'] = ring.actions.copy()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from ``state_dict()`` output; capacities and image size must match.

        Raises:
            ValueError: missing arrays, mismatched capacity / image size, or an
                inconsistent store (an experience refers to a missing observation).
        """
        ids, lengths, blob, rings, next_id = self._read_state(state)
        if lengths.shape != ids.shape or (lengths < 1).any() \
                or int(lengths.sum()) != blob.size:
            raise ValueError('replay state: PNG lengths do not match the stored bytes')
        if (ids < 0).any() or np.unique(ids).size != ids.size:
            raise ValueError('replay state: state ids are negative or repeated')
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        png = {int(i): blob[offsets[k]:offsets[k + 1]].tobytes() for k, i in enumerate(ids)}
        refs = self._count_references(rings, png)
        if any(n == 0 for n in refs.values()):
            raise ValueError('replay state: stores observations no experience refers to')
        if ids.size and int(ids.max()) >= next_id:
            raise ValueError('replay state: next_id is not above the stored state ids')
        _check_pngs(png, self.image_size)
        for name, (count, cursor, state_ids, actions) in rings.items():
            ring = self._rings[name]
            ring.count, ring.cursor = count, cursor
            ring.state_ids[:] = state_ids
            ring.actions[:] = actions
        self._png, self._refs, self._next_id = png, refs, next_id
        self._live = [int(i) for i in ids]
        self._slot = {state_id: k for k, state_id in enumerate(self._live)}
        self._members = _members_of(self._rings, self._live)

    def _read_state(self, state: Mapping[str, Any]) -> tuple[
            np.ndarray, np.ndarray, np.ndarray, dict[str, tuple], int]:
        """The arrays of a ``state_dict`` checked for presence, type and this memory's image
        size and capacities: (state ids, PNG lengths, PNG bytes, {ring: (count, cursor,
        state ids, actions)}, next id)."""
        missing = [k for k in _state_keys() if k not in state]
        if missing:
            raise ValueError(f'replay state lacks the array(s) {", ".join(missing)}')
        image_size = _scalar(state, 'image_size')
        capacities = {name: _scalar(state, f'{name}_capacity') for name in _MEMORIES}
        ids = _vector(state, 'state_ids', np.integer)
        lengths = _vector(state, 'png_lengths', np.integer)
        blob = _vector(state, 'png_blob', np.uint8)
        rings = {name: (_scalar(state, f'{name}_count'), _scalar(state, f'{name}_cursor'),
                        _vector(state, f'{name}_state_ids', np.integer),
                        _actions(state, f'{name}_actions'))
                 for name in _MEMORIES}
        next_id = _scalar(state, 'next_id')
        if image_size != self.image_size:
            raise ValueError(f'replay state holds {image_size}-pixel observations, this '
                             f'model takes {self.image_size}-pixel ones (a camera_view: '
                             f'fitted run saved before fitted views took 128-pixel images '
                             f'cannot be resumed: warm-start a new run from it)')
        for name in _MEMORIES:
            if capacities[name] != self._rings[name].capacity:
                raise ValueError(f'replay state has {name} capacity {capacities[name]}, this '
                                 f'memory {self._rings[name].capacity}')
        return ids, lengths, blob, rings, next_id

    def _count_references(self, rings: dict[str, tuple],
                          png: dict[int, bytes]) -> dict[int, int]:
        """Experiences per stored observation, after checking each ring's arrays (shapes,
        count and cursor, finite actions, no experience of a missing observation)."""
        refs = dict.fromkeys(png, 0)
        for name, (count, cursor, state_ids, actions) in rings.items():
            capacity = self._rings[name].capacity
            if state_ids.shape != (capacity,) or actions.shape != (capacity, 3) \
                    or not 0 <= count <= capacity or not 0 <= cursor < capacity \
                    or (count < capacity and cursor != count):
                raise ValueError(f'replay state: inconsistent {name} ring arrays (shapes '
                                 f'{state_ids.shape}, {actions.shape}, count {count}, cursor '
                                 f'{cursor}, capacity {capacity})')
            if not np.isfinite(actions[:count]).all():
                bad = int(np.flatnonzero(~np.isfinite(actions[:count]).all(axis=1))[0])
                raise ValueError(f'replay state: {name} action {bad} is NaN or infinite')
            for state_id in state_ids[:count]:
                if int(state_id) not in refs:
                    raise ValueError(f'replay state: {name} experience refers to missing '
                                     f'state {int(state_id)}')
                refs[int(state_id)] += 1
        return refs

def _member_code(name: str, slot: int) -> int:
    """One int per ring slot: ``slot`` for the positive ring, ``-1 - slot`` for the negative."""
    return slot if name == 'positive' else -1 - slot


def _member_slot(code: int) -> tuple[str, int]:
    """Inverse of ``_member_code``: (ring name, slot)."""
    return ('positive', code) if code >= 0 else ('negative', -1 - code)


def _members_of(rings: Mapping[str, _Ring], live: Iterable[int]) -> dict[int, list[int]]:
    """State id -> sorted member codes of its experiences, rebuilt from the rings.

    Sorted lists make sampling depend on the stored experiences only, not on the order
    they arrived in, so a restored memory samples exactly as the original.
    """
    members: dict[int, list[int]] = {state_id: [] for state_id in live}
    for name, ring in rings.items():
        for slot in range(ring.count):
            members[int(ring.state_ids[slot])].append(_member_code(name, slot))
    for codes in members.values():
        codes.sort()
    return members


def _encode(image: np.ndarray) -> bytes:
    """(H, W, 3) RGB uint8 -> PNG bytes (stored as a real RGB PNG)."""
    ok, buffer = cv2.imencode('.png', np.ascontiguousarray(image[..., ::-1]),
                              [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    if not ok:
        raise ValueError('PNG encoding of the observation failed')
    return buffer.tobytes()


def _decode(png: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError('replay memory: a stored observation is not a decodable PNG')
    return image[..., ::-1]


MAX_DECODE_CHECKS = 64
"""Stored observations fully decoded when a replay memory is restored (every one has its
PNG header checked; the file's digest covers the rest)."""
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _state_keys() -> list[str]:
    keys = ['image_size', 'next_id', 'state_ids', 'png_lengths', 'png_blob']
    for name in _MEMORIES:
        keys += [f'{name}_{k}' for k in ('capacity', 'count', 'cursor', 'state_ids',
                                          'actions')]
    return keys


def _scalar(state: Mapping[str, Any], key: str) -> int:
    value = np.asarray(state[key])
    if value.shape != () or not np.issubdtype(value.dtype, np.integer):
        raise ValueError(f'replay state: {key} must be an integer scalar, got '
                         f'{value.dtype} {value.shape}')
    return int(value)


def _vector(state: Mapping[str, Any], key: str, kind: type) -> np.ndarray:
    value = np.asarray(state[key])
    if value.ndim != 1 or not np.issubdtype(value.dtype, kind):
        kind_name = 'uint8' if kind is np.uint8 else 'integer'
        raise ValueError(f'replay state: {key} must be a 1-D {kind_name} array, got '
                         f'{value.dtype} {value.shape}')
    return value.astype(np.int64) if kind is np.integer else value


def _actions(state: Mapping[str, Any], key: str) -> np.ndarray:
    value = np.asarray(state[key])
    if value.ndim != 2 or not np.issubdtype(value.dtype, np.floating):
        raise ValueError(f'replay state: {key} must be a 2-D float array, got {value.dtype} '
                         f'{value.shape}')
    return value.astype(np.float32)


def _check_pngs(png: Mapping[int, bytes], image_size: int) -> None:
    """Every stored observation must be an 8-bit RGB PNG of ``image_size`` (header check);
    up to ``MAX_DECODE_CHECKS`` of them, spread over the store, are decoded in full."""
    side = image_size.to_bytes(4, 'big')
    for state_id, data in png.items():
        header = (data[:8], data[12:16], data[16:20], data[20:24], data[24:26])
        if header != (_PNG_SIGNATURE, b'IHDR', side, side, b'\x08\x02'):
            raise ValueError(f'replay state: observation {state_id} is not an 8-bit RGB PNG '
                             f'of {image_size} x {image_size} pixels')
    ids = list(png)
    for k in np.linspace(0, len(ids) - 1, min(len(ids), MAX_DECODE_CHECKS)).astype(int):
        image = cv2.imdecode(np.frombuffer(png[ids[k]], dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None or image.shape != (image_size, image_size, 3):
            raise ValueError(f'replay state: observation {ids[k]} cannot be decoded')
