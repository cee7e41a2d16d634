"""Recorded demonstrations and grasp attempts: one dataset file, written and read back safely.

Format (``FORMAT`` version ``VERSION``): a ZIP archive (entries stored, not compressed) with

- ``manifest.json``: ``{"format": "fga_ros-grasp-dataset", "version": 1, "source": str,
  "image_size": 128, "num_states": N, "num_attempts": M,
  "action_units": ["px", "px", "rad"]}`` (more keys are kept but not read);
- ``images/000000.png`` ... one 128 x 128 RGB PNG per state (the top-down model input);
- ``actions.npy``: (M, 3) float64 grasps (x px, y px, angle rad), x and y in the workspace
  ``[25, 103)``, angle wrapped into ``[0, pi)``;
- ``labels.npy``: (M,) bool outcomes (True = the grasp held the object);
- ``states.npy``: (M,) int64 index of each attempt's image, non-decreasing, each state with at
  least one attempt.

``.npy`` entries are read without pickle. The reader checks everything before it returns:
archive size and entry sizes (:data:`MAX_FILE_BYTES`, :data:`MAX_ENTRY_BYTES`), the
manifest, array dtypes and shapes, workspace bounds, image headers and sizes; a truncated,
corrupt, wrong-shaped or wrong-typed file raises :class:`DatasetError` naming the file and
the problem.
"""

from dataclasses import dataclass
import io
import json
import os
from pathlib import Path
import struct
from typing import Any, Iterable, Iterator
import zipfile

import cv2
import numpy as np
from numpy.typing import ArrayLike

from fga_ros.safe_yaml import clip
from fga_ros.sim.workspace import IMAGE_SIZE, WORKSPACE_HI, WORKSPACE_LO, wrap_alpha

FORMAT = 'fga_ros-grasp-dataset'
VERSION = 1
MAX_FILE_BYTES = 4 << 30
"""Largest dataset file read, bytes (4 GiB)."""
MAX_ENTRY_BYTES = 1 << 30
"""Largest uncompressed archive entry, bytes."""
MAX_MANIFEST_BYTES = 1 << 20
MAX_PNG_BYTES = 4 * IMAGE_SIZE * IMAGE_SIZE * 3
"""Largest stored PNG of one 128 x 128 image, bytes (4x its raw size)."""
MAX_STATES = 100_000
"""Most images read (decoded, 4.9 GB at the limit)."""
MAX_ATTEMPTS = 10_000_000
"""Most grasp attempts read."""

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_ENCRYPTED = 0x1
"""ZIP general-purpose flag bit of an encrypted entry."""
_ARRAYS = {'actions': ('<f8', 2), 'labels': ('|b1', 1), 'states': ('<i8', 1)}


class DatasetError(ValueError):
    """A dataset file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, eq=False)
class GraspDataset:
    """A dataset in memory.

    Attributes:
        images: (N, 128, 128, 3) uint8 RGB.
        actions: (M, 3) float64 (x px, y px, angle rad).
        labels: (M,) bool.
        states: (M,) int64 image index of each attempt, non-decreasing.
        source: what recorded it (free text).
    """

    images: np.ndarray
    actions: np.ndarray
    labels: np.ndarray
    states: np.ndarray
    source: str

    def records(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(image, actions (k, 3), labels (k,)) per state, in order."""
        bounds = np.searchsorted(self.states, np.arange(len(self.images) + 1))
        for i, image in enumerate(self.images):
            lo, hi = bounds[i], bounds[i + 1]
            yield image, self.actions[lo:hi], self.labels[lo:hi]


def _encode_png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode('.png', np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise DatasetError('cannot PNG-encode an image')
    return data.tobytes()


def _check_record(image: ArrayLike, actions: ArrayLike, labels: ArrayLike
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise DatasetError(f'a record image must be uint8 ({IMAGE_SIZE}, {IMAGE_SIZE}, 3), got '
                           f'{image.dtype} {image.shape}')
    actions = np.asarray(actions, dtype=np.float64)
    labels = np.asarray(labels)
    if actions.ndim != 2 or actions.shape[1] != 3 or len(actions) == 0:
        raise DatasetError(f'record actions must have shape (k, 3), k >= 1, got {actions.shape}')
    if labels.dtype != np.bool_ or labels.shape != (len(actions),):
        raise DatasetError(f'record labels must be bool of shape ({len(actions)},), got '
                           f'{labels.dtype} {labels.shape}')
    _check_actions(actions, 'record actions')
    return image, actions, labels


def _check_actions(actions, where):
    if not np.isfinite(actions).all():
        raise DatasetError(f'{where} must be finite')
    xy = actions[:, :2]
    bad = ~((xy >= WORKSPACE_LO) & (xy < WORKSPACE_HI)).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DatasetError(f'{where}: x and y must lie in [{WORKSPACE_LO}, {WORKSPACE_HI}) px; '
                           f'row {row} is {actions[row].tolist()}')


class DatasetWriter:
    """Write a dataset file record by record; the file appears (atomically) on ``close``.

    An existing ``path`` is refused (DatasetError), never overwritten.

    Images go to a temporary archive next to ``path`` as they come; the small arrays are
    kept in memory. Use as a context manager; on an exception the temporary file is removed
    and nothing is written at ``path``.
    """

    def __init__(self, path: str | os.PathLike, source: str) -> None:
        self.path = Path(path)
        self.source = str(source)
        if self.path.exists():
            raise DatasetError(f'{self.path} exists; choose another name (nothing was '
                               'overwritten)')
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + '.tmp')
        self._zip = zipfile.ZipFile(self._tmp, 'w', zipfile.ZIP_STORED)
        self._actions: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._states: list[np.ndarray] = []
        self.num_states = 0

    @property
    def num_attempts(self) -> int:
        """Grasps added so far."""
        return sum(len(a) for a in self._actions)

    def add(self, image: ArrayLike, actions: ArrayLike, labels: ArrayLike) -> None:
        """One state: image (128, 128, 3) uint8, actions (k, 3), labels (k,) bool."""
        image_arr, actions_arr, labels_arr = _check_record(image, actions, labels)
        self._zip.writestr(f'images/{self.num_states:06d}.png', _encode_png(image_arr))
        actions_arr = actions_arr.copy()
        actions_arr[:, 2] = wrap_alpha(actions_arr[:, 2])
        self._actions.append(actions_arr)
        self._labels.append(labels_arr.astype(bool))
        self._states.append(np.full(len(actions_arr), self.num_states, dtype=np.int64))
        self.num_states += 1

    def _array(self, name, value):
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        self._zip.writestr(f'{name}.npy', buffer.getvalue())

    def close(self) -> Path:
        """Finish the archive and move it to ``path``; returns ``path``."""
        if self.num_states == 0:
            self.abort()
            raise DatasetError(f'{self.path}: no records to write')
        actions = np.concatenate(self._actions)
        self._array('actions', actions)
        self._array('labels', np.concatenate(self._labels))
        self._array('states', np.concatenate(self._states))
        manifest = {'format': FORMAT, 'version': VERSION, 'source': self.source,
                    'image_size': IMAGE_SIZE, 'num_states': self.num_states,
                    'num_attempts': len(actions), 'action_units': ['px', 'px', 'rad']}
        self._zip.writestr('manifest.json', json.dumps(manifest, indent=1))
        self._zip.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the temporary archive; nothing is written at ``path``."""
        self._zip.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> 'DatasetWriter':
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def write_dataset(path: str | os.PathLike, records: Iterable, source: str) -> Path:
    """Write ``records`` (iterable of (image, actions, labels)) to ``path``."""
    with DatasetWriter(path, source) as writer:
        for image, actions, labels in records:
            writer.add(image, actions, labels)
    return Path(path)


def _read_entry(archive, name, limit, where):
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise DatasetError(f'{where}: entry {name} is missing') from None
    if info.file_size > limit:
        raise DatasetError(f'{where}: entry {name} is {info.file_size} bytes, more than the '
                           f'limit of {limit}')
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & _ENCRYPTED:
        raise DatasetError(f'{where}: entry {name} is compressed or encrypted; dataset '
                           'entries are stored as they are (fga record writes them so)')
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError,
            NotImplementedError) as exc:
        raise DatasetError(f'{where}: entry {name} is corrupt or truncated ({exc})') from None


def _read_array(archive, name, rows, where):
    dtype, ndim = _ARRAYS[name]
    data = _read_entry(archive, f'{name}.npy', MAX_ENTRY_BYTES, where)
    shape = (rows, 3) if ndim == 2 else (rows,)
    try:  # the header first: np.load allocates whatever shape it states
        stream = io.BytesIO(data)
        major, _ = np.lib.format.read_magic(stream)
        header = (np.lib.format.read_array_header_1_0 if major == 1
                  else np.lib.format.read_array_header_2_0)(stream)
        if header[2].str != dtype:
            raise DatasetError(f'{where}: {name}.npy must be {np.dtype(dtype)}, got '
                               f'{header[2]}')
        if header[0] != shape:
            raise DatasetError(f'{where}: {name}.npy must have shape {shape} (manifest '
                               f'num_attempts), got {clip(header[0])}')
        return np.load(io.BytesIO(data), allow_pickle=False)  # as its header says
    except DatasetError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(f'{where}: {name}.npy is not a readable array '
                           f'({clip(exc)})') from None


def _decode_png(data, name, where):
    if (len(data) < 24 or data[:8] != _PNG_SIGNATURE or data[12:16] != b'IHDR'):
        raise DatasetError(f'{where}: {name} is not a PNG image')
    width, height = struct.unpack('>II', data[16:24])
    if (width, height) != (IMAGE_SIZE, IMAGE_SIZE):
        raise DatasetError(f'{where}: {name} is {width} x {height} px, the dataset images must '
                           f'be {IMAGE_SIZE} x {IMAGE_SIZE}')
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint8 or image.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        got = 'undecodable' if image is None else f'{image.dtype} {image.shape}'
        raise DatasetError(f'{where}: {name} must decode to an 8-bit RGB image '
                           f'({IMAGE_SIZE}, {IMAGE_SIZE}, 3), got {got}')
    return image[..., ::-1]


def _manifest(archive, where):
    data = _read_entry(archive, 'manifest.json', MAX_MANIFEST_BYTES, where)
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8, digits, nesting
        raise DatasetError(f'{where}: manifest.json is not valid JSON '
                           f'({clip(exc)})') from None
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        raise DatasetError(f'{where}: not a grasp dataset (manifest format must be {FORMAT!r})')
    if manifest.get('version') != VERSION:
        raise DatasetError(f'{where}: dataset version {clip(manifest.get("version"))} is not '
                           f'supported (this reader reads version {VERSION})')
    if manifest.get('image_size') != IMAGE_SIZE:
        raise DatasetError(f'{where}: image_size must be {IMAGE_SIZE}, got '
                           f'{clip(manifest.get("image_size"))}')
    for key, limit in (('num_states', MAX_STATES), ('num_attempts', MAX_ATTEMPTS)):
        value = manifest.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
            raise DatasetError(f'{where}: manifest {key} must be an integer in [1, {limit}], '
                               f'got {value!r}')
    if not isinstance(manifest.get('source', ''), str):
        raise DatasetError(f'{where}: manifest source must be a string')
    return manifest


def read_dataset(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> GraspDataset:
    """Read and verify a dataset file (see the module notes); raises DatasetError."""
    path = Path(path)
    where = str(path)
    if path.is_dir():
        raise DatasetError(f'dataset file {path} is a directory')
    if not path.is_file():
        raise DatasetError(f'dataset file not found: {path}')
    size = path.stat().st_size
    if size > max_bytes:
        raise DatasetError(f'{where} is {size} bytes, more than the limit of {max_bytes}')
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f'{where} is not a dataset archive (truncated or not a ZIP file: '
                           f'{exc})') from None
    with archive:
        manifest = _manifest(archive, where)
        n, m = manifest['num_states'], manifest['num_attempts']
        actions = _read_array(archive, 'actions', m, where)
        labels = _read_array(archive, 'labels', m, where)
        states = _read_array(archive, 'states', m, where)
        _check_actions(actions, f'{where}: actions.npy')
        if states.min() < 0 or states.max() >= n or np.any(np.diff(states) < 0):
            raise DatasetError(f'{where}: states.npy must be non-decreasing image indices in '
                               f'[0, {n})')
        if len(np.unique(states)) != n:
            raise DatasetError(f'{where}: every one of the {n} images needs at least one '
                               'attempt in states.npy')
        images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        for i in range(n):
            name = f'images/{i:06d}.png'
            images[i] = _decode_png(_read_entry(archive, name, MAX_PNG_BYTES, where),
                                    name, where)
    actions = actions.copy()
    actions[:, 2] = wrap_alpha(actions[:, 2])
    return GraspDataset(images, actions, labels, states, str(manifest.get('source', '')))
