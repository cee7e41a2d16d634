"""tools/make_venv.py: the set-up behind `make demo` / `make test` on a stock Python."""

import importlib.util
import json
from pathlib import Path
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'tools' / 'make_venv.py'


@pytest.fixture
def make_venv():
    spec = importlib.util.spec_from_file_location('make_venv', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_pin_comes_from_requirements(make_venv):
    pins = [line for line in (ROOT / 'requirements.txt').read_text().splitlines()
            if line.startswith('torch==')]
    assert [make_venv.torch_requirement()] == pins


def test_nothing_is_reinstalled_when_nothing_changed(make_venv, tmp_path, monkeypatch):
    calls = []

    def create(env):
        (env / 'bin').mkdir(parents=True)
        (env / 'bin' / 'python').symlink_to(sys.executable)
        calls.append('create')
    monkeypatch.setattr(make_venv, 'create', create)
    monkeypatch.setattr(make_venv, 'install', lambda env, url: calls.append(('install', url)))
    env = tmp_path / 'venv'
    assert make_venv.main([str(env)]) == 0
    assert make_venv.main([str(env)]) == 0
    assert calls == ['create', ('install', '')]
    stamp = json.loads((env / make_venv.STAMP_NAME).read_text())
    assert stamp['python'] == str(Path(sys.executable).resolve())
    url = 'https://download.pytorch.org/whl/cpu'  # another torch index: reinstall, same env
    assert make_venv.main([str(env), '--torch-index-url', url]) == 0
    assert calls == ['create', ('install', ''), ('install', url)]


def test_without_ensurepip_and_pip_it_names_the_apt_package(tmp_path):
    """A Debian/Ubuntu Python without python3-venv and python3-pip (simulated by modules
    that fail to import) stops with one line naming the package, and creates nothing."""
    for name in ('ensurepip', 'pip'):
        (tmp_path / 'shadow' / name).mkdir(parents=True)
        (tmp_path / 'shadow' / name / '__init__.py').write_text(
            'raise ImportError("simulated: not installed")\n')
    env = tmp_path / 'venv'
    done = subprocess.run([sys.executable, str(SCRIPT), str(env)], capture_output=True,
                          text=True, env={'PYTHONPATH': str(tmp_path / 'shadow'),
                                          'PATH': '/usr/bin:/bin'})
    assert done.returncode == 1
    version = f'{sys.version_info[0]}.{sys.version_info[1]}'
    assert done.stderr.strip().splitlines()[-1].endswith(f'sudo apt install python{version}-venv')
    assert 'Traceback' not in done.stderr and not env.exists()
