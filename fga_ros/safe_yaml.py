"""The one YAML reader of the package: bounded in size, depth and node count, no aliases.

Every YAML the package reads (training presets, ``--set`` values, ``sim/*.yaml``, the
preset a ROS parameter file names) goes through :func:`read_yaml_file` or
:func:`parse_yaml`. The bounds are checked before (file size) and while (depth, nodes)
parsing, so a small hostile file cannot make the parser or the messages built from its
values run long or allocate much: aliases are refused outright (a "billion laughs" document
expands a few hundred bytes into gigabytes through them), and :func:`quote` prints at most a
short prefix of any value.
"""

from pathlib import Path
import reprlib

import yaml

MAX_YAML_BYTES = 256 * 1024
"""Largest YAML file or text accepted, bytes (the package's own files are < 8 KiB)."""
MAX_YAML_DEPTH = 32
"""Deepest nesting of lists and mappings accepted."""
MAX_YAML_NODES = 20_000
"""Most scalars, lists and mappings one document may hold."""
QUOTE_CHARS = 60
"""Longest quotation of a value in an error message, characters."""


class YamlError(ValueError):
    """A YAML file or text that is malformed, too large, too deep or uses aliases."""


_REPR = reprlib.Repr()
_REPR.maxstring = QUOTE_CHARS
_REPR.maxother = QUOTE_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_REPR.maxlevel = 3
_REPR.maxlong = QUOTE_CHARS


def clip(text: object) -> str:
    """``text`` cut to ``QUOTE_CHARS`` characters (``...`` marks a cut)."""
    text = str(text)
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + '...'


def quote(value) -> str:
    """``repr(value)`` cut to about ``QUOTE_CHARS`` characters, in bounded time.

    Safe on huge or deeply shared containers: only the first items of the first levels are
    visited (``reprlib``).
    """
    text = _REPR.repr(value)
    return text if len(text) <= QUOTE_CHARS + 3 else text[:QUOTE_CHARS] + '...'


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases and counting depth and nodes as it composes."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise YamlError(f'line {mark.line + 1}: aliases (*name) are not accepted')
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise YamlError(f'more than {MAX_YAML_NODES} values')
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlError(f'line {mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} '
                                f'levels')
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(text: str, source: str = 'YAML', max_bytes: int = MAX_YAML_BYTES):
    """Parse one YAML document from ``text`` within the module's bounds.

    Args:
        text: the document.
        source: what it came from (file name, ``--set key``), starts every message.
        max_bytes: size limit in UTF-8 bytes.

    Returns:
        The document's value (None for an empty document).

    Raises:
        YamlError: too large, malformed, aliases, too deep or too many values; the message
            names ``source`` and quotes at most a short piece of the text.
    """
    if not isinstance(text, str):
        raise YamlError(f'{source}: expected text, got {type(text).__name__}')
    if len(text) > max_bytes or len(text.encode('utf-8', 'surrogatepass')) > max_bytes:
        raise YamlError(f'{source}: larger than {max_bytes} bytes')
    try:  # the reader checks the characters as it is made: a control character is refused
        loader = _BoundedLoader(text)
    except yaml.YAMLError as error:
        raise YamlError(f'{source}: malformed YAML: {clip(error)}') from None
    try:
        return loader.get_single_data()
    except YamlError as error:
        raise YamlError(f'{source}: {error}') from None
    except yaml.MarkedYAMLError as error:
        where = f'line {error.problem_mark.line + 1}: ' if error.problem_mark else ''
        problem = error.problem or error.context or 'malformed'
        raise YamlError(f'{source}: malformed YAML: {where}{clip(problem)}') from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as error:
        # e.g. an integer of more digits than Python converts, a bad !!binary value
        raise YamlError(f'{source}: malformed YAML: {type(error).__name__}: '
                        f'{clip(error)}') from None
    finally:
        loader.dispose()


def read_yaml_file(path, max_bytes: int = MAX_YAML_BYTES):
    """Read and parse a YAML file within the module's bounds (size checked before reading).

    Raises:
        FileNotFoundError: no such file (names it).
        YamlError: unreadable, not UTF-8, or refused by :func:`parse_yaml` (names the file).
    """
    path = Path(path)
    try:
        with open(path, 'rb') as stream:
            data = stream.read(max_bytes + 1)
    except FileNotFoundError:
        raise FileNotFoundError(f'{path}: no such file') from None
    except OSError as error:
        raise YamlError(f'{path}: cannot read: {error.strerror or error}') from None
    if len(data) > max_bytes:
        raise YamlError(f'{path}: larger than {max_bytes} bytes')
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as error:
        raise YamlError(f'{path}: not UTF-8 text (byte {error.start})') from None
    return parse_yaml(text, str(path), max_bytes)


def read_yaml_mapping(path, max_bytes: int = MAX_YAML_BYTES) -> dict:
    """:func:`read_yaml_file` for files that hold a mapping; an empty file gives ``{}``.

    Raises:
        FileNotFoundError, YamlError: as :func:`read_yaml_file`, or not a mapping.
    """
    values = read_yaml_file(path, max_bytes)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise YamlError(f'{path}: expected a mapping of name: value, got '
                        f'{type(values).__name__}')
    return values
