"""PNG figures of critic, actor, proposals and mode ranks (matplotlib, Agg canvas).

- :func:`critic_actor_figure`: the paper's figure 1: problem with example grasps, ground
  truth, critic and actor in x-y and x-alpha projections (max over the hidden dimension);
- :func:`rank_share_figure`: the paper's figure 3: stacked shares of each mode rank and of
  failures, per shape, without and with density rejection ('*');
- :func:`proposal_figure`: a :class:`~fga_ros.core.inference.proposer.Proposal` drawn on the camera
  image, grippers coloured by cluster, labelled by rank and crossed where the simulator
  says they fail, with the scores by rank;
- :func:`learning_curve_figure`: accuracy over training time.

Grasps, colours, legends and millimetre axes come from :mod:`fga_ros.sim.drawing` (one glyph,
one palette: true modes and proposal clusters are numbered from 1). Every figure function
saves its PNG and returns the matplotlib ``Figure``. No pyplot: figures are built on their
own canvas, so this works in threads and without a display.
"""

import math
import os
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
import numpy as np
import torch

from fga_ros.core.common.actions import decode_actor, encode_actions
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.common.tensors import images_to_tensor, model_device
from fga_ros.core.inference.defaults import SCORE_FLOOR
from fga_ros.core.models.heads import ImageFeatures
from fga_ros.core.models.networks import Network
from fga_ros.file_writes import save_figure
from fga_ros.sim import WORKSPACE_HI, WORKSPACE_LO, GroundTruth, Scene, grasp_success, render
from fga_ros.sim.drawing import (
    cluster_numbers,
    grasp_glyphs,
    legend_handles,
    mode_rgb,
    plot_grasps,
    projection_image,
    show_image,
    show_projections,
)

_FAILURE_COLOR = '0.82'
_CRITIC_CHUNK = 16384
_LABEL_SPACING_PX = 4.0  # rank labels closer than this to a better one are left out
_MAP_STYLE: dict[str, Any] = {'cmap': 'viridis', 'vmin': 0.0, 'vmax': 1.0}
_EXAMPLE_MARKER: dict[str, Any] = {'marker': 'o', 'ms': 7, 'mec': 'k', 'mew': 1.2, 'ls': 'none'}

if TYPE_CHECKING:
    from fga_ros.core.inference.proposer import Proposal

PathLike = str | os.PathLike
"""Where a figure is saved (a PNG file)."""


def _new_figure(width, height):
    fig = Figure(figsize=(width, height), dpi=100, layout='constrained')
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    save_figure(fig, path)  # the type follows the extension
    return fig


def _example_grasps(gt, count=5, seed=0):
    """One feasible grasp of each of the ``count`` largest modes: (k, 3), modes (k,)."""
    if gt.num_modes == 0:
        return np.zeros((0, 3)), np.zeros(0, dtype=int)
    candidates = gt.sample_feasible(4096, np.random.default_rng(seed))
    modes = gt.mode_of(candidates)
    _, first = np.unique(modes, return_index=True)
    first = np.sort(first)[:count]
    order = np.argsort(modes[first])
    return candidates[first[order]], modes[first[order]]


def critic_map(model: Network, features: ImageFeatures, grid: int,
               angle_bins: int) -> np.ndarray:
    """Critic success probability on a regular grid: (angle_bins, grid, grid) [alpha, y, x].

    Cell centres: x, y = WORKSPACE_LO + (i + 0.5) * 78 / grid, alpha = (k + 0.5) pi / bins.
    """
    side = WORKSPACE_LO + (np.arange(grid) + 0.5) * (WORKSPACE_HI - WORKSPACE_LO) / grid
    alphas = (np.arange(angle_bins) + 0.5) * math.pi / angle_bins
    a, y, x = np.meshgrid(alphas, side, side, indexing='ij')
    actions = torch.as_tensor(np.stack([x, y, a], -1).reshape(-1, 3), dtype=torch.float32,
                              device=features.device)
    with torch.inference_mode():
        probs = [torch.sigmoid(model.score(features, encode_actions(chunk)[None])[0])
                 for chunk in actions.split(_CRITIC_CHUNK)]
    return torch.cat(probs).cpu().numpy().reshape(angle_bins, grid, grid)


def actor_map(actions: np.ndarray, grid: int, angle_bins: int) -> np.ndarray:
    """Normalised 3-D histogram (angle_bins, grid, grid) [alpha, y, x] of actions (n, 3)."""
    hist, _ = np.histogramdd(
        np.asarray(actions)[:, [2, 1, 0]], bins=(angle_bins, grid, grid),
        range=((0.0, math.pi), (WORKSPACE_LO, WORKSPACE_HI), (WORKSPACE_LO, WORKSPACE_HI)))
    return hist / max(hist.max(), 1.0)


def _model_maps(model, config, scene, num_samples, grid, angle_bins, seed):
    """Critic and actor maps of one scene and the actor samples' feasible share."""
    device = model_device(model)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.inference_mode():
        features = model.features(images_to_tensor(render(scene), model.input_size, device))
        samples = decode_actor(model.sample(features, num_samples, generator)[0])
    samples = samples.cpu().numpy().astype(np.float64)
    accuracy = float(grasp_success(scene, samples).mean())
    return critic_map(model, features, grid, angle_bins), actor_map(samples, grid,
                                                                   angle_bins), accuracy


def critic_actor_figure(model: Network, config: TrainConfig, scene: Scene,
                        gt: GroundTruth, path: PathLike, num_samples: int = 8192,
                        grid: int = 39, angle_bins: int = 36, seed: int = 0) -> Figure:
    """Save the paper's figure 1 for one scene as a PNG.

    Columns: (a) the camera image with one feasible grasp per mode (up to 5, coloured by
    mode), (b) ground-truth modes, (c) critic success probability, (d) actor sample
    histogram; top row x-y (max over alpha), bottom row x-alpha (max over y). The example
    grasps are marked in every projection.

    Args:
        model, config: ``ActorCritic`` (or ``HeatmapModel``) and its ``TrainConfig``.
        scene, gt: simulator scene and its ``ground_truth``.
        num_samples: actor samples for the heat map; grid, angle_bins: resolution of the
            critic and actor maps (the ground truth is shown at full resolution).
    """
    critic, actor, accuracy = _model_maps(model, config, scene, num_samples, grid, angle_bins,
                                          seed)
    examples, example_modes = _example_grasps(gt, seed=seed)
    fig = _new_figure(19.0, 9.0)
    axes = fig.subplot_mosaic([['problem', 'gt_xy', 'critic_xy', 'actor_xy'],
                               ['problem', 'gt_xa', 'critic_xa', 'actor_xa']])
    show_image(axes['problem'], render(scene), scene.distortion)
    plot_grasps(axes['problem'], examples, mode_rgb(example_modes), distortion=scene.distortion)
    axes['problem'].set_title('(a) camera image, one feasible grasp per mode', fontsize=10)
    panels = (('gt', '(b) ground truth: feasible grasps by mode', None, None),
              ('critic', '(c) critic: predicted success probability', critic,
               'critic success probability'),
              ('actor', f'(d) actor: {num_samples} samples, {100 * accuracy:.0f}% feasible',
               actor, 'actor samples per cell (1 = the busiest cell)'))
    for name, title, volume, label in panels:
        top, bottom = axes[f'{name}_xy'], axes[f'{name}_xa']
        if volume is None:
            show_projections(top, bottom, projection_image(gt.labels, 0),
                             projection_image(gt.labels, 1))
        else:
            show_projections(top, bottom, volume.max(axis=0), volume.max(axis=1), **_MAP_STYLE)
            fig.colorbar(top.images[0], ax=[top, bottom], label=label, shrink=0.8)
        for grasp, colour in zip(examples, mode_rgb(example_modes)):
            top.plot(grasp[0], grasp[1], **_EXAMPLE_MARKER, mfc=colour)
            bottom.plot(grasp[0], math.degrees(grasp[2]), **_EXAMPLE_MARKER, mfc=colour)
        top.set_title(title, fontsize=10)
        bottom.set_title('the same, x against gripper angle', fontsize=9)
    labels = {m: f'mode {m}' for m in range(1, gt.num_modes + 1)}
    handles = legend_handles(labels, workspace=True, no_mode=True) + [Line2D(
        [], [], **_EXAMPLE_MARKER, mfc='w', label='the grasp of (a) of that mode')]
    fig.legend(handles=handles, loc='outside lower center', ncol=5, fontsize=8,
               handlelength=3)
    fig.suptitle(f'{scene.shape} seed {scene.seed}: the trained model against the '
                 f"simulator's ground truth ({gt.num_modes} modes, "
                 f'{100 * gt.feasible_fraction:.2f}% of all grasps feasible); top: x-y, '
                 f'max over the angle; bottom: x-angle, max over y')
    return _save(fig, path)


def _rank_colors(count):
    from matplotlib import colormaps
    cmap = colormaps['viridis']
    return [cmap(v) for v in np.linspace(0.1, 0.9, max(count, 1))]


def rank_share_figure(results: Mapping[str, Mapping[str, Any]], path: PathLike,
                      reject_fraction: Optional[float] = None,
                      title: str = 'share of proposals in each ground-truth mode') -> Figure:
    """Save the paper's figure 3 as a PNG: per shape, a bar without and one with rejection
    ('*'), stacked from rank 1 (the scene's most visited mode) up to the last rank, then
    infeasible proposals.

    Args:
        results: ``evaluation.evaluate`` output ``{shape: metrics}``.
        reject_fraction: the share rejected for the '*' bars (for the axis label).
    """
    bars = []
    for shape, res in results.items():
        bars.append((shape, res['rank_shares'], res['accuracy']))
        if not math.isnan(res['accuracy_rejected']):
            bars.append((f'{shape}*', res['rank_shares_rejected'], res['accuracy_rejected']))
    ranks = max((len(shares) for _, shares, _ in bars), default=0)
    colors = _rank_colors(ranks)
    fig = _new_figure(max(8.0, 3.5 + 0.9 * len(bars)), 5.2)
    ax = fig.subplots()
    for i, (_, shares, accuracy) in enumerate(bars):
        bottom = 0.0
        for rank, share in enumerate(shares):
            ax.bar(i, 100 * share, bottom=100 * bottom, color=colors[rank], edgecolor='w',
                   lw=0.5)
            bottom += share
        ax.bar(i, 100 * (1.0 - accuracy), bottom=100 * bottom, color=_FAILURE_COLOR,
               edgecolor='w', lw=0.5)
        if shares:
            ax.text(i, 101, f'{100 * shares[-1]:.1f}', ha='center', va='bottom', fontsize=8)
    ax.set_xticks(range(len(bars)), [label for label, _, _ in bars])
    ax.set_ylim(0, 108)
    ax.set_ylabel('share of proposals [%]')
    rejected = ('the lowest-density proposals' if reject_fraction is None
                else f'the {100 * reject_fraction:g}% lowest-density proposals')
    ax.set_xlabel(f'shape; *: after rejecting {rejected} (per scene)')
    ax.set_title(f'{title}, modes ranked per scene by share\n(numbers above the bars: '
                 f'share of the least visited mode, %)', fontsize=10)
    handles = [Patch(color=colors[r], label=f'mode ranked {r + 1}'
                     + (' (most visited)' if r == 0 else '')) for r in range(ranks)]
    handles.append(Patch(color=_FAILURE_COLOR, label='infeasible proposals'))
    fig.legend(handles=handles[::-1], loc='outside right center', fontsize=8)
    return _save(fig, path)


def _label_ranks(ax, actions, max_labels, distortion):
    """Rank numbers on the grasp centres, leaving out those near a better grasp's label."""
    centres = grasp_glyphs(actions[:max_labels], distortion)[:, 2].mean(axis=1)
    labelled = np.zeros((0, 2))
    for rank, (x, y) in enumerate(centres):
        if len(labelled) and np.hypot(*(labelled - (x, y)).T).min() < _LABEL_SPACING_PX:
            continue
        labelled = np.vstack([labelled, (x, y)])
        ax.text(x, y - 3.5, str(rank), fontsize=7, ha='center', va='center', color='w',
                bbox={'boxstyle': 'round,pad=0.15', 'fc': 'k', 'lw': 0})


def _score_bars(ax, proposal, colours, feasible):
    ax.bar(proposal.ranks, proposal.scores, color=colours, width=1.0, edgecolor='none')
    threshold = ax.axhline(SCORE_FLOOR, color='k', ls=':', lw=1.0,
                           label=f'{SCORE_FLOOR:g}: score floor (calibrated; abstain below)')
    if feasible is not None:
        bad = ~np.asarray(feasible, dtype=bool)
        ax.plot(proposal.ranks[bad], proposal.scores[bad] + 0.03, ls='none', marker='X',
                ms=7, mfc='k', mec='w', mew=0.8, gid='infeasible')
    ax.set_xlabel('rank (0 = best)')
    ax.set_ylabel('calibrated critic score')
    ax.set_ylim(0.0, 1.08)
    return threshold


def proposal_figure(image: np.ndarray, proposal: 'Proposal', path: PathLike,
                    feasible: Optional[np.ndarray] = None, distortion: str = 'none',
                    max_labels: int = 24, title: Optional[str] = None,
                    timing: Optional[str] = None) -> Figure:
    """Save a PNG of a proposal: grippers on the camera image (colour = cluster, number =
    rank, shown for the first ``max_labels``; a cross where ``feasible`` says the grasp
    fails) and the critic score of every rank.

    Args:
        image: (128, 128, 3) uint8 RGB frame the proposal was made for.
        proposal: :class:`~fga_ros.core.inference.proposer.Proposal`.
        feasible: optional (n,) bool simulator outcome of each grasp (ground truth).
        distortion: the camera distortion of a simulator image (no mm axes unless 'none').
        timing: how ``proposal.inference_ms`` was measured (for the title).
    """
    numbers = cluster_numbers(proposal.cluster_ids)
    colours = mode_rgb(numbers)
    fig = _new_figure(15.0, 7.0)
    left, right = fig.subplots(1, 2, width_ratios=(1.15, 1.0))
    show_image(left, image, distortion)
    # Drawn worst first, so that better grasps and their labels lie on top.
    plot_grasps(left, proposal.actions[::-1], colours[::-1],
                None if feasible is None else np.asarray(feasible)[::-1], distortion)
    _label_ranks(left, proposal.actions, max_labels, distortion)
    checked = ('no ground truth for this image' if feasible is None else
               f'{int(np.sum(feasible))}/{len(proposal)} feasible (simulator)')
    clusters = 'cluster' if proposal.num_clusters == 1 else 'clusters'
    left.set_title(f'{len(proposal)} proposed grasps in {proposal.num_clusters} {clusters}; '
                   f'{checked}\nlabels: rank (0 = best; first {min(max_labels, len(proposal))}'
                   f', the best of nearby grasps)', fontsize=10)
    threshold = _score_bars(right, proposal, colours, feasible)
    timing = timing or 'this call, including any warm-up'
    explored = proposal.num_explored
    right.set_title(f'{proposal.num_sampled} actor samples, {proposal.num_rejected} rejected '
                    f'as lowest density' + (f', {explored} grasps explored' if explored else '')
                    + f';\n{proposal.inference_ms:.1f} ms per proposal call '
                    f'({timing})', fontsize=10)
    legend = {n: f'cluster {n}: {int(np.sum(numbers == n))} grasps'
              for n in sorted(set(numbers.tolist()))}
    handles = legend_handles(legend, infeasible=feasible is not None, workspace=True)
    fig.legend(handles=handles + [threshold], loc='outside lower center', ncol=4,
               fontsize=8, handlelength=3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def learning_curve_figure(records: Sequence[Mapping[str, Any]], path: PathLike,
                          title: str = 'accuracy during training') -> Figure:
    """Save accuracy over training time as a PNG (the ``eval.jsonl`` of a run); when the
    records hold mode coverage (``recall/``, ``hit/``, ``tv/<shape>``), two more panels show
    the mode recall with the share of scenes with every mode hit (dashed) and the TV
    distance of the mode shares to the uniform target.

    Args:
        records: list of dicts with 'step', 'seconds' and 'acc/<shape>' / 'acc*/<shape>'
            fractions (``quick_metrics`` output).
    """
    from matplotlib import colormaps
    if not records:
        raise ValueError('no evaluation records to plot')
    hours = np.array([r['seconds'] for r in records]) / 3600.0
    steps = np.array([r['step'] for r in records])
    shapes = [k.split('/', 1)[1] for k in records[0] if k.startswith('acc/')]
    coverage = all(f'{p}/{s}' in r for r in records for s in shapes
                   for p in ('recall', 'hit', 'tv'))
    fig = _new_figure(10.0, 10.5 if coverage else 4.8)
    axes = fig.subplots(3 if coverage else 1, 1, sharex=True, squeeze=False)[:, 0]
    # (axes, solid key, dashed key or None, y label, scale, title)
    panels: list[tuple[Any, str, Optional[str], str, float, str]] = [
        (axes[0], 'acc*', 'acc', 'share of actor samples that are feasible [%]', 100.0,
         f'{title} (periodic evaluation on scenes not trained on)')]
    if coverage:
        panels += [(axes[1], 'recall', 'hit', 'share [%]', 100.0,
                    'mode recall (solid) and scenes with every mode hit (dashed), raw samples'),
                   (axes[2], 'tv', None, 'TV distance', 1.0,
                    'TV distance of the mode shares to the uniform target (0 = uniform)')]
    shape_colours = colormaps['Dark2']  # 8 listed colours, for shapes: not the mode palette
    for ax, solid, dashed, label, scale, heading in panels:
        for i, shape in enumerate(shapes):
            color = 'k' if shape == 'mean' else shape_colours(i % shape_colours.N)
            width = 2.5 if shape == 'mean' else 1.2
            ax.plot(hours, [scale * r[f'{solid}/{shape}'] for r in records], color=color,
                    lw=width, label=shape)
            if dashed:
                ax.plot(hours, [scale * r[f'{dashed}/{shape}'] for r in records],
                        color=color, lw=0.8, ls='--')
        ax.set_ylabel(label)
        if solid == 'tv':  # small numbers: zoom in
            largest = max((r[f'tv/{shape}'] for r in records for shape in shapes
                           if math.isfinite(r[f'tv/{shape}'])), default=1.0)
            ax.set_ylim(0, min(1.0, 1.15 * largest + 0.02))
        else:
            ax.set_ylim(0, scale)
        ax.set_title(heading, fontsize=10)
    axes[-1].set_xlabel('training time [h]')
    if len(records) > 1 and np.all(np.diff(hours) > 0) and np.all(np.diff(steps) > 0):
        # a step axis on top where time maps one-to-one onto steps (no clock-restarting resume)
        top = axes[0].secondary_xaxis('top', functions=(
            lambda h: _extrapolated(h, hours, steps), lambda s: _extrapolated(s, steps, hours)))
        top.set_xlabel('training step')
    styles = [Line2D([], [], color='0.3', lw=1.2, label='solid: after density rejection (*)'),
              Line2D([], [], color='0.3', lw=0.8, ls='--', label='dashed: without rejection')]
    axes[0].legend(handles=styles, loc='lower right', fontsize=8)
    fig.legend(handles=axes[0].get_legend_handles_labels()[0],
               loc='outside right center', fontsize=8)
    return _save(fig, path)


def _extrapolated(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise-linear map through the increasing points (xp, fp), continued beyond both
    ends with the end segments' slopes (``np.interp`` would clamp, so that an axis made of
    it puts the ticks beyond the data on the end points)."""
    x = np.asarray(x, dtype=float)
    inside = np.interp(x, xp, fp)
    low = fp[0] + (x - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
    high = fp[-1] + (x - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return np.where(x < xp[0], low, np.where(x > xp[-1], high, inside))
