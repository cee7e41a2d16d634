"""The target weight g-hat of an actor-critic model at actor outputs: the critic's
feasibility score times the radius weight and the workspace indicator (appendix B).

The f-divergence updates estimate the target density p from it (``updates``), and
``inference.resampling`` resamples actor samples towards that same target.
"""

import torch
from torch import Tensor

from fga_ros.core.common.actions import normalise_actor_output
from fga_ros.core.estimators.divergences import radius_weight
from fga_ros.core.models.heads import ImageFeatures
from fga_ros.core.models.nets import ActorCritic


def in_workspace(actions4: Tensor) -> Tensor:
    """1.0 where the actor output's x_n, y_n lie in the workspace [-1, 1], else 0.0; (...)."""
    inside = (actions4[..., :2].abs() <= 1.0).all(-1)
    return inside.to(actions4.dtype)


def action_weight(actions4: Tensor) -> Tensor:
    """Radius weight times workspace indicator of actor outputs (..., 4): (...), detached.

    Multiplies the feasibility (critic score or the environment's g) into the target.
    """
    with torch.no_grad():
        return radius_weight(actions4) * in_workspace(actions4)


def feasibility(model: ActorCritic, features: ImageFeatures, actions4: Tensor) -> Tensor:
    """Target weight g-hat = xi * radius weight * workspace indicator, (S, n), detached.

    Args:
        features: ``ImageFeatures`` of S states.
        actions4: (S, n, 4) actor-space actions (the radius is meaningful).
    """
    with torch.no_grad():
        xi = torch.sigmoid(model.score(features, normalise_actor_output(actions4)))
        return xi * action_weight(actions4)
