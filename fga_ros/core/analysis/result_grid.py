"""A grid of ``fga eval`` results, rows x columns (e.g. methods x camera distortions, the
paper's Table 5): one JSON document and one figure.

Each cell is an evaluation JSON written by ``fga eval --json`` (per shape: ``accuracy``,
``accuracy_rejected``, ``last_share_rejected``, ``all_modes_hit``, ``mode_recall``, ...).
Files are read with a size bound and every figure used is checked to be a number in [0, 1].
The grid's JSON keeps, per cell, those figures per shape and their mean over
``TRAINING_SHAPES`` (the held-out Box apart); the figure shows the means as coloured tables,
one per figure kind.
"""

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from fga_ros.file_writes import save_figure

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
    try:
        size = path.stat().st_size
        if size > MAX_EVAL_BYTES:
            raise ValueError(f'{path}: {size} bytes, more than an evaluation ({MAX_EVAL_BYTES})')
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f'{path}: not a readable evaluation: {error}') from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f'{path}: not an fga eval JSON (a mapping of shapes)')
    out = {}
    for shape, results in data.items():
        if not isinstance(results, dict):
            raise ValueError(f'{path}: {shape!r} holds no results')
        out[str(shape)] = {name: _fraction(path, shape, name, results.get(name))
                           for name in GRID_METRICS}
    return out


def _fraction(path: Path, shape: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0.0 <= value <= 1.0:
        raise ValueError(f'{path}: {shape} {name} must be a number in [0, 1], got {value!r}')
    return float(value)


def build_grid(cells: Sequence[tuple[str, str, str | os.PathLike]]) -> dict[str, Any]:
    """The grid of (row, column, evaluation file) cells: ``{'rows', 'columns', 'cells':
    {row: {column: {'file', 'mean': {figure: value}, 'shapes': {shape: {figure: value}}}}}}``.
    A cell given twice is an error."""
    rows: list[str] = []
    columns: list[str] = []
    grid: dict[str, dict[str, Any]] = {}
    for row, column, path in cells:
        if column in grid.get(row, {}):
            raise ValueError(f'cell {row}/{column} is given twice')
        shapes = read_evaluation(path)
        training = [shapes[s] for s in TRAINING_SHAPES if s in shapes]
        mean = {name: (float(np.mean([s[name] for s in training])) if training else math.nan)
                for name in GRID_METRICS}
        grid.setdefault(row, {})[column] = {'file': str(path), 'mean': mean, 'shapes': shapes}
        rows += [row] if row not in rows else []
        columns += [column] if column not in columns else []
    return {'rows': rows, 'columns': columns, 'training_shapes': list(TRAINING_SHAPES),
            'cells': grid}


def format_grid(grid: Mapping[str, Any]) -> str:
    """The grid as text: one rows x columns table per ``GRID_METRICS`` figure, in %, '-'
    where a cell is missing."""
    lines = []
    for name, label in GRID_METRICS.items():
        lines.append(f'{label} (%, mean of {", ".join(grid["training_shapes"])}):')
        lines.append('  ' + ' ' * 20 + ''.join(f'{c:>12}' for c in grid['columns']))
        for row in grid['rows']:
            cells = [grid['cells'][row].get(c) for c in grid['columns']]
            lines.append(f'  {row:<20}' + ''.join(
                f'{100 * v["mean"][name]:>12.1f}' if v else f'{"-":>12}' for v in cells))
    return '\n'.join(lines)


def grid_figure(grid: Mapping[str, Any], path: str | os.PathLike, title: str = '') -> Figure:
    """One coloured table per ``GRID_METRICS`` figure: rows x columns, the mean over the
    training shapes in %, blank where a cell is missing; saved to ``path``."""
    rows, columns = grid['rows'], grid['columns']
    figure = Figure(figsize=(3.2 * len(GRID_METRICS), 0.9 + 0.45 * len(rows)),
                    layout='constrained')
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
                ax.text(j, i, f'{value:.1f}', ha='center', va='center', fontsize=9)
        ax.set_xticks(range(len(columns)), columns, fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_title(f'{label}, %', fontsize=9)
    means = f'means over {", ".join(grid["training_shapes"])}'
    figure.suptitle(f'{title} ({means})' if title else means, fontsize=9)
    save_figure(figure, path)
    return figure
