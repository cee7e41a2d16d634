"""The README's Layout section names every folder of the repository and every package.

A folder added without a line there fails here, so the map a newcomer reads stays whole.
"""

from pathlib import Path
import re
import subprocess

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAME_COLUMN = 25
"""Layout lines hold names (two spaces of indentation per folder level) in their first
NAME_COLUMN characters and the description after them."""


def layout_block():
    """The lines of the code block under the README's '### Layout' heading."""
    text = (ROOT / 'README.md').read_text()
    match = re.search(r'^### Layout\n.*?^```\n(.*?)^```', text, re.M | re.S)
    assert match, 'README.md has no "### Layout" section with a code block'
    return match.group(1).splitlines()


def listed_names(lines):
    """Every name in the name column of the layout lines, with the folders it is nested in
    (a folder name ends in /)."""
    names, stack = set(), []
    for line in lines:
        column = line[:NAME_COLUMN]
        indent = (len(column) - len(column.lstrip(' '))) // 2
        words = re.findall(r'[\w.-]+/?', column)
        stack = stack[:indent]
        names.update(''.join(stack) + word for word in words)
        if len(words) == 1 and words[0].endswith('/'):
            stack.append(words[0])
    return names


def tracked_folders():
    """Top-level folders git tracks, and every Python package folder under fga_ros."""
    files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    top = {f.split('/')[0] + '/' for f in files if '/' in f}
    packages = {str(Path(f).parent) + '/' for f in files
                if f.startswith('fga_ros/') and f.endswith('/__init__.py')}
    return top | packages


def test_layout_names_every_folder_and_package():
    if not (ROOT / '.git').exists():
        pytest.skip('not a git checkout')
    listed = listed_names(layout_block())
    missing = sorted(tracked_folders() - listed)
    assert not missing, f'README Layout does not list: {missing}'


def test_layout_names_only_what_exists():
    for name in listed_names(layout_block()):
        assert (ROOT / name).exists(), f'README Layout lists {name}, which does not exist'


def test_nested_names_take_their_folder():
    lines = [f'{name:<{NAME_COLUMN}}description' for name in (
        'fga_ros/', '  core/', '    models/', '  cli.py', 'msg/  srv/')]
    assert listed_names(lines) == {'fga_ros/', 'fga_ros/core/', 'fga_ros/core/models/',
                                   'fga_ros/cli.py', 'msg/', 'srv/'}
