"""The heat-map baselines of appendix D.1: H (rotated images) and SH (stacked angles).

Both use a fully convolutional hourglass (``HourglassFCN``): the beginning of appendix B's
extractor (5x5 stride-3 embedding, ``num_blocks`` residual bottleneck blocks, no
positional channels, so it is translation equivariant), the same structure in reverse
(``num_blocks`` blocks, nearest-neighbour upsampling by the stride, a 5x5 convolution),
giving success logits at every pixel of the network input (image_size x image_size):

- H (``method: heatmap``): one output channel, the logit of a grasp closing along the image
  x axis. The image is rotated to each of the A angle bins (``heatmap_geometry.rotate``),
  the network scores each rotation, and the maps are rotated back: (S, A, N, N);
- SH (``method: stacked-heatmap``): A output channels, one per angle bin, on the unrotated
  image.

``HeatmapModel`` offers the calls the trainer, the evaluation and the proposer make of
``nets.ActorCritic``: ``features`` (here the heat maps), ``score`` (the logit of the
nearest angle bin, read bilinearly at the grasp centre), ``sample`` (eq. 14 over the
workspace cells, ``heatmap_sampling``), and ``critic_parameters``; it has no actor
(``actor_parameters`` is empty). ``logits_at`` scores replayed grasps for training with one
network pass per grasp (H: the image rotated to that grasp's bin only), not per angle.

With ``camera_view: fitted`` the heat maps are read in the camera's own pixels, as the
paper's appendix D reads them: the image is not resampled; the trainer's fitted view (table
-> camera homography, ``camera_view.fit_table_view``) maps scored grasps into the camera
and drawn cells back onto the table (``heatmap_geometry.map_grasps``), and the cells drawn
are those whose table point lies in the workspace. A fit that keeps the identity changes
nothing.
"""

from typing import Optional

import torch
from torch import nn
from torch.nn import functional

from fga_ros.core.common.actions import CENTRE, HALF_WIDTH
from fga_ros.core.common.choices import HEATMAP_METHODS
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.common.tensors import IMAGE_CHANNELS
from fga_ros.core.models.camera_view import TableRectifier
from fga_ros.core.models.heads import ActorOutput, ImageFeatures
from fga_ros.core.models.heatmap_geometry import (
    angle_bins,
    cell_actions,
    map_grasps,
    nearest_angle_bin,
    read_maps,
    rotate,
    sample_grid,
    workspace_cells,
)
from fga_ros.core.models.heatmap_sampling import sample_eq14
from fga_ros.core.models.local_critic import EMBED_STRIDE
from fga_ros.core.models.nets import BottleneckBlock, normalise_images
from fga_ros.sim.workspace import WORKSPACE_HI, WORKSPACE_LO


class HourglassFCN(nn.Module):
    """Normalised images (B, 3, N, N) -> logit maps (B, out_channels, N, N); see the module
    docstring."""

    def __init__(self, channels: int, num_blocks: int, bottleneck: int,
                 out_channels: int) -> None:
        super().__init__()
        self.embed = nn.Conv2d(IMAGE_CHANNELS, channels, 5, stride=EMBED_STRIDE, padding=2)
        self.down = nn.Sequential(*[BottleneckBlock(channels, bottleneck)
                                    for _ in range(num_blocks)])
        self.up = nn.Sequential(*[BottleneckBlock(channels, bottleneck)
                                  for _ in range(num_blocks)])
        self.output = nn.Conv2d(channels, out_channels, 5, padding=2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, N, N) in [-1, 1] -> (B, out_channels, N, N) logits."""
        side = images.shape[-1]
        coarse = self.up(self.down(torch.relu(self.embed(images))))
        fine = functional.interpolate(coarse, scale_factor=EMBED_STRIDE, mode='nearest')
        return self.output(fine[..., :side, :side])


class HeatmapModel(nn.Module):
    """H or SH (``config.method``) with the sampling of eq. 14; see the module docstring."""

    allowed: torch.Tensor
    """(A * N * N,) bool buffer: the heat-map cells that are actions (in the workspace)"""
    bins: torch.Tensor
    """(A,) buffer: the angle of each bin, radians"""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        if config.method not in HEATMAP_METHODS:
            raise ValueError(f'HeatmapModel needs a method among {HEATMAP_METHODS}, got '
                             f'{config.method!r}')
        self.image_size = config.image_size
        self.input_size = config.image_size
        """Side of the camera images the model takes, pixels (``image_size``)."""
        self.angles = config.heatmap_angles
        self.beta = config.heatmap_beta
        self.rotated = config.method == 'heatmap'
        self.network = HourglassFCN(config.embed_channels, config.num_blocks,
                                    config.bottleneck_channels,
                                    1 if self.rotated else self.angles)
        allowed = workspace_cells(self.image_size)[None].expand(self.angles, -1, -1)
        self.register_buffer('allowed', allowed.reshape(-1).clone(), persistent=False)
        self.register_buffer('bins', angle_bins(self.angles), persistent=False)
        self.rectifier: Optional[TableRectifier] = (
            TableRectifier() if config.camera_view == 'fitted' else None)
        """with ``camera_view: fitted``, the camera's view of the table: it maps grasps
        between the table and the heat maps' camera pixels (it resamples no image)"""

    def _view(self) -> Optional[torch.Tensor]:
        """The fitted table -> camera homography (3, 3); None when the heat maps are the
        table (no fitted view, or the fit kept the identity)."""
        if self.rectifier is None or self.rectifier.is_identity():
            return None
        return self.rectifier.homography

    @property
    def reads_the_table(self) -> bool:
        """Whether ``table_images`` are the table seen from above (turning them turns the
        scene); not with a fitted view, whose heat maps are in camera pixels."""
        return self._view() is None

    def _to_camera(self, critic_inputs: torch.Tensor) -> torch.Tensor:
        """Critic inputs (..., 4) of table grasps -> the same grasps in the heat maps' frame."""
        view = self._view()
        return critic_inputs if view is None else map_grasps(critic_inputs, view)

    def _camera_allowed(self, view: torch.Tensor) -> torch.Tensor:
        """(A * N * N,) bool: the camera cells whose table point lies in the workspace."""
        side = self.image_size
        cells = torch.arange(side * side, device=view.device)
        table = map_grasps(cell_actions(cells, side, 1), torch.linalg.inv(view))
        pixels = CENTRE + HALF_WIDTH * table[:, :2]
        inside = ((pixels >= WORKSPACE_LO) & (pixels < WORKSPACE_HI)).all(dim=-1)
        return inside[None].expand(self.angles, -1).reshape(-1)

    def heat_maps(self, normalised: torch.Tensor) -> torch.Tensor:
        """Success logits (S, A, N, N) of normalised images (S, 3, N, N), channel k for
        grasps closing along angle bin k."""
        if not self.rotated:
            return self.network(normalised)
        count = normalised.shape[0]
        angles = self.bins.repeat(count)
        rotated = rotate(normalised.repeat_interleave(self.angles, 0), angles)
        back = rotate(self.network(rotated), -angles)
        return back.reshape(count, self.angles, self.image_size, self.image_size)

    def features(self, images: torch.Tensor) -> ImageFeatures:
        """``ImageFeatures`` of images (S, 3, N, N): the normalised images, the heat maps
        (S, A, N, N) as the trunk, and the flattened heat maps (S, A * N * N) as the flat
        features."""
        return self.features_of_table(self.table_images(images))

    def table_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images (S, 3, N, N) -> normalised (S, 3, N, N) in [-1, 1] (taken as the table)."""
        return normalise_images(images, self.image_size)

    def features_of_table(self, normalised: torch.Tensor) -> ImageFeatures:
        """``features`` of ``table_images`` (S, 3, N, N), e.g. their calibration views."""
        maps = self.heat_maps(normalised)
        return ImageFeatures(normalised, maps, maps.flatten(1))

    def score(self, features: ImageFeatures, critic_inputs: torch.Tensor) -> torch.Tensor:
        """Logits (S, n) of critic inputs (S, n, 4): the map of the nearest angle bin read
        bilinearly at the grasp centre."""
        maps = features.trunk
        if critic_inputs.ndim != 3 or critic_inputs.shape[0] != maps.shape[0] \
                or critic_inputs.shape[2] != 4:
            raise ValueError(f'critic inputs must have shape ({maps.shape[0]}, n, 4), got '
                             f'{tuple(critic_inputs.shape)}')
        critic_inputs = self._to_camera(critic_inputs)
        values = read_maps(maps, sample_grid(critic_inputs))  # (S, A, n)
        bins = nearest_angle_bin(critic_inputs, self.angles)
        return torch.gather(values, 1, bins[:, None, :])[:, 0]

    def logits_at(self, images: torch.Tensor, critic_inputs: torch.Tensor) -> torch.Tensor:
        """``score(features(images), critic_inputs)`` (S, n), computed with one network pass
        per grasp for H (the image rotated to the grasp's angle bin) instead of one per bin."""
        if not self.rotated:
            return self.score(self.features(images), critic_inputs)
        critic_inputs = self._to_camera(critic_inputs)
        normalised = normalise_images(images, self.image_size)
        count, n = critic_inputs.shape[:2]
        angles = self.bins[nearest_angle_bin(critic_inputs, self.angles)].reshape(-1)
        maps = self.network(rotate(normalised.repeat_interleave(n, 0), angles))
        centre = sample_grid(critic_inputs).reshape(-1, 2)
        cos, sin = torch.cos(angles), torch.sin(angles)  # rotate back: R(angle)^-1 centre
        where = torch.stack([cos * centre[:, 0] + sin * centre[:, 1],
                             -sin * centre[:, 0] + cos * centre[:, 1]], dim=-1)
        return read_maps(maps, where[:, None, :]).reshape(count, n)

    def sample_with_choice(self, features: ImageFeatures, n: int,
                           generator: Optional[torch.Generator] = None) -> ActorOutput:
        """n grasps per state drawn with eq. 14 (``heatmap_beta``): actor outputs (S, n, 4)
        at the drawn cells' centres and bins, and their log-probabilities (S, n)."""
        view = self._view()
        allowed = self.allowed if view is None else self._camera_allowed(view)
        cells, log_q = sample_eq14(features.flat.detach(), allowed, self.beta, n, generator)
        actions = cell_actions(cells, self.image_size, self.angles)
        if view is not None:
            actions = map_grasps(actions, torch.linalg.inv(view))
        return ActorOutput(actions, log_q)

    def sample(self, features: ImageFeatures, n: int,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """n grasps (S, n, 4) per state drawn with eq. 14."""
        return self.sample_with_choice(features, n, generator).actions

    def actor_parameters(self) -> list[nn.Parameter]:
        """None: the heat-map methods have no actor."""
        return []

    def critic_parameters(self) -> list[nn.Parameter]:
        """Every parameter (the fully convolutional network)."""
        return list(self.parameters())
