"""Create and fill the project's virtual environment (``make demo`` / ``make test`` call it).

Usage: ``python3 tools/make_venv.py VENV_DIR [--torch-index-url URL]``

Works with a stock system Python under PEP 668 (Debian 12, Ubuntu 22.04 / 24.04): nothing
is installed outside ``VENV_DIR``. Steps, each skipped when already done:

1. create the environment with the running interpreter; when ``ensurepip`` is missing
   (Debian/Ubuntu without the ``python3.X-venv`` package) create it without pip and
   install pip from a wheel downloaded by the system's pip (``pip download`` is allowed
   under PEP 668); with neither, print the one apt package to install and exit 1;
2. install the pinned torch of ``requirements.txt`` first (from ``--torch-index-url`` when
   given, e.g. https://download.pytorch.org/whl/cpu for the CPU-only build);
3. install this package in editable mode with its test extras.

A stamp file in ``VENV_DIR`` records the interpreter, the torch index and a hash of
``setup.py``, ``requirements.txt`` and ``package.xml``; when they are unchanged nothing is
reinstalled. An environment made by another interpreter is rebuilt.
"""

import argparse
import hashlib
import json
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import venv

ROOT = Path(__file__).resolve().parents[1]
STAMP_NAME = '.fga-installed.json'
KEY_FILES = ('setup.py', 'requirements.txt', 'package.xml')
MIN_PYTHON = (3, 10)


class SetupError(Exception):
    """A problem the user fixes outside this script; printed as one line."""


def torch_requirement() -> str:
    """The ``torch==...`` line of requirements.txt: the one place torch is pinned."""
    for line in (ROOT / 'requirements.txt').read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line.startswith('torch'):
            return line
    raise SetupError('requirements.txt pins no torch version')


def wanted_stamp(torch_index_url: str) -> dict:
    digest = hashlib.sha256()
    for name in KEY_FILES:
        digest.update((ROOT / name).read_bytes())
    return {'python': str(Path(sys.executable).resolve()),
            'python_version': '.'.join(map(str, sys.version_info[:3])),
            'torch_index_url': torch_index_url, 'files_sha256': digest.hexdigest()}


def venv_python(env: Path) -> Path:
    return env / 'bin' / 'python'


def has_ensurepip() -> bool:
    try:
        import ensurepip  # noqa: F401
    except ImportError:
        return False
    return True


def has_pip(env: Path) -> bool:
    return subprocess.call([str(venv_python(env)), '-c', 'import pip'],
                           stderr=subprocess.DEVNULL) == 0


def apt_hint() -> str:
    version = f'{sys.version_info[0]}.{sys.version_info[1]}'
    return f'sudo apt install python{version}-venv'


def create(env: Path) -> None:
    """Create ``env`` with pip, bootstrapping pip from a downloaded wheel if needed."""
    if has_ensurepip():
        venv.EnvBuilder(with_pip=True).create(env)
        return
    try:
        import pip  # noqa: F401  (Debian's python3-pip: may download, not install)
    except ImportError:
        raise SetupError(f'{sys.executable} has neither ensurepip nor pip; install one '
                         f'package and rerun: {apt_hint()}') from None
    print(f'{sys.executable} has no ensurepip: creating {env} without pip, then installing '
          f'pip from a downloaded wheel', flush=True)
    venv.EnvBuilder(with_pip=False).create(env)
    with tempfile.TemporaryDirectory() as tmp:
        run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
             '--only-binary=:all:', '--dest', tmp, 'pip'])
        wheels = sorted(Path(tmp).glob('pip-*.whl'))
        if not wheels:
            raise SetupError(f'pip download left no pip wheel; install {apt_hint()}')
        # a pip wheel runs from the zip itself: it installs itself into the environment
        run([str(venv_python(env)), f'{wheels[-1]}/pip', 'install', '--quiet', '--no-index',
             str(wheels[-1])])


def run(cmd: list) -> None:
    print('+ ' + ' '.join(cmd), flush=True)
    if subprocess.call(cmd) != 0:
        raise SetupError(f'command failed (exit status above): {" ".join(cmd)}')


def install(env: Path, torch_index_url: str) -> None:
    pip = [str(venv_python(env)), '-m', 'pip', 'install']
    torch_cmd = pip + [torch_requirement()]
    if torch_index_url:
        torch_cmd += ['--index-url', torch_index_url]
    run(torch_cmd)
    run(pip + ['-e', f'{ROOT}[test]'])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('venv', type=Path, help='environment directory, e.g. .venv')
    parser.add_argument('--torch-index-url', default='',
                        help='package index for torch only ("" = pip\'s configured index)')
    args = parser.parse_args(argv)
    try:
        if sys.version_info < MIN_PYTHON:
            raise SetupError(f'{sys.executable} is Python {sys.version.split()[0]}; fga_ros '
                             f'needs {".".join(map(str, MIN_PYTHON))} or newer (make PYTHON=...)')
        env = args.venv.resolve()
        stamp_path = env / STAMP_NAME
        wanted = wanted_stamp(args.torch_index_url)
        stamp = json.loads(stamp_path.read_text()) if stamp_path.is_file() else None
        if stamp == wanted and venv_python(env).exists():
            return 0
        if stamp is not None and stamp.get('python') != wanted['python']:
            print(f'{env} was made by {stamp.get("python")}: rebuilding it with '
                  f'{wanted["python"]}', flush=True)
            shutil.rmtree(env)
        if venv_python(env).exists() and not has_pip(env):
            shutil.rmtree(env)  # an earlier attempt stopped half-way
        if not venv_python(env).exists():
            print(f'creating {env} with {sys.executable} (Python {wanted["python_version"]})',
                  flush=True)
            create(env)
        stamp_path.unlink(missing_ok=True)
        install(env, args.torch_index_url)
        stamp_path.write_text(json.dumps(wanted, indent=1) + '\n')
    except SetupError as exc:
        print(f'make_venv: error: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
