"""Networks of appendix B (figure 5): shared residual feature extractor, actor and critic.

Image (S, 3, H, W) -> + 2 positional channels (x, y in [-1, 1]) -> 5x5 stride-3 conv
embedding -> residual bottleneck blocks (the trunk map, (S, C, G, G)) -> 3 pixel-wise
shared MLP layers (1x1 convs) -> flatten: the image feature vector (S, F).

The actor is one of two heads (``actor_head``), both ``heads.ActorHead``: ``flat``,
appendix B's MLP on ``concat(flat features, z)``; or ``spatial``
(``spatial_actor.SpatialActor``), a mixture over the trunk map's cells with a local MLP.
The critic reads the image one of two ways (``critic_readout``): ``flat``, appendix B's
MLP on ``concat(flat features, action)``; or
``local`` (``local_critic.LocalCritic``), which adds features sampled where the gripper
is. The heads split their first layer into an image part, computed once per
image, and a part computed per action (``split_head.SplitHead``): for n actions per image
the cost is one small MLP per action, not a pass over the F-long feature vector.

Design decision (shared extractor): the extractor belongs to the critic. It is trained
by the critic's classification loss only; the actor reads *detached* features, so actor
losses never move it. The critic's supervised signal is dense and stable, while the
actor's divergence gradient is a noisy score-function estimate that would otherwise
drag the shared representation around (and, trained by it alone, the pixel-wise MLP's
units die: the actor then sees the same features for every image). Optimisers:
``critic_parameters()`` (extractor + critic head) and ``actor_parameters()`` (actor head).
"""

from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn import functional

from fga_ros.core.common.actions import ACTION_DIM
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.common.tensors import IMAGE_CHANNELS, sample_latent
from fga_ros.core.models.camera_view import TableRectifier
from fga_ros.core.models.heads import ActorHead, ActorOutput, ImageFeatures
from fga_ros.core.models.local_critic import EMBED_STRIDE, LocalCritic
from fga_ros.core.models.spatial_actor import SpatialActor
from fga_ros.core.models.split_head import SplitHead
from fga_ros.sim.workspace import IMAGE_SIZE

POSITION_CHANNELS = 2


def normalise_images(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """Check network input images (S, 3, image_size, image_size) and map them to float in
    [-1, 1]: uint8 is scaled from [0, 255], floating point is taken to be in [0, 1]."""
    if images.ndim != 4 or images.shape[1:] != (IMAGE_CHANNELS, image_size, image_size):
        raise ValueError(f'images must have shape (S, 3, {image_size}, {image_size}), got '
                         f'{tuple(images.shape)}')
    if images.dtype == torch.uint8:
        return images.float() * (2.0 / 255.0) - 1.0
    if images.is_floating_point():
        return images.float() * 2.0 - 1.0
    raise ValueError(f'images must be uint8 or floating point, got {images.dtype}')


class BottleneckBlock(nn.Module):
    """Residual block: relu(x + conv1x1(relu(conv3x3(relu(conv1x1(x))))))."""

    def __init__(self, channels: int, bottleneck: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, bottleneck, 1)
        self.spatial = nn.Conv2d(bottleneck, bottleneck, 3, padding=1)
        self.expand = nn.Conv2d(bottleneck, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(S, C, G, G) -> (S, C, G, G)."""
        h = torch.relu(self.reduce(x))
        h = torch.relu(self.spatial(h))
        return torch.relu(x + self.expand(h))


class FeatureExtractor(nn.Module):
    """Image (S, 3, H, W) -> features (S, F); see the module docstring.

    uint8 input is scaled from [0, 255], floating-point input is taken to be in [0, 1];
    both are mapped to [-1, 1] before the positional channels are appended.
    """

    positions: torch.Tensor
    """(1, 2, H, W) buffer: x and y in [-1, 1] of every pixel"""

    def __init__(self, image_size: int, embed_channels: int, num_blocks: int,
                 bottleneck_channels: int, pixel_mlp_channels: Sequence[int]) -> None:
        super().__init__()
        self.image_size = image_size
        side = torch.linspace(-1.0, 1.0, image_size)
        ys, xs = torch.meshgrid(side, side, indexing='ij')
        self.register_buffer('positions', torch.stack([xs, ys])[None], persistent=False)
        self.embed = nn.Conv2d(IMAGE_CHANNELS + POSITION_CHANNELS, embed_channels, 5,
                               stride=EMBED_STRIDE, padding=2)
        self.blocks = nn.Sequential(*[BottleneckBlock(embed_channels, bottleneck_channels)
                                      for _ in range(num_blocks)])
        layers: list[nn.Module] = []
        width = embed_channels
        for out in pixel_mlp_channels:
            layers += [nn.Conv2d(width, out, 1), nn.ReLU()]
            width = out
        self.pixel_mlp = nn.Sequential(*layers)
        self.grid = (image_size - 1) // EMBED_STRIDE + 1
        """Side of the feature map after the strided embedding."""
        self.feature_dim = width * self.grid * self.grid
        """F, length of the image feature vector."""

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Check images (S, 3, H, W) and map them to float in [-1, 1]."""
        return normalise_images(images, self.image_size)

    def trunk(self, normalised: torch.Tensor) -> torch.Tensor:
        """Normalised images (S, 3, H, W) -> trunk map (S, C, G, G)."""
        x = torch.cat([normalised, self.positions.expand(normalised.shape[0], -1, -1, -1)],
                      dim=1)
        return self.blocks(torch.relu(self.embed(x)))

    def flatten(self, trunk: torch.Tensor) -> torch.Tensor:
        """Trunk map (S, C, G, G) -> flat image features (S, F) (pixel-wise MLP)."""
        return self.pixel_mlp(trunk).flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (S, 3, H, W) -> flat features (S, F)."""
        return self.flatten(self.trunk(self.normalise(images)))


class FlatActor(ActorHead):
    """Appendix B's generative actor pi(s, z): flat features (S, F), z (S, n, d) -> actions
    (S, n, 4); it makes no discrete choice.

    Output ``[x_n, y_n, r sin 2alpha, r cos 2alpha]``, every component through tanh, so
    x_n, y_n stay in the workspace [-1, 1] and r <= sqrt(2) (appendix B).
    """

    def __init__(self, feature_dim: int, latent_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.head = SplitHead(feature_dim, latent_dim, hidden, ACTION_DIM)

    def forward(self, features: ImageFeatures, z: torch.Tensor) -> ActorOutput:
        """Actions (S, n, 4) from the flat features and latents (S, n, d); no choice."""
        return ActorOutput(torch.tanh(self.head(features.flat, z)), None)


class Critic(nn.Module):
    """Feasibility critic xi(s, a) of appendix B: ``ImageFeatures`` of S states (it reads
    their flat features), critic inputs (S, n, 4) -> logits (S, n).

    The actions are the unit-norm ``[x_n, y_n, sin 2alpha, cos 2alpha]``
    (``actions.encode_actions`` / ``actions.normalise_actor_output``); sigmoid(logit) is
    the predicted success probability.
    """

    def __init__(self, feature_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.head = SplitHead(feature_dim, ACTION_DIM, hidden, 1)

    def forward(self, features: ImageFeatures, actions: torch.Tensor) -> torch.Tensor:
        """Logits (S, n) of critic inputs (S, n, 4)."""
        return self.head(features.flat, actions).squeeze(-1)


class ActorCritic(nn.Module):
    """One shared feature extractor (trunk trained by the critic), the actor and the critic."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.image_size = config.image_size
        self.rectifier: Optional[TableRectifier] = (
            TableRectifier() if config.camera_view == 'fitted' else None)
        """with ``camera_view: fitted``, the camera's view of the table, undone before the
        extractor (``camera_view.py``)"""
        self.input_size = (max(IMAGE_SIZE, config.image_size) if self.rectifier is not None
                           else config.image_size)
        """Side of the camera images the model takes, pixels: with a fitted view the
        observation's own (128), rectified before it is reduced to ``image_size``, so the
        far side of a tilted table keeps the detail a reduction first would lose."""
        self.reads_the_table = True
        """``table_images`` are the table seen from above (so turning them turns the scene)"""
        self.extractor = FeatureExtractor(
            config.image_size, config.embed_channels, config.num_blocks,
            config.bottleneck_channels, config.pixel_mlp_channels)
        if config.actor_head == 'flat':
            self.actor: ActorHead = FlatActor(self.extractor.feature_dim,
                                              config.latent_dim, config.actor_hidden)
        else:
            self.actor = SpatialActor(config.embed_channels, self.extractor.grid,
                                      config.image_size, config.latent_dim,
                                      config.actor_hidden, config.actor_angle_bins)
        self.latent_dim = self.actor.latent_dim
        """Latent size the actor takes (the spatial head adds its cell choice)."""
        if config.critic_readout == 'flat':
            self.critic: nn.Module = Critic(self.extractor.feature_dim, config.critic_hidden)
        else:
            self.critic = LocalCritic(self.extractor.feature_dim, config.embed_channels,
                                      config.image_size, config.readout_span,
                                      config.readout_width, config.critic_hidden)

    def features(self, images: torch.Tensor) -> ImageFeatures:
        """``ImageFeatures`` of camera images (S, 3, H, W) (uint8, or float in [0, 1]);
        their ``images`` are ``table_images``."""
        return self.features_of_table(self.table_images(images))

    def table_images(self, images: torch.Tensor) -> torch.Tensor:
        """Camera images (S, 3, ``input_size``, ``input_size``) -> normalised images of the
        table (S, 3, ``image_size``, ``image_size``) in [-1, 1]: rectified at the input's
        resolution, then area-reduced, when the model has a fitted camera view."""
        normalised = normalise_images(images, self.input_size)
        if self.rectifier is None:
            return normalised
        table = self.rectifier(normalised)
        if self.input_size == self.image_size:
            return table
        return functional.interpolate(table, size=(self.image_size, self.image_size),
                                      mode='area')

    def features_of_table(self, normalised: torch.Tensor) -> ImageFeatures:
        """``ImageFeatures`` of ``table_images`` (S, 3, H, W), e.g. their calibration views."""
        trunk = self.extractor.trunk(normalised)
        return ImageFeatures(normalised, trunk, self.extractor.flatten(trunk))

    def act(self, features: ImageFeatures, z: torch.Tensor) -> torch.Tensor:
        """Actor outputs (S, n, 4) for ``ImageFeatures`` of S states and latents
        (S, n, ``latent_dim``)."""
        return self.act_with_choice(features, z)[0]

    def act_with_choice(self, features: ImageFeatures, z: torch.Tensor) -> ActorOutput:
        """``act`` and the log-probability (S, n) of each sample's discrete choice
        (``ActorOutput``; ``None`` for the flat head, which makes none).

        The features are detached: actor losses do not reach the extractor.
        """
        return self.actor(features.detach(), z)

    def sample(self, features: ImageFeatures, n: int,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Sample n actor outputs (S, n, 4) per state with fresh latents."""
        return self.sample_with_choice(features, n, generator)[0]

    def sample_with_choice(self, features: ImageFeatures, n: int,
                           generator: Optional[torch.Generator] = None) -> ActorOutput:
        """``sample`` and the log-probabilities of the cell choices (see
        ``act_with_choice``)."""
        z = sample_latent(features.num_states, n, self.latent_dim, generator, features.device)
        return self.act_with_choice(features, z)

    def score(self, features: ImageFeatures, actions: torch.Tensor) -> torch.Tensor:
        """Critic logits (S, n) of critic inputs (S, n, 4)."""
        return self.critic(features, actions)

    def actor_parameters(self) -> list[nn.Parameter]:
        """Parameters the actor optimiser owns (the actor head)."""
        return list(self.actor.parameters())

    def critic_parameters(self) -> list[nn.Parameter]:
        """Parameters the critic optimiser owns (shared extractor + critic head)."""
        return list(self.extractor.parameters()) + list(self.critic.parameters())
