"""The data resolver finds sim/, config/ and models/ in every install layout."""

from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from fga_ros import resources

REPO = Path(__file__).resolve().parents[1]


def _fake_share(root: Path) -> Path:
    share = root / 'share' / 'fga_ros'
    (share / 'sim').mkdir(parents=True)
    shutil.copy(REPO / 'package.xml', share / 'package.xml')
    return share


@pytest.mark.skipif(Path(resources.__file__).resolve().parents[1] != REPO,
                    reason='fga_ros is imported from an installed copy (e.g. under colcon test)')
def test_source_layout_resolves_to_repository_root():
    assert resources.share_root() == REPO
    assert resources.share_path('sim').is_dir()


def test_version_comes_from_package_xml():
    import fga_ros
    assert fga_ros.__version__ == resources.package_version()
    assert fga_ros.__version__.count('.') == 2


def test_env_override_wins(tmp_path, monkeypatch):
    share = _fake_share(tmp_path)
    monkeypatch.setenv('FGA_ROS_SHARE', str(share))
    resources.share_root.cache_clear()
    try:
        assert resources.share_root() == share
    finally:
        resources.share_root.cache_clear()


@pytest.mark.parametrize('layout', ['pip-prefix', 'colcon-share'])
def test_installed_layouts_resolve_to_share_directory(tmp_path, layout):
    """A copy of the package outside the repository finds <prefix>/share/fga_ros.

    pip installs data to ``<sys.prefix>/share/fga_ros``; colcon installs it to
    ``<install>/share/fga_ros`` and registers it in the ament index. Both are simulated
    here in a subprocess with a copied package, so the repository root is not found.
    """
    share = _fake_share(tmp_path)
    site = tmp_path / 'site-packages'
    site.mkdir()
    shutil.copytree(REPO / 'fga_ros', site / 'fga_ros',
                    ignore=shutil.ignore_patterns('__pycache__'))
    if layout == 'pip-prefix':
        code = ('import sys; sys.prefix = sys.argv[1]; '
                'from fga_ros import resources; print(resources.share_root())')
        args = [str(tmp_path)]
    else:
        # A minimal stand-in for ament_index_python with the real function name.
        stub = site / 'ament_index_python'
        stub.mkdir()
        (stub / '__init__.py').write_text('')
        (stub / 'packages.py').write_text(
            'def get_package_share_directory(name):\n'
            f'    assert name == "fga_ros"\n    return {str(share)!r}\n')
        code = 'from fga_ros import resources; print(resources.share_root())'
        args = []
    out = subprocess.run([sys.executable, '-c', code, *args], cwd=tmp_path, check=True,
                         capture_output=True, text=True,
                         env={'PYTHONPATH': str(site), 'PATH': '/usr/bin:/bin'}).stdout
    assert Path(out.strip()) == share


def test_missing_share_names_every_place_tried(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, 'candidate_roots', lambda: [tmp_path / 'nowhere'])
    resources.share_root.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match='nowhere'):
            resources.share_root()
    finally:
        resources.share_root.cache_clear()
