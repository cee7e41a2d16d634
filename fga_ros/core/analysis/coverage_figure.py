"""PNG figure of the scenes a sampler covers worst: its samples next to the ground truth.

One row per scene: the camera image; the ground-truth feasible set in x-y (max over alpha)
and x-alpha (max over y), coloured by mode with the simulator's palette
(``fga_ros.sim.drawing.MODE_COLORS``); beside each, the same projection of the samples
(dots coloured by the mode they land in, crosses for infeasible ones) over a faded copy of
the feasible set; and the share of each mode in the feasible set next to its share of the
feasible samples, with the recall threshold (a quarter of the mode's share). The image and
the projections are zoomed to a square x-y window around the feasible set and the bulk of
the samples (axes in pixels of the camera image).
"""

import os
from typing import Any, Mapping, Optional, Sequence

from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
import numpy as np

from fga_ros.core.analysis.coverage import RECALL_RATIO, SceneCoverage, scene_coverage
from fga_ros.core.inference.density import keep_densest
from fga_ros.file_writes import save_figure
from fga_ros.sim import WORKSPACE_HI, WORKSPACE_LO, GroundTruth, Scene, ground_truth, render
from fga_ros.sim.drawing import mode_color, projection_image

_FADE = 0.3  # feasible set behind the samples: this much of its colour, the rest white
_INFEASIBLE = '0.15'
_MARGIN = 4.0  # px around the feasible set and the samples in the x-y views
_MIN_WINDOW = 24.0  # px, smallest side of the x-y views

Case = tuple[Scene, GroundTruth, np.ndarray, np.ndarray]
"""One scene of ``coverage_figure``: scene, ground truth, actions (n, 3), log-density (n,)."""


def _rgb(mode: int | np.integer) -> tuple[float, float, float]:
    red, green, blue = mode_color(int(mode))
    return red / 255.0, green / 255.0, blue / 255.0


def _faded(image: np.ndarray) -> np.ndarray:
    return (255.0 - _FADE * (255.0 - image.astype(np.float64))).astype(np.uint8)


def _scatter(ax: Any, points: np.ndarray, modes: np.ndarray) -> None:
    """Samples (n, 2) in plot units, coloured by mode (n,); infeasible ones as crosses."""
    bad = modes == 0
    ax.plot(points[bad, 0], points[bad, 1], 'x', color=_INFEASIBLE, ms=3, mew=0.6,
            alpha=0.6)
    colors = np.array([_rgb(m) for m in modes[~bad]]).reshape(-1, 3)
    ax.scatter(points[~bad, 0], points[~bad, 1], s=5, c=colors, alpha=0.55, linewidths=0)


def _window(gt: GroundTruth, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Square x-y window [lo, hi) in px around the feasible set and the bulk (2-98 %) of
    the samples, with a margin, at least ``_MIN_WINDOW`` px, inside the workspace."""
    iy, ix = np.nonzero(gt.feasible.any(axis=0))
    xs = np.concatenate([WORKSPACE_LO + ix, WORKSPACE_LO + ix + 1.0,
                         np.percentile(actions[:, 0], (2, 98))])
    ys = np.concatenate([WORKSPACE_LO + iy, WORKSPACE_LO + iy + 1.0,
                         np.percentile(actions[:, 1], (2, 98))])
    centre = np.array([xs.min() + xs.max(), ys.min() + ys.max()]) / 2.0
    side = max(_MIN_WINDOW, xs.max() - xs.min() + 2 * _MARGIN, ys.max() - ys.min() + 2 * _MARGIN)
    side = min(side, WORKSPACE_HI - WORKSPACE_LO)
    lo = np.clip(centre - side / 2.0, WORKSPACE_LO, WORKSPACE_HI - side)
    return lo, lo + side


def _share_bars(ax: Any, cov: SceneCoverage) -> None:
    k = len(cov.mode_shares)
    idx = np.arange(1, k + 1)
    colors = [_rgb(m) for m in idx]
    ax.bar(idx - 0.2, 100 * cov.mode_shares, width=0.4, color=colors, alpha=0.35,
           edgecolor=colors, hatch='///', lw=0.8)
    ax.bar(idx + 0.2, 100 * cov.sample_shares, width=0.4, color=colors, edgecolor='k',
           lw=0.6)
    ax.hlines(100 * RECALL_RATIO * cov.mode_shares, idx - 0.42, idx + 0.42, colors='k',
              linestyles=':', lw=1.0)
    for m, hit in zip(idx, cov.recalled):
        if not hit:
            ax.text(m + 0.2, 100 * cov.sample_shares[m - 1] + 1.5, 'missed', rotation=90,
                    ha='center', va='bottom', fontsize=7, color='k')
    ax.set_xticks(idx, [str(m) for m in idx])
    ax.set_xlabel('mode')
    ax.set_ylabel('share [%]')
    top = 100 * max(cov.mode_shares.max(), cov.sample_shares.max())
    ax.set_ylim(0, min(100.0, top * 1.25 + 8))


def coverage_figure(cases: Sequence[Case], path: str | os.PathLike, reject_fraction: float,
                    title: Optional[str] = None) -> None:
    """Save a PNG with one row per scene of ``cases`` (e.g. the worst-covered ones).

    Args:
        cases: list of ``(scene, ground_truth, actions (n, 3) px/rad, log_density (n,))``
            for scenes with at least one mode.
        path: PNG file path.
        reject_fraction: share of lowest-density samples dropped for the '*' figures in
            the row titles (as ``fga eval``).
        title: figure title.
    """
    if not cases:
        raise ValueError('no scenes to draw')
    fig = Figure(figsize=(21.0, 3.7 * len(cases) + 0.9), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(cases), 6, squeeze=False,
                        gridspec_kw={'width_ratios': (1, 1, 1, 1.15, 1.15, 0.9)})
    most_modes = 0
    for row, (scene, gt, actions, log_density) in zip(axes, cases):
        _scene_row(row, scene, gt, np.asarray(actions, dtype=np.float64),
                   keep_densest(log_density, reject_fraction))
        most_modes = max(most_modes, gt.num_modes)
    handles = _legend_handles(most_modes)
    fig.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=9,
               frameon=False)
    fig.suptitle(title or 'worst-covered scenes', fontsize=11)
    fig.tight_layout(rect=(0, 0.9 / (3.7 * len(cases) + 0.9), 1, 1))
    save_figure(fig, path)


def _scene_row(row: Sequence[Any], scene: Scene, gt: GroundTruth, actions: np.ndarray,
               kept: np.ndarray) -> None:
    """One scene's row of ``coverage_figure``: the camera image, ground truth and samples
    in x-y and x-alpha, and the mode shares; ``kept`` indexes the samples left after
    density rejection (the '*' figures)."""
    lo, hi = WORKSPACE_LO, WORKSPACE_HI
    modes = gt.mode_of(actions)
    cov = scene_coverage(modes, gt.mode_shares)
    cov_kept = scene_coverage(modes[kept], gt.mode_shares)
    xy, xa = projection_image(gt.labels, 0), projection_image(gt.labels, 1)
    degrees = np.degrees(actions[:, 2])

    (x0, y0), (x1, y1) = _window(gt, actions)
    ax = row[0]
    ax.imshow(render(scene), extent=(-0.5, 127.5, 127.5, -0.5), interpolation='nearest')
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_title(f'{scene.shape}, scene seed {scene.seed}', fontsize=9)
    ax.set_xlabel('x [px]')
    ax.set_ylabel('y [px]')
    panels = ((row[1], xy, (lo, hi, hi, lo), 'equal', 'ground truth, x-y', None),
              (row[2], _faded(xy), (lo, hi, hi, lo), 'equal', 'samples, x-y',
               actions[:, :2]),
              (row[3], xa, (lo, hi, 180.0, 0.0), 'auto', 'ground truth, x-alpha', None),
              (row[4], _faded(xa), (lo, hi, 180.0, 0.0), 'auto', 'samples, x-alpha',
               np.stack([actions[:, 0], degrees], axis=1)))
    for ax, image, extent, aspect, name, points in panels:
        ax.imshow(image, extent=extent, aspect=aspect, interpolation='nearest')
        if points is not None:
            _scatter(ax, points, modes)
        ax.set_xlim(x0, x1)
        ax.set_ylim(*((y1, y0) if aspect == 'equal' else (180.0, 0.0)))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel('x [px]')
        ax.set_ylabel('alpha [deg]' if 'alpha' in name else 'y [px]')
    _share_bars(row[5], cov)
    row[5].set_title(f'recall {100 * cov.recall:.0f}% (* {100 * cov_kept.recall:.0f}%), '
                     f'TV {cov.tv:.2f} (* {cov_kept.tv:.2f})\n'
                     f'{len(actions)} samples, {cov.feasible_samples} feasible',
                     fontsize=9)


def _legend_handles(num_modes: int) -> list[Artist]:
    """Legend of ``coverage_figure``: the colours of modes 1..num_modes, the infeasible
    cross, the two bars and the recall threshold."""
    handles: list[Artist] = [Patch(color=_rgb(m), label=f'mode {m}')
                             for m in range(1, num_modes + 1)]
    handles += [
        Line2D([], [], ls='', marker='x', color=_INFEASIBLE, label='infeasible sample'),
        Patch(facecolor='w', edgecolor='k', hatch='///', label='share of the feasible set'),
        Patch(facecolor='0.6', edgecolor='k', label='share of the feasible samples'),
        Line2D([], [], ls=':', color='k', label=f'recall threshold ({RECALL_RATIO:g} x share)'),
    ]
    return handles


def worst_cases(result: Mapping[str, Any],
                samples: Mapping[int, tuple[Scene, np.ndarray, np.ndarray]]) -> list[Case]:
    """The cases for :func:`coverage_figure` from one shape's ``evaluate`` result.

    Args:
        result: ``evaluate(...)[shape]`` (its ``worst_scenes``).
        samples: ``{seed: (scene, actions, log_density)}`` of the shape's scenes, as kept
            by an ``on_scene`` callback.
    """
    cases = []
    for worst in result['worst_scenes']:
        scene, actions, log_density = samples[worst['seed']]
        cases.append((scene, ground_truth(scene), actions, log_density))
    return cases

