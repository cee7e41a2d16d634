"""What the heads read of an image (``ImageFeatures``) and the actor heads' one contract.

Every actor head (``nets.FlatActor``, ``spatial_actor.SpatialActor``) is an ``ActorHead``:
it takes the ``ImageFeatures`` of S states and latents (S, n, ``latent_dim``) and returns
an ``ActorOutput``, so ``nets.ActorCritic`` calls whichever head it holds the same way.
"""

from typing import NamedTuple, Optional

import torch
from torch import nn


class ImageFeatures(NamedTuple):
    """What the heads read of S images (``ActorCritic.features``)."""

    images: torch.Tensor
    """(S, 3, H, W) network input in [-1, 1]"""
    trunk: torch.Tensor
    """(S, C, G, G) trunk map"""
    flat: torch.Tensor
    """(S, F) flat image features"""

    @property
    def num_states(self) -> int:
        """S."""
        return self.trunk.shape[0]

    @property
    def device(self) -> torch.device:
        """The device the features live on."""
        return self.trunk.device

    def detach(self) -> 'ImageFeatures':
        """The same features cut from the autograd graph."""
        return ImageFeatures(*(t.detach() for t in self))


class ActorOutput(NamedTuple):
    """What an actor head returns for S states and n latents each."""

    actions: torch.Tensor
    """(S, n, 4) actor outputs ``[x_n, y_n, r sin 2alpha, r cos 2alpha]``"""
    choice_log_probs: Optional[torch.Tensor]
    """(S, n) log-probability of each sample's discrete choice; ``None`` for a head that
    makes none (its samples are wholly reparameterised)"""


class ActorHead(nn.Module):
    """Base of the actor heads: ``head(features, z)`` -> ``ActorOutput``.

    Subclasses set ``latent_dim`` (the d of the latents z (S, n, d) they take) and
    implement ``forward``.
    """

    latent_dim: int

    def forward(self, features: ImageFeatures, z: torch.Tensor) -> ActorOutput:
        """Actor outputs for the ``ImageFeatures`` of S states and latents (S, n, d)."""
        raise NotImplementedError
