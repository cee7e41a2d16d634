"""Reliability diagram of calibrated critic scores, one panel per shape."""

import os
from typing import Any, Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from fga_ros.file_writes import save_figure


def reliability_figure(results: Mapping[str, Mapping[str, Any]],
                       path: str | os.PathLike) -> None:
    """Save a PNG: feasible fraction against mean score per bin, bin counts as bar widths.

    Args:
        results: ``measure_calibration`` output ({shape: {'ece', 'ece_raw', 'bins', ...}}).
    """
    shapes = list(results)
    fig = Figure(figsize=(3.2 * len(shapes), 3.6), dpi=100)
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(shapes), sharey=True))
    for ax, shape in zip(axes, shapes):
        res = results[shape]
        bins = res['bins']
        edges = np.asarray(bins['edges'])
        count = np.asarray(bins['count'], dtype=float)
        used = count > 0
        centres = 0.5 * (edges[:-1] + edges[1:])
        ax.bar(centres[used], np.asarray(bins['feasible'])[used], width=np.diff(edges)[used],
               color='tab:blue', alpha=0.6, edgecolor='k', lw=0.4, label='feasible fraction')
        ax.plot(np.asarray(bins['mean_score'])[used], np.asarray(bins['feasible'])[used],
                'o', color='tab:red', ms=3, label='(mean score, feasible)')
        ax.plot([0, 1], [0, 1], 'k--', lw=0.8, label='perfect calibration')
        for c, x in zip(count[used], centres[used]):
            ax.text(x, 0.02, f'{int(c)}', rotation=90, fontsize=5, ha='center', va='bottom')
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel('calibrated score (bin)')
        ax.set_title(f'{shape}: ECE {res["ece"]:.3f} (raw {res["ece_raw"]:.3f})', fontsize=9)
    axes[0].set_ylabel('feasible fraction (simulator)')
    axes[0].legend(fontsize=6, loc='upper left')
    fig.suptitle(f'reliability of scored proposal candidates ({len(edges) - 1} equal bins; '
                 'numbers: candidates per bin)', fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
