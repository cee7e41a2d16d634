"""The package's rooms and their one-way doors, checked by parsing every module.

Rooms, lowest first (a module may import its own room and lower ones only):

    base (fga_ros, resources, safe_yaml, file_writes, image_files) < sim (+ bench_sim)
    < core.common < core.estimators < core.models < core.training | core.inference
    < core.analysis < bridge < cli (+ cli_hooks) | nodes

Rooms separated by ``|`` share a rank and must not import each other. The core's package
files import nothing, so that a torch-free module loads no torch; the simulator node's
imports (ROS aside) load neither torch nor scipy.
"""

import ast
import json
from pathlib import Path
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'fga_ros'

ROOMS = (  # (room, rank, module prefixes)
    ('base', 0, ('fga_ros', 'fga_ros.resources', 'fga_ros.safe_yaml', 'fga_ros.file_writes',
                 'fga_ros.image_files')),
    ('sim', 1, ('fga_ros.sim', 'fga_ros.bench_sim')),
    ('core.common', 2, ('fga_ros.core', 'fga_ros.core.common')),
    ('core.estimators', 3, ('fga_ros.core.estimators',)),
    ('core.models', 4, ('fga_ros.core.models',)),
    ('core.training', 5, ('fga_ros.core.training',)),
    ('core.inference', 5, ('fga_ros.core.inference',)),
    ('core.analysis', 6, ('fga_ros.core.analysis',)),
    ('bridge', 7, ('fga_ros.bridge',)),
    ('cli', 8, ('fga_ros.cli', 'fga_ros.cli_hooks', 'fga_ros.cli_types')),
    ('nodes', 8, ('fga_ros.nodes', 'fga_ros.msg', 'fga_ros.srv')),
)

TORCH_FREE = (
    'fga_ros.core.common.checks', 'fga_ros.core.common.choices', 'fga_ros.core.common.config',
    'fga_ros.core.common.env', 'fga_ros.core.inference.defaults',
    'fga_ros.core.inference.constraints', 'fga_ros.file_writes', 'fga_ros.safe_yaml',
    'fga_ros.image_files',
)
"""Core modules the ROS-side adapters and the simulator node use without torch."""


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob('*.py'))}


def room_of(module):
    """(room, rank) of the longest matching prefix."""
    best = None
    for room, rank, prefixes in ROOMS:
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + '.'):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), room, rank)
    assert best is not None, f'{module} belongs to no room; add it to ROOMS'
    return best[1], best[2]


def fga_imports(module):
    """(line, imported fga_ros module) for every import statement of ``module``."""
    path = MODULES[module]
    package = module if path.name == '__init__.py' else module.rpartition('.')[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.rsplit('.', node.level - 1)[0] if node.level > 1 else package
                base = f'{anchor}.{base}' if base else anchor
            for alias in node.names:  # `from pkg import module` imports the module
                target = f'{base}.{alias.name}'
                found.append((node.lineno, target if target in MODULES else base))
    return [(line, name) for line, name in found
            if name == 'fga_ros' or name.startswith('fga_ros.')]


def test_every_module_has_a_room():
    for module in MODULES:
        room_of(module)


@pytest.mark.parametrize('module', sorted(MODULES))
def test_imports_point_down(module):
    room, rank = room_of(module)
    wrong = []
    for line, target in fga_imports(module):
        target_room, target_rank = room_of(target)
        if target_rank > rank or (target_rank == rank and target_room != room):
            wrong.append(f'line {line}: {target} ({target_room}) from room {room}')
    assert not wrong, f'{module} imports upwards or sideways: ' + '; '.join(wrong)


def test_the_room_ranks_forbid_what_they_should():
    """The checker itself: an upward and a sideways import are caught, a downward one not."""
    assert room_of('fga_ros.core.training.trainer') == ('core.training', 5)
    assert room_of('fga_ros.core.inference.proposer')[1] == 5
    assert room_of('fga_ros.core.common.config') < room_of('fga_ros.core.models.nets')
    assert room_of('fga_ros.sim.render')[1] < room_of('fga_ros.core.common.env')[1]
    assert room_of('fga_ros.bridge.requests')[1] > room_of('fga_ros.core.analysis.figures')[1]


@pytest.mark.parametrize('package', sorted(m for m in MODULES if m == 'fga_ros.core' or (
    m.startswith('fga_ros.core.') and MODULES[m].name == '__init__.py')))
def test_core_package_files_import_nothing(package):
    body = ast.parse(MODULES[package].read_text()).body
    assert body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), \
        f'{package}: the package file should start with a docstring'
    assert len(body) == 1, f'{package}: the package file must hold only a docstring'


def loaded_by(modules):
    """Which of torch / scipy importing ``modules`` loads, in a fresh interpreter."""
    code = ('import json, sys\n' + ''.join(f'import {m}\n' for m in modules)
            + "print(json.dumps([m for m in ('torch', 'scipy') if m in sys.modules]))")
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_simulator_node_imports_load_neither_torch_nor_scipy():
    imported = sorted({name for _, name in fga_imports('fga_ros.nodes.grasp_sim_node')
                       if room_of(name)[0] != 'nodes'})
    assert 'fga_ros.core.common.env' in imported  # the parse found the node's core import
    assert loaded_by(imported) == []


def test_torch_free_core_modules_stay_torch_free():
    assert 'torch' not in loaded_by(TORCH_FREE)


def test_the_import_probe_sees_torch():
    assert 'torch' in loaded_by(['fga_ros.core.common.tensors'])
