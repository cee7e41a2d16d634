"""PNG figures of critic, actor, proposals and mode ranks (matplotlib, Agg canvas).

- :func:`critic_actor_figure`: the paper's figure 1: problem with example grasps, ground
  truth, critic and actor in x-y and x-alpha projections (max over the hidden dimension);
- :func:`rank_share_figure`: the paper's figure 3: stacked shares of each mode rank and of
  failures, per shape, without and with density rejection ('*');
- :func:`proposal_figure`: a :class:`~fga_ros.core.inference.proposer.Proposal` drawn on the
  upscaled camera image, grippers coloured by mode and labelled by rank, with the scores by rank.

No pyplot: figures are built on their own canvas, so this works in threads and without a
display.
"""

import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
import numpy as np
import torch

from fga_ros.core.common.actions import decode_actor, encode_actions
from fga_ros.core.common.tensors import images_to_tensor, model_device
from fga_ros.sim import WORKSPACE_HI, WORKSPACE_LO, draw_grasps, grasp_success, render
from fga_ros.sim.drawing import MODE_COLORS, grasp_glyphs, mode_color, projection_image

_FAILURE_COLOR = '0.82'
_CRITIC_CHUNK = 16384
_LABEL_SPACING_PX = 4.0  # rank labels closer than this to a better one are left out


def _new_figure(width, height):
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _rgb(mode):
    return np.array(mode_color(int(mode))) / 255.0


def _plot_glyphs(ax, glyphs, modes):
    for glyph, mode in zip(glyphs, modes):
        for k, seg in enumerate(glyph):
            ax.plot(seg[:, 0], seg[:, 1], color='k', lw=3.5 if k < 2 else 2.0,
                    solid_capstyle='butt')
            ax.plot(seg[:, 0], seg[:, 1], color=_rgb(mode), lw=2.2 if k < 2 else 1.0,
                    solid_capstyle='butt')


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


def critic_map(model, features, grid, angle_bins):
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


def actor_map(actions, grid, angle_bins):
    """Normalised 3-D histogram (angle_bins, grid, grid) [alpha, y, x] of actions (n, 3)."""
    hist, _ = np.histogramdd(
        np.asarray(actions)[:, [2, 1, 0]], bins=(angle_bins, grid, grid),
        range=((0.0, math.pi), (WORKSPACE_LO, WORKSPACE_HI), (WORKSPACE_LO, WORKSPACE_HI)))
    return hist / max(hist.max(), 1.0)


def critic_actor_figure(model, config, scene, gt, path, num_samples=8192, grid=39,
                        angle_bins=36, seed=0):
    """Save the paper's figure 1 for one scene as a PNG.

    Columns: (a) the camera image with one feasible grasp per mode (up to 5, coloured by
    mode), (b) ground-truth modes, (c) critic success probability, (d) actor sample
    histogram; top row x-y (max over alpha), bottom row x-alpha (max over y). The example
    grasps are marked in every projection.

    Args:
        model, config: ``ActorCritic`` and its ``TrainConfig``.
        scene, gt: simulator scene and its ``ground_truth``.
        num_samples: actor samples for the heat map; grid, angle_bins: resolution of the
            critic and actor maps (the ground truth is shown at full resolution).
    """
    device = model_device(model)
    image = render(scene)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.inference_mode():
        features = model.features(images_to_tensor(image, config.image_size, device))
        samples = decode_actor(model.sample(features, num_samples, generator)[0])
    samples = samples.cpu().numpy().astype(np.float64)
    critic = critic_map(model, features, grid, angle_bins)
    actor = actor_map(samples, grid, angle_bins)
    accuracy = float(grasp_success(scene, samples).mean())
    examples, example_modes = _example_grasps(gt, seed=seed)

    fig = _new_figure(17.0, 7.6)
    axes = fig.subplot_mosaic([['problem', 'gt_xy', 'critic_xy', 'actor_xy'],
                               ['problem', 'gt_xa', 'critic_xa', 'actor_xa']])
    lo, hi = WORKSPACE_LO, WORKSPACE_HI
    ax = axes['problem']
    ax.imshow(image, extent=(-0.5, 127.5, 127.5, -0.5), interpolation='nearest')
    _plot_glyphs(ax, grasp_glyphs(examples, scene.distortion), example_modes)
    ax.set_title(f'(a) problem: {scene.shape}, seed {scene.seed}')
    ax.set_axis_off()
    xy_extent, xa_extent = (lo, hi, hi, lo), (lo, hi, 180.0, 0.0)
    panels = (('gt', '(b) ground truth', None),
              ('critic', '(c) critic', critic),
              ('actor', f'(d) actor ({100 * accuracy:.0f}% feasible)', actor))
    for name, title, volume in panels:
        if volume is None:
            xy, xa = projection_image(gt.labels, 0), projection_image(gt.labels, 1)
            style = {}
        else:
            xy, xa = volume.max(axis=0), volume.max(axis=1)
            style = {'cmap': 'viridis', 'vmin': 0.0, 'vmax': 1.0}
        top, bottom = axes[f'{name}_xy'], axes[f'{name}_xa']
        top.imshow(xy, extent=xy_extent, interpolation='nearest', **style)
        bottom.imshow(xa, extent=xa_extent, aspect='auto', interpolation='nearest', **style)
        for grasp, mode in zip(examples, example_modes):
            marker = {'marker': 'o', 'ms': 7, 'mfc': _rgb(mode), 'mec': 'k', 'mew': 1.2}
            top.plot(grasp[0], grasp[1], **marker)
            bottom.plot(grasp[0], math.degrees(grasp[2]), **marker)
        top.set_title(f'{title}, x-y')
        bottom.set_title('x-alpha')
        top.set_xlabel('x [px]')
        top.set_ylabel('y [px]')
        bottom.set_xlabel('x [px]')
        bottom.set_ylabel('alpha [deg]')
    fig.suptitle(f'{gt.num_modes} ground-truth modes, feasible fraction '
                 f'{100 * gt.feasible_fraction:.2f}%; projections take the max over the '
                 f'hidden dimension')
    fig.tight_layout()
    fig.savefig(str(path), format='png')


def _rank_colors(count):
    from matplotlib import colormaps
    cmap = colormaps['viridis']
    return [cmap(v) for v in np.linspace(0.1, 0.9, max(count, 1))]


def rank_share_figure(results, path, title='share of proposals per mode rank'):
    """Save the paper's figure 3 as a PNG: per shape, a bar without and one with rejection
    ('*'), stacked from rank 1 (most visited mode) up to the last rank, then failures.

    Args:
        results: ``evaluation.evaluate`` output ``{shape: metrics}``.
    """
    bars = []
    for shape, res in results.items():
        bars.append((shape, res['rank_shares'], res['accuracy']))
        if not math.isnan(res['accuracy_rejected']):
            bars.append((f'{shape}*', res['rank_shares_rejected'], res['accuracy_rejected']))
    ranks = max((len(shares) for _, shares, _ in bars), default=0)
    colors = _rank_colors(ranks)
    fig = _new_figure(max(7.0, 2.5 + 0.9 * len(bars)), 5.0)
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
    ax.set_title(f'{title}\n(numbers above the bars: last rank, %)', fontsize=10)
    handles = [Patch(color=colors[r], label=f'rank {r + 1}') for r in range(ranks)]
    handles.append(Patch(color=_FAILURE_COLOR, label='failure'))
    ax.legend(handles=handles[::-1], loc='center left', bbox_to_anchor=(1.0, 0.5),
              fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path), format='png')


def proposal_figure(image, proposal, path, scale=4, max_labels=24, title=None):
    """Save a PNG of a proposal: grippers on the upscaled image (colour = mode, number =
    rank, shown for the first ``max_labels``) and the critic score of every rank.

    Args:
        image: (128, 128, 3) uint8 RGB frame the proposal was made for.
        proposal: :class:`~fga_ros.core.inference.proposer.Proposal`.
    """
    modes = np.asarray(proposal.mode_ids) + 1  # drawing colours: 1-based, 0 = infeasible
    # Drawn worst first, so that better grasps and their labels lie on top.
    big = draw_grasps(image, proposal.actions[::-1], modes=modes[::-1], scale=scale)
    fig = _new_figure(13.0, 6.2)
    left, right = fig.subplots(1, 2, width_ratios=(1.2, 1.0))
    left.imshow(big, interpolation='nearest')
    labelled = np.zeros((0, 2))
    for rank, (x, y, _) in enumerate(proposal.actions[:max_labels]):
        if len(labelled) and np.hypot(*(labelled - (x, y)).T).min() < _LABEL_SPACING_PX:
            continue  # a better grasp's label is already there
        labelled = np.vstack([labelled, (x, y)])
        left.text((x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5, str(rank), fontsize=7,
                  ha='center', va='center', color='w',
                  bbox={'boxstyle': 'round,pad=0.15', 'fc': 'k', 'lw': 0})
    left.set_axis_off()
    left.set_title(f'{len(proposal)} grasps in {proposal.num_modes} modes (labels: rank, '
                   f'best of nearby grasps, first {min(max_labels, len(proposal))} ranks)')
    colors = [_rgb(m) for m in modes]
    right.bar(proposal.ranks, proposal.scores, color=colors, width=1.0, edgecolor='none')
    right.axhline(0.5, color='0.5', ls='--', lw=0.8)
    right.set_xlabel('rank')
    right.set_ylabel('critic success probability')
    right.set_ylim(0.0, 1.0)
    shown = sorted(set(int(m) for m in modes))[:len(MODE_COLORS)]
    right.legend(handles=[Patch(color=_rgb(m), label=f'mode {m - 1}') for m in shown],
                 fontsize=7, loc='upper right')
    right.set_title(f'sampled {proposal.num_sampled}, rejected {proposal.num_rejected}, '
                    f'{proposal.inference_ms:.1f} ms')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(str(path), format='png')


def learning_curve_figure(records, path, title='accuracy during training'):
    """Save accuracy over training time as a PNG (the ``eval.jsonl`` of a run).

    Args:
        records: list of dicts with 'step', 'seconds' and 'acc/<shape>' / 'acc*/<shape>'
            fractions (``quick_accuracy`` output).
    """
    if not records:
        raise ValueError('no evaluation records to plot')
    hours = np.array([r['seconds'] for r in records]) / 3600.0
    steps = np.array([r['step'] for r in records])
    shapes = [k.split('/', 1)[1] for k in records[0] if k.startswith('acc/')]
    fig = _new_figure(9.0, 4.5)
    ax = fig.subplots()
    for i, shape in enumerate(shapes):
        color = np.array(MODE_COLORS[i % len(MODE_COLORS)]) / 255.0
        width = 2.5 if shape == 'mean' else 1.2
        ax.plot(hours, [100 * r[f'acc*/{shape}'] for r in records], color=color, lw=width,
                label=f'{shape}*')
        ax.plot(hours, [100 * r[f'acc/{shape}'] for r in records], color=color, lw=0.8,
                ls='--')
    ax.set_xlabel('training time [h]  (dashed: without density rejection)')
    ax.set_ylabel('accuracy [%]')
    ax.set_ylim(0, 100)
    top = ax.secondary_xaxis('top', functions=(
        lambda h: np.interp(h, hours, steps), lambda s: np.interp(s, steps, hours)))
    top.set_xlabel('step')
    ax.legend(loc='center left', bbox_to_anchor=(1.0, 0.5), fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(str(path), format='png')
