"""Defaults and limits of grasp proposals (torch-free: the bridge validates requests with
them, and the simulator node must not load torch). The one source of every default; the
README's "Asking for grasps from a planner" section gives the measurements behind them."""

REJECT_FRACTION = 0.1
"""Default share of the lowest-density samples rejected (the paper's '*': 10%)."""

MAX_GRASPS = 4096
"""Largest number of grasps one proposal may return."""

MAX_SAMPLES = 16384
"""Largest number of actor samples one call may draw, over all its rounds (bounds time and
memory)."""

OVERSAMPLE = 4
"""Default actor samples drawn per returned grasp (before the density rejection)."""

MIN_CANDIDATES = 512
"""Actor samples drawn at least per round whatever the number of grasps asked for: a rare
way of holding the object needs many samples to show up at all (measured on the H: with 72
samples, the fifth mode is missing from a quarter of the scenes)."""

MAX_OVERSAMPLE = 64
"""Largest ``oversample`` accepted."""

EXPLORE = 4096
"""Uniform random grasps the critic scores per round besides the actor's samples; the ones
scoring at least ``EXPLORE_MIN_SCORE`` join the candidates (finds modes the actor misses)."""

EXPLORE_MIN_SCORE = 0.9
"""Calibrated score an explored grasp needs to become a candidate (kept high: a lone
explored grasp forms a cluster of its own, which the diverse ranking would promote)."""

NUM_GRASPS = 16
"""Default number of grasps one proposal returns."""

RANKING = 'diverse'
"""Default ranking (one of ``choices.RANKINGS``): the best grasp of every cluster first, so
that the first grasps of an answer spread over the object's ways of being held."""

SCORE_FLOOR = 0.5
"""Calibrated score below which a grasp is never ranked ahead of one above it, and below
which the best candidate makes a proposal abstain (success = false)."""

PREFERENCE_WEIGHT = 0.005
"""Ranking cost per pixel of distance to a preferred point (the cost is 1 - score plus this
times the distance): 20 px closer outweighs a score 0.1 lower."""

TIME_BUDGET_S = 1.0
"""Wall time, s, after which a constrained proposal draws no further round of samples."""
