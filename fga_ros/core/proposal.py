"""Grasp proposal: sample the actor, reject low-density samples, score, cluster and rank.

Pipeline of :meth:`Proposer.propose` for one camera image (batch size 1):

1. one pass of the feature extractor;
2. ``num_sampled = ceil(oversample * num_grasps / (1 - reject_fraction))`` actor samples
   (one batched call of the actor head);
3. log-density of every sample under the actor's Gaussian KDE (eq. 8, bandwidth
   ``config.kde_bandwidth``, network units, all samples as supports);
4. rejection of the ``round(reject_fraction * num_sampled)`` lowest-density samples: the
   paper's action optimisation (section 4.3, the '*' variants of section 6);
5. critic success probability of the kept samples (one batched call of the critic head);
6. clustering of the kept samples into modes (:func:`cluster_modes`);
7. ranking by score, or round-robin over modes ('diverse'), and the top ``num_grasps``.

With ``oversample`` > 1 the critic picks the returned grasps among several actor samples
each: a cheap way to trade a few milliseconds for grasps that are more often feasible
(``fga bench propose`` reports both). The section 6 metrics (``fga eval``) measure the raw
actor samples, without oversampling.

Leave-one-out or not: the KDE includes each sample's own kernel (it is the KDE the actor is
trained with, and it is finite for isolated samples). The self term is the same constant
``K(0) / N`` for every sample, so the density *order*, hence which samples are rejected, is
exactly that of the leave-one-out estimate.
"""

from dataclasses import dataclass
import math
import time
import typing

import numpy as np
from scipy.spatial import cKDTree
import torch

from fga_ros.core.actions import HALF_WIDTH, decode_actor, normalise_actor_output
from fga_ros.core.checkpoint import load_model
from fga_ros.core.device import select_device
from fga_ros.core.nets import images_to_tensor
from fga_ros.resources import share_path
from fga_ros.sim.workspace import IMAGE_SIZE

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

RANKINGS = ('score', 'diverse')
"""'score': by critic probability; 'diverse': best of each mode first, round-robin."""

CLUSTER_CELL_PX = 3.0
"""Grid spacing of the mode clustering along x and y, pixels."""

CLUSTER_CELL_ANGLE = 0.5
"""Grid spacing of the mode clustering along the doubled-angle unit vector
(sin 2a, cos 2a): a chord of 0.5 is a gripper-angle difference of about 14.5 degrees."""

_KDE_CHUNK = 1024  # rows of the pairwise kernel matrix computed at a time
_MAX_SQ_DISTANCE = 160.0  # scaled squared distance cap: exp(-80) is still a normal float
BUNDLED_MODEL = ('models', 'fga_cpu_js.pt')
"""Share-relative path of the model shipped with the package."""


@dataclass(frozen=True, eq=False)
class Proposal:
    """Ranked grasp proposals; row i has rank i. Arrays are read-only.

    Attributes:
        actions: (n, 3) float64 grasps (x px, y px, alpha rad in [0, pi)).
        scores: (n,) float64 critic success probabilities in [0, 1].
        log_density: (n,) float64 actor KDE log-density in network units (NaN where the
            generator has no density, e.g. CEM).
        mode_ids: (n,) int64 cluster ids >= 0; id k is the k-th mode by best score.
        ranks: (n,) int64, 0 = best.
        num_sampled: candidates drawn in total.
        num_rejected: candidates rejected for low density.
        inference_ms: wall time of the call, milliseconds.
    """

    actions: np.ndarray
    scores: np.ndarray
    log_density: np.ndarray
    mode_ids: np.ndarray
    ranks: np.ndarray
    num_sampled: int
    num_rejected: int
    inference_ms: float

    def __post_init__(self):
        for name in ('actions', 'scores', 'log_density', 'mode_ids', 'ranks'):
            getattr(self, name).setflags(write=False)

    def __len__(self):
        return len(self.actions)

    @property
    def num_modes(self):
        """Number of distinct modes among the returned grasps."""
        return int(self.mode_ids.max()) + 1 if len(self.mode_ids) else 0


class ModelState(typing.NamedTuple):
    """An immutable snapshot of what a ``Proposer`` answers from."""

    model: torch.nn.Module
    config: typing.Any
    meta: dict


# -- validation ---------------------------------------------------------------------------


def check_image(image):
    """Return ``image`` if it is a (128, 128, 3) uint8 RGB array, else raise ValueError."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f'image must be a numpy array, got {type(image).__name__}')
    if image.dtype != np.uint8:
        raise ValueError(f'image must have dtype uint8, got {image.dtype}')
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(f'image must have shape ({IMAGE_SIZE}, {IMAGE_SIZE}, 3) (RGB camera '
                         f'frame), got {image.shape}')
    return image


def check_count(name, value, low, high):
    """Return ``value`` as int if it is an integer in [low, high], else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f'{name} must be an integer, got {value!r}')
    if not low <= value <= high:
        raise ValueError(f'{name} must be in [{low}, {high}], got {value}')
    return int(value)


def check_fraction(name, value):
    """Return ``value`` as float if it is a number in [0, 1), else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f'{name} must be a number in [0, 1), got {value!r}')
    if not 0.0 <= value < 1.0:
        raise ValueError(f'{name} must be in [0, 1), got {value}')
    return float(value)


def make_generator(device, generator=None, seed=None):
    """The torch generator to sample with: ``generator``, one seeded with ``seed``, or None.

    Raises:
        ValueError: both given, a generator on another device, or a bad seed.
    """
    device = torch.device(device)
    if generator is not None and seed is not None:
        raise ValueError('give either generator or seed, not both')
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f'seed must be an integer >= 0, got {seed!r}')
        return torch.Generator(device=device).manual_seed(int(seed))
    if generator is not None and generator.device.type != device.type:
        raise ValueError(f'generator is on {generator.device}, the model on {device}')
    return generator


def model_device(model):
    """Device of a model's first parameter (cpu for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device('cpu')


# -- counts -------------------------------------------------------------------------------


def num_to_sample(num_grasps, reject_fraction):
    """Samples to draw so that ``num_grasps`` survive rejection: ceil(n / (1 - f)) >= n."""
    # The small tolerance keeps e.g. 30 / (1 - 0.7) = 100.00000000000001 at 100.
    return max(num_grasps, math.ceil(num_grasps / (1.0 - reject_fraction) - 1e-9))


def num_to_reject(num_sampled, reject_fraction):
    """Lowest-density samples to reject: reject_fraction * num_sampled rounded half up."""
    return int(math.floor(reject_fraction * num_sampled + 0.5))


def keep_densest(log_density, reject_fraction):
    """Indices (ascending) of the samples kept after rejecting the lowest-density ones.

    Args:
        log_density: (n,) array; ties are broken by index (stable), NaN counts as lowest.
    """
    log_density = np.asarray(log_density, dtype=np.float64)
    n = len(log_density)
    keys = np.where(np.isnan(log_density), -np.inf, log_density)
    order = np.argsort(-keys, kind='stable')
    return np.sort(order[:n - num_to_reject(n, reject_fraction)])


# -- density, clustering, ranking ---------------------------------------------------------


def self_log_density(points, bandwidth):
    """KDE log-density of every point with all points (itself included) as supports, (..., n).

    The value of ``kde.kde_log_density(points, points, bandwidth)``, computed for speed
    (inference only): squared distances come from one matrix product of augmented rows,
    ``[a, |a|^2, 1] . [-2 b, 1, |b|^2] = |a - b|^2``, in chunks of rows (memory stays
    bounded for thousands of points). Because every point is its own support, the kernel sum
    is >= 1 (in units of the kernel peak) and needs no max-shift; scaled squared distances
    are capped at 160 (kernel >= e^-80) so that exp never produces slow denormals, which
    changes a log-density by less than n e^-80 (negligible).

    Args:
        points: (..., n, D) tensor; bandwidth: (D,) standard deviations.
    """
    sigma = torch.as_tensor(bandwidth, dtype=points.dtype, device=points.device)
    n, dim = points.shape[-2], points.shape[-1]
    # Centring keeps |a|^2 small, so the expansion loses no precision in float32.
    scaled = (points - points.mean(-2, keepdim=True)) / sigma
    sq = scaled.square().sum(-1, keepdim=True)
    ones = torch.ones_like(sq)
    left = torch.cat([scaled, sq, ones], dim=-1)
    right = torch.cat([-2.0 * scaled, ones, sq], dim=-1).transpose(-1, -2)
    parts = [(rows @ right).clamp_(0.0, _MAX_SQ_DISTANCE).mul_(-0.5).exp_().sum(-1).log_()
             for rows in left.split(_KDE_CHUNK, dim=-2)]
    log_norm = torch.log(sigma).sum() + 0.5 * dim * math.log(2.0 * math.pi) + math.log(n)
    return torch.cat(parts, dim=-1) - log_norm


def cluster_modes(critic_inputs, scores, cell_px=CLUSTER_CELL_PX,
                  cell_angle=CLUSTER_CELL_ANGLE):
    """Cluster grasps into modes on a grid in (x_n, y_n, sin 2a, cos 2a), angle periodic.

    Each grasp falls into a cell of a 4-D grid (spacing ``cell_px`` pixels along x and y,
    ``cell_angle`` along the doubled-angle unit vector); modes are the connected components
    of the occupied cells, a cell touching its 80 neighbours (Chebyshev distance 1). So two
    grasps closer than one spacing in every coordinate share a mode, and grasps two
    spacings apart in some coordinate are only joined through grasps between them. Unlike
    a radius graph, the cost does not grow with the number of close pairs: O(n log n).

    Args:
        critic_inputs: (n, 4) ``[x_n, y_n, sin 2a, cos 2a]`` (unit angle vectors).
        scores: (n,) scores; modes are numbered by their best score, 0 = best.

    Returns:
        (n,) int64 mode ids in 0..K-1.
    """
    critic_inputs = np.asarray(critic_inputs, dtype=np.float64)
    n = len(critic_inputs)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    spacing = np.array([cell_px / HALF_WIDTH] * 2 + [cell_angle] * 2)
    cells = np.floor(critic_inputs / spacing).astype(np.int64)
    cells -= cells.min(axis=0)
    radix = cells.max(axis=0) + 1
    keys = np.ravel_multi_index(cells.T, radix)
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    occupied = np.stack(np.unravel_index(unique_keys, radix), axis=1)
    pairs = cKDTree(occupied).query_pairs(1.0, p=np.inf, output_type='ndarray')
    return _renumber_by_score(connected_labels(len(occupied), pairs)[inverse], scores)


def connected_labels(count, pairs):
    """Connected components of an undirected graph: (count,) labels, one node id per component.

    Union-find by vectorised root hooking (the larger root of every edge points to the
    smaller) and pointer jumping, repeated until every edge joins equal labels; for the
    small graphs of ``cluster_modes`` this is several times cheaper than building a
    ``scipy.sparse`` matrix.

    Args:
        count: number of nodes; pairs: (E, 2) int edges.
    """
    labels = np.arange(count)
    first, second = pairs[:, 0], pairs[:, 1]
    while True:
        root_a, root_b = labels[first], labels[second]
        low = np.minimum(root_a, root_b)
        hooked = labels.copy()
        np.minimum.at(hooked, root_a, low)
        np.minimum.at(hooked, root_b, low)
        while True:  # pointer jumping until every node points at a root
            jumped = hooked[hooked]
            if np.array_equal(jumped, hooked):
                break
            hooked = jumped
        if np.array_equal(hooked, labels):
            return labels
        labels = hooked


def _renumber_by_score(labels, scores):
    """Renumber labels 0..K-1 in the order of their best score (ties: first occurrence)."""
    order = np.argsort(-np.asarray(scores), kind='stable')
    _, first = np.unique(labels[order], return_index=True)
    ranked = labels[order][np.sort(first)]  # labels in order of their best member
    lookup = np.empty(labels.max() + 1, dtype=np.int64)
    lookup[ranked] = np.arange(len(ranked))
    return lookup[labels]


def rank_order(scores, mode_ids, ranking):
    """Indices ordering candidates best first.

    'score': by descending score. 'diverse': round-robin over modes: the best grasp of every
    mode (modes ordered by their best score), then the second best of every mode, ...

    Args:
        scores: (n,) scores; mode_ids: (n,) ids numbered by best score (``cluster_modes``).
    """
    scores = np.asarray(scores)
    by_score = np.argsort(-scores, kind='stable')
    if ranking == 'score':
        return by_score
    modes = np.asarray(mode_ids)[by_score]
    grouped = np.argsort(modes, kind='stable')  # by mode, by score within a mode
    counts = np.bincount(modes)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    within = np.empty(len(scores), dtype=np.int64)
    within[by_score[grouped]] = np.arange(len(scores)) - starts
    return np.lexsort((mode_ids, within))


# -- sampling -----------------------------------------------------------------------------


def _features(model, config, image, device):
    return model.features(images_to_tensor(image, config.image_size, device))


def sample_with_density(model, config, image, n, generator=None):
    """``n`` actor samples for one image and their KDE log-densities (no critic).

    Args:
        image: (128, 128, 3) uint8 RGB; n: number of samples.

    Returns:
        (actions (n, 3) float64 px/rad, log_density (n,) float64 in network units).
    """
    check_image(image)
    n = check_count('n', n, 1, MAX_SAMPLES)
    with torch.inference_mode():
        features = _features(model, config, image, model_device(model))
        out = model.sample(features, n, generator)[0]
        log_density = self_log_density(out, config.kde_bandwidth)
        actions = decode_actor(out)
    return (actions.cpu().numpy().astype(np.float64),
            log_density.cpu().numpy().astype(np.float64))


def finish_proposal(actions, critic_inputs, scores, log_density, num_grasps, ranking,
                    num_sampled, num_rejected, start):
    """Cluster, rank, select the top ``num_grasps`` and pack a :class:`Proposal`.

    Args:
        actions: (m, 3) px; critic_inputs: (m, 4); scores, log_density: (m,); numpy arrays
        of the m >= num_grasps candidates. start: ``time.perf_counter()`` at the call.
    """
    modes = cluster_modes(critic_inputs, scores)
    top = rank_order(scores, modes, ranking)[:num_grasps]
    kept = modes[top]
    _, first = np.unique(kept, return_index=True)
    lookup = np.empty(modes.max() + 1, dtype=np.int64)
    lookup[kept[np.sort(first)]] = np.arange(len(first))  # renumber in rank order
    return Proposal(
        actions=np.asarray(actions, dtype=np.float64)[top],
        scores=np.asarray(scores, dtype=np.float64)[top],
        log_density=np.asarray(log_density, dtype=np.float64)[top],
        mode_ids=lookup[kept], ranks=np.arange(len(top), dtype=np.int64),
        num_sampled=int(num_sampled), num_rejected=int(num_rejected),
        inference_ms=1e3 * (time.perf_counter() - start))


class Proposer:
    """Grasp proposals from a trained actor-critic (see the module docstring).

    Thread safety: every call reads one :class:`ModelState` at its start, so
    :meth:`load_state` / :meth:`reload` can swap weights while calls are running; a call
    never mixes two models. A model handed to the proposer must not be trained further
    (pass a copy).

    Args:
        model: ``ActorCritic`` (moved to ``device`` and put in eval mode).
        config: its ``TrainConfig`` (image size, KDE bandwidth).
        device: torch device string ('cpu', 'cuda', 'auto').
        seed: optional seed of the proposer's own generator, used by calls that pass
            neither ``generator`` nor ``seed`` (None: torch's global generator).
        meta: optional metadata of the model (e.g. from its file).
    """

    def __init__(self, model, config, device='cpu', seed=None, meta=None):
        self.device = select_device(device)
        self._state = None
        self.generator = make_generator(self.device, seed=seed)
        self.load_state(model, config, meta)

    @classmethod
    def from_checkpoint(cls, path=None, device='cpu', seed=None):
        """Proposer for an exported model or training checkpoint.

        Args:
            path: model file; None: the bundled model ``share/fga_ros/models/fga_cpu_js.pt``.

        Raises:
            FileNotFoundError: no such file (names it). CheckpointError: unusable file.
        """
        model, config, meta = load_model(_model_path(path), map_location=select_device(device))
        return cls(model, config, device=device, seed=seed, meta=meta)

    def snapshot(self):
        """The current :class:`ModelState` (model, config, meta)."""
        return self._state

    @property
    def config(self):
        """``TrainConfig`` of the model in service."""
        return self._state.config

    def load_state(self, model, config, meta=None):
        """Answer later calls from ``model`` / ``config``; running calls finish on the old."""
        if not all(hasattr(model, name) for name in ('features', 'sample', 'score')):
            raise ValueError(f'model must provide features, sample and score, got '
                             f'{type(model).__name__}')
        # One reference assignment: calls running now keep the state they read.
        self._state = ModelState(model.to(self.device).eval(), config, dict(meta or {}))

    def reload(self, path=None):
        """Load a model file (None: the bundled one) and swap it in atomically.

        On any error the current model stays in service and the error propagates.
        """
        model, config, meta = load_model(_model_path(path), map_location=self.device)
        self.load_state(model, config, meta)

    def _generator(self, generator, seed):
        chosen = make_generator(self.device, generator, seed)
        return self.generator if chosen is None else chosen

    def sample_actions(self, image, n, generator=None, seed=None):
        """``n`` raw actor samples and their KDE log-densities; see ``sample_with_density``."""
        state = self._state
        return sample_with_density(state.model, state.config, image, n,
                                   self._generator(generator, seed))

    def propose(self, image, num_grasps=16, reject_fraction=REJECT_FRACTION, ranking='score',
                generator=None, seed=None, oversample=OVERSAMPLE):
        """Ranked, density-filtered grasp proposals for one camera image.

        Args:
            image: (128, 128, 3) uint8 RGB camera frame.
            num_grasps: grasps to return, 1..MAX_GRASPS.
            reject_fraction: share of lowest-density samples rejected, [0, 1).
            ranking: 'score' or 'diverse' (see ``rank_order``).
            oversample: actor samples per returned grasp, 1..MAX_OVERSAMPLE (module doc).
            generator / seed: optional randomness for reproducible proposals.

        Returns:
            :class:`Proposal` with ``num_grasps`` rows, rank order.

        Raises:
            ValueError: naming the bad argument.
        """
        start = time.perf_counter()
        check_image(image)
        num_grasps = check_count('num_grasps', num_grasps, 1, MAX_GRASPS)
        reject_fraction = check_fraction('reject_fraction', reject_fraction)
        if ranking not in RANKINGS:
            raise ValueError(f'ranking must be one of {RANKINGS}, got {ranking!r}')
        oversample = check_count('oversample', oversample, 1, MAX_OVERSAMPLE)
        num_sampled = num_to_sample(num_grasps * oversample, reject_fraction)
        if num_sampled > MAX_SAMPLES:
            raise ValueError(f'oversample * num_grasps / (1 - reject_fraction) = {num_sampled} '
                             f'samples, more than {MAX_SAMPLES}; lower num_grasps, oversample '
                             f'or reject_fraction')
        generator = self._generator(generator, seed)
        state = self._state
        model, config = state.model, state.config
        num_rejected = num_to_reject(num_sampled, reject_fraction)
        with torch.inference_mode():
            features = _features(model, config, image, self.device)
            out = model.sample(features, num_sampled, generator)[0]
            log_density = self_log_density(out, config.kde_bandwidth)
            keep = torch.topk(log_density, num_sampled - num_rejected, sorted=False).indices
            out, log_density = out[keep], log_density[keep]
            critic_inputs = normalise_actor_output(out)
            scores = torch.sigmoid(model.score(features, critic_inputs[None])[0])
            actions = decode_actor(out)
        return finish_proposal(
            actions.cpu().numpy(), critic_inputs.cpu().numpy(), scores.cpu().numpy(),
            log_density.cpu().numpy(), num_grasps, ranking, num_sampled, num_rejected, start)


def bundled_model_path():
    """Path of the model shipped with the package: ``share/fga_ros/models/fga_cpu_js.pt``."""
    return share_path(*BUNDLED_MODEL)


def _model_path(path):
    return bundled_model_path() if path is None else path
