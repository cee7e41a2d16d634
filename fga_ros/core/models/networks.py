"""The networks a configuration trains: the one place that maps ``config.method`` to a model.

``'actor-critic'``: ``nets.ActorCritic``; ``'heatmap'`` / ``'stacked-heatmap'``:
``heatmap_nets.HeatmapModel``. Both offer ``input_size`` (the side of the camera images they
take), ``features`` (camera images), ``table_images`` and ``features_of_table`` (its two
halves: rectify, then read), ``reads_the_table`` (whether those are the table seen from
above), ``sample``, ``score``,
``actor_parameters`` and ``critic_parameters``, the calls of the trainer, the evaluation and
the proposer.
"""

from typing import Union

from fga_ros.core.common.choices import HEATMAP_METHODS
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.models.heatmap_nets import HeatmapModel
from fga_ros.core.models.nets import ActorCritic

Network = Union[ActorCritic, HeatmapModel]
"""A model built by ``build_network``."""


def build_network(config: TrainConfig) -> Network:
    """A fresh model of ``config`` (its method and architecture fields)."""
    if config.method in HEATMAP_METHODS:
        return HeatmapModel(config)
    return ActorCritic(config)
