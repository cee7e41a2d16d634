"""The ROS layer against the real core, checked without ROS (rclpy is never imported).

The node modules, scripts and launch files are parsed with ``ast``. Every ``from fga_ros...
import name`` must resolve (ROS-free modules are imported, ``fga_ros.nodes`` modules read
statically, ``fga_ros.msg`` / ``fga_ros.srv`` names must have a .msg / .srv file), every
``module.attribute`` on an imported fga_ros module must exist, and every call of an imported
fga_ros function or class must fit its signature. Parameter files and launch files may only
set parameters the nodes declare.
"""

import ast
import importlib
import inspect
from pathlib import Path

import pytest
import yaml

from fga_ros.core.common.config import field_names

ROOT = Path(__file__).resolve().parents[1]
NODES = ROOT / 'fga_ros' / 'nodes'
SCRIPTS = sorted(p for p in (ROOT / 'scripts').iterdir() if p.is_file())
ROS_FILES = (sorted(NODES.glob('*.py')) + SCRIPTS + sorted((ROOT / 'launch').glob('*.py'))
             + [p for p in sorted((ROOT / 'test').glob('test_ros_*.py'))
                if p.name != Path(__file__).name])
GENERATED = {'fga_ros.msg': ('msg', '.msg'), 'fga_ros.srv': ('srv', '.srv')}
ROS_MODULES = ('rclpy', 'rosidl_runtime_py', 'rosidl_parser', 'rcl_interfaces', 'launch',
               'launch_ros', 'tf2_ros', 'cv_bridge', 'builtin_interfaces')
PARAMETER_FILES = {'grasp_proposal.yaml': 'grasp_proposal_node', 'grasp_sim.yaml':
                   'grasp_sim_node', 'trainer.yaml': 'trainer_node'}


def parse(path):
    return ast.parse(path.read_text(), filename=str(path))


def rel(path):
    return path.relative_to(ROOT).as_posix()


class StaticModule:
    """Top-level definitions of a module that cannot be imported here (it imports rclpy)."""

    def __init__(self, path):
        self.path = path
        self.defs = {}
        for node in parse(path).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                self.defs[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            self.defs[name.id] = node
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    self.defs[alias.asname or alias.name.split('.')[0]] = node

    def signature(self, name):
        """inspect.Signature of a top-level function or class (its __init__), else None."""
        node = self.defs.get(name)
        if isinstance(node, ast.ClassDef):
            init = next((n for n in node.body
                         if isinstance(n, ast.FunctionDef) and n.name == '__init__'), None)
            return None if init is None else ast_signature(init.args, drop_first=True)
        if isinstance(node, ast.FunctionDef):
            return ast_signature(node.args)
        return None


def ast_signature(args, drop_first=False):
    """An inspect.Signature with the parameter kinds and defaults of an ast.arguments."""
    kind = inspect.Parameter
    params = []
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for i, (arg, default) in enumerate(zip(positional, defaults)):
        if drop_first and i == 0:
            continue
        params.append(kind(arg.arg, kind.POSITIONAL_ONLY if arg in args.posonlyargs
                           else kind.POSITIONAL_OR_KEYWORD,
                           default=kind.empty if default is None else ...))
    if args.vararg:
        params.append(kind(args.vararg.arg, kind.VAR_POSITIONAL))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        params.append(kind(arg.arg, kind.KEYWORD_ONLY,
                           default=kind.empty if default is None else ...))
    if args.kwarg:
        params.append(kind(args.kwarg.arg, kind.VAR_KEYWORD))
    return inspect.Signature(params)


def static_module(module_name):
    """StaticModule of fga_ros.nodes.<name>, or None when there is no such file."""
    path = ROOT.joinpath(*module_name.split('.')).with_suffix('.py')
    return StaticModule(path) if path.is_file() else None


class Target:
    """What an imported name refers to: a real object (``obj``), a definition read statically
    (``static`` module, ``name`` in it; None for the module itself) or something opaque."""

    def __init__(self, obj=None, static=None, name=None, opaque=False):
        self.obj, self.static, self.name, self.opaque = obj, static, name, opaque

    def attribute(self, attr):
        """Target of ``self.attr``, or None when it certainly does not exist."""
        if self.opaque or (self.static is not None and self.name is not None):
            return Target(opaque=True)  # attributes of generated or static objects: unknown
        if self.static is not None:
            return Target(static=self.static, name=attr) if attr in self.static.defs else None
        if hasattr(self.obj, attr):
            return Target(getattr(self.obj, attr))
        if inspect.ismodule(self.obj):
            try:
                return Target(importlib.import_module(f'{self.obj.__name__}.{attr}'))
            except ModuleNotFoundError:
                return None
        return None

    def signature(self):
        """inspect.Signature to bind calls against, or None when unknown."""
        if self.opaque:
            return None
        if self.static is not None:
            return None if self.name is None else self.static.signature(self.name)
        if not callable(self.obj) or inspect.isclass(self.obj) and \
                self.obj.__init__ is object.__init__ and self.obj.__new__ is object.__new__:
            return None
        try:
            return inspect.signature(self.obj)
        except (TypeError, ValueError):
            return None


def resolve_import(module_name, name):
    """Target of ``from module_name import name``, or an error message."""
    if module_name in GENERATED:
        folder, suffix = GENERATED[module_name]
        if (ROOT / folder / f'{name}{suffix}').is_file():
            return Target(opaque=True)  # generated by rosidl at build time
        return f'{folder}/{name}{suffix} does not exist'
    if module_name == 'fga_ros.nodes' or module_name.startswith('fga_ros.nodes.'):
        submodule = static_module(f'{module_name}.{name}')
        if submodule is not None:
            return Target(static=submodule)
        module = static_module(module_name)
        if module is None:
            return f'module {module_name} does not exist'
        if name not in module.defs:
            return f'{module_name} defines no {name}'
        return Target(static=module, name=name)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        return f'cannot import {module_name}: {error}'
    target = Target(module).attribute(name)
    return target if target is not None else f'{module_name} has no attribute {name}'


def fga_imports(tree):
    """{local name: (module, name, line)} of the fga_ros imports of a module."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split('.')[0] == 'fga_ros':
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name, node.lineno)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] == 'fga_ros' and '.' in alias.name:
                    parent, _, last = alias.name.rpartition('.')
                    found[alias.asname or alias.name] = (parent, last, node.lineno)
    return found


def check_call(target, call, where):
    """Problems of ``call`` against ``target``'s signature (skipped for * and ** calls)."""
    signature = target.signature()
    if signature is None or any(isinstance(a, ast.Starred) for a in call.args) \
            or any(k.arg is None for k in call.keywords):
        return []
    try:
        signature.bind(*call.args, **{k.arg: k.value for k in call.keywords})
    except TypeError as error:
        return [f'{where}: call does not fit the signature {signature}: {error}']
    return []


@pytest.mark.parametrize('path', ROS_FILES, ids=rel)
def test_fga_imports_attributes_and_calls_resolve(path):
    tree = parse(path)
    targets, problems = {}, []
    for local, (module_name, name, line) in fga_imports(tree).items():
        target = resolve_import(module_name, name)
        if isinstance(target, str):
            problems.append(f'{rel(path)}:{line}: from {module_name} import {name}: {target}')
        else:
            targets[local] = target
    for node in ast.walk(tree):
        where = f'{rel(path)}:{getattr(node, "lineno", "?")}'
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in targets:
            if targets[node.value.id].attribute(node.attr) is None:
                problems.append(f'{where}: {node.value.id}.{node.attr} does not exist')
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in targets:
                problems += check_call(targets[func.id], node, where)
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and func.value.id in targets:
                member = targets[func.value.id].attribute(func.attr)
                if member is not None:
                    problems += check_call(member, node, where)
    assert not problems, '\n'.join(problems)


def test_the_checker_catches_a_missing_name_and_a_bad_call():
    assert 'has no attribute SHAPES' in resolve_import('fga_ros.sim', 'SHAPES')
    assert 'defines no nothing_here' in resolve_import('fga_ros.nodes.common', 'nothing_here')
    assert 'srv/Missing.srv does not exist' in resolve_import('fga_ros.srv', 'Missing')
    call = ast.parse('Trainer(config, env, out, resume=True, steps=3)').body[0].value
    trainer = resolve_import('fga_ros.core.training.trainer', 'Trainer')
    assert check_call(trainer, call, 'here')
    call = ast.parse('run(Node, args, threads=True)').body[0].value
    assert check_call(resolve_import('fga_ros.nodes.common', 'run'), call, 'here')


def imported_top_modules(path):
    tops = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split('.')[0])
    return tops


@pytest.mark.parametrize('path', sorted(p for p in (ROOT / 'fga_ros').rglob('*.py')
                                        if NODES not in p.parents), ids=rel)
def test_only_the_nodes_import_ros(path):
    ros = {m for m in imported_top_modules(path)
           if m in ROS_MODULES or m.endswith('_msgs') or m.endswith('_srvs')}
    assert not ros, f'{rel(path)} imports ROS modules {sorted(ros)}; only fga_ros/nodes may'


def _declared_in(tree):
    """Names declared with <any>.declare_parameter('<constant>', ...) in a syntax tree."""
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == 'declare_parameter' and node.args
            and isinstance(node.args[0], ast.Constant)}


def declared_parameters(executable):
    """Names a node module declares: its own declare_parameter calls, and those of the
    helpers of fga_ros/nodes/common.py it calls (e.g. declare_camera_geometry(self))."""
    tree = parse(NODES / f'{executable}.py')
    helpers = {node.name: node for node in parse(NODES / 'common.py').body
               if isinstance(node, ast.FunctionDef)}
    called = {node.func.id for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    names = _declared_in(tree)
    for name in called & set(helpers):
        names |= _declared_in(helpers[name])
    return names


def check_parameter_names(executable, names, where):
    declared = declared_parameters(executable)
    config_fields = set(field_names())
    return [f'{where}: {executable} declares no parameter {name!r}' for name in names
            if name not in declared
            and not (executable == 'trainer_node' and name.startswith('config.')
                     and name[len('config.'):] in config_fields)]


def flatten(params, prefix=''):
    for key, value in params.items():
        if isinstance(value, dict):
            yield from flatten(value, f'{prefix}{key}.')
        else:
            yield f'{prefix}{key}'


@pytest.mark.parametrize('name', sorted(PARAMETER_FILES))
def test_parameter_files_set_only_declared_parameters(name):
    data = yaml.safe_load((ROOT / 'config' / name).read_text())
    problems = []
    for node_key, body in data.items():
        assert set(body) == {'ros__parameters'}, f'{name}: {node_key} needs ros__parameters'
        problems += check_parameter_names(PARAMETER_FILES[name],
                                          list(flatten(body['ros__parameters'])), name)
    assert not problems, '\n'.join(problems)


def dict_variables(tree):
    """Variable name -> constant keys given to it: ``v = {'k': ...}`` and ``v['k'] = ...``."""
    keys = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and isinstance(node.value, ast.Dict):
            keys.setdefault(target.id, []).extend(
                k.value for k in node.value.keys if isinstance(k, ast.Constant))
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                and isinstance(target.slice, ast.Constant):
            keys.setdefault(target.value.id, []).append(target.slice.value)
    return keys


def launched_nodes(path):
    """(executable, parameter names set in dicts, line) of each fga_ros Node(...) call.

    Parameters given as dict literals or as variables holding one (see dict_variables).
    """
    tree = parse(path)
    variables = dict_variables(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'Node'):
            continue
        kwargs = {k.arg: k.value for k in node.keywords}
        if getattr(kwargs.get('package'), 'value', None) != 'fga_ros':
            continue
        parameters = kwargs.get('parameters', ast.List([]))
        names = [key.value for params in ast.walk(parameters)
                 if isinstance(params, ast.Dict) for key in params.keys
                 if isinstance(key, ast.Constant)]
        names += [key for name in ast.walk(parameters) if isinstance(name, ast.Name)
                  for key in variables.get(name.id, [])]
        yield kwargs['executable'].value, names, node.lineno


@pytest.mark.parametrize('path', sorted((ROOT / 'launch').glob('*.py')), ids=rel)
def test_launch_files_start_installed_executables_with_declared_parameters(path):
    cmake = (ROOT / 'CMakeLists.txt').read_text()
    problems = []
    for executable, names, line in launched_nodes(path):
        where = f'{rel(path)}:{line}'
        if not (ROOT / 'scripts' / executable).is_file() \
                or f'scripts/{executable}' not in cmake:
            problems.append(f'{where}: no installed executable scripts/{executable}')
            continue
        problems += check_parameter_names(executable, names, where)
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.endswith(('.yaml', '.rviz')) and '/' not in node.value:
            if not (ROOT / 'config' / node.value).is_file():
                problems.append(f'{rel(path)}:{node.lineno}: no config/{node.value}')
    assert not problems, '\n'.join(problems)
