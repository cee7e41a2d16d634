"""MLP head on concat(image features, per-action input) with its first layer split."""

from typing import Sequence

import torch
from torch import nn


class SplitHead(nn.Module):
    """MLP on concat(features (S, F), extra (S, n, k)) -> (S, n, out), first layer split.

    ``Linear(F + k, h)`` on the concatenation equals ``image_in(features) + extra_in(extra)``;
    the image part is computed once per image and broadcast over the n extras.
    """

    def __init__(self, feature_dim: int, extra_dim: int, hidden: Sequence[int],
                 out_dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.extra_dim = extra_dim
        self.image_in = nn.Linear(feature_dim, hidden[0])
        self.extra_in = nn.Linear(extra_dim, hidden[0], bias=False)
        layers: list[nn.Module] = []
        for width_in, width_out in zip(hidden[:-1], hidden[1:]):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(hidden[-1], out_dim))
        self.tail = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """Features (S, F), extras (S, n, k) -> (S, n, out)."""
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(f'features must have shape (S, {self.feature_dim}), got '
                             f'{tuple(features.shape)}')
        if extra.ndim != 3 or extra.shape[0] != features.shape[0] \
                or extra.shape[2] != self.extra_dim:
            raise ValueError(f'second input must have shape ({features.shape[0]}, n, '
                             f'{self.extra_dim}), got {tuple(extra.shape)}')
        h = self.image_in(features).unsqueeze(1) + self.extra_in(extra)
        return self.tail(torch.relu(h))
