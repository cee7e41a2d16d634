"""Every public function, method and class of the typed packages has complete annotations.

mypy (``make test``, mypy.ini) checks the annotations that exist; this test makes sure
they exist: every parameter but ``self``/``cls`` and every return of a public function or
method (dunders included, nested functions and private names excluded) is annotated.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TYPED = ('fga_ros/core', 'fga_ros/bridge', 'fga_ros/sim', 'fga_ros/resources.py')
"""Packages (folders) and modules whose public interface must be annotated."""


def typed_files():
    for entry in TYPED:
        path = ROOT / entry
        yield from sorted(path.rglob('*.py')) if path.is_dir() else [path]


def is_public(name):
    return not name.startswith('_') or (name.startswith('__') and name.endswith('__'))


def unannotated(function, is_method):
    """Names of the parameters (and 'return') of a def that lack an annotation."""
    args = function.args
    params = args.posonlyargs + args.args + args.kwonlyargs
    static = any(isinstance(d, ast.Name) and d.id == 'staticmethod'
                 for d in function.decorator_list)
    if is_method and not static and params and params[0].arg in ('self', 'cls'):
        params = params[1:]
    missing = [a.arg for a in params if a.annotation is None]
    missing += ['*' + a.arg for a in (args.vararg, args.kwarg)
                if a is not None and a.annotation is None]
    return missing + (['return'] if function.returns is None else [])


def public_defs(body, in_class=False, prefix=''):
    """(qualified name, def node, is_method) of the public defs of a module or class body."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_public(node.name):
            yield prefix + node.name, node, in_class
        elif isinstance(node, ast.ClassDef) and is_public(node.name):
            yield from public_defs(node.body, True, f'{prefix}{node.name}.')


def test_every_public_function_is_annotated():
    missing = []
    for path in typed_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, node, is_method in public_defs(tree.body):
            lacking = unannotated(node, is_method)
            if lacking:
                missing.append(f'{path.relative_to(ROOT)}:{node.lineno} {name}: '
                               f'{", ".join(lacking)}')
    assert not missing, 'not annotated:\n' + '\n'.join(missing)


@pytest.mark.parametrize('source, expected', [
    ('def f(a, b: int) -> int: ...', ['a']),
    ('def f(a: int): ...', ['return']),
    ('def f(*args, **kw) -> None: ...', ['*args', '*kw']),
    ('class C:\n    def m(self, x: int) -> None: ...', []),
    ('class C:\n    @staticmethod\n    def m(self) -> None: ...', ['self']),
])
def test_the_check_finds_missing_annotations(source, expected):
    (_, node, is_method), = public_defs(ast.parse(source).body)
    assert unannotated(node, is_method) == expected


def test_private_and_nested_defs_are_not_public():
    source = 'def _f(a): ...\nclass _C:\n    def m(self, a): ...\ndef g() -> None:\n' \
             '    def inner(a): ...\n'
    assert [name for name, *_ in public_defs(ast.parse(source).body)] == ['g']
