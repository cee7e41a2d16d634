"""Defaults and limits of grasp proposals (torch-free: the bridge validates requests with
them, and the simulator node must not load torch)."""

REJECT_FRACTION = 0.1
"""Default share of the lowest-density samples rejected (the paper's '*': 10%)."""

MAX_GRASPS = 4096
"""Largest number of grasps one proposal may return."""

MAX_SAMPLES = 16384
"""Largest number of actor samples one call may draw (bounds time and memory)."""

OVERSAMPLE = 4
"""Default actor samples drawn per returned grasp (before the density rejection)."""

MAX_OVERSAMPLE = 64
"""Largest ``oversample`` accepted."""

NUM_GRASPS = 16
"""Default number of grasps one proposal returns."""

RANKING = 'score'
"""Default ranking (one of ``choices.RANKINGS``)."""
