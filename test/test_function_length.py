"""No function or method of the package is longer than MAX_LINES (tests excepted).

A longer one does several jobs; split it by job, not by line count.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60
"""Most lines of one def, from its ``def`` line to its last line (decorators excluded)."""


def function_lengths(source):
    """(name, first line, line count) of every def in a module, nested ones included."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def long_functions():
    for path in sorted((ROOT / 'fga_ros').rglob('*.py')):
        rel = path.relative_to(ROOT).as_posix()
        for name, line, count in function_lengths(path.read_text()):
            if count > MAX_LINES:
                yield f'{rel}:{name}', line, count


def test_no_function_is_longer_than_the_limit():
    too_long = [f'{key} (line {line}): {count} lines' for key, line, count in long_functions()]
    assert not too_long, f'longer than {MAX_LINES} lines:\n' + '\n'.join(too_long)


def test_the_count_runs_from_def_to_last_line():
    source = 'def f():\n    x = 1\n\n    return x\n\n\nclass C:\n    def m(self):\n' \
             '        def inner():\n            pass\n        return inner\n'
    assert sorted(function_lengths(source)) == [('f', 1, 4), ('inner', 9, 2), ('m', 8, 4)]
