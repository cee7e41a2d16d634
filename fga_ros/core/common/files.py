"""Atomic file writes: a kill at any moment leaves the previous file intact."""

import os
from pathlib import Path
import tempfile


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_read_umask()
"""Permissions of written checkpoints and models: a plain new file's (read once at import,
as reading the umask briefly changes it for the whole process)."""


def atomic_write(path, write):
    """Write ``path`` atomically: ``write(file)`` into a temporary sibling, fsync, rename.

    The file gets the permissions of a plainly created one (0666 less the umask), not the
    0600 of the temporary file: a model installed by one user must be readable by others.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as stream:
            write(stream)
            stream.flush()
            os.fchmod(stream.fileno(), FILE_MODE)
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
