"""Safe file writes: atomic replacement, one clear message per failure, writability checks.

Every file the package writes (checkpoints, replay memories, models, evaluation records,
figures) goes through :func:`atomic_write` (or :func:`write_text`): the bytes go to a
temporary sibling ``.<name>.<random>.tmp``, are fsynced and renamed over the target, so a
failure or a kill leaves the previous file intact. A failure raises :class:`WriteError`
naming the path and the cause (permission denied, disk full, read-only file system) and
removes the temporary file; a temporary file left by a killed process is removed by
:func:`remove_temporaries` at the next start. :func:`check_writable` tells before a long
job whether a directory takes files at all.
"""

import errno
import os
from pathlib import Path
import tempfile

TEMP_SUFFIX = '.tmp'
"""Suffix of the temporary files of :func:`atomic_write` (prefix: ``.<target name>.``)."""

_CAUSES = {
    errno.ENOSPC: 'disk full',
    errno.EDQUOT: 'disk quota exceeded',
    errno.EACCES: 'permission denied',
    errno.EPERM: 'permission denied',
    errno.EROFS: 'read-only file system',
    errno.ENOENT: 'no such directory',
    errno.ENOTDIR: 'a parent is not a directory',
    errno.EISDIR: 'it is a directory',
    errno.EFBIG: 'file too large for the file system',
    errno.EIO: 'input/output error',
}
_TORCH_WRITE_FAILURES = ('inline_container.cc', 'PytorchStreamWriter', 'unexpected pos')


class WriteError(RuntimeError):
    """A file could not be written; the message names the path and the cause."""


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_read_umask()
"""Permissions of written files: a plain new file's (read once at import, as reading the
umask briefly changes it for the whole process)."""


def free_bytes(directory) -> int:
    """Bytes available to this user on the file system of ``directory`` (-1 if unknown)."""
    try:
        stat = os.statvfs(directory)
    except (OSError, AttributeError):
        return -1
    return stat.f_bavail * stat.f_frsize


def cause_of(error: BaseException) -> str:
    """A short human cause for a failed write: 'disk full', 'permission denied', ..."""
    if isinstance(error, OSError) and error.errno in _CAUSES:
        return _CAUSES[error.errno]
    text = str(error)
    if isinstance(error, RuntimeError) and any(s in text for s in _TORCH_WRITE_FAILURES):
        # torch's zip writer reports a short write (ENOSPC underneath) as an enforce failure
        return 'disk full'
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    first = text.splitlines()[0] if text else type(error).__name__
    return first[:120]


def write_error(path, error: BaseException) -> WriteError:
    """The :class:`WriteError` for ``error`` raised while writing ``path``."""
    path = Path(path)
    cause = cause_of(error)
    if cause == 'disk full':
        free = free_bytes(path.parent if not path.is_dir() else path)
        if free >= 0:
            cause += f' ({free} bytes free)'
    return WriteError(f'cannot write {path}: {cause}')


def describe_os_error(error: OSError) -> str:
    """One line for an OSError met while reading or writing: '<path>: <cause>'."""
    where = error.filename if error.filename is not None else 'a file'
    if isinstance(where, bytes):  # some libraries (TensorBoard's writer) name files in bytes
        where = os.fsdecode(where)
    return f'{where}: {cause_of(error)}'


def _fsync_dir(directory) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def discard(path) -> bool:
    """Remove ``path`` if it exists, as a best effort (a clean-up must not hide the error
    that caused it, e.g. on a file system that became read-only). True if it is gone."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        return False
    return True


def atomic_write(path, write) -> None:
    """Write ``path`` atomically: ``write(binary stream)`` into a temporary sibling, fsync,
    rename over ``path``.

    The file gets the permissions of a plainly created one (0666 less the umask), not the
    0600 of the temporary file. On any failure (including KeyboardInterrupt) the temporary
    file is removed and ``path`` keeps its previous content.

    Raises:
        WriteError: the directory or the file cannot be written (names path and cause).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=TEMP_SUFFIX,
                                   dir=path.parent)
    except OSError as error:
        raise write_error(path, error) from None
    try:
        with os.fdopen(fd, 'wb') as stream:
            write(stream)
            stream.flush()
            os.fchmod(stream.fileno(), FILE_MODE)
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        discard(tmp)
        raise write_error(path, error) from None
    except BaseException:
        discard(tmp)
        raise
    _fsync_dir(path.parent)


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write`."""
    atomic_write(path, lambda stream: stream.write(text.encode('utf-8')))


def save_figure(figure, path) -> None:
    """Save a matplotlib figure to ``path`` atomically, in the format its extension names
    (PNG without one); see :func:`atomic_write`."""
    kind = Path(path).suffix[1:].lower() or 'png'
    atomic_write(path, lambda stream: figure.savefig(stream, format=kind))


def append_line(path, line: str) -> None:
    """Append one line to a text file (e.g. a JSON-lines log), flushed and fsynced.

    Raises:
        WriteError: naming the path and the cause.
    """
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, 'a', encoding='utf-8') as stream:
            stream.write(line.rstrip('\n') + '\n')
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as error:
        raise write_error(path, error) from None


def check_writable(directory, min_free: int = 0) -> Path:
    """Make sure files can be created in ``directory`` (created if missing) before a job
    that will write there: creates, writes, fsyncs and removes a probe file.

    Args:
        directory: the directory.
        min_free: bytes that must be free on its file system (0: no check).

    Returns:
        ``directory`` as a Path.

    Raises:
        WriteError: it cannot be created or written, or has less than ``min_free`` bytes
            free (names the directory and the cause).
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise WriteError(f'cannot write to {directory}: it is not a directory')
    atomic_write(directory / '.fga-write-check', lambda stream: stream.write(b'ok\n'))
    (directory / '.fga-write-check').unlink(missing_ok=True)
    free = free_bytes(directory)
    if min_free and 0 <= free < min_free:
        raise WriteError(f'cannot write to {directory}: disk full ({free} bytes free, about '
                         f'{min_free} needed)')
    return directory


def temporaries(directory, names=None) -> list:
    """Temporary files of :func:`atomic_write` in ``directory`` (for targets ``names``;
    None: any target)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        name = entry.name
        if not (name.startswith('.') and name.endswith(TEMP_SUFFIX)) or not entry.is_file():
            continue
        if names is None or any(name.startswith(f'.{n}.') for n in names):
            found.append(entry)
    return sorted(found)


def remove_temporaries(directory, names=None) -> list:
    """Remove the leftovers of killed writes in ``directory`` (see :func:`temporaries`).

    Only call this where no other process writes the same targets (e.g. a run directory
    at the start of its one trainer).

    Returns:
        The paths removed.
    """
    removed = []
    for path in temporaries(directory, names):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise write_error(path, error) from None
        removed.append(path)
    return removed
