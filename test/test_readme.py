"""Every command in README.md is exercised: the short ones run here, the long ones parse.

Commands come from the README's ``bash`` blocks (continuation lines joined, comments
dropped) and from inline code that starts with ``fga``, ``make`` or ``ros2``. Each is
handled by the first rule of ``classify`` that matches; a command no rule knows fails the
test, so a new README command has to be placed in one of these groups:

- RUN: executed here, in a temporary working directory, by the in-process ``fga`` (exit
  status 0 and the files it names exist). The directory holds what the README assumes a
  user has: ``my_camera.png`` (a rendered scene) and ``runs/js/model.pt`` (a copy of the
  bundled model).
- PARSE: long jobs (training, the 64-state evaluation, benchmarks, the 2 000-step mode
  experiment; minutes to hours): only parsed by ``fga``'s argument parser.
- MAKE: ``make demo`` / ``make test`` (and their variables): ``make -n`` shows the recipe,
  which sets up the environment and passes the variables on; the ``fga`` command of the
  demo recipe runs here (RUN); ``make test`` is what ``.ci/run`` runs in CI.
- ROS: ``ros2 launch`` (the launch file exists and declares every ``name:=value``
  argument), ``ros2 service call`` (every request field exists in the .srv file), ``ros2
  run`` (the executable exists and accepts the options). They need ROS to run, which this
  test does not have.
- GIT: ``git show <commit>:<path>``: the object exists (in a clone with history).
- NOT RUN: workspace set-up (mkdir, cd, git clone, source, rosdep, colcon build): they need
  a ROS installation and the network; listed in ``NOT_RUN`` so that the gap is explicit.

The Python client example is compiled (not run: it needs rclpy); the C++ example is not
checked here.
"""

from pathlib import Path
import re
import shlex
import shutil
import subprocess

import cv2
import pytest

from fga_ros import cli, sim
from fga_ros.core.inference.proposer import BUNDLED_MODEL

pytestmark = pytest.mark.usefixtures('one_thread')

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'

RUN_FGA = {'--version', 'sim', 'propose', 'demo'}
"""First arguments of the ``fga`` commands that are run (seconds each)."""

PARSE_ONLY_FGA = {'train', 'eval', 'modes', 'bench', 'record', 'grid', 'choices'}
"""First arguments of the ``fga`` commands that are only parsed (minutes to hours, or, for
``grid``, reading what such evaluations wrote; ``test_core_result_grid.py`` runs it)."""

NOT_RUN = ('mkdir ', 'cd ', 'git clone ', 'source ', 'rosdep ', 'colcon ')
"""Workspace set-up of the ROS quick start: needs ROS and the network, not exercised."""


def _blocks(text, language):
    return re.findall(rf'^```{language}\n(.*?)^```', text, flags=re.S | re.M)


def readme_commands():
    """Shell commands of the README, in order: bash blocks, then inline ``fga`` code."""
    text = README.read_text()
    commands = []
    for block in _blocks(text, 'bash'):
        for line in block.replace('\\\n', ' ').splitlines():
            line = re.sub(r'\s+#\s.*$', '', line).strip()
            if line and not line.startswith('#'):
                commands.append(' '.join(line.split()))
    for span in re.findall(r'`((?:fga|make|ros2|\.venv/bin/fga) [^`]*)`', text):
        span = ' '.join(span.split())
        if span.startswith('fga ') and ' --' not in span:
            continue  # the name of a command, not an invocation
        commands.append(span)
    return list(dict.fromkeys(commands))  # each once, in order


def classify(command):
    words = shlex.split(command)
    if words[0] in ('fga', '.venv/bin/fga'):
        if words[1] in RUN_FGA or words[-1] == '--help':
            return 'run'
        if words[1] in PARSE_ONLY_FGA:
            return 'parse'
    if words[0] == 'make':
        return 'make'
    if words[0] == 'ros2':
        return 'ros'
    if words[:2] == ['git', 'show']:
        return 'git'
    if command.startswith(NOT_RUN):
        return 'not run'
    raise AssertionError(f'README command in no group of test_readme.py: {command}')


COMMANDS = readme_commands()


def _of(kind):
    return [c for c in COMMANDS if classify(c) == kind]


def test_the_readme_has_commands_of_every_group():
    kinds = {classify(c) for c in COMMANDS}
    assert kinds == {'run', 'parse', 'make', 'ros', 'git', 'not run'}
    assert 'fga --version' in COMMANDS


@pytest.fixture(scope='module')
def user_dir(tmp_path_factory):
    """A working directory with the files the README's commands read."""
    path = tmp_path_factory.mktemp('readme')
    image = sim.render(sim.make_scene('T', 1))
    cv2.imwrite(str(path / 'my_camera.png'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (path / 'runs' / 'js').mkdir(parents=True)
    shutil.copy(ROOT.joinpath(*BUNDLED_MODEL), path / 'runs' / 'js' / 'model.pt')
    return path


def _run_fga(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as done:  # --help and --version exit from the parser
        code = done.code
    out, err = capsys.readouterr()
    assert code == 0, f'fga {" ".join(argv)}: {err}'
    return out


def _written_files(argv):
    """Paths the command is asked to write (values of --out / --json / --out-dir)."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1])
            if a in ('--out', '--out-dir') or (a == '--json' and argv[i + 1][0] != '-')]


@pytest.mark.parametrize('command', _of('run'))
def test_short_commands_run(command, user_dir, monkeypatch, capsys):
    monkeypatch.chdir(user_dir)
    argv = shlex.split(command)[1:]  # `fga` or `.venv/bin/fga`: the same command line
    out = _run_fga(argv, capsys)
    for path in _written_files(argv):
        assert (user_dir / path).exists(), f'{command}: {path} not written'
    if argv == ['--version']:
        assert re.fullmatch(r'fga \d+\.\d+\.\d+\n', out)


@pytest.mark.parametrize('command', _of('parse'))
def test_long_commands_parse(command):
    args = cli.build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.func)


@pytest.mark.parametrize('command', _of('make'))
def test_make_targets_exist_and_the_demo_recipe_runs(command, tmp_path, monkeypatch, capsys):
    if shutil.which('make') is None:
        pytest.skip('make is not installed')
    words = shlex.split(command)[1:]
    variables = [w for w in words if '=' in w]
    (target,) = [w for w in words if '=' not in w]
    recipe = subprocess.run(['make', '-n', '-C', str(ROOT), target, *variables],
                            capture_output=True, text=True, check=True).stdout
    assert 'tools/make_venv.py' in recipe  # every target sets up the environment first
    for variable in variables:  # PYTHON=..., TORCH_INDEX_URL=... reach the set-up
        assert variable.split('=', 1)[1] in recipe, f'{command}: {variable} unused'
    if variables:
        return
    if target == 'test':
        assert 'ruff check' in recipe and 'pytest' in recipe
        return
    (line,) = [x for x in recipe.splitlines() if '/bin/fga ' in x]
    argv = shlex.split(line)[1:]
    monkeypatch.chdir(tmp_path)
    _run_fga(argv, capsys)
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['demo_Box.png',
                                                                     'demo_H.png']


def test_ci_runs_the_readme_test_command():
    """.ci/run runs the first command line after the marker (its awk, replayed here)."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if 'ci-test-command' in line)
    command = next(line for line in lines[start + 1:] if not line.startswith('```'))
    assert command == 'make test'
    assert 'ci-test-command' in (ROOT / '.ci' / 'run').read_text()


def _launch_arguments(path):
    return set(re.findall(r"DeclareLaunchArgument\(\s*'(\w+)'", path.read_text()))


@pytest.mark.parametrize('command', _of('ros'))
def test_ros_commands_name_existing_files_and_arguments(command):
    words = shlex.split(command)
    if words[1] == 'launch':
        assert words[2] == 'fga_ros', command
        declared = _launch_arguments(ROOT / 'launch' / words[3])
        given = {w.split(':=')[0] for w in words[4:]}
        assert given <= declared, f'{command}: undeclared {given - declared}'
    elif words[1] == 'service':
        assert words[2:5] == ['call', '/propose_grasps', 'fga_ros/srv/ProposeGrasps'], command
        request = (ROOT / 'srv' / 'ProposeGrasps.srv').read_text().split('---')[0]
        fields = set(re.findall(r'^[\w/]+\s+(\w+)', request, flags=re.M))
        given = set(re.findall(r'(\w+):', words[5]))
        assert given and given <= fields, f'{command}: no request field {given - fields}'
    elif words[1] == 'run':
        assert words[2] == 'fga_ros', command
        assert (ROOT / 'scripts' / words[3]).is_file()
        source = (ROOT / 'fga_ros' / 'nodes' / 'bench_load.py').read_text()
        for option in (w for w in words[4:] if w.startswith('--')):
            assert f"'{option}'" in source, f'{command}: unknown option {option}'
    else:
        raise AssertionError(f'ros2 {words[1]} is not checked: {command}')


@pytest.mark.parametrize('command', _of('git'))
def test_git_objects_exist(command):
    if not (ROOT / '.git').exists() or shutil.which('git') is None:
        pytest.skip('not a git checkout')
    spec = shlex.split(command)[2]
    found = subprocess.run(['git', '-C', str(ROOT), 'cat-file', '-e', spec],
                           capture_output=True)
    if found.returncode and subprocess.run(
            ['git', '-C', str(ROOT), 'rev-parse', '--is-shallow-repository'],
            capture_output=True, text=True).stdout.strip() == 'true':
        pytest.skip('shallow clone: history not available')
    assert found.returncode == 0, f'{spec} is not in the repository'


def test_python_client_example_compiles():
    (python_block,) = _blocks(README.read_text(), 'python')
    compile(python_block, 'README.md (rclpy example)', 'exec')


def test_readme_order_for_two_readers():
    """What it is, the paper, the limits, then ROS 2, the CLI, results and internals."""
    text = README.read_text()
    headings = re.findall(r'^## (.+)$', text, flags=re.M)
    assert headings == ['The paper', 'What it can and cannot do', 'ROS 2 quick start',
                        'Command line (no ROS)', 'Results', 'ROS 2 reference', 'Internals']
    paper = ' '.join(text[:text.index('## What it can')].split())
    for citation in ('https://openreview.net/forum?id=P8DHF1Y_dph', 'arXiv:1904.07319',
                     'Learning to Generate All Feasible Actions',
                     'Learning Probabilistic Multi-Modal Actor Models'):
        assert citation in paper


def test_no_stray_figures_at_the_repository_root():
    """A `sim.png` written by `fga sim --json` was once committed at the root."""
    if not (ROOT / '.git').exists() or shutil.which('git') is None:
        pytest.skip('not a git checkout')
    tracked = subprocess.run(['git', '-C', str(ROOT), 'ls-files', '*.png', '*.jpg'],
                             capture_output=True, text=True, check=True).stdout.split()
    assert not [name for name in tracked if '/' not in name]
