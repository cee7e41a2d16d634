"""Locate the package's installed data: ``sim/``, ``config/``, ``models/``, ``launch/``.

One resolver for every layout:

- source checkout or ``pip install -e .``: the repository root (holds ``package.xml``);
- ``colcon build``: ``<install>/share/fga_ros`` found through ``ament_index_python``;
- ``pip install .``: ``<sys.prefix>/share/fga_ros`` (``setup.py`` installs data files there).

``FGA_ROS_SHARE`` overrides all of them (useful for tests and relocated installs).
"""

import functools
import os
from pathlib import Path
import sys
import xml.etree.ElementTree as ET

PACKAGE = 'fga_ros'
MARKER = 'package.xml'


def _is_share(root: Path) -> bool:
    return (root / MARKER).is_file() and (root / 'sim').is_dir()


def candidate_roots() -> list[Path]:
    """Share directories to try, most specific first."""
    roots = []
    env = os.environ.get('FGA_ROS_SHARE')
    if env:
        roots.append(Path(env))
    roots.append(Path(__file__).resolve().parents[1])
    try:
        from ament_index_python.packages import get_package_share_directory
        roots.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # not under ROS, or the package is not in the ament index
        pass
    roots.append(Path(sys.prefix) / 'share' / PACKAGE)
    return roots


@functools.lru_cache(maxsize=None)
def share_root() -> Path:
    """Return the directory holding ``package.xml``, ``sim/``, ``config/`` and ``models/``."""
    tried = candidate_roots()
    for root in tried:
        if _is_share(root):
            return root
    raise FileNotFoundError(
        'cannot find the fga_ros data directory (package.xml + sim/); tried: '
        + ', '.join(str(r) for r in tried) + '. Set FGA_ROS_SHARE to the share directory.')


def share_path(*parts: str) -> Path:
    """Return ``share_root() / parts``; existence is not checked."""
    return share_root().joinpath(*parts)


def package_version() -> str:
    """Version string from ``package.xml``, the single source of the version."""
    path = share_path(MARKER)
    root = ET.parse(path).getroot()
    version = root.findtext('version')
    if not version:
        raise ValueError(f'{path} has no <version>')
    return version.strip()
