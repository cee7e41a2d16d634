"""Defaults and limits of grasp proposals (torch-free: the bridge validates requests with
them, and the simulator node must not load torch). The one source of every default; the
README's "Asking for grasps from a planner" section gives the measurements behind them."""

REJECT_FRACTION = 0.0
"""Default share of the lowest-density actor samples a proposal rejects: none. The least
dense samples are often exactly those of a rare way of holding the object, so rejecting
the paper's 10 % removed it (measured on 100 evaluation scenes of the H, 512 samples: all
five modes among the candidates in 71 % of the scenes with 10 % rejected, 94 % without;
returned grasps 99.1 % and 98.6 % feasible; README "Asking for grasps from a planner").
The critic's score and the floor, not the density, keep infeasible grasps out of an
answer."""

PAPER_REJECT_FRACTION = 0.1
"""Share of the lowest-density samples rejected in the paper's '*' variants (section 4.3,
the '*' rows of section 6): what ``fga eval`` reports as the ``_rejected`` metrics and the
actor-versus-CEM benchmark (``fga bench propose``) uses, not the proposer's default."""

MAX_GRASPS = 4096
"""Largest number of grasps one proposal may return."""

MAX_SAMPLES = 16384
"""Largest number of actor samples one call may draw, over all its rounds (bounds time and
memory)."""

RESAMPLE = 4
"""Default pool of actor samples per sample that ``Proposer.sample_actions`` (and so
``fga eval``) returns, resampled towards the critic's target (``resampling``); 1: the
actor's own samples. With ``EXPLORE_SHARE`` and ``SHARPNESS`` (README "Resampled to the
critic's target"; bundled model, 64 evaluation scenes per shape, 1,024 samples each), the
settings were chosen on scenes of seeds 1000 and 2000 and measured on those of seed 0."""

MAX_RESAMPLE = 16
"""Largest ``resample`` accepted."""

EXPLORE_SHARE = 0.5
"""Default grasps centred on the object (``exploration.object_critic_inputs``) added to the
resampling pool per actor sample in it: the resampling cannot add a mode the actor never
samples, these grasps can, at some accuracy. Bundled model, 64 scenes per shape of seed
1000, ``SHARPNESS`` 1, 0.25 / 0.5: every mode of the training shapes hit in 98.0 / 99.6 % of
their scenes, the Box's modes recalled 86.7 / 96.1 % at accuracy* 79.9 / 78.9 %; the
sharper target (``SHARPNESS``) wins the accuracy back."""

MAX_EXPLORE_SHARE = 1.0
"""Largest ``explore_share`` accepted."""

SHARPNESS = 4.0
"""Default logit scale k of the resampling target: g = sigmoid(k * critic logit) x radius
weight (k = 1: the actor's training target; larger k: closer to uniform over the grasps the
critic calls feasible, less weight on those it is unsure of). Bundled model,
``EXPLORE_SHARE`` 0.5, 64 scenes per shape of seed 1000, k = 1 / 2 / 4 / infinity (a hard
threshold at 0.5): the Box's accuracy* 78.9 / 81.9 / 83.1 / 83.4 %, its mode recall 96.1 /
95.3 / 95.3 / 95.3 %, the training shapes' TV 0.048 / 0.047 / 0.046 / 0.046; on seed 2000,
k = 2 / 4: Box accuracy* 80.2 / 81.0 %."""

MAX_SHARPNESS = 16.0
"""Largest ``sharpness`` accepted."""

MAX_RESAMPLE_POOL = int(RESAMPLE * (1 + EXPLORE_SHARE) * MAX_SAMPLES)
"""Largest resampling pool accepted (its KDE self-density is quadratic in it): that of the
defaults for MAX_SAMPLES samples, 98,304."""

OVERSAMPLE = 4
"""Default actor samples drawn per returned grasp (before any density rejection)."""

MIN_CANDIDATES = 256
"""Actor samples drawn at least per round whatever the number of grasps asked for: a rare
way of holding the object needs many samples to show up at all (on the H with 72 samples
the fifth mode is missing from a quarter of the scenes), but past a few hundred the
explored grasps (``EXPLORE``) find the rare modes for less: 40 evaluation scenes per shape
of seed 1000, 16 grasps, every true mode among them on the H / 8 / Box with (candidates,
explored) = (512, 256): 88 / 58 / 48 %; (256, 1024): 100 / 65 / 78 %; (512, 1024): 95 /
65 / 60 %; (256, 768): 98 / 55 / 75 %; the Spoon 97.5 % and the T 100 % in every row; feasible
within a point of each other (training shapes 97.2-98.9 %, the Box 86.7-88.9 %); p50 of a
default request 17.1 / 15.4 / 20.6 / 15.5 ms (10 images, 2 threads)."""

MAX_OVERSAMPLE = 64
"""Largest ``oversample`` accepted."""

EXPLORE = 1024
"""Grasps the critic scores per round besides the actor's samples, centred on the object
(``exploration.object_critic_inputs``; uniform over the workspace where no object is
found); those scoring at least ``EXPLORE_MIN_SCORE`` join the candidates: they find ways
of holding the object the actor misses, above all on unseen shapes. They are screened on
the image alone, so one costs about a quarter of an actor sample (scored on every
calibration view); measured against ``MIN_CANDIDATES`` there. Earlier (100 scenes of seed
1000, 512 actor samples): every mode among the 16 grasps on the Box in 40 % of the scenes
with 256 explored (7 % without exploration; 35 % with 4,096 grasps uniform over the
workspace, which took about three quarters of a call), on the 8 in 58 % (38 %)."""

EXPLORE_MIN_SCORE = 0.7
"""Calibrated score an explored grasp needs to become a candidate (not lower: a lone
explored grasp forms a cluster of its own, which the diverse ranking promotes). Measured
with the four-view calibration on 60 evaluation scenes per shape (seed 1000; README
"Asking for grasps from a planner"), thresholds 0.9 / 0.8 / 0.7 / 0.6 / 0.5: every mode
among the 16 grasps on the 8 in 50 / 57 / 62 / 62 / 62 % of the scenes, on the Box in
40 / 50 / 55 / 60 / 62 %, the Box's grasps 93.0 / 90.7 / 89.1 / 89.3 / 88.3 % feasible,
the training shapes' 98.0-99.0 % throughout."""

NUM_GRASPS = 16
"""Default number of grasps one proposal returns."""

RANKING = 'diverse'
"""Default ranking (one of ``choices.RANKINGS``): the best grasp of every cluster first, so
that the first grasps of an answer spread over the object's ways of being held."""

SPREAD_MARGIN = 0.05
"""'diverse' ranking within a cluster: grasps whose ranking cost is within this of the
cluster's best (a score at most 0.05 lower, by default) are taken by non-maximum
suppression, skipping near-copies of grasps already ranked (``ranking.spread_order``).
Measured on 40 evaluation scenes per shape (seed 1000; README "Asking for grasps from a
planner"): returned grasps without a near-copy among the 16, H 4 -> 84 %, 8 9 -> 85 %, Spoon
3 -> 53 %, T 1 -> 56 %, Box 3 -> 10 %, at 98.0-99.1 % feasible on the training shapes
(98.4-99.4 % before) and 92.5 % on the Box (93.8 %); with no margin, 60-89 % without a
near-copy but T 96.2 % and the Box 88.8 % feasible (suppression then reaches the edges of a
mode, where the critic errs)."""

SCORE_FLOOR = 0.5
"""Calibrated score below which a grasp is never ranked ahead of one above it, and below
which the best candidate makes a proposal abstain (success = false)."""

PREFERENCE_WEIGHT = 0.005
"""Ranking cost per pixel of distance to a preferred point (the cost is 1 - score plus this
times the distance): 20 px closer outweighs a score 0.1 lower."""

TIME_BUDGET_S = 1.0
"""Wall time, s, after which a constrained proposal draws no further round of samples."""
