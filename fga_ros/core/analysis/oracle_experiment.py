"""Controlled experiment of section 3: an image-free generator trained on the simulator itself.

For ONE fixed scene the environment gives g(s, a) for as many actions as asked, so no
critic is needed (section 3.1, 'repeated controlled experiments'). A generator
z ~ U[-1, 1]^d -> ``[x_n, y_n, r sin 2a, r cos 2a]`` (the actor of ``nets`` without the
image input) is trained with the estimator of eq. 10, exactly as the actor is
(``updates.f_divergence_loss``), with the target weight

    g = grasp_success(scene, decode_actor(a)) * radius weight(a) * workspace indicator(a).

After training, ``samples`` generator outputs are checked on the simulator and counted per
ground-truth mode: the paper's expectation is that JS and FKL spread over all modes while
RKL (mode seeking) concentrates on fewer.

Initialisation: PyTorch's default, as for the actor, which makes the generator start as an
almost point-like distribution (std ~0.015, under a pixel) at the workspace centre.
Wider initial distributions (larger output weights) were tried and are worse: with the
binary g almost all of q is infeasible, the estimator's repulsion there spreads q and tanh
saturation carries it to the workspace border, where no grasp is feasible.

What this setting shows (``fga modes``, H seed 3, rng seeds 0-2): FKL spreads over
4-5 of the 5 modes (about 30-45% accuracy), RKL collapses onto one mode (or, in some seeds,
leaves the object) and so does JS. The JS and RKL weights carry a factor q/q', so modes
where q is still ~0 exert no pull; the FKL weight p/q' only needs the proposal q' to reach
them. The paper's JS covers the modes with a learned critic; without one, and from a
point-like start, it does not here.
"""

import math
import os
import time
from typing import Any, Iterable, Mapping, Optional, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from fga_ros.core.analysis.evaluation import rank_shares
from fga_ros.core.common.actions import ACTION_DIM, decode_actor
from fga_ros.core.common.checks import check_count
from fga_ros.core.common.choices import F_DIVERGENCES
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.common.tensors import sample_latent
from fga_ros.core.inference.defaults import MAX_SAMPLES
from fga_ros.core.models.feasibility import action_weight
from fga_ros.core.training.updates import f_divergence_loss
from fga_ros.file_writes import save_figure
from fga_ros.sim import (
    WORKSPACE_HI,
    WORKSPACE_LO,
    Scene,
    grasp_success,
    ground_truth,
    make_scene,
)
from fga_ros.sim.drawing import add_mm_axes, legend_handles, mode_rgb, projection_image

STEPS = 2000
"""Default generator updates per divergence (ours; about 20 s on one CPU core)."""
LR = 3e-4
"""Default Adam learning rate of the generator (ours). At 1e-3 RKL leaves the object for the
workspace border (H seed 3); at the actor's 1e-4, FKL reaches 3 of H seed 3's 5 modes in
STEPS steps instead of 4."""
SAMPLES = 1024
"""Default generator outputs evaluated after training (the paper's actions per state)."""
VISITED_SHARE = 0.01
"""A mode counts as visited when at least this fraction of the samples falls in it."""


class LatentGenerator(nn.Module):
    """Image-free actor: z (..., n, d) -> tanh(MLP(z)) (..., n, 4), like ``nets.Actor``."""

    def __init__(self, latent_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        width = latent_dim
        for out in hidden:
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        layers.append(nn.Linear(width, ACTION_DIM))
        self.mlp = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (..., d) -> actor-space actions (..., 4)."""
        return torch.tanh(self.mlp(z))

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """n outputs (1, n, 4) from fresh latents (one 'state')."""
        return self(sample_latent(1, n, self.latent_dim, generator))


def oracle_weight(scene: Scene, points: torch.Tensor) -> torch.Tensor:
    """Environment target weight g * radius weight * workspace indicator, (...), detached.

    Args:
        points: (..., 4) actor-space actions.
    """
    with torch.no_grad():
        pixels = decode_actor(points.detach()).reshape(-1, 3).double().numpy()
        success = torch.from_numpy(grasp_success(scene, pixels)).reshape(points.shape[:-1])
        return success.to(points.dtype) * action_weight(points)


def evaluate_generator(model: LatentGenerator, scene: Scene, samples: int,
                       generator: Optional[torch.Generator] = None) -> dict[str, Any]:
    """Accuracy and ground-truth mode shares of ``samples`` generator outputs on ``scene``.

    Returns:
        dict: accuracy, rank_shares (list, per mode sorted descending, fractions of all
        samples), modes_visited (modes with a share >= VISITED_SHARE), num_modes, and
        actions ((samples, 3) float64 pixel actions, for figures).
    """
    gt = ground_truth(scene)
    with torch.no_grad():
        actions = decode_actor(model.sample(samples, generator)[0]).double().numpy()
    success = grasp_success(scene, actions)
    shares = rank_shares(gt.mode_of(actions), gt.num_modes)
    return {'accuracy': float(success.mean()),
            'rank_shares': [float(s) for s in shares],
            'modes_visited': int((shares >= VISITED_SHARE).sum()),
            'num_modes': gt.num_modes,
            'actions': actions}


def train_generator(scene: Scene, kind: str, steps: int = STEPS, lr: float = LR,
                    config: Optional[TrainConfig] = None, seed: int = 0,
                    progress: bool = True) -> LatentGenerator:
    """Train a ``LatentGenerator`` on ``scene`` with divergence ``kind``; returns the model.

    Uses the config's latent size, actor widths, N (num_supports), m and bandwidths
    (default: ``TrainConfig()``); Adam with learning rate ``lr``.
    """
    if kind not in F_DIVERGENCES:
        raise ValueError(f'divergence must be one of {F_DIVERGENCES}, got {kind!r}')
    steps = check_count('steps', steps, 0, 10 ** 8)
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr)
                                    and lr > 0):
        raise ValueError(f'lr must be a positive number, got {lr!r}')
    config = config or TrainConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LatentGenerator(config.latent_dim, config.actor_hidden)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in tqdm(range(steps), desc=f'modes {kind}', unit='step', disable=not progress):
        supports = model.sample(config.num_supports, generator)
        loss = f_divergence_loss(kind, supports, lambda points: oracle_weight(scene, points),
                                 config.resample_per_support, config.kde_bandwidth,
                                 config.proposal_bandwidth, generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model


def run_oracle_experiment(shape: str, seed: int, divergences: Iterable[str] = F_DIVERGENCES,
                          steps: int = STEPS, lr: float = LR, samples: int = SAMPLES,
                          rng_seed: int = 0, config: Optional[TrainConfig] = None,
                          params: Optional[Mapping[str, Any]] = None,
                          progress: bool = True) -> dict[str, dict[str, Any]]:
    """Train one generator per divergence on scene (shape, seed) and evaluate it.

    Args:
        shape, seed: the simulator scene (no distortion: the generator sees no image).
        divergences: names from F_DIVERGENCES.
        steps, lr: generator updates and Adam learning rate per divergence.
        samples: generator outputs evaluated after training.
        rng_seed: seed of the network initialisation, latents and resampling noise (the
            same for every divergence).
        config: ``TrainConfig`` giving N, m, bandwidths and widths (default: its defaults).
        params: optional explicit scene parameters (``sim.make_scene``).

    Returns:
        ``{divergence: dict}`` with the keys of ``evaluate_generator`` plus seconds (wall
        time of training and evaluation).
    """
    divergences = tuple(divergences)
    if not divergences or any(k not in F_DIVERGENCES for k in divergences):
        raise ValueError(f'divergences must be names from {F_DIVERGENCES}, got {divergences}')
    samples = check_count('samples', samples, 1, MAX_SAMPLES)
    scene = make_scene(shape, seed, params=params)
    results = {}
    for kind in divergences:
        start = time.perf_counter()
        model = train_generator(scene, kind, steps, lr, config, rng_seed, progress)
        generator = torch.Generator().manual_seed(rng_seed + 1)
        results[kind] = evaluate_generator(model, scene, samples, generator)
        results[kind]['seconds'] = time.perf_counter() - start
    return results


def format_modes_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Plain-text table of ``run_oracle_experiment`` results, one row per divergence."""
    lines = [f'{"loss":<5} {"accuracy":>8} {"modes":>7}  {"seconds":>7}  '
             f'share per mode rank, % of samples']
    for kind, r in results.items():
        shares = ' '.join(f'{100 * s:5.1f}' for s in r['rank_shares'])
        lines.append(f'{kind.upper():<5} {100 * r["accuracy"]:7.1f}% '
                     f'{r["modes_visited"]:>3}/{r["num_modes"]:<3}  {r["seconds"]:7.1f}  '
                     f'{shares}')
    return '\n'.join(lines)


def modes_figure(results: Mapping[str, Mapping[str, Any]], scene: Scene,
                 path: str | os.PathLike) -> Figure:
    """Save a PNG: per divergence, the x-y projection of the samples over the modes.

    The ground-truth modes (max over alpha) are drawn faded; feasible samples are dots in
    their mode's colour, infeasible ones black crosses. Returns the figure.
    """
    gt = ground_truth(scene)
    background = 255 - (255 - projection_image(gt.labels, 0).astype(float)) * 0.45
    fig = Figure(figsize=(4.6 * len(results), 5.6), dpi=100, layout='constrained')
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(results)))
    lo, hi = WORKSPACE_LO, WORKSPACE_HI
    for ax, (kind, r) in zip(axes, results.items()):
        actions = r['actions']
        modes = gt.mode_of(actions)
        ax.imshow(background.astype(np.uint8), extent=(lo, hi, hi, lo), interpolation='nearest')
        bad = modes == 0
        ax.plot(actions[bad, 0], actions[bad, 1], 'x', color='k', ms=3, mew=0.6, alpha=0.5,
                gid='infeasible')
        ax.scatter(actions[~bad, 0], actions[~bad, 1], s=4, c=mode_rgb(modes[~bad]),
                   edgecolors='none')
        ax.set_xlim(lo, hi)
        ax.set_ylim(hi, lo)
        ax.set_title(f'{kind.upper()}: {100 * r["accuracy"]:.0f}% of samples feasible, '
                     f'{r["modes_visited"]}/{r["num_modes"]} modes visited', fontsize=10)
        ax.set_xlabel('x [px]')
        ax.set_ylabel('y [px]')
        add_mm_axes(ax)
    labels = {m: f'mode {m}' for m in range(1, gt.num_modes + 1)}
    handles = legend_handles(labels, glyph=False, no_mode=True) + [Line2D(
        [], [], ls='none', marker='x', color='k', ms=5, label='infeasible sample')]
    fig.legend(handles=handles, loc='outside lower center', ncol=min(len(handles), 4),
               fontsize=8)
    fig.suptitle(f'{scene.shape} seed {scene.seed}: {len(actions)} samples of each generator '
                 f'(grasp centres, any angle);\nfaded: ground-truth modes, dots: feasible '
                 f"samples in their mode's colour", fontsize=11)
    save_figure(fig, path)  # the type follows the extension
    return fig
