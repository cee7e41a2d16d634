"""A grid of ``fga eval`` results, rows x columns (e.g. methods x camera distortions, the
paper's Table 5): one JSON document and one figure.

Each cell is an evaluation JSON written by ``fga eval --json`` (per shape: ``accuracy``,
``accuracy_rejected``, ``last_share_rejected``, ``all_modes_hit``, ``mode_recall``, ...).
Files are read with a size bound and every figure used is checked to be a number in [0, 1].
A cell may hold several runs (e.g. seeds): its figures are then the runs' means, and the
grid keeps each run's figures and the range over runs. The grid's JSON keeps, per cell,
those figures per shape and their mean over ``TRAINING_SHAPES`` (the held-out Box apart);
the text and the figure show the means as tables, one per figure kind, with the range over
runs where a cell has several.
"""

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from fga_ros.file_writes import save_figure
from fga_ros.safe_yaml import clip

GRID_METRICS = {
    'accuracy_rejected': 'accuracy*',
    'last_share_rejected': 'least-visited mode*',
    'all_modes_hit': 'every mode hit',
    'mode_recall': 'mode recall',
}
"""Figures of a cell (keys of an evaluation's per-shape results) and their labels."""
COLOUR_TOP = {'last_share_rejected': 20.0}
"""Value (%) drawn in the best colour, where it is not 100: the least-visited of 5 modes
gets 20 % of the samples at best."""
TRAINING_SHAPES = ('H', '8', 'Spoon', 'T')
"""Shapes whose mean a cell reports (the held-out Box is reported on its own)."""
MAX_EVAL_BYTES = 1 << 20
"""Largest evaluation file read (an ``fga eval`` JSON is a few kB)."""


def read_evaluation(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """The ``GRID_METRICS`` per shape of an ``fga eval --json`` file.

    Raises:
        ValueError: the file is missing, too large, not JSON, or lacks a figure for one of
            its shapes (the message names the file and the figure).
    """
    path = Path(path)
    if not path.is_file():  # nor a device or a pipe, whose size says nothing
        raise ValueError(f'{path}: not a readable evaluation: no such file')
    try:
        with open(path, 'rb') as stream:
            text = stream.read(MAX_EVAL_BYTES + 1)
    except OSError as error:
        raise ValueError(f'{path}: not a readable evaluation: {error}') from None
    if len(text) > MAX_EVAL_BYTES:
        raise ValueError(f'{path}: larger than {MAX_EVAL_BYTES} bytes, more than an evaluation')
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:  # JSON, UTF-8, digits, nesting
        raise ValueError(f'{path}: not a readable evaluation: {clip(error)}') from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f'{path}: not an fga eval JSON (a mapping of shapes)')
    out = {}
    for shape, results in data.items():
        if not isinstance(results, dict):
            raise ValueError(f'{path}: {clip(repr(shape))} holds no results')
        out[str(shape)] = {name: _fraction(path, shape, name, results.get(name))
                           for name in GRID_METRICS}
    return out


def _fraction(path: Path, shape: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0.0 <= value <= 1.0:
        raise ValueError(f'{path}: {clip(shape)} {name} must be a number in [0, 1], got '
                         f'{clip(repr(value))}')
    return float(value)


def _training_mean(shapes: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each ``GRID_METRICS`` figure's mean over the ``TRAINING_SHAPES`` present (NaN if none)."""
    training = [shapes[s] for s in TRAINING_SHAPES if s in shapes]
    return {name: (float(np.mean([s[name] for s in training])) if training else math.nan)
            for name in GRID_METRICS}


def _cell(paths: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """One cell of runs (evaluation files): ``{'files', 'runs': [{'file', 'mean'}], 'mean',
    'range': {figure: [min, max] of the runs' means}, 'shapes'}``; ``mean`` and ``shapes``
    are averages over the runs (shapes that every run has)."""
    if not paths:
        raise ValueError('a cell needs at least one evaluation file')
    if len(set(map(str, paths))) != len(paths):
        raise ValueError(f'an evaluation file is given twice in one cell: {list(map(str, paths))}')
    runs = [read_evaluation(path) for path in paths]
    common = [s for s in runs[0] if all(s in run for run in runs)]
    shapes = {s: {name: float(np.mean([run[s][name] for run in runs])) for name in GRID_METRICS}
              for s in common}
    means = [_training_mean(run) for run in runs]
    return {'files': [str(p) for p in paths],
            'runs': [{'file': str(p), 'mean': m} for p, m in zip(paths, means)],
            'mean': _training_mean(shapes),
            'range': {name: [min(m[name] for m in means), max(m[name] for m in means)]
                      for name in GRID_METRICS},
            'shapes': shapes}


def build_grid(cells: Sequence[tuple[str, str, Sequence[str | os.PathLike]]]) -> dict[str, Any]:
    """The grid of (row, column, evaluation files of its runs) cells: ``{'rows', 'columns',
    'training_shapes', 'cells': {row: {column: _cell(files)}}}``. A cell given twice is an
    error."""
    rows: list[str] = []
    columns: list[str] = []
    grid: dict[str, dict[str, Any]] = {}
    for row, column, paths in cells:
        if column in grid.get(row, {}):
            raise ValueError(f'cell {row}/{column} is given twice')
        grid.setdefault(row, {})[column] = _cell(paths)
        rows += [row] if row not in rows else []
        columns += [column] if column not in columns else []
    return {'rows': rows, 'columns': columns, 'training_shapes': list(TRAINING_SHAPES),
            'cells': grid}


def _cell_text(cell: Optional[Mapping[str, Any]], name: str) -> str:
    """A cell's figure in %: the mean, and '[min-max]' over its runs if it has several."""
    if cell is None:
        return '-'
    text = f'{100 * cell["mean"][name]:.1f}'
    if len(cell['runs']) > 1:
        low, high = cell['range'][name]
        text += f' [{100 * low:.1f}-{100 * high:.1f}]'
    return text


def format_grid(grid: Mapping[str, Any]) -> str:
    """The grid as text: one rows x columns table per ``GRID_METRICS`` figure, in %, the
    range over runs in brackets where a cell has several, '-' where a cell is missing."""
    lines = []
    label_width = max([20] + [len(row) + 1 for row in grid['rows']])
    for name, label in GRID_METRICS.items():
        texts = {row: [_cell_text(grid['cells'][row].get(c), name) for c in grid['columns']]
                 for row in grid['rows']}
        width = max([12] + [len(t) + 2 for row in texts.values() for t in row])
        lines.append(f'{label} (%, mean of {", ".join(grid["training_shapes"])}; '
                     f'[min-max] over runs):')
        lines.append('  ' + ' ' * label_width
                     + ''.join(f'{c:>{width}}' for c in grid['columns']))
        for row in grid['rows']:
            lines.append(f'  {row:<{label_width}}' + ''.join(f'{t:>{width}}' for t in texts[row]))
    return '\n'.join(lines)


def grid_figure(grid: Mapping[str, Any], path: str | os.PathLike, title: str = '') -> Figure:
    """One coloured table per ``GRID_METRICS`` figure: rows x columns, the mean over the
    training shapes in %, under it the range over runs where a cell has several, blank where
    a cell is missing; saved to ``path``."""
    rows, columns = grid['rows'], grid['columns']
    label_inches = 0.07 * max(len(row) for row in rows)  # the row names beside each table
    figure = Figure(figsize=((0.8 + label_inches + 0.8 * len(columns)) * len(GRID_METRICS),
                             0.9 + 0.55 * len(rows)), layout='constrained')
    FigureCanvasAgg(figure)
    for ax, (name, label) in zip(figure.subplots(1, len(GRID_METRICS), squeeze=False)[0],
                                 GRID_METRICS.items()):
        values = np.full((len(rows), len(columns)), np.nan)
        for i, row in enumerate(rows):
            for j, column in enumerate(columns):
                cell = grid['cells'][row].get(column)
                values[i, j] = math.nan if cell is None else 100.0 * cell['mean'][name]
        ax.imshow(values, cmap='RdYlGn', vmin=0.0, vmax=COLOUR_TOP.get(name, 100.0),
                  aspect='auto')
        for (i, j), value in np.ndenumerate(values):
            if math.isfinite(value):
                text = _cell_text(grid['cells'][rows[i]][columns[j]], name)
                ax.text(j, i, text.replace(' ', '\n'), ha='center', va='center',
                        fontsize=9 if ' ' not in text else 7)
        ax.set_xticks(range(len(columns)), columns, fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_title(f'{label}, %', fontsize=9)
    means = f'means over {", ".join(grid["training_shapes"])}'
    figure.suptitle(f'{title} ({means})' if title else means, fontsize=9)
    save_figure(figure, path)
    return figure
