"""Learning core (no ROS), split by job; imports point down only.

``common`` (argument checks, action conversions, configuration, the environment interface,
torch helpers) < ``estimators`` (KDE, divergences) < ``models`` (networks, model files) <
``training`` and ``inference`` (which never import each other) < ``analysis`` (evaluation,
figures, experiments, benchmarks). Package files import nothing, so a torch-free module
(e.g. ``common.config``, ``common.env``) loads no torch.
"""
