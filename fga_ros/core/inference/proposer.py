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
import time
import typing

import numpy as np
import torch

from fga_ros.core.common.actions import decode_actor, normalise_actor_output
from fga_ros.core.common.checks import check_count, check_fraction, check_image
from fga_ros.core.common.choices import RANKINGS
from fga_ros.core.common.tensors import (
    images_to_tensor,
    make_generator,
    model_device,
    select_device,
)
from fga_ros.core.inference.defaults import (
    MAX_GRASPS,
    MAX_OVERSAMPLE,
    MAX_SAMPLES,
    NUM_GRASPS,
    OVERSAMPLE,
    RANKING,
    REJECT_FRACTION,
)
from fga_ros.core.inference.density import num_to_reject, num_to_sample, self_log_density
from fga_ros.core.inference.modes import cluster_modes
from fga_ros.core.inference.ranking import rank_order
from fga_ros.core.models.model_file import load_model
from fga_ros.resources import share_path

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

    def propose(self, image, num_grasps=NUM_GRASPS, reject_fraction=REJECT_FRACTION,
                ranking=RANKING, generator=None, seed=None, oversample=OVERSAMPLE):
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
