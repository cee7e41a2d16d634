"""Integrity of saved files: a bounded check of torch's zip container and content digests.

A torch file is a zip archive: a pickle (``data.pkl``) describing the payload and one stored
record per tensor storage. :func:`check_torch_archive` reads only the zip directory, before
torch reads anything, and refuses what could make loading cost more than the file's size
(compressed records: a 100 KB deflated record expands to 100 MB; too many records; an
oversized pickle).

:func:`payload_digest` is the SHA-256 of a canonical encoding of a payload (dicts with
sorted keys, lists, strings, numbers, and every tensor's dtype, shape and bytes); it is
stored in the file beside the payload (``'digest'``) and recomputed on load, so a flipped
bit anywhere in the tensor data or the values is refused, not loaded. The walk is bounded
(values visited and tensor bytes hashed), so shared references in a crafted pickle cannot
make it run long.
"""

import hashlib
import math
import os
from pathlib import Path
import struct
from typing import Any
import zipfile

import torch

DIGEST_ALGORITHM = 'sha256'
DIGEST_KEY = 'digest'
"""Key of a payload's own digest (hex string) in saved files."""
MAX_ARCHIVE_RECORDS = 100_000
"""Most records a torch archive may hold (a checkpoint holds a few hundred)."""
MAX_PICKLE_BYTES = 16 * 1024 * 1024
"""Largest ``data.pkl`` accepted, bytes (ours are a few KiB to a few hundred KiB)."""
MAX_DIGEST_VALUES = 100_000
"""Most values (containers, scalars, tensors) a digested payload may hold (a checkpoint of
the cpu preset holds about a thousand)."""


class IntegrityError(ValueError):
    """A file whose container or content is damaged or not what it claims to be."""


def check_torch_archive(path: str | os.PathLike) -> int:
    """Check the zip container of a torch file before it is loaded.

    Returns:
        The total size of its records in bytes (at most the file size).

    Raises:
        IntegrityError: not a zip archive (torch's legacy format is not accepted),
            compressed or oversized records, too many records, no pickle.
    """
    path = Path(path)
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            struct.error) as error:
        raise IntegrityError(f'not a torch zip archive (corrupt or truncated, or not written by '
                             f'torch.save): {type(error).__name__}') from None
    if len(records) > MAX_ARCHIVE_RECORDS:
        raise IntegrityError(f'holds {len(records)} records, more than {MAX_ARCHIVE_RECORDS}')
    total = 0
    pickles = [r for r in records if r.filename.endswith('/data.pkl')
               or r.filename == 'data.pkl']
    for record in records:
        if record.compress_type != zipfile.ZIP_STORED:
            raise IntegrityError(f'record {record.filename[:60]!r} is compressed; torch.save '
                                 f'stores records uncompressed')
        total += record.file_size
    if total > size:
        raise IntegrityError(f'its records claim {total} bytes, more than the file size {size}')
    if len(pickles) != 1:
        raise IntegrityError(f'expected one data.pkl record, found {len(pickles)}')
    if pickles[0].file_size > MAX_PICKLE_BYTES:
        raise IntegrityError(f'its pickle takes {pickles[0].file_size} bytes, more than '
                             f'{MAX_PICKLE_BYTES}')
    return total


class _Digest:
    """Streams a canonical encoding of a payload into SHA-256, within budgets."""

    def __init__(self, max_tensor_bytes: int) -> None:
        self.hash = hashlib.new(DIGEST_ALGORITHM)
        self.values = 0
        self.tensor_bytes = 0
        self.max_tensor_bytes = max_tensor_bytes

    def _tag(self, tag: bytes, text: bytes = b'') -> None:
        self.hash.update(tag + str(len(text)).encode() + b':' + text)

    def add(self, value: Any, depth: int = 0) -> None:
        self.values += 1
        if self.values > MAX_DIGEST_VALUES:
            raise IntegrityError(f'holds more than {MAX_DIGEST_VALUES} values')
        if depth > 64:
            raise IntegrityError('nested deeper than 64 levels')
        if value is None:
            self._tag(b'n')
        elif isinstance(value, bool):
            self._tag(b'b', b'1' if value else b'0')
        elif isinstance(value, int):
            self._tag(b'i', str(value).encode() if abs(value) < 10 ** 40 else b'big')
        elif isinstance(value, float):
            self._tag(b'f', float.hex(value).encode() if not math.isnan(value) else b'nan')
        elif isinstance(value, str):
            self._tag(b's', value.encode('utf-8', 'surrogatepass'))
        elif isinstance(value, bytes):
            self._tag(b'y', value)
        elif isinstance(value, torch.Tensor):
            self._tensor(value)
        elif isinstance(value, dict):
            self._tag(b'd', str(len(value)).encode())
            for key in sorted(value, key=lambda k: (type(k).__name__, str(k)[:200])):
                self.add(key, depth + 1)
                self.add(value[key], depth + 1)
        elif isinstance(value, (list, tuple)):
            self._tag(b'l', str(len(value)).encode())
            for item in value:
                self.add(item, depth + 1)
        else:
            raise IntegrityError(f'holds a value of unsupported type {type(value).__name__}')

    def _tensor(self, tensor: torch.Tensor) -> None:
        if tensor.layout != torch.strided or tensor.device.type == 'meta':
            raise IntegrityError(f'holds a {tensor.layout} tensor on {tensor.device}')
        nbytes = tensor.numel() * tensor.element_size()
        self.tensor_bytes += nbytes
        if self.tensor_bytes > self.max_tensor_bytes:
            raise IntegrityError(f'its tensors take more than the {self.max_tensor_bytes} '
                                 f'bytes its records hold (views repeated?)')
        self._tag(b't', f'{tensor.dtype}{tuple(tensor.shape)}'.encode())
        flat = tensor.detach().to('cpu').contiguous().reshape(-1)
        if flat.numel():
            self.hash.update(flat.view(torch.uint8).numpy().tobytes()
                             if flat.dtype != torch.uint8 else flat.numpy().tobytes())


def payload_digest(payload: Any, max_tensor_bytes: int = 1 << 40) -> str:
    """Hex SHA-256 of the canonical encoding of ``payload`` (see the module docstring).

    Args:
        payload: dicts, lists, tuples, str, bytes, int, float, bool, None and dense tensors.
        max_tensor_bytes: refuse payloads whose tensors (counted at every reference) exceed
            this many bytes.

    Raises:
        IntegrityError: unsupported value, too many values or tensor bytes.
    """
    digest = _Digest(max_tensor_bytes)
    digest.add(payload)
    return digest.hash.hexdigest()


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.new(DIGEST_ALGORITHM)
    with open(path, 'rb') as stream:
        while True:
            block = stream.read(chunk)
            if not block:
                return digest.hexdigest()
            digest.update(block)


def check_npz_archive(path: str | os.PathLike) -> None:
    """Check a ``.npz`` file (numpy's zip of ``.npy`` records) before ``np.load`` reads it:
    records stored uncompressed, no object arrays, and every array's header agreeing with
    the bytes its record holds (a header claiming 10^12 elements is refused, not allocated).

    Raises:
        IntegrityError: naming the first problem.
    """
    import numpy as np

    path = Path(path)
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
            if len(records) > MAX_ARCHIVE_RECORDS:
                raise IntegrityError(f'holds {len(records)} records')
            if sum(r.file_size for r in records) > size:
                raise IntegrityError('its records claim more bytes than the file holds')
            for record in records:
                name = record.filename[:60]
                if record.compress_type != zipfile.ZIP_STORED:
                    raise IntegrityError(f'record {name!r} is compressed; np.savez stores '
                                         f'records uncompressed')
                with archive.open(record) as stream:
                    version = np.lib.format.read_magic(stream)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(stream, max_header_size=10_000)
                if dtype.hasobject:
                    raise IntegrityError(f'record {name!r} holds Python objects')
                count = 1
                for side in shape:
                    count *= side
                if count * dtype.itemsize > record.file_size:
                    raise IntegrityError(f'record {name!r} claims shape {shape}, more than its '
                                         f'{record.file_size} bytes')
    except IntegrityError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            struct.error) as error:
        raise IntegrityError(f'not a readable .npz archive: {type(error).__name__}: '
                             f'{str(error)[:80]}') from None
