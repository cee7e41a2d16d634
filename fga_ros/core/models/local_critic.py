"""The 'local' critic readout: features read where the gripper is, not a flattened image.

The feasibility of a planar grasp depends on the object around the gripper, so this
critic looks there (our design for small-data training; appendix B's critic reads the
whole flattened feature vector, ``critic_readout: flat``):

- trunk features (S, C, G, G) are sampled bilinearly at ``trunk_points`` points on the
  segment between the claws, from ``-span`` to ``+span`` pixels along the closing
  direction ``(cos alpha, sin alpha)``;
- the network input image is sampled on a rotated ``raw_along x raw_across`` grid over the
  claw region (``span`` + 2 pixels along, ``width`` / 2 across), the exact geometry the
  trunk's stride blurs;
- an MLP maps ``concat(flat image features, trunk samples, raw samples, [x_n, y_n, sin 2a,
  cos 2a])`` to a logit; as in appendix B its first layer is split, the flat image part
  computed once per image (``nets.SplitHead``). The flat features keep the whole extractor
  trained by the critic, so the actor, which reads them, sees features that carry
  feasibility.

Distances are in observation pixels (the 128-pixel camera image). Everything is
translation- and rotation-aware by construction, so what the critic learns at one place
and angle holds at the others, and the image side costs one trunk pass per state.
"""

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional

from fga_ros.core.common.actions import CENTRE, HALF_WIDTH
from fga_ros.core.models.heads import ImageFeatures
from fga_ros.core.models.split_head import SplitHead
from fga_ros.sim.workspace import IMAGE_SIZE

TRUNK_POINTS = 5
"""Trunk samples along the closing direction."""
RAW_ALONG = 9
"""Raw-image samples along the closing direction."""
RAW_ACROSS = 3
"""Raw-image samples across it (along the claws)."""
EMBED_STRIDE = 3
"""Stride of the extractor's embedding convolution (``nets.FeatureExtractor``): one trunk
cell per EMBED_STRIDE network pixels. Defined here, below ``nets``, which imports this module."""


def closing_direction(critic_inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos a, sin a) of critic inputs (..., 4) ``[x_n, y_n, sin 2a, cos 2a]``, a in [0, pi).

    Returns two tensors (...). ``sin a >= 0`` on [0, pi); the direction is a unit vector
    whatever the norm of the angle part.
    """
    s2, c2 = critic_inputs[..., 2], critic_inputs[..., 3]
    norm = torch.sqrt(s2 * s2 + c2 * c2).clamp_min(1e-6)
    c2 = c2 / norm
    # clamped away from 0: the square root's derivative is infinite there (NaN gradients
    # for the pathwise ME baseline)
    cos_a = torch.sqrt(((1.0 + c2) * 0.5).clamp_min(1e-12))
    sin_a = torch.sqrt(((1.0 - c2) * 0.5).clamp_min(1e-12))
    cos_a = torch.where(s2 < 0, -cos_a, cos_a)
    return cos_a, sin_a


class LocalCritic(nn.Module):
    """Critic logits (S, n) from ``heads.ImageFeatures`` and critic inputs (S, n, 4).

    Args:
        feature_dim: F, length of the flat image features.
        trunk_channels: C of the trunk map.
        image_size: side of the network input image (pixels).
        span: half-length of the sampled segment along the closing direction, pixels of
            the 128-pixel observation.
        width: extent of the raw grid across the closing direction, same pixels.
        hidden: widths of the MLP's hidden layers.
    """

    trunk_offsets: torch.Tensor
    """(TRUNK_POINTS,) buffer: trunk sample offsets along the closing direction, pixels"""
    raw_along: torch.Tensor
    """(RAW_ALONG * RAW_ACROSS,) buffer: raw sample offsets along it, pixels"""
    raw_across: torch.Tensor
    """(RAW_ALONG * RAW_ACROSS,) buffer: raw sample offsets across it, pixels"""

    def __init__(self, feature_dim: int, trunk_channels: int, image_size: int, span: float,
                 width: float, hidden: Sequence[int]) -> None:
        super().__init__()
        self.image_size = image_size
        self.register_buffer('trunk_offsets', torch.linspace(-span, span, TRUNK_POINTS),
                             persistent=False)
        along, across = torch.meshgrid(torch.linspace(-span - 2.0, span + 2.0, RAW_ALONG),
                                       torch.linspace(-0.5 * width, 0.5 * width, RAW_ACROSS),
                                       indexing='ij')
        self.register_buffer('raw_along', along.reshape(-1), persistent=False)
        self.register_buffer('raw_across', across.reshape(-1), persistent=False)
        local_dim = trunk_channels * TRUNK_POINTS + 3 * RAW_ALONG * RAW_ACROSS + 4
        self.head = SplitHead(feature_dim, local_dim, hidden, 1)

    def trunk_points(self, critic_inputs: torch.Tensor) -> torch.Tensor:
        """Trunk sample points (S, n, TRUNK_POINTS, 2), (x, y) in observation pixels."""
        return self._points(critic_inputs, self.trunk_offsets, torch.zeros_like(
            self.trunk_offsets))

    def raw_points(self, critic_inputs: torch.Tensor) -> torch.Tensor:
        """Raw-image sample points (S, n, RAW_ALONG * RAW_ACROSS, 2), observation pixels."""
        return self._points(critic_inputs, self.raw_along, self.raw_across)

    @staticmethod
    def _points(critic_inputs: torch.Tensor, along: torch.Tensor,
                across: torch.Tensor) -> torch.Tensor:
        centre_x = CENTRE + HALF_WIDTH * critic_inputs[..., 0:1]
        centre_y = CENTRE + HALF_WIDTH * critic_inputs[..., 1:2]
        cos_a, sin_a = (t.unsqueeze(-1) for t in closing_direction(critic_inputs))
        return torch.stack([centre_x + along * cos_a - across * sin_a,
                            centre_y + along * sin_a + across * cos_a], dim=-1)

    def trunk_grid(self, points: torch.Tensor, grid_side: int) -> torch.Tensor:
        """Observation pixels (..., 2) -> grid_sample coordinates of the trunk map.

        Trunk cell j is centred on network pixel ``EMBED_STRIDE * j``, that is on
        observation pixel ``scale * (EMBED_STRIDE * j + 0.5)``; cell 0 maps to -1 and cell
        ``grid_side - 1`` to +1 (``align_corners=True``).
        """
        scale = IMAGE_SIZE / self.image_size
        cells = (points / scale - 0.5) / EMBED_STRIDE
        return cells * (2.0 / (grid_side - 1)) - 1.0

    @staticmethod
    def image_grid(points: torch.Tensor) -> torch.Tensor:
        """Observation pixels (..., 2) -> grid_sample coordinates of an image of any size.

        Pixel i spans [i, i + 1) of the 128-pixel observation (``align_corners=False``).
        """
        return points * (2.0 / IMAGE_SIZE) - 1.0

    @staticmethod
    def _sample(source: torch.Tensor, grid: torch.Tensor, align_corners: bool) -> torch.Tensor:
        """Bilinear samples of source (S, C, h, w) at grid (S, n, P, 2) -> (S, n, P * C)."""
        num_states, n, count = grid.shape[:3]
        values = functional.grid_sample(source, grid.reshape(num_states, n * count, 1, 2),
                                        align_corners=align_corners, padding_mode='border')
        return values.squeeze(-1).transpose(1, 2).reshape(num_states, n, -1)

    def forward(self, features: ImageFeatures, critic_inputs: torch.Tensor) -> torch.Tensor:
        """``ImageFeatures`` of S states, critic inputs (S, n, 4) -> logits (S, n)."""
        trunk = features.trunk
        if critic_inputs.ndim != 3 or critic_inputs.shape[0] != trunk.shape[0] \
                or critic_inputs.shape[2] != 4:
            raise ValueError(f'second input must have shape ({trunk.shape[0]}, n, 4), got '
                             f'{tuple(critic_inputs.shape)}')
        trunk_part = self._sample(
            trunk, self.trunk_grid(self.trunk_points(critic_inputs), trunk.shape[-1]), True)
        raw_part = self._sample(features.images,
                                self.image_grid(self.raw_points(critic_inputs)), False)
        local = torch.cat([trunk_part, raw_part, critic_inputs], dim=-1)
        return self.head(features.flat, local).squeeze(-1)
