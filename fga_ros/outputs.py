"""Output paths of the ``fga`` commands: checked before any work starts.

Every command that writes a file or a directory checks the path given on its command line
with ``check_file`` / ``check_dir`` first, so a mistyped path fails in a second with a
one-line message instead of after an hour of work or with a traceback. Figure types come
from the file extension (``FIGURE_SUFFIXES``). Parent directories are created only when the
file is written (``make_parent``).
"""

from pathlib import Path
import tempfile


class UserError(Exception):
    """A problem the user can fix; the CLI prints it as one line (exit status 2)."""


FIGURE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.pdf', '.svg')
"""Figure file types, chosen by the extension (matplotlib writes each natively)."""


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path('.')


def _can_write_in(directory: Path) -> bool:
    """Whether a file can be created in ``directory`` (tried, so it holds for root too)."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix='.fga-write-test-'):
            return True
    except OSError:
        return False


def _check_creatable(path: Path, option: str) -> None:
    """Raise UserError unless the missing ``path`` could be created with its parents."""
    existing = _first_existing(path.parent)
    if not existing.is_dir():
        raise UserError(f'{option} {path}: {existing} is a file, not a directory')
    if not _can_write_in(existing):
        raise UserError(f'{option} {path}: cannot create it, {existing} is not writable')


def check_file(path, option: str, suffixes=None) -> Path:
    """Check an output file path before the work; return it as a Path.

    Args:
        path: the path given on the command line.
        option: the option's name for messages, e.g. ``'--out'``.
        suffixes: allowed extensions (lower case, with the dot), e.g. ``FIGURE_SUFFIXES``;
            None allows any.

    Raises:
        UserError: the path is a directory, has an unsupported extension, or cannot be
            written (read-only file or directory, a parent that is a file).
    """
    path = Path(path)
    if str(path) in ('', '.') or path.is_dir():
        raise UserError(f'{option} {path} is a directory; give a file name, e.g. '
                        f'{path / ("out" + (suffixes[0] if suffixes else ".json"))}')
    if suffixes is not None and path.suffix.lower() not in suffixes:
        shown = f'"{path.suffix}"' if path.suffix else 'no extension'
        raise UserError(f'{option} {path}: {shown} is not a supported file type; use one of '
                        + ', '.join(suffixes))
    if path.exists():
        try:
            with open(path, 'ab'):  # appends nothing: the content stays as it is
                pass
        except OSError as error:
            raise UserError(f'{option} {path}: the file is not writable '
                            f'({error.strerror})') from None
    else:
        _check_creatable(path, option)
    return path


def check_dir(path, option: str) -> Path:
    """Check an output directory before the work (it may exist); return it as a Path.

    Raises:
        UserError: the path is an existing file, or it cannot be created or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f'{option} {path} is an existing file; give a directory')
    if path.is_dir():
        if not _can_write_in(path):
            raise UserError(f'{option} {path}: the directory is not writable')
    else:
        _check_creatable(path, option)
    return path


def make_parent(path: Path) -> Path:
    """Create the parent directories of a checked output file; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
