"""Names the configuration chooses from and default bandwidths (torch-free).

The single source of these tuples: ``config.py`` validates against them, the implementation
modules (``estimators``, ``models``, ``inference``) and the CLI import them from here.
"""

F_DIVERGENCES = ('js', 'fkl', 'rkl')
"""Divergences trained with the KDE + resampling + importance-sampling estimator."""

DIVERGENCES = F_DIVERGENCES + ('gan', 'me')
"""All actor losses: the f-divergences and the GAN and maximum-entropy (ME) baselines."""

CRITIC_READOUTS = ('flat', 'local')
"""How the critic reads the image: appendix B's flat features, or ``LocalCritic``."""

ACTOR_HEADS = ('flat', 'spatial')
"""The actor: appendix B's MLP on the flat features, or ``SpatialActor``."""

METHODS = ('actor-critic', 'heatmap', 'stacked-heatmap')
"""Training methods: the paper's actor-critic (default), and the heat-map baselines of its
appendix D.1, H ('heatmap': one-channel heat map per rotated image) and SH
('stacked-heatmap': one heat map channel per angle on the unrotated image)."""

HEATMAP_METHODS = METHODS[1:]
"""The methods without an actor: a fully convolutional network scores a grid of grasps."""

CAMERA_VIEWS = ('table', 'fitted')
"""How a model takes the image: as the table seen from straight above ('table'), or through
a homography the trainer fits from the prefill's successful grasps ('fitted')."""

RANKINGS = ('score', 'diverse')
"""'score': by critic probability; 'diverse': best of each mode first, round-robin."""

# Table 4 of the paper: KDE bandwidth sigma and proposal (resampling) bandwidth sigma'.
# Diagonal standard deviations for [x, y, r sin(alpha), r cos(alpha)], normalised units.
KDE_BANDWIDTH = (0.025, 0.025, 0.4, 0.4)
PROPOSAL_BANDWIDTH = (0.075, 0.075, 1.2, 1.2)
