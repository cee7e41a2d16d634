"""The 'spatial' actor head: choose a trunk cell, then place the grasp around it.

Appendix B's actor maps ``concat(flat features, z)`` to an action with one MLP, so it has
to learn, for every object position and orientation separately, where the graspable parts
are; from a few thousand scenes it does not generalise (our measurement, README). This
head is a mixture over the trunk map's cells instead (``actor_head: spatial``):

- a small convolutional net scores every cell of the trunk map (S, C, G, G); a softmax
  gives the cell probabilities pi(c | s), cells whose reach lies wholly outside the
  workspace excluded;
- the first latent component picks a cell by inverse CDF, ``u = (z_0 + 1) / 2``;
- an MLP reads the trunk features of the 3 x 3 cells around it and the other latent
  components and returns the grasp centre within ``REACH_CELLS`` of the cell centre, and
  ``[r sin 2alpha, r cos 2alpha]`` as appendix B's actor does.

With ``angle_bins`` B > 1 a choice is a (cell, angle bin) pair: the scorer gives B logits
per cell, bin b holding alpha in [b pi / B, (b + 1) pi / B), and the MLP, told the bin
(one-hot), places alpha within it or up to ``BIN_OVERLAP`` of a bin past its edges. Two
ways of holding an object at one place with different closing directions (the 8's waist
across the ring grasps there) are then two choices, each with its own probability, where a
single smooth MLP of the latent would have to split its output between them.

What is learnt at one place holds at every place. The offset and angle are
reparameterised, so the f-divergence estimator of eq. 10 trains the MLP through the
samples as in the paper; the discrete cell choice has no pathwise gradient, so the trainer
adds a score-function term of the same objective (``divergences.choice_surrogate``),
which needs ``log pi(c | s)`` of every sample: ``forward`` returns it.
"""

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional

from fga_ros.core.common.actions import ACTION_DIM, CENTRE, HALF_WIDTH
from fga_ros.core.estimators.divergences import RADIUS_MEAN
from fga_ros.core.models.heads import ActorHead, ActorOutput, ImageFeatures
from fga_ros.core.models.local_critic import EMBED_STRIDE
from fga_ros.sim.workspace import IMAGE_SIZE

NEIGHBOURHOOD = 1
"""Cells on each side of the chosen one that the local MLP reads (3 x 3 patch)."""
REACH_CELLS = 1.0
"""Largest offset of the grasp centre from its cell's centre, per axis, in cells."""
SCORER_CHANNELS = 64
"""Channels of the cell scorer's hidden layers."""
BIN_OVERLAP = 0.25
"""With angle bins: how far, in bin widths, a choice's alpha may reach past each edge of its
bin into the neighbouring ones (feasible grasps just across an edge stay reachable)."""


def _mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


class SpatialActor(ActorHead):
    """Trunk map (S, C, G, G), latents (S, n, d + 1) -> (actions (S, n, 4), log pi (S, n)).

    An ``ActorHead``: ``forward`` reads the trunk map of the ``ImageFeatures``; its
    ``ActorOutput.choice_log_probs`` are the log-probabilities of the chosen cells.

    Args:
        trunk_channels: C.
        grid_side: G.
        image_size: side of the network input image (pixels); a trunk cell spans
            ``EMBED_STRIDE`` of its pixels.
        latent_dim: d of the local MLP; the head takes one more latent component, the cell
            choice (``self.latent_dim`` is d + 1).
        hidden: widths of the local MLP's hidden layers (the cell scorer is a 3 x 3 conv
            and a 1 x 1 conv of ``SCORER_CHANNELS``, then a 1 x 1 conv to one logit).
        angle_bins: B, angle bins per cell of the discrete choice (1: alpha is free).

    Choices are numbered ``cell * B + bin``; ``cell_log_probs`` and ``unreachable`` have
    one entry per choice.
    """

    patch_offsets: torch.Tensor
    """(9,) buffer: flat index offsets of the 3 x 3 patch in the zero-padded map"""
    centres: torch.Tensor
    """(G * G, 2) buffer: cell centres (x, y) in network units"""
    unreachable: torch.Tensor
    """(G * G * B,) bool buffer: choices whose cell's reach lies wholly outside the
    workspace"""

    def __init__(self, trunk_channels: int, grid_side: int, image_size: int, latent_dim: int,
                 hidden: Sequence[int], angle_bins: int = 1) -> None:
        super().__init__()
        self.latent_dim = latent_dim + 1
        self.angle_bins = angle_bins
        self.cell_scores = nn.Sequential(
            nn.Conv2d(trunk_channels, SCORER_CHANNELS, 3, padding=1), nn.ReLU(),
            nn.Conv2d(SCORER_CHANNELS, SCORER_CHANNELS, 1), nn.ReLU(),
            nn.Conv2d(SCORER_CHANNELS, angle_bins, 1))
        side = 2 * NEIGHBOURHOOD + 1
        bin_inputs = angle_bins if angle_bins > 1 else 0
        self.local = _mlp(trunk_channels * side * side + latent_dim + bin_inputs, hidden,
                          ACTION_DIM)
        # flat index offsets of the patch around a cell in the zero-padded map
        padded = grid_side + 2 * NEIGHBOURHOOD
        steps = torch.arange(-NEIGHBOURHOOD, NEIGHBOURHOOD + 1)
        self.register_buffer('patch_offsets', (steps[:, None] * padded + steps).reshape(-1),
                             persistent=False)
        self.grid_side = grid_side
        # cell j is centred on network pixel EMBED_STRIDE * j (+ 0.5 to its centre), as in
        # LocalCritic.trunk_grid; in network units (workspace half-width = 1)
        scale = IMAGE_SIZE / image_size
        j = torch.arange(grid_side, dtype=torch.float32)
        coords = (scale * (EMBED_STRIDE * j + 0.5) - CENTRE) / HALF_WIDTH
        ys, xs = torch.meshgrid(coords, coords, indexing='ij')
        centres = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)
        self.reach = REACH_CELLS * EMBED_STRIDE * scale / HALF_WIDTH
        self.register_buffer('centres', centres, persistent=False)
        reachable = (centres.abs() - self.reach <= 1.0).all(-1)
        self.register_buffer('unreachable', ~reachable.repeat_interleave(angle_bins),
                             persistent=False)

    def cell_log_probs(self, trunk: torch.Tensor) -> torch.Tensor:
        """log pi(c | s) (S, G * G * B) of every choice; unreachable ones get -inf."""
        logits = self.cell_scores(trunk).permute(0, 2, 3, 1).flatten(1)
        return torch.log_softmax(logits.masked_fill(self.unreachable, float('-inf')), dim=-1)

    def place(self, trunk: torch.Tensor, choices: torch.Tensor, z: torch.Tensor
              ) -> torch.Tensor:
        """Actions (S, n, 4) of the local MLP for choices (S, n) numbered ``cell * B + bin``,
        latents (S, n, d)."""
        cells, bins = choices // self.angle_bins, choices % self.angle_bins
        num_states, channels = trunk.shape[:2]
        padded = functional.pad(trunk, (NEIGHBOURHOOD,) * 4).flatten(2)  # (S, C, P)
        row, col = cells // self.grid_side, cells % self.grid_side
        middle = (row + NEIGHBOURHOOD) * (self.grid_side + 2 * NEIGHBOURHOOD) + col + NEIGHBOURHOOD
        index = (middle.unsqueeze(-1) + self.patch_offsets).flatten(1)  # (S, n * 9)
        local = torch.gather(padded, 2, index.unsqueeze(1).expand(-1, channels, -1))
        local = local.reshape(num_states, channels, cells.shape[1], -1).permute(0, 2, 1, 3)
        inputs = [local.flatten(2), z]
        if self.angle_bins > 1:
            inputs.append(functional.one_hot(bins, self.angle_bins).to(z.dtype))
        out = torch.tanh(self.local(torch.cat(inputs, dim=-1)))
        centre = self.centres[cells] + self.reach * out[..., :2]
        if self.angle_bins == 1:
            return torch.cat([centre, out[..., 2:]], dim=-1)
        return torch.cat([centre, self._into_bin(out[..., 2:], bins)], dim=-1)

    def _into_bin(self, out: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
        """[r sin 2alpha, r cos 2alpha] (S, n, 2) from the MLP's last two tanh outputs
        ``out`` (S, n, 2) for bins ``bins`` (S, n).

        The first output moves 2alpha linearly along bin b's arc of 2 pi / B, widened by
        ``BIN_OVERLAP`` of a bin on each side (2alpha = 2 pi (b + 1/2 + (1/2 + overlap)
        out_0) / B), so alpha is a continuous function of the latent and a choice reaches
        grasps just past its bin's edges; the second sets the radius
        r = RADIUS_MEAN (1 + out_1) in (0, 2 RADIUS_MEAN), the radius weight's peak at 0.
        """
        width = 2.0 * torch.pi / self.angle_bins
        twice_alpha = width * (bins + 0.5 + (0.5 + BIN_OVERLAP) * out[..., 0])
        radius = RADIUS_MEAN * (1.0 + out[..., 1])
        return torch.stack([radius * torch.sin(twice_alpha),
                            radius * torch.cos(twice_alpha)], dim=-1)

    def forward(self, features: ImageFeatures, z: torch.Tensor) -> ActorOutput:
        return self.act_on_trunk(features.trunk, z)

    def act_on_trunk(self, trunk: torch.Tensor, z: torch.Tensor) -> ActorOutput:
        """``forward`` on a trunk map (S, C, G, G) alone."""
        if z.ndim != 3 or z.shape[0] != trunk.shape[0] or z.shape[2] != self.latent_dim:
            raise ValueError(f'z must have shape ({trunk.shape[0]}, n, {self.latent_dim}), '
                             f'got {tuple(z.shape)}')
        log_probs = self.cell_log_probs(trunk)
        choices = choose_cells(log_probs, z[..., 0])
        return ActorOutput(self.place(trunk, choices, z[..., 1:]),
                           torch.gather(log_probs, 1, choices))


def choose_cells(log_probs: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw of choices (cells, or (cell, angle bin) pairs): log-probabilities
    (S, c), latents z0 (S, n) in [-1, 1] -> indices (S, n), choice i for
    ``u = (z0 + 1) / 2`` in [F(i - 1), F(i)).

    A choice of probability 0 is never returned.
    """
    cdf = torch.cumsum(log_probs.detach().exp(), dim=-1)
    # u scaled to the total mass (1 up to rounding) and kept below it: the first cell whose
    # cumulative mass exceeds u has non-zero probability
    u = (0.5 * (z0 + 1.0)).clamp(0.0, 1.0 - 1e-7) * cdf[:, -1:]
    return torch.searchsorted(cdf, u.contiguous(), right=True)
